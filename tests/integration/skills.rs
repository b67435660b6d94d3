//! Each family skill through the real service on Postgres + Redis: a signed webhook in,
//! the reply at the fake Graph API, the data in Postgres. (Groceries' "add bananas" is
//! in `service.rs`; the skills' every path is in `flows/tests/` on a virtual clock.)

use alfred::fake_graph;
use alfred::serve::Roles;

use super::pipeline::{Backend, Running, accepted_texts, eventually};
use crate::support::text_webhook;

/// Posts `text` from `number` and waits for the `n`-th accepted reply overall.
async fn say(svc: &Running, fake: &fake_graph::FakeGraph, number: &str, wamid: &str, text: &str, n: usize) {
    assert_eq!(svc.post(&text_webhook(number, wamid, text)).await, 200);
    eventually(&format!("reply {n}"), || accepted_texts(fake).len() >= n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_store_a_record_and_a_durable_timer_in_postgres() {
    let backend = Backend::scale_out();
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
    // Listing and cancelling go through the same path.
    say(&svc, &fake, "31612345003", "wamid.SK2", "cancel reminder trash", 2).await;
    assert_eq!(
        accepted_texts(&fake)[1],
        "Cancelled the reminder \"take out the trash\"."
    );
    assert!(
        svc.service.store.pending_timers().unwrap().is_empty(),
        "cancelled timer is gone"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_car_log_and_the_briefing_opt_out_live_in_postgres() {
    let backend = Backend::scale_out();
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
