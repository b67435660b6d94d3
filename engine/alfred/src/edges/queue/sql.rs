//! [`SqlQueue`]: the [`Queue`] on a database table, for the embedded default (SQLite, no
//! `REDIS_URL`); it also runs on Postgres, which is how the same tests cover both.
//!
//! ## The table
//! `queue_jobs` (created by the store's migrations): `id, queue, payload TEXT, attempts,
//! run_at, locked_until, locked_by, status ready|dead, last_error, created_at`. One row per
//! entry; `queue` is the stream name.
//!
//! ## Leases instead of a pending list
//! SQLite has no `SELECT … FOR UPDATE SKIP LOCKED`, so a delivery is a *lease*: the row gets
//! `locked_by = consumer`, `locked_until = now + lease`, `attempts + 1`. Mapping to the
//! Redis Streams model:
//!
//! | Streams | `queue_jobs` |
//! |---|---|
//! | new entry (`>`) | `status = 'ready' AND locked_by IS NULL AND run_at <= now` |
//! | pending for consumer C | `status = 'ready' AND locked_by = C` |
//! | idle time | `now − (locked_until − lease)`: the lease records when it was delivered |
//! | times delivered | `attempts` |
//! | `XACK` | `DELETE` (an acked row has no further use; the table stays small, no `MAXLEN` caveat) |
//! | dead-letter stream | the same row with `status = 'dead'`, `last_error = reason` |
//!
//! Each lease is a select-then-update in one write transaction; the update repeats the
//! select's condition, so on Postgres (read committed) two consumers racing for a row cannot
//! both get it: the loser's update re-checks the condition and matches 0 rows. On SQLite the
//! write transaction (`BEGIN IMMEDIATE`) serialises them anyway.
//!
//! ## Groups
//! The table has no group column: each stream has **one** consumer group, which is how Alfred
//! uses its queues (`alfred-ingest` → worker, `alfred-outbox` → sender). The `group`
//! arguments are accepted and ignored; a second group on the same stream would *share* the
//! entries instead of each getting all of them.
//!
//! ## Payloads
//! `payload` is `TEXT`: payloads must be UTF-8 (webhook bodies are JSON, outbox entries too);
//! anything else is refused by `push` with a permanent error.
//!
//! ## Blocking reads
//! A `tokio::sync::Notify`, signalled by `push` on this handle (and its clones), wakes
//! blocked readers at once; other processes' pushes are picked up by polling every
//! [`SqlQueueConfig::poll_interval`] (the embedded mode is one process, so that is the
//! fallback, not the path). The store is blocking (diesel), so every query runs in
//! `spawn_blocking`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use tokio::sync::Notify;

use super::{Delivery, EntryId, Queue, QueueError, QueueResult};
use crate::edges::store::conn::to_db;
use crate::edges::store::schema::queue_jobs;
use crate::edges::store::{AnyConnection, Store, StoreError};

const BACKEND: &str = "sql";

/// Settings of a [`SqlQueue`].
#[derive(Debug, Clone)]
pub struct SqlQueueConfig {
    /// How long a delivery's lease is written as (`locked_until = now + lease`). Informational
    /// for operators reading the table: takeovers go by `min_idle`, exactly as on Redis.
    pub lease: Duration,
    /// How often a blocked read re-checks the table for rows pushed by another process.
    pub poll_interval: Duration,
}

impl Default for SqlQueueConfig {
    /// A 60 s lease (the default `min_idle` of [`ConsumerConfig`](super::ConsumerConfig)),
    /// polling every 500 ms.
    fn default() -> Self {
        SqlQueueConfig {
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// The SQL-table queue; cheap to clone (clones share the pool, the wake-up signal and the
/// replay state).
#[derive(Clone, Debug)]
pub struct SqlQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: SqlQueueConfig,
    /// Signalled on every push, so blocked readers in this process wake at once.
    pushed: Notify,
    /// Per `(stream, consumer)`: the replay of the consumer's own leased rows after a start.
    /// Absent = not started; `Some(id)` = continue after `id`; `None` = done.
    replay: Mutex<HashMap<(String, String), Option<i64>>>,
}

/// Which rows a lease takes.
#[derive(Clone, Copy)]
enum Pick {
    /// The consumer's own leased rows with `id > after` (the replay after a restart).
    Own { after: i64 },
    /// Rows never delivered (or not yet due).
    New,
    /// Rows leased to anyone whose delivery is at least `min_idle` old.
    Stale { min_idle: Duration },
}

/// `(id, payload, attempts)` of a leased row.
type Row = (i64, String, i32);

impl SqlQueue {
    /// A queue on `store`'s database (migrated: the `queue_jobs` table must exist).
    pub fn new(store: Store, config: SqlQueueConfig) -> Self {
        SqlQueue {
            inner: Arc::new(Inner {
                store,
                config,
                pushed: Notify::new(),
                replay: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Runs `f` on the store in `spawn_blocking` (diesel is synchronous).
    async fn blocking<T, F>(&self, f: F) -> QueueResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store, &SqlQueueConfig) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || f(&inner.store, &inner.config)).await {
            Ok(result) => result.map_err(classify),
            Err(join) => Err(QueueError::Backend {
                backend: BACKEND,
                source: Box::new(join),
            }),
        }
    }

    async fn lease(&self, stream: &str, consumer: &str, pick: Pick, count: usize) -> QueueResult<Vec<Delivery>> {
        let (stream, consumer) = (stream.to_owned(), consumer.to_owned());
        let count = i64::try_from(count.max(1)).unwrap_or(i64::MAX);
        let rows = self
            .blocking(move |store, config| {
                store.write(|c| lease_rows(c, &stream, &consumer, pick, count, config.lease))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, payload, attempts)| Delivery {
                id: EntryId::new(id.to_string()),
                payload: payload.into_bytes(),
                deliveries: u64::try_from(attempts).unwrap_or(0).max(1),
            })
            .collect())
    }

    fn replay_state(&self, key: &(String, String)) -> Option<i64> {
        lock(&self.inner.replay).get(key).copied().unwrap_or(Some(0))
    }

    fn set_replay_state(&self, key: (String, String), state: Option<i64>) {
        lock(&self.inner.replay).insert(key, state);
    }
}

/// Appends one ready job.
fn insert_job(conn: &mut AnyConnection, stream: &str, payload: &str) -> Result<i64, StoreError> {
    let now = to_db(Utc::now());
    Ok(diesel::insert_into(queue_jobs::table)
        .values((
            queue_jobs::queue.eq(stream),
            queue_jobs::payload.eq(payload),
            queue_jobs::attempts.eq(0),
            queue_jobs::run_at.eq(now),
            queue_jobs::status.eq("ready"),
            queue_jobs::created_at.eq(now),
        ))
        .returning(queue_jobs::id)
        .get_result::<i64>(conn)?)
}

/// Hands out `count` more numbers for `sender` on `stream`; returns the last one.
fn next_numbers(conn: &mut AnyConnection, stream: &str, sender: &str, count: i64) -> Result<i64, StoreError> {
    use crate::edges::store::schema::queue_seq;
    use diesel::upsert::excluded;
    Ok(crate::edges::store::conn::per_backend!(conn, |c| diesel::insert_into(
        queue_seq::table
    )
    .values((
        queue_seq::queue.eq(stream),
        queue_seq::sender.eq(sender),
        queue_seq::last_seq.eq(count),
    ))
    .on_conflict((queue_seq::queue, queue_seq::sender))
    .do_update()
    .set(queue_seq::last_seq.eq(queue_seq::last_seq + excluded(queue_seq::last_seq)))
    .returning(queue_seq::last_seq)
    .get_result::<i64>(c))?)
}

impl Queue for SqlQueue {
    async fn push(&self, stream: &str, payload: &[u8]) -> QueueResult<EntryId> {
        let text = String::from_utf8(payload.to_vec()).map_err(|e| QueueError::Backend {
            backend: BACKEND,
            source: Box::new(e),
        })?;
        let stream = stream.to_owned();
        let id = self
            .blocking(move |store, _| {
                let mut conn = store.conn()?;
                insert_job(&mut conn, &stream, &text)
            })
            .await?;
        // After the commit: a woken reader must be able to see the row.
        self.inner.pushed.notify_waiters();
        Ok(EntryId::new(id.to_string()))
    }

    async fn push_numbered(&self, stream: &str, payload: &[u8], senders: &[(String, u32)]) -> QueueResult<EntryId> {
        if senders.is_empty() {
            return self.push(stream, payload).await;
        }
        let body = std::str::from_utf8(payload)
            .map_err(|e| QueueError::Backend {
                backend: BACKEND,
                source: Box::new(e),
            })?
            .to_owned();
        let (stream, senders) = (stream.to_owned(), senders.to_vec());
        let id = self
            .blocking(move |store, _| {
                // One transaction: numbers are never handed out for an entry that is not
                // stored (the sender's next message would wait for it).
                store.write(|conn| {
                    let mut lasts = Vec::with_capacity(senders.len());
                    for (sender, count) in &senders {
                        lasts.push(next_numbers(conn, &stream, sender, i64::from(*count))?);
                    }
                    let mut text = String::from_utf8(crate::roles::order::header(&lasts))
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    text.push_str(&body);
                    insert_job(conn, &stream, &text)
                })
            })
            .await?;
        self.inner.pushed.notify_waiters();
        Ok(EntryId::new(id.to_string()))
    }

    async fn read(
        &self,
        stream: &str,
        _group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> QueueResult<Vec<Delivery>> {
        let key = (stream.to_owned(), consumer.to_owned());
        while let Some(after) = self.replay_state(&key) {
            let rows = self.lease(stream, consumer, Pick::Own { after }, count).await?;
            match rows.last() {
                Some(last) => {
                    let last_id = last.id.as_str().parse().unwrap_or(i64::MAX);
                    self.set_replay_state(key, Some(last_id));
                    return Ok(rows);
                }
                None => self.set_replay_state(key.clone(), None),
            }
        }

        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Registered *before* the query, so a push between the query and the wait is not
            // missed (the crates.io worker's listener does the same).
            let pushed = self.inner.pushed.notified();
            tokio::pin!(pushed);
            pushed.as_mut().enable();

            let rows = self.lease(stream, consumer, Pick::New, count).await?;
            let now = tokio::time::Instant::now();
            if !rows.is_empty() || now >= deadline {
                return Ok(rows);
            }
            let wait = (deadline - now).min(self.inner.config.poll_interval);
            // Either outcome means "look again": woken by a push, or time to poll.
            let _ = tokio::time::timeout(wait, pushed).await;
        }
    }

    async fn ack(&self, stream: &str, _group: &str, id: &EntryId) -> QueueResult<bool> {
        let id = parse_id(stream, id)?;
        let stream = stream.to_owned();
        self.blocking(move |store, _| {
            let mut conn = store.conn()?;
            // Only a delivered, live row can be acked, as XACK only acks pending entries.
            let deleted = diesel::delete(
                queue_jobs::table
                    .filter(queue_jobs::id.eq(id))
                    .filter(queue_jobs::queue.eq(&stream))
                    .filter(queue_jobs::status.eq("ready"))
                    .filter(queue_jobs::locked_by.is_not_null()),
            )
            .execute(&mut *conn)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn claim_stale(
        &self,
        stream: &str,
        _group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> QueueResult<Vec<Delivery>> {
        self.lease(stream, consumer, Pick::Stale { min_idle }, count).await
    }

    async fn dead_letter(&self, stream: &str, _group: &str, delivery: &Delivery, reason: &str) -> QueueResult<()> {
        let id = parse_id(stream, &delivery.id)?;
        let (stream, reason) = (stream.to_owned(), reason.to_owned());
        self.blocking(move |store, _| {
            let mut conn = store.conn()?;
            // One statement: the "copy to the dead-letter stream" and the "ack" are the same
            // row update, so unlike Redis there is no window for a duplicate.
            diesel::update(
                queue_jobs::table
                    .filter(queue_jobs::id.eq(id))
                    .filter(queue_jobs::queue.eq(&stream)),
            )
            .set((
                queue_jobs::status.eq("dead"),
                queue_jobs::last_error.eq(&reason),
                queue_jobs::locked_by.eq(None::<String>),
                queue_jobs::locked_until.eq(None::<chrono::NaiveDateTime>),
            ))
            .execute(&mut *conn)?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> QueueResult<()> {
        self.blocking(|store, _| store.ping()).await
    }
}

/// Selects the rows `pick` names and leases them to `consumer`, in one write transaction.
fn lease_rows(
    c: &mut AnyConnection,
    stream: &str,
    consumer: &str,
    pick: Pick,
    count: i64,
    lease: Duration,
) -> Result<Vec<Row>, StoreError> {
    // On Postgres a concurrent consumer may take every selected row between our SELECT and
    // UPDATE; select again rather than report "nothing there" while rows are waiting (the
    // caller would then sleep until its next poll). Each round sees the other's commit.
    for _ in 0..3 {
        let (selected, rows) = lease_once(c, stream, consumer, pick, count, lease)?;
        if selected == 0 || !rows.is_empty() {
            return Ok(rows);
        }
    }
    Ok(Vec::new())
}

/// One select-then-update; returns how many rows were selected and the rows leased.
fn lease_once(
    c: &mut AnyConnection,
    stream: &str,
    consumer: &str,
    pick: Pick,
    count: i64,
    lease: Duration,
) -> Result<(usize, Vec<Row>), StoreError> {
    let now = Utc::now();
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let until = to_db(now + lease);
    let base = queue_jobs::table
        .filter(queue_jobs::queue.eq(stream))
        .filter(queue_jobs::status.eq("ready"));
    let set = (
        queue_jobs::locked_by.eq(consumer),
        queue_jobs::locked_until.eq(until),
        queue_jobs::attempts.eq(queue_jobs::attempts + 1),
    );
    let returned = (queue_jobs::id, queue_jobs::payload, queue_jobs::attempts);

    // Each arm selects, then updates with the same condition again (see the module docs:
    // that re-check is what makes a lost race on Postgres match 0 rows).
    let selected;
    let mut rows: Vec<Row> = match pick {
        Pick::Own { after } => {
            let mine = queue_jobs::locked_by.eq(consumer);
            let ids: Vec<i64> = base
                .filter(mine)
                .filter(queue_jobs::id.gt(after))
                .order(queue_jobs::id)
                .limit(count)
                .select(queue_jobs::id)
                .load(c)?;
            if ids.is_empty() {
                return Ok((0, Vec::new()));
            }
            selected = ids.len();
            diesel::update(base.filter(queue_jobs::id.eq_any(&ids)).filter(mine))
                .set(set)
                .returning(returned)
                .get_results(c)?
        }
        Pick::New => {
            let due = to_db(now);
            let ids: Vec<i64> = base
                .filter(queue_jobs::locked_by.is_null())
                .filter(queue_jobs::run_at.le(due))
                .order(queue_jobs::id)
                .limit(count)
                .select(queue_jobs::id)
                .load(c)?;
            if ids.is_empty() {
                return Ok((0, Vec::new()));
            }
            selected = ids.len();
            diesel::update(
                base.filter(queue_jobs::id.eq_any(&ids))
                    .filter(queue_jobs::locked_by.is_null()),
            )
            .set(set)
            .returning(returned)
            .get_results(c)?
        }
        Pick::Stale { min_idle } => {
            // Delivered at `locked_until - lease`; stale if that is at least `min_idle` ago.
            let min_idle = chrono::Duration::from_std(min_idle).unwrap_or(chrono::Duration::MAX);
            let threshold = to_db(now - min_idle + lease);
            let ids: Vec<i64> = base
                .filter(queue_jobs::locked_by.is_not_null())
                .filter(queue_jobs::locked_until.le(threshold))
                .order(queue_jobs::id)
                .limit(count)
                .select(queue_jobs::id)
                .load(c)?;
            if ids.is_empty() {
                return Ok((0, Vec::new()));
            }
            selected = ids.len();
            diesel::update(
                base.filter(queue_jobs::id.eq_any(&ids))
                    .filter(queue_jobs::locked_until.le(threshold)),
            )
            .set(set)
            .returning(returned)
            .get_results(c)?
        }
    };
    // RETURNING has no defined order; deliveries go out in stream order.
    rows.sort_by_key(|r| r.0);
    Ok((selected, rows))
}

fn parse_id(stream: &str, id: &EntryId) -> QueueResult<i64> {
    id.as_str().parse().map_err(|_| QueueError::Malformed {
        stream: stream.to_owned(),
        id: id.to_string(),
        reason: "not an SQL queue id".to_owned(),
    })
}

fn classify(e: StoreError) -> QueueError {
    if e.is_retryable() {
        QueueError::Unavailable {
            backend: BACKEND,
            source: Box::new(e),
        }
    } else {
        QueueError::Backend {
            backend: BACKEND,
            source: Box::new(e),
        }
    }
}

/// Locks a std mutex, recovering from poisoning (the map is a cache of replay positions).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
