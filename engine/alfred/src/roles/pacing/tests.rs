//! Claims, per-member order and pacing, on SQLite and on a fresh PostgreSQL database,
//! against the fake Graph API. Time-dependent tests run under `tokio::time::pause` with a
//! clock that follows tokio's virtual time, so nothing really waits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alfred_core::check::{SourceFile, load};
use alfred_core::event::{Effect, OutMessage, Outbound as EngineOutbound};
use alfred_core::flow::{FlowSet, Member};
use chrono::{DateTime, TimeZone as _, Utc};
use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, PgConnection};

use super::*;
use crate::edges::graph::{GraphClient, Outbound};
use crate::edges::queue::sql::{SqlQueue, SqlQueueConfig};
use crate::edges::queue::{AnyQueue, Consumer, ConsumerConfig, Queue};
use crate::edges::store::Claim;
use crate::edges::store::{CommitOutcome, EventCommit, OutboxStatus, Store};
use crate::roles::sender::{SendResult, Sender};
use alfred_fake_graph::{self as fake_graph, FakeGraph};

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

/// A throwaway database, removed on drop.
struct TestDb {
    store: Option<Store>,
    sqlite: Option<PathBuf>,
    pg: Option<(String, String)>,
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl TestDb {
    fn new(db: Db) -> TestDb {
        let t = match db {
            Db::Sqlite => {
                let path = std::env::temp_dir().join(format!("alfred_pacing_{}.db", unique()));
                let store = Store::open(path.to_str().expect("utf-8 temp path")).expect("open SQLite");
                TestDb {
                    store: Some(store),
                    sqlite: Some(path),
                    pg: None,
                }
            }
            Db::Postgres => {
                let base = std::env::var("ALFRED_TEST_PG_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
                    .trim_end_matches('/')
                    .to_owned();
                let admin = format!("{base}/postgres");
                let name = format!("alfred_pacing_{}", unique());
                PgConnection::establish(&admin)
                    .expect("PostgreSQL is required for these tests")
                    .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .expect("CREATE DATABASE");
                let mut t = TestDb {
                    store: None,
                    sqlite: None,
                    pg: Some((admin, name.clone())),
                };
                t.store = Some(Store::open(&format!("{base}/{name}")).expect("open Postgres"));
                t
            }
        };
        t.store().migrate().expect("migrate");
        t
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("open until drop")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.store.take();
        if let Some(path) = &self.sqlite {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        if let Some((admin, name)) = &self.pg
            && let Ok(mut c) = PgConnection::establish(admin)
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

fn flows() -> Arc<FlowSet> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows");
    let household = SourceFile {
        path: "household.yaml".into(),
        text: std::fs::read_to_string(dir.join("household.yaml")).unwrap(),
    };
    Arc::new(load(Some(&household), &[]).flows.expect("household checks"))
}

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()
}

/// Wall time that follows tokio's (possibly paused) clock, starting at [`t0`].
fn virtual_clock() -> Clock {
    let start = tokio::time::Instant::now();
    Arc::new(move || t0() + chrono::Duration::from_std(start.elapsed()).unwrap())
}

fn fixed_clock(at: DateTime<Utc>) -> Clock {
    Arc::new(move || at)
}

fn sender(db: &TestDb, fake: &FakeGraph, pacing: Pacing, clock: Clock) -> Sender<AnyQueue> {
    let graph = GraphClient::untimed(&fake.base_url(), "v25.0", "106540352242922", fake_graph::TOKEN).unwrap();
    Sender {
        store: db.store().clone(),
        queue: AnyQueue::from(SqlQueue::new(db.store().clone(), SqlQueueConfig::default())),
        outbound: Arc::new(Outbound::Graph(graph)),
        flows: flows(),
        outbox_stream: "t-outbox".into(),
        clock,
        counters: Arc::default(),
        pacing: Arc::new(pacing),
    }
}

/// Commits one event sending `bodies` to `member`; returns the outbox ids in order.
fn queue_texts(store: &Store, wamid: &str, member: &str, bodies: &[&str]) -> Vec<i64> {
    let commit = EventCommit {
        inbound_wamid: Some(wamid.into()),
        member: member.into(),
        state: Default::default(),
        effects: bodies
            .iter()
            .map(|b| {
                Effect::Send(EngineOutbound {
                    to: member.into(),
                    message: OutMessage::Text { body: (*b).into() },
                    fallback: None,
                    outside_window: Default::default(),
                })
            })
            .collect(),
        now: t0(),
        ..Default::default()
    };
    match store.commit_event(&commit).unwrap() {
        CommitOutcome::Committed { outbox_ids } => outbox_ids,
        other => panic!("not committed: {other:?}"),
    }
}

fn texts(fake: &FakeGraph) -> Vec<String> {
    fake.requests()
        .iter()
        .map(|r| r.body["text"]["body"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn throughput_error() -> serde_json::Value {
    fake_graph::error_body(
        130_429,
        "(#130429) Rate limit hit",
        "Cloud API message throughput has been reached.",
    )
}

// ---------------------------------------------------------------------------------------
// Pure rate arithmetic

#[test]
fn the_pair_rate_allows_a_burst_then_one_per_interval() {
    let rate = Rate {
        interval: Duration::from_secs(6),
        burst: 3,
    };
    let mut tat = None;
    let mut slots = Vec::new();
    for _ in 0..5 {
        let (slot, next) = rate.next_slot(tat, t0());
        slots.push((slot - t0()).num_seconds());
        tat = Some(next);
    }
    assert_eq!(slots, [0, 0, 0, 6, 12]);
    // A back-off moves the next slot, whatever the burst allowance.
    let paused = rate.paused_until(None, t0() + chrono::Duration::seconds(16));
    assert_eq!(
        rate.next_slot(Some(paused), t0()).0,
        t0() + chrono::Duration::seconds(16)
    );
    assert_eq!(Rate::per_second(80).interval, Duration::from_micros(12_500));
}

#[test]
fn pair_rate_back_off_is_four_to_the_attempts_seconds() {
    let secs: Vec<u64> = (0..4).map(|x| pair_backoff(x).as_secs()).collect();
    assert_eq!(secs, [1, 4, 16, 64]);
    assert_eq!(pair_backoff(60), MAX_BACKOFF, "capped, no overflow");
}

// ---------------------------------------------------------------------------------------
// Claims

async fn an_expired_claim_can_be_taken_over(db: Db) {
    let db = TestDb::new(db);
    let id = queue_texts(db.store(), "w-lease", "Anna", &["x"])[0];
    let lease = chrono::Duration::seconds(60);
    let s = db.store();
    assert!(matches!(s.claim_outbox(id, "a", t0(), lease).unwrap(), Claim::Owned(_)));
    let later = t0() + chrono::Duration::seconds(1);
    assert_eq!(
        s.claim_outbox(id, "b", later, lease).unwrap(),
        Claim::Held(t0() + lease)
    );
    // Sender `a` died: once its lease is over, `b` may send.
    let after = t0() + chrono::Duration::seconds(61);
    assert!(matches!(
        s.claim_outbox(id, "b", after, lease).unwrap(),
        Claim::Owned(_)
    ));
    assert!(s.mark_sent(id, "wamid.X", after).unwrap());
    assert_eq!(s.claim_outbox(id, "a", after, lease).unwrap(), Claim::Done);
}

#[tokio::test]
async fn an_expired_claim_can_be_taken_over_sqlite() {
    an_expired_claim_can_be_taken_over(Db::Sqlite).await;
}

#[tokio::test]
async fn an_expired_claim_can_be_taken_over_postgres() {
    an_expired_claim_can_be_taken_over(Db::Postgres).await;
}

/// A worker publish and a sweep re-publish of the same id reach two senders at once.
async fn two_senders_racing_on_one_row_send_it_once(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    // The first Graph call is still in flight when the second sender tries.
    fake.set_delay(Duration::from_millis(200));
    let id = queue_texts(db.store(), "w-race", "Anna", &["only once"])[0];
    // Both senders' clock is one hour after Anna wrote: her 24-hour window is open.
    let clock = Arc::new(|| t0() + chrono::Duration::hours(1));
    let a = Arc::new(sender(&db, &fake, Pacing::new("a", 80), clock.clone()));
    let b = Arc::new(sender(&db, &fake, Pacing::new("b", 80), clock));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let run = |s: Arc<Sender<AnyQueue>>| {
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            s.deliver(id).await.unwrap()
        })
    };
    let (ra, rb) = (run(a), run(b));
    let results = [ra.await.unwrap(), rb.await.unwrap()];
    assert_eq!(fake.requests().len(), 1, "exactly one Graph request: {results:?}");
    let sent = results.iter().filter(|r| matches!(r, SendResult::Sent(_))).count();
    assert_eq!(sent, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, SendResult::Sent(_) | SendResult::Held(_) | SendResult::Skipped)),
        "{results:?}"
    );
    assert_eq!(db.store().outbox_row(id).unwrap().unwrap().status, OutboxStatus::Sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_racing_on_one_row_send_it_once_sqlite() {
    two_senders_racing_on_one_row_send_it_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_racing_on_one_row_send_it_once_postgres() {
    two_senders_racing_on_one_row_send_it_once(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// Order per member

/// Row 1 is refused (429) and goes into retry backoff; rows 2 and 3, picked up
/// meanwhile, must not overtake it, and all three arrive once, in order.
async fn a_retrying_message_holds_back_its_successors(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    let ids = queue_texts(db.store(), "w-order", "Anna", &["one", "two", "three"]);
    let s = sender(&db, &fake, Pacing::new("s1", 80), fixed_clock(t0()));
    fake.fail_next(1, 429, throughput_error());
    let SendResult::Retry(at) = s.deliver(ids[0]).await.unwrap() else {
        panic!("row 1 should be retried")
    };
    for id in &ids[1..] {
        let r = s.deliver(*id).await.unwrap();
        assert!(matches!(r, SendResult::Held(h) if h >= at), "{r:?}");
    }
    assert_eq!(texts(&fake), ["one"], "2 and 3 wait for 1");
    // Later, the sweep re-publishes all three, and one sender reads them in order.
    let later = db
        .store()
        .outbox_row(ids[2])
        .unwrap()
        .unwrap()
        .next_attempt_at
        .unwrap()
        .max(at);
    let sweeper = Sender {
        clock: fixed_clock(later),
        pacing: s.pacing.clone(),
        ..sender(&db, &fake, Pacing::new("unused", 80), fixed_clock(later))
    };
    assert_eq!(sweeper.sweep(Duration::from_secs(3600)).await.unwrap(), 3);
    let mut consumer = Consumer::new(sweeper.queue.clone(), {
        let mut c = ConsumerConfig::new("t-outbox", "sender", "s1");
        c.block = Duration::ZERO;
        c
    });
    assert!(!sweeper.run_once(&mut consumer).await.unwrap());
    assert_eq!(texts(&fake), ["one", "one", "two", "three"]);
    for id in ids {
        assert_eq!(db.store().outbox_row(id).unwrap().unwrap().status, OutboxStatus::Sent);
    }
}

#[tokio::test]
async fn a_retrying_message_holds_back_its_successors_sqlite() {
    a_retrying_message_holds_back_its_successors(Db::Sqlite).await;
}

#[tokio::test]
async fn a_retrying_message_holds_back_its_successors_postgres() {
    a_retrying_message_holds_back_its_successors(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// Pacing (virtual time)

const TIGHT: Rate = Rate {
    interval: Duration::from_secs(6),
    burst: 3,
};

/// The test: a burst of 5 bubbles to one member, at a fake that enforces the pair
/// rate (here 3 at once, then one per 6 s), is delivered in order without one 131056.
async fn a_burst_of_five_bubbles_is_paced(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    fake.enforce_pair_rate(TIGHT.interval, TIGHT.burst);
    let bodies = ["b1", "b2", "b3", "b4", "b5"];
    let ids = queue_texts(db.store(), "w-burst", "Anna", &bodies);
    let s = sender(&db, &fake, Pacing::new("s1", 80).with_pair_rate(TIGHT), virtual_clock());
    for id in ids {
        let r = s.deliver(id).await.unwrap();
        assert!(matches!(r, SendResult::Sent(_)), "{r:?}");
    }
    assert_eq!(fake.pair_rate_hits(), 0);
    assert_eq!(texts(&fake), bodies);
    let times = fake.request_times();
    // Three at once, then the sustained rate: 4th and 5th 6 s apart (virtual seconds).
    assert!(times[2] - times[0] < Duration::from_secs(1));
    assert!(times[3] - times[0] >= Duration::from_secs(6));
    assert!(times[4] - times[3] >= Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_five_bubbles_is_paced_sqlite() {
    a_burst_of_five_bubbles_is_paced(Db::Sqlite).await;
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_five_bubbles_is_paced_postgres() {
    a_burst_of_five_bubbles_is_paced(Db::Postgres).await;
}

/// Issue 11: a member who answers quickly (one exchange a second, ten times: a chore
/// created, a list filled) gets every reply at once, under Meta's documented pair limit
/// (a fake enforcing one per 6 s with bursts of 45 refuses none of them).
#[tokio::test(start_paused = true)]
async fn ten_quick_exchanges_get_ten_immediate_replies() {
    let db = TestDb::new(Db::Sqlite);
    let fake = fake_graph::start().await;
    fake.enforce_pair_rate(PAIR_INTERVAL, 45);
    let s = sender(&db, &fake, Pacing::new("s1", 80), virtual_clock());
    for k in 0..10 {
        let asked = tokio::time::Instant::now();
        let id = queue_texts(db.store(), &format!("w-quick-{k}"), "Anna", &[&format!("reply {k}")])[0];
        let r = s.deliver(id).await.unwrap();
        assert!(matches!(r, SendResult::Sent(_)), "exchange {k}: {r:?}");
        assert_eq!(asked.elapsed(), Duration::ZERO, "exchange {k}'s reply waited");
        // The member reads the reply and answers a second later.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(fake.pair_rate_hits(), 0);
    assert_eq!(texts(&fake).len(), 10);
}

/// Without the tight pacing the same burst trips 131056 at the fake: the sender backs
/// off that member as Meta advises, and the next bubble waits behind the refused one.
#[tokio::test(start_paused = true)]
async fn a_pair_rate_hit_backs_off_the_member_and_keeps_the_order() {
    let db = TestDb::new(Db::Sqlite);
    let fake = fake_graph::start().await;
    fake.enforce_pair_rate(TIGHT.interval, TIGHT.burst);
    let ids = queue_texts(db.store(), "w-hit", "Anna", &["b1", "b2", "b3", "b4", "b5"]);
    let s = sender(&db, &fake, Pacing::new("s1", 80), virtual_clock());
    for id in &ids[..3] {
        assert!(matches!(s.deliver(*id).await.unwrap(), SendResult::Sent(_)));
    }
    let SendResult::Retry(at) = s.deliver(ids[3]).await.unwrap() else {
        panic!("the fake refuses the 4th")
    };
    assert_eq!(fake.pair_rate_hits(), 1);
    assert!(at >= (s.clock)() + chrono::Duration::seconds(1), "4^0 s at least");
    assert!(matches!(s.deliver(ids[4]).await.unwrap(), SendResult::Held(_)));
    assert_eq!(fake.requests().len(), 4, "b5 was not sent past the refused b4");
    let row = db.store().outbox_row(ids[3]).unwrap().unwrap();
    assert_eq!(
        (row.status, row.error_code),
        (OutboxStatus::Failed, Some(PAIR_RATE_HIT))
    );
}

/// The global limit: 2 messages/s across members, at a fake enforcing 2/s.
#[tokio::test(start_paused = true)]
async fn the_global_rate_spaces_sends_across_members() {
    let db = TestDb::new(Db::Sqlite);
    let fake = fake_graph::start().await;
    fake.enforce_throughput(2);
    let mut ids = Vec::new();
    for (i, m) in ["Anna", "Ben", "Tom"].into_iter().enumerate() {
        ids.extend(queue_texts(db.store(), &format!("w-g{i}"), m, &["x", "y"]));
    }
    let s = sender(&db, &fake, Pacing::new("s1", 2), virtual_clock());
    for id in ids {
        assert!(matches!(s.deliver(id).await.unwrap(), SendResult::Sent(_)));
    }
    assert_eq!(fake.throughput_hits(), 0);
    let times = fake.request_times();
    assert_eq!(times.len(), 6);
    assert!(times[5] - times[0] >= Duration::from_millis(2500), "6 sends at 2/s");
}

/// 130429 pauses the whole sender, not only the refused member.
#[tokio::test(start_paused = true)]
async fn a_throughput_hit_backs_off_every_member() {
    let db = TestDb::new(Db::Sqlite);
    let fake = fake_graph::start().await;
    let anna = queue_texts(db.store(), "w-t1", "Anna", &["a"])[0];
    let ben = queue_texts(db.store(), "w-t2", "Ben", &["b"])[0];
    let s = sender(&db, &fake, Pacing::new("s1", 80), virtual_clock());
    fake.fail_next(1, 429, throughput_error());
    let SendResult::Retry(at) = s.deliver(anna).await.unwrap() else {
        panic!("refused")
    };
    assert!(matches!(s.deliver(ben).await.unwrap(), SendResult::Sent(_)));
    assert!((s.clock)() >= at, "Ben's message waited out the back-off");
    let times = fake.request_times();
    assert!(times[1] - times[0] >= (at - t0()).to_std().unwrap());
}

/// A pacing wait longer than the inline cap hands the row to the sweep: the claim is
/// released and the row comes back when its slot has come, to any sender.
async fn a_long_pacing_wait_goes_back_to_the_sweep(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    let id = queue_texts(db.store(), "w-long", "Anna", &["later"])[0];
    // Anna's budget is used up for the next minute (e.g. after a long burst).
    db.store()
        .set_recipient_tat("Anna", t0() + chrono::Duration::seconds(60) + Rate::PAIR.tolerance())
        .unwrap();
    let a = sender(&db, &fake, Pacing::new("a", 80), fixed_clock(t0()));
    let slot = t0() + chrono::Duration::seconds(60);
    assert_eq!(a.deliver(id).await.unwrap(), SendResult::Held(slot));
    assert!(fake.requests().is_empty());
    let row = db.store().outbox_row(id).unwrap().unwrap();
    assert_eq!((row.status, row.next_attempt_at), (OutboxStatus::Pending, Some(slot)));
    // Not before its slot, but then by another sender: `a` holds no claim on it.
    let early = sender(
        &db,
        &fake,
        Pacing::new("b", 80),
        fixed_clock(slot - chrono::Duration::seconds(1)),
    );
    assert_eq!(early.deliver(id).await.unwrap(), SendResult::Held(slot));
    let b = sender(&db, &fake, Pacing::new("b", 80), fixed_clock(slot));
    assert!(matches!(b.deliver(id).await.unwrap(), SendResult::Sent(_)));
    assert_eq!(texts(&fake), ["later"]);
}

#[tokio::test]
async fn a_long_pacing_wait_goes_back_to_the_sweep_sqlite() {
    a_long_pacing_wait_goes_back_to_the_sweep(Db::Sqlite).await;
}

#[tokio::test]
async fn a_long_pacing_wait_goes_back_to_the_sweep_postgres() {
    a_long_pacing_wait_goes_back_to_the_sweep(Db::Postgres).await;
}

/// Bubbles 1 and 2 of one member reach two senders; the one with 2 is first and holds it
/// back. Once 1 is sent, its sender publishes 2 at once: no sweep round needed.
async fn a_held_message_is_handed_off_when_its_predecessor_is_sent(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    let ids = queue_texts(db.store(), "w-hand", "Anna", &["one", "two"]);
    let a = sender(&db, &fake, Pacing::new("a", 80), fixed_clock(t0()));
    let b = sender(&db, &fake, Pacing::new("b", 80), fixed_clock(t0()));
    assert!(matches!(b.deliver(ids[1]).await.unwrap(), SendResult::Held(_)));
    a.queue.push("t-outbox", ids[0].to_string().as_bytes()).await.unwrap();
    let mut consumer = Consumer::new(a.queue.clone(), {
        let mut c = ConsumerConfig::new("t-outbox", "sender", "a");
        c.block = Duration::ZERO;
        c
    });
    assert!(!a.run_once(&mut consumer).await.unwrap());
    assert_eq!(texts(&fake), ["one"]);
    // The hand-off put bubble 2 on the queue, due now (the clock has not moved).
    assert!(!a.run_once(&mut consumer).await.unwrap());
    assert_eq!(texts(&fake), ["one", "two"]);
    assert_eq!(
        db.store().outbox_row(ids[1]).unwrap().unwrap().status,
        OutboxStatus::Sent
    );
}

#[tokio::test]
async fn a_held_message_is_handed_off_when_its_predecessor_is_sent_sqlite() {
    a_held_message_is_handed_off_when_its_predecessor_is_sent(Db::Sqlite).await;
}

#[tokio::test]
async fn a_held_message_is_handed_off_when_its_predecessor_is_sent_postgres() {
    a_held_message_is_handed_off_when_its_predecessor_is_sent(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// Addresses on the row: the sender reads no roster

/// Commits one event with the roster in effect `roster`: `effects` in order.
fn commit_with_roster(store: &Store, member: &str, effects: Vec<Effect>, roster: &[Member]) -> Vec<i64> {
    let commit = EventCommit {
        member: member.into(),
        effects,
        now: t0(),
        roster: Some(roster.to_vec()),
        ..Default::default()
    };
    match store.commit_event(&commit).unwrap() {
        CommitOutcome::Committed { outbox_ids } => outbox_ids,
        other => panic!("not committed: {other:?}"),
    }
}

fn text_to(member: &str, body: &str) -> Effect {
    Effect::Send(EngineOutbound {
        to: member.into(),
        message: OutMessage::Text { body: body.into() },
        fallback: None,
        outside_window: Default::default(),
    })
}

/// household.yaml's roster with Anna at another number.
fn roster_with_anna_at(phone: &str) -> Vec<Member> {
    let mut roster = flows().household.members.clone();
    for m in roster.iter_mut().filter(|m| m.name == "Anna") {
        m.phone = Some(phone.into());
    }
    roster
}

async fn a_row_goes_to_the_address_it_was_committed_with(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    // Anna wrote at t0 (her window is open), then a reply was committed while the roster
    // in effect had her at a number household.yaml does not know.
    queue_texts(db.store(), "w-addr", "Anna", &[]);
    let roster = roster_with_anna_at("+31699999999");
    let id = commit_with_roster(db.store(), "Anna", vec![text_to("Anna", "hi")], &roster)[0];
    let row = db.store().outbox_row(id).unwrap().unwrap();
    assert_eq!(row.to_address.as_deref(), Some("+31699999999"));
    let now = t0() + chrono::Duration::hours(1);
    // The claim brings what the send decision needs: the window's start, no pacing state.
    let lease = chrono::Duration::seconds(60);
    let Claim::Owned(claimed) = db.store().claim_outbox(id, "probe", now, lease).unwrap() else {
        panic!("not claimed")
    };
    assert_eq!((claimed.last_inbound, claimed.tat), (Some(t0()), None));
    assert!(db.store().defer_outbox(id, now, Some("probe")).unwrap());
    // The sender (whose household.yaml says +31612345001) sends to the row's address.
    let s = sender(&db, &fake, Pacing::off("s1"), fixed_clock(now));
    assert!(matches!(s.deliver(id).await.unwrap(), SendResult::Sent(_)));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body["to"], serde_json::json!("+31699999999"));
    // Pacing off: no pacing state was written.
    assert_eq!(db.store().recipient_tat("Anna").unwrap(), None);
}

#[tokio::test]
async fn a_row_goes_to_the_address_it_was_committed_with_sqlite() {
    a_row_goes_to_the_address_it_was_committed_with(Db::Sqlite).await;
}

#[tokio::test]
async fn a_row_goes_to_the_address_it_was_committed_with_postgres() {
    a_row_goes_to_the_address_it_was_committed_with(Db::Postgres).await;
}

async fn a_roster_change_readdresses_open_rows_and_ends_a_removed_members(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    let store = db.store();
    let before = flows().household.members.clone();
    let anna_open = commit_with_roster(store, "Anna", vec![text_to("Anna", "one")], &before)[0];
    let ben_open = commit_with_roster(store, "Ben", vec![text_to("Ben", "two")], &before)[0];
    let ben_sent = commit_with_roster(store, "Ben", vec![text_to("Ben", "three")], &before)[0];
    assert!(store.mark_sent(ben_sent, "wamid.B", t0()).unwrap());
    // An admin gives Anna a new number and removes Ben; the same commit greets Anna.
    let after: Vec<Member> = roster_with_anna_at("+31600000042")
        .into_iter()
        .filter(|m| m.name != "Ben")
        .collect();
    let greeting = commit_with_roster(
        store,
        "Anna",
        vec![
            Effect::Data(alfred_core::data::DataChange::SetMembers { members: after }),
            text_to("Anna", "welcome back"),
        ],
        &before,
    )[0];
    let address = |id| store.outbox_row(id).unwrap().unwrap().to_address;
    assert_eq!(address(anna_open).as_deref(), Some("+31600000042"));
    assert_eq!(
        address(greeting).as_deref(),
        Some("+31600000042"),
        "the new roster counts"
    );
    let ben = store.outbox_row(ben_open).unwrap().unwrap();
    assert_eq!(ben.status, OutboxStatus::Dead);
    assert_eq!(ben.last_error.as_deref(), Some(crate::edges::store::NOT_A_MEMBER));
    let sent = store.outbox_row(ben_sent).unwrap().unwrap();
    assert_eq!(
        (sent.status, sent.to_address.as_deref()),
        (OutboxStatus::Sent, Some("+31612345002"))
    );
    // Nothing goes to Ben.
    let s = sender(&db, &fake, Pacing::off("s1"), fixed_clock(t0()));
    assert_eq!(s.deliver(ben_open).await.unwrap(), SendResult::Skipped);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_roster_change_readdresses_open_rows_and_ends_a_removed_members_sqlite() {
    a_roster_change_readdresses_open_rows_and_ends_a_removed_members(Db::Sqlite).await;
}

#[tokio::test]
async fn a_roster_change_readdresses_open_rows_and_ends_a_removed_members_postgres() {
    a_roster_change_readdresses_open_rows_and_ends_a_removed_members(Db::Postgres).await;
}

async fn a_row_without_an_address_is_sent_to_its_member_in_the_roster(db: Db) {
    let db = TestDb::new(db);
    let fake = fake_graph::start().await;
    // Committed without a roster, as rows stored before addresses were.
    let id = queue_texts(db.store(), "w-old", "Ben", &["from before"])[0];
    assert_eq!(db.store().outbox_row(id).unwrap().unwrap().to_address, None);
    let s = sender(&db, &fake, Pacing::new("s1", 80), fixed_clock(t0()));
    assert!(matches!(s.deliver(id).await.unwrap(), SendResult::Sent(_)));
    assert_eq!(fake.requests()[0].body["to"], serde_json::json!("+31612345002"));
    // Pacing on: the pair rate's state is kept.
    assert!(db.store().recipient_tat("Ben").unwrap().is_some());
}

#[tokio::test]
async fn a_row_without_an_address_is_sent_to_its_member_in_the_roster_sqlite() {
    a_row_without_an_address_is_sent_to_its_member_in_the_roster(Db::Sqlite).await;
}

#[tokio::test]
async fn a_row_without_an_address_is_sent_to_its_member_in_the_roster_postgres() {
    a_row_without_an_address_is_sent_to_its_member_in_the_roster(Db::Postgres).await;
}
