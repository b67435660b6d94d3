//! A graceful stop in the middle of a send (issue 11, defect 2). SIGTERM used to drop the
//! send loop at once: the row stayed claimed for its whole lease (two minutes), so after
//! a restart the member heard nothing until it ran out, and the message already accepted
//! by Meta was sent again then. Now the send in hand finishes and is marked; whatever a
//! stop still cuts short has its claim released.

use std::time::{Duration, Instant};

use alfred::cli::serve::Roles;
use alfred::edges::store::OutboxStatus;
use alfred_fake_graph as fake_graph;

use crate::pipeline::{Backend, Running};
use crate::support::text_webhook;

const ANNA: &str = "31612345001";

/// Polls `f` until it holds, for at most `limit` (a failure, not a timing assertion).
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text messages the fake received (read receipts aside), in order.
fn texts(fake: &fake_graph::FakeGraph) -> Vec<String> {
    fake.requests()
        .iter()
        .filter_map(|r| r.body["text"]["body"].as_str().map(str::to_owned))
        .collect()
}

async fn a_stop_during_a_send_finishes_it_and_a_restart_answers_at_once(backend: Backend) {
    let fake = fake_graph::start().await;
    // Meta takes its time: the stop arrives while the send is on the wire.
    fake.set_delay(Duration::from_millis(1500));
    let running = Running::start(backend.build(&fake).await, Roles::ALL).await;
    assert_eq!(
        running.post(&text_webhook(ANNA, "wamid.stop1", "add bananas")).await,
        200
    );
    until("the reply to reach the fake", Duration::from_secs(20), || {
        !texts(&fake).is_empty()
    })
    .await;
    let store = running.service.store.clone();
    running.stop().await;
    let row = store.outbox_row(1).unwrap().expect("the reply was committed");
    assert_eq!(
        row.status,
        OutboxStatus::Sent,
        "the send in flight was finished and marked: {row:?}"
    );
    assert_eq!(texts(&fake).len(), 1);

    // Started again: the next reply goes out at once, not after a two-minute lease.
    fake.set_delay(Duration::ZERO);
    let running = Running::start(backend.build(&fake).await, Roles::ALL).await;
    assert_eq!(running.post(&text_webhook(ANNA, "wamid.stop2", "list")).await, 200);
    until("the second reply", Duration::from_secs(20), || texts(&fake).len() >= 2).await;
    running.stop().await;
    let bodies = texts(&fake);
    assert_eq!(bodies.len(), 2, "nothing sent twice: {bodies:?}");
    assert!(bodies[1].contains("bananas"), "{bodies:?}");
}

on_both_backends!(a_stop_during_a_send_finishes_it_and_a_restart_answers_at_once);
