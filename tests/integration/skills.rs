//! Each family skill through the real service, on both backends (embedded SQLite with the
//! SQL queue; Postgres + Redis): a signed webhook in, the reply at the fake Graph API, the
//! data in the database. (Groceries' "add bananas" is in `service.rs`; the skills' every
//! path is in `flows/tests/` on a virtual clock.)

use alfred::cli::serve::Roles;
use alfred_fake_graph as fake_graph;
use chrono::{TimeZone, Utc};

use super::pipeline::{Backend, Running, VirtualClock, accepted_texts, eventually, sends};
use crate::support::{root, text_webhook};

on_both_backends!(reminders_store_a_record_and_a_durable_timer);
on_both_backends!(the_car_log_and_the_briefing_opt_out_are_stored);
on_both_backends!(the_morning_briefing_goes_out_at_seven_through_the_running_scheduler);
on_both_backends!(help_the_unknown_text_hint_and_media_are_answered);

/// Posts `text` from `number` and waits for the `n`-th accepted reply overall.
async fn say(svc: &Running, fake: &fake_graph::FakeGraph, number: &str, wamid: &str, text: &str, n: usize) {
    assert_eq!(svc.post(&text_webhook(number, wamid, text)).await, 200);
    eventually(&format!("reply {n}"), || accepted_texts(fake).len() >= n).await;
}

async fn reminders_store_a_record_and_a_durable_timer(backend: Backend) {
    let fake = fake_graph::start().await;
    let svc = Running::start(backend.build(&fake).await, Roles::ALL).await;
    say(
        &svc,
        &fake,
        "31612345001",
        "wamid.SK1",
        "remind Tom tomorrow at 7 to take out the trash",
        1,
    )
    .await;
    let reply = accepted_texts(&fake).remove(0);
    assert!(reply.starts_with("OK, I'll remind Tom "), "{reply}");
    assert!(reply.ends_with(" at 07:00: take out the trash"), "{reply}");
    let data = svc.service.store.load_data().unwrap();
    let reminders = data.collection("reminders");
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].fields["who"], "Tom");
    assert_eq!(reminders[0].fields["text"], "take out the trash");
    let timers = svc.service.store.pending_timers().unwrap();
    assert_eq!(timers.len(), 1, "one durable timer");
    assert_eq!(
        (timers[0].id.as_str(), timers[0].member.as_str()),
        ("reminder-1", "Tom")
    );
    // Listing and cancelling go through the same path. Tom reads Dutch (issue 12, item 11).
    say(&svc, &fake, "31612345003", "wamid.SK2", "cancel reminder trash", 2).await;
    assert_eq!(
        accepted_texts(&fake)[1],
        "De herinnering \"take out the trash\" is geannuleerd."
    );
    assert!(
        svc.service.store.pending_timers().unwrap().is_empty(),
        "cancelled timer is gone"
    );
    svc.stop().await;
}

async fn the_car_log_and_the_briefing_opt_out_are_stored(backend: Backend) {
    let fake = fake_graph::start().await;
    let svc = Running::start(backend.build(&fake).await, Roles::ALL).await;
    say(&svc, &fake, "31612345002", "wamid.SK3", "I take the car to the gym", 1).await;
    assert_eq!(accepted_texts(&fake)[0], "Drive safely to the gym!");
    say(&svc, &fake, "31612345001", "wamid.SK4", "who has the car?", 2).await;
    assert!(
        accepted_texts(&fake)[1].starts_with("Ben has the car since "),
        "{:?}",
        accepted_texts(&fake)
    );
    say(&svc, &fake, "31612345001", "wamid.SK5", "stop briefing", 3).await;
    assert_eq!(
        accepted_texts(&fake)[2],
        "OK, no more morning briefings. Say \"start briefing\" to get them again."
    );
    let data = svc.service.store.load_data().unwrap();
    assert_eq!(data.collection("car_log")[0].fields["driver"], "Ben");
    assert_eq!(data.collection("briefing_optout")[0].fields["member"], "Anna");
    svc.stop().await;
}

/// The message bodies the fake Graph API accepted for one number, in order.
fn texts_to(fake: &fake_graph::FakeGraph, number: &str) -> Vec<String> {
    sends(fake)
        .into_iter()
        .filter(|(to, _)| to == number)
        .map(|(_, body)| body)
        .collect()
}

/// The briefing's schedule (`flows/briefing.yaml`, weekdays 07:00 where each member lives)
/// fired by the service's own scheduler: the service runs on a virtual clock that the test
/// moves from 06:58 to 07:00 on a Monday. Ben has a chore due today and Anna a reminder,
/// so each gets a briefing; Tom has neither and gets nothing.
async fn the_morning_briefing_goes_out_at_seven_through_the_running_scheduler(backend: Backend) {
    let amsterdam = chrono_tz::Europe::Amsterdam;
    let local = |h, m, s| {
        amsterdam
            .with_ymd_and_hms(2026, 11, 30, h, m, s)
            .unwrap()
            .with_timezone(&Utc)
    };
    let clock = VirtualClock::at(local(6, 58, 0));
    let fake = fake_graph::start().await;
    let mut service = backend.build(&fake).await;
    service.clock = clock.clock();
    let svc = Running::start(service, Roles::ALL).await;
    // Ben gives himself a chore due tonight; Anna sets a reminder for noon.
    for (i, text) in ["new chore", "Water the plants", "me", "today 18:00", "no"]
        .into_iter()
        .enumerate()
    {
        say(&svc, &fake, "31612345002", &format!("wamid.BR{i}"), text, i + 1).await;
    }
    assert_eq!(
        texts_to(&fake, "31612345002").last().map(String::as_str),
        Some("Added chore \"Water the plants\" for Ben, due Mon 18:00.")
    );
    say(
        &svc,
        &fake,
        "31612345001",
        "wamid.BR9",
        "remind me today at 12:00 to call grandma",
        6,
    )
    .await;
    // Nothing is due before 07:00: the scheduler has ticked at 06:58 and sent nothing.
    let before = accepted_texts(&fake).len();
    clock.set(local(7, 0, 1));
    eventually("two briefings", || accepted_texts(&fake).len() >= before + 2).await;
    assert_eq!(
        texts_to(&fake, "31612345002").last().map(String::as_str),
        Some("Good morning Ben! ☀️\nChores today: Water the plants.\nNo reminders today.\nShopping list: 0 items.")
    );
    assert_eq!(
        texts_to(&fake, "31612345001").last().map(String::as_str),
        Some("Good morning Anna! ☀️\nNo chores today.\nReminders: 12:00 call grandma.\nShopping list: 0 items.")
    );
    assert!(texts_to(&fake, "31612345003").is_empty(), "Tom has nothing today");
    // The slot is stored as run for Anna, Ben and Tom (Tom's run sent nothing), so a
    // restarted scheduler, or a second one, does not send it again.
    let slot = local(7, 0, 0);
    let store = svc.service.store.clone();
    eventually("the slot finished", || {
        store
            .schedule_slot_history("briefing#0@Europe/Amsterdam")
            .unwrap()
            .iter()
            .any(|(s, status)| *s == slot && status == "done")
    })
    .await;
    let done = store.schedule_members_done("briefing#0", slot).unwrap();
    assert_eq!(done.len(), 3, "{done:?}");
    svc.stop().await;
    assert_eq!(
        accepted_texts(&fake).len(),
        before + 2,
        "one briefing each, never twice"
    );
}

/// Every message the fake Graph API accepted, as `(to without +, body)`, in order.
fn accepted(fake: &fake_graph::FakeGraph) -> Vec<(String, serde_json::Value)> {
    fake.exchanges()
        .into_iter()
        .filter(|x| x.is_accepted_send())
        .map(|x| {
            let to = x.request.body["to"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('+')
                .to_owned();
            (to, x.request.body)
        })
        .collect()
}

/// One of Meta's recorded webhook bodies (`tests/fixtures/whatsapp-payloads/`), re-addressed
/// as if `number` sent it, with a fresh message id.
fn recorded_webhook(name: &str, number: &str, wamid: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures/whatsapp-payloads").join(name);
    let mut body: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = number.into();
    value["messages"][0]["from"] = number.into();
    value["messages"][0]["id"] = wamid.into();
    serde_json::to_vec(&body).unwrap()
}

/// Help and the unhappy path (`flows/fallback.yaml`, `flows/help.yaml`): text nothing
/// understood gets the hint with a Help button, tapping it lists the skills, and Meta's
/// recorded image and voice-note webhooks get the polite media reply: never silence.
async fn help_the_unknown_text_hint_and_media_are_answered(backend: Backend) {
    let fake = fake_graph::start().await;
    let svc = Running::start(backend.build(&fake).await, Roles::ALL).await;
    let wait = |n: usize| {
        let fake = &fake;
        async move { eventually(&format!("{n} replies"), || accepted(fake).len() >= n).await }
    };
    assert_eq!(
        svc.post(&text_webhook("31612345002", "wamid.HF1", "blorp zzz")).await,
        200
    );
    wait(1).await;
    let (to, hint) = accepted(&fake).remove(0);
    assert_eq!(to, "31612345002");
    assert_eq!(hint["type"], "interactive");
    assert_eq!(
        hint["interactive"]["body"]["text"],
        "Sorry, I didn't understand that. Try \"add milk\", \"list\" or \"my chores\"."
    );
    assert_eq!(hint["interactive"]["action"]["buttons"][0]["reply"]["id"], "help");

    // Tapping the Help button: Meta's recorded button-reply body, with the button's id.
    let mut tap: serde_json::Value = serde_json::from_slice(&recorded_webhook(
        "webhook_interactive_button_reply.json",
        "31612345002",
        "wamid.HF2",
    ))
    .unwrap();
    tap["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["button_reply"]["id"] = "help".into();
    assert_eq!(svc.post(&serde_json::to_vec(&tap).unwrap()).await, 200);
    wait(2).await;
    let help = accepted(&fake)[1].1["text"]["body"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(help.starts_with("Here is what I can do:\n"), "{help}");
    for skill in ["Shopping list", "Chores", "Reminders", "Morning briefing"] {
        assert!(help.contains(skill), "help lists {skill}: {help}");
    }

    // Tom sends a photo, then a voice note.
    for (i, fixture) in ["webhook_image.json", "webhook_audio_voice.json"]
        .into_iter()
        .enumerate()
    {
        let body = recorded_webhook(fixture, "31612345003", &format!("wamid.HF-media-{i}"));
        assert_eq!(svc.post(&body).await, 200);
        wait(3 + i).await;
        let (to, reply) = accepted(&fake).remove(2 + i);
        assert_eq!(to, "31612345003");
        // Tom reads Dutch (issue 12, item 11).
        assert_eq!(
            reply["text"]["body"],
            "Dank je! Foto's, video's en spraakberichten kan ik nog niet bekijken. Typ maar wat je nodig hebt."
        );
    }
    svc.stop().await;
    assert_eq!(accepted(&fake).len(), 4, "one reply per message");
}
