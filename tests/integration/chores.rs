//! Chores through the real service, on both backends: a repeating chore that Ben and
//! Tom take turns on is created by signed webhooks; when Ben marks it done, the next one
//! is in the database for Tom, a week later, with its durable reminder timer. (Every path
//! of the flow is in `flows/tests/chores.test.yaml` on a virtual clock.)

use alfred::cli::serve::Roles;
use alfred_fake_graph as fake_graph;
use chrono::{TimeZone, Utc};

use super::pipeline::{Backend, Running, VirtualClock, eventually, sends};
use crate::support::text_webhook;

/// Numbers as the webhook has them (`from`) and as Alfred sends to them (`to`).
const ANNA: &str = "31612345001";
const BEN: &str = "31612345002";
const ANNA_TO: &str = "+31612345001";
const BEN_TO: &str = "+31612345002";

/// Accepted sends as (recipient as Alfred addressed it, body).
fn sent(fake: &fake_graph::FakeGraph) -> Vec<(String, String)> {
    sends(fake)
        .into_iter()
        .map(|(to, body)| (format!("+{to}"), body))
        .collect()
}

/// The pending durable timers as (id, member).
fn pending_timers(svc: &Running) -> Vec<(String, String)> {
    let timers = svc.service.store.pending_timers().unwrap();
    timers.into_iter().map(|t| (t.id, t.member)).collect()
}

/// Posts `text` from `number` and waits until `n` texts were sent in all.
async fn say(svc: &Running, fake: &fake_graph::FakeGraph, number: &str, wamid: &str, text: &str, n: usize) {
    assert_eq!(svc.post(&text_webhook(number, wamid, text)).await, 200);
    eventually(&format!("{n} sends after {text:?}"), || sent(fake).len() >= n).await;
}

on_both_backends!(a_rotating_weekly_chore_moves_to_the_next_member_when_done);

async fn a_rotating_weekly_chore_moves_to_the_next_member_when_done(backend: Backend) {
    let fake = fake_graph::start().await;
    // A Wednesday morning: no briefing or Sunday summary is in its catch-up hour, whatever
    // the wall clock says.
    let mut service = backend.build(&fake).await;
    service.clock = VirtualClock::at(Utc.with_ymd_and_hms(2030, 1, 2, 10, 0, 0).unwrap()).clock();
    let svc = Running::start(service, Roles::ALL).await;

    // Ben writes first, so his 24-hour window is open for Anna's notification.
    say(&svc, &fake, BEN, "wamid.CH1", "my chores pls", 1).await;
    say(
        &svc,
        &fake,
        ANNA,
        "wamid.CH2",
        "new chore trash for Ben and Tom every monday",
        2,
    )
    .await;
    // An absolute date, so the texts do not depend on the day the test runs (a Monday).
    say(&svc, &fake, ANNA, "wamid.CH3", "2030-01-07 18:00", 4).await;
    let texts = sent(&fake);
    assert_eq!(texts[0], (BEN_TO.to_owned(), "You have no open chores. 🎉".to_owned()));
    assert_eq!(
        texts[1],
        (
            ANNA_TO.to_owned(),
            "When is it due? (for example \"tomorrow 18:00\")".to_owned()
        )
    );
    // The confirmation and the notification go to different members: either order.
    let mut rest = texts[2..4].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        vec![
            (
                ANNA_TO.to_owned(),
                "Added chore \"trash\" for Ben, due Mon 18:00, repeating every monday; Ben and Tom take turns."
                    .to_owned()
            ),
            (
                BEN_TO.to_owned(),
                "Anna gave you a chore: trash (due Mon 18:00).".to_owned()
            ),
        ]
    );
    assert_eq!(pending_timers(&svc), [("chore-1".to_owned(), "Ben".to_owned())]);

    // Due on a later day than today: Alfred asks first, so a "done" sent twice cannot
    // skip a turn. The question has buttons (an interactive message).
    say(&svc, &fake, BEN, "wamid.CH4", "Done the trash!", 5).await;
    assert_eq!(
        sent(&fake)[4],
        (
            BEN_TO.to_owned(),
            "\"trash\" is not due until Mon 07 Jan. Mark it done already?".to_owned()
        )
    );
    say(&svc, &fake, BEN, "wamid.CH5", "yes", 6).await;
    assert_eq!(
        sent(&fake)[5],
        (
            BEN_TO.to_owned(),
            "Nice work! \"trash\" is done. Next: Tom, Mon 14 Jan 18:00.".to_owned()
        )
    );

    let data = svc.service.store.load_data().unwrap();
    let chores = data.collection("chores");
    assert_eq!(chores.len(), 2, "the done chore stays, the next one is new: {chores:?}");
    let (done, next) = (&chores[0].fields, &chores[1].fields);
    assert_eq!(done["done"], true);
    assert_eq!(done["done_by"], "Ben");
    assert_eq!(done["due"], "2030-01-07T18:00:00+01:00");
    assert_eq!(next["done"], false);
    assert_eq!(next["assignee"], "Tom");
    assert_eq!(next["due"], "2030-01-14T18:00:00+01:00");
    assert_eq!(next["repeat"], "every monday");
    assert_eq!(next["rotation"], serde_json::json!(["Tom", "Ben"]));
    // The old reminder is cancelled; the new one waits for Tom.
    assert_eq!(pending_timers(&svc), [("chore-2".to_owned(), "Tom".to_owned())]);
    svc.stop().await;
}
