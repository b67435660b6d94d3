//! Behaviour tests of the queues against real servers.
//!
//! One behaviour suite ([`behaviour_suite!`]) runs on every backend: Redis Streams
//! ([`RedisQueue`], `ALFRED_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`) and the SQL
//! table ([`SqlQueue`]) on a SQLite temp file and on PostgreSQL (`ALFRED_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432`, a fresh database per test). Then come the
//! tests of what only one backend has (trimming, malformed entries, connection handling).
//!
//! No server → the tests **fail** with a message saying so: CI starts both, and a skipped
//! durability test is worse than a red one. Each test has its own random stream names
//! (`test-<random>-…`) or database, so tests run in parallel, and removes them when it ends,
//! even when it fails (synchronous cleanup in `Drop`).
//!
//! Time: nothing asserts on a bare sleep. Waiting for an entry to become idle is a bounded
//! poll of the operation under test; the only timing assertions are the ones a test is about
//! (a blocking read really blocks ~1 s and then returns empty, instead of the 500 ms error).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::redis::AsyncCommands;
use ::redis::streams::{StreamPendingReply, StreamRangeReply};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::*;
use crate::edges::store::Store;
use crate::edges::store::schema::queue_jobs;

// ---------------------------------------------------------------------------------------
// Harness

fn redis_url() -> String {
    std::env::var("ALFRED_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn pg_base() -> String {
    std::env::var("ALFRED_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A name part no other test (or earlier run) uses.
fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// One test's streams on the real Redis; deletes them (and their dead-letter streams) on drop.
struct Fixture {
    url: String,
    names: StreamNames,
}

impl Fixture {
    async fn new() -> (Fixture, RedisQueue) {
        let url = redis_url();
        let fixture = Fixture {
            url: url.clone(),
            names: StreamNames::with_prefix(&format!("test-{}", unique())),
        };
        let queue = fixture.queue();
        if let Err(e) = queue.ping().await {
            panic!(
                "the queue tests need a Redis server at {url} (set ALFRED_TEST_REDIS_URL, or start one: \
                 `redis-server --port 6379 --save '' --appendonly no --daemonize yes`); ping failed: {e}"
            );
        }
        (fixture, queue)
    }

    /// A fresh handle, as a restarted process would have.
    fn queue(&self) -> RedisQueue {
        RedisQueue::new(RedisQueueConfig::new(self.url.clone())).expect("valid test URL")
    }

    fn stream(&self) -> &str {
        &self.names.ingest
    }

    /// A plain connection for inspecting keys behind the queue's back.
    async fn raw(&self) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(self.url.as_str())
            .expect("valid test URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect for inspection")
    }

    /// Number of entries pending in `group` (any consumer).
    async fn pending(&self, group: &str) -> usize {
        let reply: StreamPendingReply = self.raw().await.xpending(self.stream(), group).await.expect("XPENDING");
        reply.count()
    }

    async fn dead_letters(&self) -> StreamRangeReply {
        self.raw()
            .await
            .xrange_all(dead_letter_stream(self.stream()))
            .await
            .expect("XRANGE dead")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let keys = [
            self.names.ingest.clone(),
            self.names.outbox.clone(),
            dead_letter_stream(&self.names.ingest),
            dead_letter_stream(&self.names.outbox),
            format!("{{{}}}:seq", self.names.ingest),
        ];
        // Synchronous on purpose: Drop cannot await, and cleanup must also run when an
        // assertion panicked. Failure to clean up is not worth a second panic.
        if let Ok(mut conn) = ::redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection()) {
            let _: Result<i64, _> = ::redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

/// A migrated throwaway database for the SQL queue; removed on drop.
struct SqlDb {
    store: Option<Store>,
    cleanup: SqlCleanup,
    stream: String,
}

enum SqlCleanup {
    SqliteFile(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl SqlDb {
    fn sqlite() -> SqlDb {
        let path = std::env::temp_dir().join(format!("alfred_queue_test_{}.db", unique()));
        let store = Store::open(path.to_str().expect("utf-8 temp path")).expect("open SQLite");
        SqlDb::migrated(store, SqlCleanup::SqliteFile(path))
    }

    fn postgres() -> SqlDb {
        let base = pg_base();
        let admin_url = format!("{base}/postgres");
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "the SQL queue tests need PostgreSQL at {base} (set ALFRED_TEST_PG_URL to a server where \
                 the user may CREATE DATABASE; `.ci/run` starts one): {e}"
            )
        });
        let name = format!("alfred_qtest_{}", unique());
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        let cleanup = SqlCleanup::Postgres {
            admin_url,
            name: name.clone(),
        };
        match Store::open(&format!("{base}/{name}")) {
            Ok(store) => SqlDb::migrated(store, cleanup),
            Err(e) => {
                drop(SqlDb {
                    store: None,
                    cleanup,
                    stream: String::new(),
                });
                panic!("open the Postgres test database: {e}");
            }
        }
    }

    fn migrated(store: Store, cleanup: SqlCleanup) -> SqlDb {
        let db = SqlDb {
            store: Some(store),
            cleanup,
            stream: format!("test-{}-ingest", unique()),
        };
        db.store().migrate().expect("migrate");
        db
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("open until drop")
    }

    fn queue(&self) -> SqlQueue {
        SqlQueue::new(self.store().clone(), SqlQueueConfig::default())
    }
}

impl Drop for SqlDb {
    fn drop(&mut self) {
        // Close the pool first: its connections would keep the database busy.
        self.store.take();
        match &self.cleanup {
            SqlCleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            SqlCleanup::Postgres { admin_url, name } => {
                if let Ok(mut c) = PgConnection::establish(admin_url) {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
                }
            }
        }
    }
}

/// A dead letter as a test reads it back, whatever the backend.
#[derive(Debug)]
struct DeadLetter {
    payload: Vec<u8>,
    orig_id: String,
    deliveries: u64,
    reason: String,
}

/// One backend under test, with what the behaviour suite needs to look behind the queue.
enum Harness {
    Redis(Fixture),
    Sql(SqlDb),
}

impl Harness {
    async fn redis() -> Harness {
        Harness::Redis(Fixture::new().await.0)
    }

    fn sqlite() -> Harness {
        Harness::Sql(SqlDb::sqlite())
    }

    fn postgres() -> Harness {
        Harness::Sql(SqlDb::postgres())
    }

    fn stream(&self) -> String {
        match self {
            Harness::Redis(fx) => fx.stream().to_owned(),
            Harness::Sql(db) => db.stream.clone(),
        }
    }

    /// A fresh handle, as a restarted process would have.
    fn queue(&self) -> AnyQueue {
        match self {
            Harness::Redis(fx) => fx.queue().into(),
            Harness::Sql(db) => db.queue().into(),
        }
    }

    /// A handle whose *commands* time out after 500 ms, redis-rs 1.x's default (Redis only;
    /// the SQL queue has no such timeout): a blocking read longer than that must still work.
    fn queue_with_default_response_timeout(&self) -> AnyQueue {
        match self {
            Harness::Redis(fx) => {
                let mut config = RedisQueueConfig::new(fx.url.clone());
                config.response_timeout = Duration::from_millis(500);
                RedisQueue::new(config).expect("valid test URL").into()
            }
            Harness::Sql(db) => db.queue().into(),
        }
    }

    /// Entries delivered and not yet acked or dead-lettered.
    async fn pending(&self) -> usize {
        match self {
            Harness::Redis(fx) => fx.pending(WORKER_GROUP).await,
            Harness::Sql(db) => {
                let mut conn = db.store().conn().expect("conn");
                let n: i64 = queue_jobs::table
                    .filter(queue_jobs::queue.eq(&db.stream))
                    .filter(queue_jobs::status.eq("ready"))
                    .filter(queue_jobs::locked_by.is_not_null())
                    .count()
                    .get_result(&mut *conn)
                    .expect("count pending");
                usize::try_from(n).expect("count")
            }
        }
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        match self {
            Harness::Redis(fx) => fx
                .dead_letters()
                .await
                .ids
                .into_iter()
                .map(|e| DeadLetter {
                    payload: e.get("payload").expect("payload"),
                    orig_id: e.get("orig_id").expect("orig_id"),
                    deliveries: e
                        .get::<String>("deliveries")
                        .expect("deliveries")
                        .parse()
                        .expect("number"),
                    reason: e.get("reason").expect("reason"),
                })
                .collect(),
            Harness::Sql(db) => {
                let mut conn = db.store().conn().expect("conn");
                let rows: Vec<(i64, String, i32, Option<String>)> = queue_jobs::table
                    .filter(queue_jobs::queue.eq(&db.stream))
                    .filter(queue_jobs::status.eq("dead"))
                    .order(queue_jobs::id)
                    .select((
                        queue_jobs::id,
                        queue_jobs::payload,
                        queue_jobs::attempts,
                        queue_jobs::last_error,
                    ))
                    .load(&mut *conn)
                    .expect("load dead rows");
                rows.into_iter()
                    .map(|(id, payload, attempts, reason)| DeadLetter {
                        payload: payload.into_bytes(),
                        orig_id: id.to_string(),
                        deliveries: u64::try_from(attempts).expect("attempts"),
                        reason: reason.unwrap_or_default(),
                    })
                    .collect()
            }
        }
    }
}

fn payloads(deliveries: &[Delivery]) -> Vec<&[u8]> {
    deliveries.iter().map(|d| d.payload.as_slice()).collect()
}

/// An entry id as a sortable key: Redis `ms-seq`, or an SQL row id.
fn id_key(id: &EntryId) -> (u64, u64) {
    match id.as_str().split_once('-') {
        Some((ms, seq)) => (ms.parse().expect("ms"), seq.parse().expect("seq")),
        None => (id.as_str().parse().expect("row id"), 0),
    }
}

async fn push(queue: &impl Queue, stream: &str, payload: &[u8]) -> EntryId {
    queue.push(stream, payload).await.expect("push")
}

/// Polls `claim_stale` until it returns something, at most `attempts` times, 10 ms apart.
/// The sleep only paces the poll: the assertion is on what `claim_stale` returns.
async fn claim_eventually(
    queue: &impl Queue,
    stream: &str,
    consumer: &str,
    min_idle: Duration,
    attempts: usize,
) -> Vec<Delivery> {
    for _ in 0..attempts {
        let claimed = queue
            .claim_stale(stream, WORKER_GROUP, consumer, min_idle, 10)
            .await
            .expect("claim_stale");
        if !claimed.is_empty() {
            return claimed;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing became claimable after {attempts} attempts (min_idle {min_idle:?})");
}

const SHORT: Duration = Duration::from_millis(100);

/// Runs each named `async fn(Harness)` on Redis, SQLite and Postgres, as
/// `on_redis::<name>`, `on_sqlite::<name>` and `on_postgres::<name>`.
macro_rules! behaviour_suite {
    ($($test:ident),* $(,)?) => {
        mod on_redis {
            $( #[tokio::test] async fn $test() { super::$test(super::Harness::redis().await).await } )*
        }
        mod on_sqlite {
            $( #[tokio::test] async fn $test() { super::$test(super::Harness::sqlite()).await } )*
        }
        mod on_postgres {
            $( #[tokio::test] async fn $test() { super::$test(super::Harness::postgres()).await } )*
        }
    };
}

behaviour_suite!(
    pushed_entry_is_read_once_and_not_redelivered_after_ack,
    entries_of_a_consumer_that_died_are_claimed_by_another_after_min_idle,
    a_restarted_consumer_first_rereads_its_own_pending_entries,
    a_consumer_dead_letters_an_entry_after_max_deliveries,
    dead_letter_keeps_payload_and_reason_for_a_permanent_failure,
    a_blocking_read_returns_empty_after_the_block_timeout_without_error,
    a_blocking_read_wakes_on_push,
    order_within_a_stream_is_preserved,
    concurrent_consumers_never_get_the_same_entry,
    numbered_pushes_count_each_sender_from_one,
);

// ---------------------------------------------------------------------------------------
// The behaviour suite (every backend)

async fn numbered_pushes_count_each_sender_from_one(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    let s = s.as_str();
    let senders =
        |list: &[(&str, u32)]| -> Vec<(String, u32)> { list.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect() };
    queue
        .push_numbered(s, b"{\"a\":1}", &senders(&[("ann", 2)]))
        .await
        .expect("push");
    queue
        .push_numbered(s, b"{\"b\":2}", &senders(&[("ben", 1), ("ann", 1)]))
        .await
        .expect("push");
    // No senders (a status-only body): no numbers, the body as it is.
    queue.push_numbered(s, b"{\"c\":3}", &[]).await.expect("push");
    // Concurrent pushes for one sender never hand out a number twice.
    let mut pushes = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (q, s) = (queue.clone(), s.to_owned());
        pushes.spawn(async move {
            q.push_numbered(&s, b"{}", &[("cat".to_owned(), 1)])
                .await
                .expect("push")
        });
    }
    pushes.join_all().await;

    let got = queue.read(s, WORKER_GROUP, "w1", 100, SHORT).await.expect("read");
    let split: Vec<(Option<Vec<i64>>, &[u8])> = got.iter().map(|d| crate::roles::order::split(&d.payload)).collect();
    assert_eq!(split[0], (Some(vec![2]), &b"{\"a\":1}"[..]), "ann was handed 1 and 2");
    assert_eq!(split[1], (Some(vec![1, 3]), &b"{\"b\":2}"[..]), "ben 1; ann 3");
    assert_eq!(split[2], (None, &b"{\"c\":3}"[..]));
    let mut cat: Vec<i64> = split[3..]
        .iter()
        .map(|(n, _)| n.as_ref().expect("numbered")[0])
        .collect();
    cat.sort_unstable();
    assert_eq!(cat, (1..=10).collect::<Vec<i64>>());
}

async fn pushed_entry_is_read_once_and_not_redelivered_after_ack(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    let s = s.as_str();

    let id = push(&queue, s, b"hello").await;
    let got = queue.read(s, WORKER_GROUP, "w1", 10, SHORT).await.expect("read");
    assert_eq!(payloads(&got), vec![b"hello".as_slice()]);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].deliveries, 1);
    assert_eq!(h.pending().await, 1, "read but not acked = pending");

    assert!(queue.ack(s, WORKER_GROUP, &id).await.expect("ack"));
    assert!(
        !queue.ack(s, WORKER_GROUP, &id).await.expect("second ack"),
        "acking twice is harmless"
    );
    assert_eq!(h.pending().await, 0);

    // Not again: not to this consumer, not to another, not after a restart, not via a claim.
    assert!(
        queue
            .read(s, WORKER_GROUP, "w1", 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        queue
            .read(s, WORKER_GROUP, "w2", 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );
    let restarted = h.queue();
    assert!(
        restarted
            .read(s, WORKER_GROUP, "w1", 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        queue
            .claim_stale(s, WORKER_GROUP, "w2", Duration::ZERO, 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

async fn entries_of_a_consumer_that_died_are_claimed_by_another_after_min_idle(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    let s = s.as_str();
    let id = push(&queue, s, b"orphan").await;

    // Consumer "dead" reads and then disappears without acking.
    {
        let dying = h.queue();
        let got = dying.read(s, WORKER_GROUP, "dead", 10, SHORT).await.expect("read");
        assert_eq!(got.len(), 1);
    }

    // Not claimable while younger than min_idle (a live consumer's work is not stolen) ...
    let early = queue
        .claim_stale(s, WORKER_GROUP, "alive", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert!(early.is_empty());
    // ... nor delivered as a new entry to someone else.
    assert!(
        queue
            .read(s, WORKER_GROUP, "alive", 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );

    // Claimable once idle for min_idle.
    let claimed = claim_eventually(&queue, s, "alive", Duration::from_millis(50), 200).await;
    assert_eq!(payloads(&claimed), vec![b"orphan".as_slice()]);
    assert_eq!(claimed[0].id, id);
    assert_eq!(claimed[0].deliveries, 2, "the claim counts as a delivery");

    assert!(queue.ack(s, WORKER_GROUP, &id).await.expect("ack"));
    assert_eq!(h.pending().await, 0);
}

async fn a_restarted_consumer_first_rereads_its_own_pending_entries(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    let s = s.as_str();
    for p in [b"one", b"two", b"tri"] {
        push(&queue, s, p).await;
    }
    let first = queue.read(s, WORKER_GROUP, "w1", 10, SHORT).await.expect("read");
    assert_eq!(first.len(), 3);
    assert!(queue.ack(s, WORKER_GROUP, &first[0].id).await.expect("ack"));
    drop(queue); // the crash: "two" and "tri" were delivered, never acked

    let restarted = h.queue();
    push(&restarted, s, b"new").await;

    // Another consumer does not get w1's entries (they are not new), only the new one.
    let other = restarted
        .read(s, WORKER_GROUP, "w2", 10, Duration::ZERO)
        .await
        .expect("read w2");
    assert_eq!(payloads(&other), vec![b"new".as_slice()]);

    // w1 gets its own pending entries back, in order, one per read here (count 1), which
    // also proves the replay advances instead of returning the first one forever; and
    // without waiting for the block timeout.
    let started = Instant::now();
    let a = restarted
        .read(s, WORKER_GROUP, "w1", 1, Duration::from_secs(5))
        .await
        .expect("replay 1");
    let b = restarted
        .read(s, WORKER_GROUP, "w1", 1, Duration::from_secs(5))
        .await
        .expect("replay 2");
    assert!(started.elapsed() < Duration::from_secs(4), "the replay does not block");
    assert_eq!(payloads(&a), vec![b"two".as_slice()]);
    assert_eq!(payloads(&b), vec![b"tri".as_slice()]);
    assert_eq!(a[0].id, first[1].id);
    assert_eq!(a[0].deliveries, 2);

    // Replay exhausted → new entries (none left for w1: w2 took "new") → empty after block.
    assert!(
        restarted
            .read(s, WORKER_GROUP, "w1", 10, SHORT)
            .await
            .expect("read")
            .is_empty()
    );
    push(&restarted, s, b"newer").await;
    let c = restarted.read(s, WORKER_GROUP, "w1", 10, SHORT).await.expect("read");
    assert_eq!(payloads(&c), vec![b"newer".as_slice()]);
}

async fn a_consumer_dead_letters_an_entry_after_max_deliveries(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    let id = push(&queue, &s, b"poison").await;

    let mut config = ConsumerConfig::new(s.as_str(), WORKER_GROUP, "w1");
    config.max_deliveries = 2;
    config.min_idle = Duration::from_millis(50);
    config.claim_every = Duration::ZERO;
    config.block = Duration::from_millis(20);
    let mut consumer = Consumer::new(queue, config);

    // The handler always fails and never acks. Bounded loop: each round is ≤ ~20 ms of block
    // or one claim; the entry is due again every 50 ms.
    let mut handled = Vec::new();
    for _ in 0..500 {
        for delivery in consumer.next_batch().await.expect("next_batch") {
            handled.push(delivery.deliveries);
        }
        if !h.dead_letters().await.is_empty() {
            break;
        }
    }
    assert_eq!(handled, vec![1, 2], "handled on deliveries 1 and 2, dead-lettered on 3");
    assert_eq!(
        h.pending().await,
        0,
        "dead-lettering takes the entry out of the pending set"
    );

    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, b"poison");
    assert_eq!(dead[0].orig_id, id.as_str());
    assert_eq!(dead[0].deliveries, 3);
    assert!(dead[0].reason.contains("max_deliveries = 2"), "{}", dead[0].reason);

    // And it is gone for good.
    assert!(consumer.next_batch().await.expect("next_batch").is_empty());
}

async fn dead_letter_keeps_payload_and_reason_for_a_permanent_failure(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    let s = s.as_str();
    push(&queue, s, b"{\"bad\":true}").await;
    let got = queue.read(s, WORKER_GROUP, "w1", 10, SHORT).await.expect("read");
    queue
        .dead_letter(s, WORKER_GROUP, &got[0], "graph api error 131026")
        .await
        .expect("dead_letter");

    assert_eq!(h.pending().await, 0);
    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, b"{\"bad\":true}");
    assert_eq!(dead[0].orig_id, got[0].id.as_str());
    assert_eq!(dead[0].reason, "graph api error 131026");
    assert_eq!(dead[0].deliveries, 1);
    // Not delivered again.
    assert!(
        queue
            .read(s, WORKER_GROUP, "w1", 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        queue
            .claim_stale(s, WORKER_GROUP, "w2", Duration::ZERO, 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

async fn a_blocking_read_returns_empty_after_the_block_timeout_without_error(h: Harness) {
    let s = h.stream();
    // On Redis, commands get redis-rs 1.x's default 500 ms response timeout here, so this
    // fails if the blocking read ever runs on the command connection instead of its own.
    let queue = h.queue_with_default_response_timeout();
    // Create the group and finish the (empty) replay, so the timed read is the blocking one.
    assert!(
        queue
            .read(&s, WORKER_GROUP, "w1", 10, Duration::ZERO)
            .await
            .expect("warm-up")
            .is_empty()
    );

    // 1000 ms is twice the 500 ms response timeout: on a connection with that timeout
    // this returns Err(timeout) after 0.5 s.
    let started = Instant::now();
    let got = queue
        .read(&s, WORKER_GROUP, "w1", 10, Duration::from_millis(1000))
        .await;
    let elapsed = started.elapsed();
    assert!(got.expect("a blocking read that times out is not an error").is_empty());
    assert!(
        elapsed >= Duration::from_millis(950),
        "returned after {elapsed:?}, before the block timeout"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

async fn a_blocking_read_wakes_on_push(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    assert!(
        queue
            .read(&s, WORKER_GROUP, "w1", 10, Duration::ZERO)
            .await
            .expect("warm-up")
            .is_empty()
    );

    let reader = {
        let (queue, s) = (queue.clone(), s.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let got = queue.read(&s, WORKER_GROUP, "w1", 10, Duration::from_secs(10)).await;
            (got, started.elapsed())
        })
    };
    // Whether the push lands before or during the wait, the reader gets it long before
    // 10 s; and the push itself is not queued behind the blocked read (on Redis: a
    // separate connection).
    let started = Instant::now();
    push(&queue, &s, b"wake").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "push waited {:?}",
        started.elapsed()
    );

    let (got, elapsed) = reader.await.expect("reader task");
    assert_eq!(payloads(&got.expect("read")), vec![b"wake".as_slice()]);
    assert!(elapsed < Duration::from_secs(5), "woke after {elapsed:?}");
}

async fn order_within_a_stream_is_preserved(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    let s = s.as_str();
    let pushed: Vec<Vec<u8>> = (0..50).map(|i| format!("m{i:02}").into_bytes()).collect();
    let mut ids = Vec::new();
    for p in &pushed {
        ids.push(push(&queue, s, p).await);
    }
    assert!(ids.windows(2).all(|w| id_key(&w[0]) < id_key(&w[1])), "ids increase");

    let mut got = Vec::new();
    for _ in 0..20 {
        let batch = queue.read(s, WORKER_GROUP, "w1", 7, SHORT).await.expect("read");
        assert!(batch.len() <= 7);
        for d in &batch {
            queue.ack(s, WORKER_GROUP, &d.id).await.expect("ack");
        }
        got.extend(batch);
        if got.len() >= pushed.len() {
            break;
        }
    }
    let got_payloads: Vec<Vec<u8>> = got.iter().map(|d| d.payload.clone()).collect();
    assert_eq!(got_payloads, pushed);
    assert_eq!(got.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), ids);
}

async fn concurrent_consumers_never_get_the_same_entry(h: Harness) {
    let (queue, s) = (h.queue(), h.stream());
    for i in 0..40 {
        push(&queue, &s, format!("job{i}").as_bytes()).await;
    }
    // Two replicas (separate handles) drain the stream at the same time.
    let mut tasks = Vec::new();
    for name in ["w1", "w2"] {
        let (queue, s) = (h.queue(), s.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = queue
                    .read(&s, WORKER_GROUP, name, 3, Duration::ZERO)
                    .await
                    .expect("read");
                if batch.is_empty() {
                    return mine;
                }
                for d in batch {
                    queue.ack(&s, WORKER_GROUP, &d.id).await.expect("ack");
                    mine.push(d.payload);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("consumer task"));
    }
    let distinct: HashSet<&Vec<u8>> = all.iter().collect();
    assert_eq!(all.len(), 40, "every entry delivered exactly once");
    assert_eq!(distinct.len(), 40);
    assert_eq!(h.pending().await, 0);
}

// ---------------------------------------------------------------------------------------
// Redis only

#[tokio::test]
async fn redis_every_group_gets_every_entry_including_ones_pushed_before_it_existed() {
    let (fx, queue) = Fixture::new().await;
    let s = fx.stream();

    push(&queue, s, b"early").await;
    // Creating groups is idempotent: twice on this handle, once more on another (BUSYGROUP).
    queue.ensure_group(s, WORKER_GROUP).await.expect("create");
    queue.ensure_group(s, WORKER_GROUP).await.expect("create again");
    fx.queue()
        .ensure_group(s, WORKER_GROUP)
        .await
        .expect("create from another process");

    let a = queue.read(s, WORKER_GROUP, "w", 10, SHORT).await.expect("read worker");
    let b = queue.read(s, SENDER_GROUP, "s", 10, SHORT).await.expect("read sender");
    assert_eq!(payloads(&a), vec![b"early".as_slice()]);
    assert_eq!(payloads(&b), vec![b"early".as_slice()]);
}

#[tokio::test]
async fn redis_operations_fail_with_a_retryable_error_when_unreachable() {
    // Port 1 (tcpmux) is closed on any machine that runs these tests: connection refused.
    let queue = RedisQueue::new(RedisQueueConfig::new("redis://127.0.0.1:1/")).expect("lazy: no connection yet");
    let started = Instant::now();
    let err = queue
        .push("test-unreachable-ingest", b"x")
        .await
        .expect_err("push must fail");
    assert!(err.is_retryable(), "push: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the webhook must be able to answer 503 promptly, took {:?}",
        started.elapsed()
    );
    let err = queue.ping().await.expect_err("ping must fail");
    assert!(err.is_retryable(), "ping: {err}");
    let err = queue
        .read(
            "test-unreachable-ingest",
            WORKER_GROUP,
            "w1",
            1,
            Duration::from_millis(100),
        )
        .await
        .expect_err("read must fail");
    assert!(err.is_retryable(), "read: {err}");
}

#[tokio::test]
async fn redis_an_invalid_url_is_a_permanent_configuration_error() {
    let err = RedisQueue::new(RedisQueueConfig::new("not a url")).expect_err("invalid URL");
    assert!(!err.is_retryable());
    assert!(matches!(err, QueueError::Config(_)), "{err}");
}

#[tokio::test]
async fn redis_a_wrong_type_at_the_stream_key_is_a_permanent_error() {
    let (fx, queue) = Fixture::new().await;
    let s = fx.stream();
    let _: () = fx.raw().await.set(s, "not a stream").await.expect("SET");
    let err = queue.push(s, b"x").await.expect_err("WRONGTYPE");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn redis_pending_entries_trimmed_away_are_counted_and_cleared() {
    let (fx, queue) = Fixture::new().await;
    let s = fx.stream();
    let a = push(&queue, s, b"a").await;
    let b = push(&queue, s, b"b").await;
    assert_eq!(
        queue.read(s, WORKER_GROUP, "w1", 10, SHORT).await.expect("read").len(),
        2
    );
    // What MAXLEN trimming does to entries consumers fell behind on.
    let _: i64 = fx.raw().await.xdel(s, &[a.as_str(), b.as_str()]).await.expect("XDEL");

    // Through XAUTOCLAIM's deleted ids ...
    let other = fx.queue();
    assert!(
        other
            .claim_stale(s, WORKER_GROUP, "w2", Duration::ZERO, 1)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(other.trimmed_pending_total() >= 1);
    // ... and through a restarted consumer's replay (nil entries), whatever is left.
    let restarted = fx.queue();
    assert!(
        restarted
            .read(s, WORKER_GROUP, "w1", 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(other.trimmed_pending_total() + restarted.trimmed_pending_total(), 2);
    assert_eq!(fx.pending(WORKER_GROUP).await, 0, "no dangling pending references");
}

#[tokio::test]
async fn redis_an_entry_without_payload_is_dead_lettered_not_retried_forever() {
    let (fx, queue) = Fixture::new().await;
    let s = fx.stream();
    let foreign: String = fx
        .raw()
        .await
        .xadd(s, "*", &[("something", "else")])
        .await
        .expect("XADD");
    push(&queue, s, b"good").await;

    let got = queue.read(s, WORKER_GROUP, "w1", 10, SHORT).await.expect("read");
    assert_eq!(payloads(&got), vec![b"good".as_slice()]);
    let dead = fx.dead_letters().await;
    assert_eq!(dead.ids.len(), 1);
    assert_eq!(dead.ids[0].get::<String>("orig_id").as_deref(), Some(foreign.as_str()));
    let reason: String = dead.ids[0].get("reason").expect("reason");
    assert!(reason.contains("malformed"), "{reason}");
    assert_eq!(fx.pending(WORKER_GROUP).await, 1, "only the good one is pending");
}

#[tokio::test]
async fn redis_the_group_is_recreated_when_the_stream_key_was_deleted() {
    let (fx, queue) = Fixture::new().await;
    let s = fx.stream();
    assert!(
        queue
            .read(s, WORKER_GROUP, "w1", 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );
    let _: i64 = fx.raw().await.del(s).await.expect("DEL");
    push(&queue, s, b"after").await; // recreates the stream, without the group

    let got = queue
        .read(s, WORKER_GROUP, "w1", 10, SHORT)
        .await
        .expect("read after NOGROUP");
    assert_eq!(payloads(&got), vec![b"after".as_slice()]);
}

// ---------------------------------------------------------------------------------------
// SQL only

#[tokio::test]
async fn sql_a_payload_that_is_not_utf8_is_refused_permanently() {
    let db = SqlDb::sqlite();
    let err = db.queue().push(&db.stream, &[0xff, 0xfe]).await.expect_err("not UTF-8");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn sql_ids_from_another_backend_are_rejected() {
    let db = SqlDb::sqlite();
    let err = db
        .queue()
        .ack(&db.stream, WORKER_GROUP, &EntryId::new("1-0"))
        .await
        .expect_err("not a row id");
    assert!(matches!(err, QueueError::Malformed { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// No server needed

#[test]
fn stream_names_derive_from_the_prefix() {
    let default = StreamNames::default();
    assert_eq!(default.ingest, "alfred-ingest");
    assert_eq!(default.outbox, "alfred-outbox");
    let test = StreamNames::with_prefix("test-42");
    assert_eq!(test.ingest, "test-42-ingest");
    assert_eq!(dead_letter_stream(&test.outbox), "test-42-outbox:dead");
}

#[test]
fn debug_output_never_shows_payloads_or_passwords() {
    let delivery = Delivery {
        id: EntryId::new("1-0"),
        payload: b"+447700900123 add bananas".to_vec(),
        deliveries: 1,
    };
    let shown = format!("{delivery:?}");
    assert!(!shown.contains("bananas") && !shown.contains("447700900123"), "{shown}");
    assert!(shown.contains("payload_len: 25"), "{shown}");

    let config = RedisQueueConfig::new("redis://:s3cret@redis:6379/0");
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn only_unavailable_and_timeout_are_retryable() {
    let io = || -> BoxError { Box::new(std::io::Error::other("x")) };
    let retryable = [
        QueueError::Unavailable {
            backend: "redis",
            source: io(),
        },
        QueueError::Timeout {
            backend: "redis",
            after: Duration::from_secs(2),
            source: io(),
        },
    ];
    let permanent = [
        QueueError::Backend {
            backend: "redis",
            source: io(),
        },
        QueueError::Config("x".into()),
        QueueError::Malformed {
            stream: "s".into(),
            id: "1-0".into(),
            reason: "r".into(),
        },
    ];
    assert!(retryable.iter().all(QueueError::is_retryable));
    assert!(!permanent.iter().any(QueueError::is_retryable));
}
