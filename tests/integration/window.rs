//! The 24-hour window in the service: worker + sender in process on a real database
//! (a SQLite file, and a fresh PostgreSQL database), the fake Graph API in place of Meta.
//! Time is explicit: every commit and send takes its `now` from the test.
//!
//! - window closed at send time → the fallback template is sent (the row keeps its id);
//! - Meta's 131047 in a `failed` status after a free-form send → the template is sent,
//!   once;
//! - no fallback, policy `defer` → parked, and sent right after the member writes;
//! - `alfred test` on a briefing with the windows closed (`tests/fixtures/window/`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alfred::config::UnknownSenderPolicy;
use alfred::edges::graph::{GraphClient, Outbound as Graph};
use alfred::edges::queue::AnyQueue;
use alfred::edges::queue::sql::{SqlQueue, SqlQueueConfig};
use alfred::edges::store::{CommitOutcome, EventCommit, OutboxStatus, Store};
use alfred::edges::whatsapp::inbound;
use alfred::roles::sender::{SendResult, Sender};
use alfred::roles::worker::Worker;
use alfred_core::check::{SourceFile, load};
use alfred_core::event::{ConversationState, Effect, OutMessage, Outbound};
use alfred_core::flow::FlowSet;
use alfred_core::window::WindowPolicy;
use alfred_fake_graph as fake_graph;
use chrono::{DateTime, Duration, TimeZone as _, Utc};

use crate::support::{TempDir, pg_admin, pg_base, root};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()
}

fn flows() -> Arc<FlowSet> {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: std::fs::read_to_string(root().join("flows/household.yaml")).unwrap(),
    };
    Arc::new(load(Some(&household), &[]).flows.expect("household checks"))
}

/// A database of either backend, dropped (file or database) at the end.
enum Db {
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres(String),
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres(name) = self {
            pg_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

fn open(postgres: bool, label: &str) -> (Db, Store) {
    if postgres {
        let name = format!("alfred_window_{label}_{}", std::process::id());
        pg_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        pg_admin(&format!("CREATE DATABASE \"{name}\""));
        let db = Db::Postgres(name.clone());
        let store = Store::open(&format!("{}/{name}", pg_base())).expect("open Postgres");
        store.migrate().expect("migrate");
        (db, store)
    } else {
        let dir = TempDir::new(label);
        let store = Store::open(dir.path().join("alfred.db").to_str().unwrap()).expect("open SQLite");
        store.migrate().expect("migrate");
        (Db::Sqlite(dir), store)
    }
}

struct Fixture {
    sender: Sender<AnyQueue>,
    worker: Worker<AnyQueue>,
    fake: fake_graph::FakeGraph,
    _db: Db,
}

async fn fixture(postgres: bool, label: &str, now: DateTime<Utc>) -> Fixture {
    let (db, store) = open(postgres, label);
    let fake = fake_graph::start().await;
    let graph = GraphClient::new(&fake.base_url(), "v25.0", "106540352242922", fake_graph::TOKEN).unwrap();
    let queue = AnyQueue::from(SqlQueue::new(store.clone(), SqlQueueConfig::default()));
    let sender = Sender {
        queue: queue.clone(),
        store: store.clone(),
        outbound: Arc::new(Graph::Graph(graph)),
        flows: flows(),
        outbox_stream: format!("{label}-outbox"),
        clock: Arc::new(move || now),
        counters: Arc::default(),
        pacing: Arc::new(alfred::roles::pacing::Pacing::new("window-test", 1000)),
    };
    let worker = Worker {
        store,
        queue,
        flows: flows(),
        outbox_stream: format!("{label}-outbox"),
        unknown_senders: UnknownSenderPolicy::Ignore,
        unknown_sender_reply: String::new(),
        clock: Arc::new(move || now),
        counters: Arc::default(),
        hold_back: alfred::roles::order::HOLD_BACK,
        progress: Arc::default(),
    };
    Fixture {
        sender,
        worker,
        fake,
        _db: db,
    }
}

fn template() -> OutMessage {
    OutMessage::Template {
        name: "chore_reminder".into(),
        language: "en_US".into(),
        params: vec!["dishes".into()],
    }
}

fn reminder(fallback: Option<OutMessage>, policy: WindowPolicy) -> Effect {
    Effect::Send(Outbound {
        to: "Anna".into(),
        message: OutMessage::Text {
            body: "Reminder: dishes".into(),
        },
        fallback,
        outside_window: policy,
    })
}

/// Commits one event for Anna at `now`: an inbound message (`wamid`) or a timer.
fn commit(store: &Store, wamid: Option<&str>, effects: Vec<Effect>, now: DateTime<Utc>) -> Vec<i64> {
    let c = EventCommit {
        inbound_wamid: wamid.map(str::to_owned),
        member: "Anna".into(),
        state: ConversationState::default(),
        effects,
        now,
        ..Default::default()
    };
    match store.commit_event(&c).unwrap() {
        CommitOutcome::Committed { outbox_ids } => outbox_ids,
        other => panic!("not committed: {other:?}"),
    }
}

/// Meta's real 131047 `failed` status webhook, for the message it called `wamid`.
fn failed_131047(wamid: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures/whatsapp-payloads/webhook_status_failed_131047.json");
    let body = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        // The payload, trimmed, for machines without the shared folder.
        r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA","status":"failed","timestamp":"1751142888","recipient_id":"16505551234","errors":[{"code":131047,"title":"Re-engagement message"}]}]}}]}]}"#.to_owned()
    });
    body.replace("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA", wamid)
        .into_bytes()
}

async fn window_closed_sends_the_template(postgres: bool) {
    let now = t0() + Duration::days(3);
    let f = fixture(postgres, if postgres { "wc_pg" } else { "wc_lite" }, now).await;
    // Anna wrote three days ago; a timer now sends a reminder with a fallback.
    commit(&f.sender.store, Some("wamid.in1"), vec![], t0());
    let id = commit(
        &f.sender.store,
        None,
        vec![reminder(Some(template()), WindowPolicy::Drop)],
        now,
    )[0];
    let SendResult::Sent(wamid) = f.sender.deliver(id).await.unwrap() else {
        panic!("expected the template to be sent")
    };
    let reqs = f.fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body["type"], "template");
    assert_eq!(reqs[0].body["template"]["name"], "chore_reminder");
    let row = f.sender.store.outbox_row(id).unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert_eq!(
        row.wamid.as_deref(),
        Some(wamid.as_str()),
        "status webhooks match the same row"
    );
    assert_eq!(row.window_action.as_deref(), Some("template"));
    assert_eq!(f.sender.counters.window_template.load(Ordering::Relaxed), 1);

    // Inside the window the same send goes out as written.
    commit(&f.sender.store, Some("wamid.in2"), vec![], now - Duration::hours(1));
    let id = commit(
        &f.sender.store,
        None,
        vec![reminder(Some(template()), WindowPolicy::Drop)],
        now,
    )[0];
    assert!(matches!(f.sender.deliver(id).await.unwrap(), SendResult::Sent(_)));
    assert_eq!(f.fake.requests()[1].body["type"], "text");
}

#[tokio::test]
async fn window_closed_template_sent_sqlite() {
    window_closed_sends_the_template(false).await;
}

#[tokio::test]
async fn window_closed_template_sent_postgres() {
    window_closed_sends_the_template(true).await;
}

async fn async_131047_sends_the_template(postgres: bool) {
    let now = t0() + Duration::hours(1);
    let f = fixture(postgres, if postgres { "as_pg" } else { "as_lite" }, now).await;
    // Our records say the window is open, so the text goes; Meta later says 131047.
    commit(&f.sender.store, Some("wamid.in1"), vec![], t0());
    let id = commit(
        &f.sender.store,
        None,
        vec![reminder(Some(template()), WindowPolicy::Defer)],
        now,
    )[0];
    let SendResult::Sent(wamid) = f.sender.deliver(id).await.unwrap() else {
        panic!("expected the text to be sent")
    };
    let status = failed_131047(&wamid);
    let out = f.worker.process_batch(inbound::parse(&status).unwrap()).await.unwrap();
    assert_eq!(out.statuses, 1);
    assert_eq!(out.published.len(), 1, "one fallback row");
    let fallback_id = out.published[0];
    assert_eq!(
        f.sender.store.outbox_row(id).unwrap().unwrap().window_action.as_deref(),
        Some("replaced")
    );
    assert!(matches!(
        f.sender.deliver(fallback_id).await.unwrap(),
        SendResult::Sent(_)
    ));
    let reqs = f.fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body["type"], "text");
    assert_eq!(reqs[1].body["type"], "template");
    assert_eq!(reqs[1].body["template"]["name"], "chore_reminder");
    // Meta repeating the status changes nothing: the fallback goes once.
    let again = f.worker.process_batch(inbound::parse(&status).unwrap()).await.unwrap();
    assert!(again.published.is_empty());

    // Synchronously (131047 in the send response) the same fallback is sent instead.
    f.fake.fail_next(
        1,
        400,
        fake_graph::error_body(131_047, "(#131047) Re-engagement message", "more than 24 hours"),
    );
    let id = commit(
        &f.sender.store,
        None,
        vec![reminder(Some(template()), WindowPolicy::Defer)],
        now,
    )[0];
    assert!(matches!(f.sender.deliver(id).await.unwrap(), SendResult::Sent(_)));
    let reqs = f.fake.requests();
    assert_eq!(reqs.last().unwrap().body["type"], "template");
    let row = f.sender.store.outbox_row(id).unwrap().unwrap();
    assert_eq!(row.window_action.as_deref(), Some("template"));
}

#[tokio::test]
async fn async_131047_template_sent_sqlite() {
    async_131047_sends_the_template(false).await;
}

#[tokio::test]
async fn async_131047_template_sent_postgres() {
    async_131047_sends_the_template(true).await;
}

async fn deferred_until_the_member_writes(postgres: bool) {
    let now = t0() + Duration::days(2);
    let f = fixture(postgres, if postgres { "df_pg" } else { "df_lite" }, now).await;
    let deferred = commit(&f.sender.store, None, vec![reminder(None, WindowPolicy::Defer)], now)[0];
    let dropped = commit(&f.sender.store, None, vec![reminder(None, WindowPolicy::Drop)], now)[0];
    assert_eq!(f.sender.deliver(deferred).await.unwrap(), SendResult::Deferred);
    assert_eq!(f.sender.deliver(dropped).await.unwrap(), SendResult::Dropped);
    assert!(f.fake.requests().is_empty(), "nothing reaches WhatsApp");
    let row = f.sender.store.outbox_row(dropped).unwrap().unwrap();
    assert_eq!(
        (row.status, row.window_action.as_deref()),
        (OutboxStatus::Dead, Some("dropped"))
    );
    // The sweep leaves the parked row alone.
    assert_eq!(f.sender.sweep(std::time::Duration::ZERO).await.unwrap(), 0);

    // Anna writes: the parked row is published before the reply, and now it is sent.
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "contacts": [{ "profile": { "name": "x" }, "wa_id": "31612345001" }],
            "messages": [{ "from": "31612345001", "id": "wamid.back", "timestamp": "1767600000", "type": "text", "text": { "body": "hello" } }]
        } }] }]
    });
    let batch = inbound::parse(body.to_string().as_bytes()).unwrap();
    let out = f.worker.process_batch(batch).await.unwrap();
    assert_eq!(
        out.published.first(),
        Some(&deferred),
        "the deferred message goes first"
    );
    assert!(matches!(f.sender.deliver(deferred).await.unwrap(), SendResult::Sent(_)));
    assert_eq!(f.fake.requests()[0].body["text"]["body"], "Reminder: dishes");
    assert_eq!(
        f.sender.store.outbox_row(deferred).unwrap().unwrap().status,
        OutboxStatus::Sent
    );
}

#[tokio::test]
async fn deferred_until_the_member_writes_sqlite() {
    deferred_until_the_member_writes(false).await;
}

#[tokio::test]
async fn deferred_until_the_member_writes_postgres() {
    deferred_until_the_member_writes(true).await;
}

/// `alfred test` (the real binary, virtual clock) on a morning briefing whose members'
/// windows are closed: the template, a drop and a deferred message that waits for the
/// member (`tests/fixtures/window/`).
#[test]
fn alfred_test_plays_a_briefing_with_the_window_closed() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_alfred"))
        .args(["test", "tests/fixtures/window"])
        .current_dir(root())
        .output()
        .expect("run alfred");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}
