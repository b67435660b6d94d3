//! # Durable queues: `alfred-ingest` and `alfred-outbox`
//!
//! Every arrow between roles in the architecture (webhook → worker → sender) is a queue
//! with **consumer-group** semantics, the model of Redis Streams:
//!
//! - [`Queue::push`] appends an entry; when it returns `Ok` the entry is durable (the webhook
//!   answers Meta 200 only after that, 503 when [`QueueError::is_retryable`]).
//! - [`Queue::read`] hands entries to one named consumer of a group. A read entry is
//!   *pending* for that consumer until [`Queue::ack`]: a crash before the ack loses nothing.
//! - On start a consumer first gets back its **own** pending entries (it crashed holding
//!   them; consumer names are stable per replica, e.g. the hostname), then new ones.
//! - [`Queue::claim_stale`] takes over entries another (dead) consumer has held longer than
//!   `min_idle`, so no entry is stuck behind a replica that never comes back.
//! - Each [`Delivery`] carries how many times it has been delivered; past a limit the
//!   consumer moves it to the dead-letter stream ([`dead_letter_stream`]) with the reason
//!   ([`Queue::dead_letter`]) instead of retrying a poison message forever.
//!
//! Delivery is therefore **at least once**; handlers are idempotent (the processed-`wamid`
//! marker for ingest, the outbox row's state for the sender), which makes the whole
//! pipeline exactly-once in effect.
//!
//! [`Consumer`] packages that loop (own pending → claim stale → read new → dead-letter the
//! exhausted) so the worker and the sender do not each re-implement it.
//!
//! ## Backends
//! - [`RedisQueue`] (`REDIS_URL` set, scale-out): Redis Streams, `XADD`/`XREADGROUP`/`XACK`/
//!   `XAUTOCLAIM`/`XPENDING`. See [`redis`] for the connection layout that
//!   avoids redis 1.x's 500 ms response-timeout trap on blocking reads.
//! - [`SqlQueue`] (embedded default, no `REDIS_URL`): the `queue_jobs` table of the store's
//!   database, with leases instead of a pending list. See [`sql`] for the mapping and its one
//!   restriction (one consumer group per stream).
//!
//! [`AnyQueue`] holds whichever backend the configuration picked, so a role can be written
//! once, either generically over [`Queue`] or over [`AnyQueue`].
//!
//! ## Why a trait with `impl Future` methods and an enum
//! The methods are `fn … -> impl Future<Output = …> + Send` (native async in traits): no
//! boxing per call on the webhook's hot path, and the `+ Send` bound lets a generic role be
//! `tokio::spawn`ed. Such a trait is not object-safe, hence the enum [`AnyQueue`] for runtime
//! choice instead of `Box<dyn Queue>`.

mod consumer;
mod error;
pub mod redis;
pub mod sql;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use consumer::{Consumer, ConsumerConfig};
pub use error::{BoxError, QueueError, QueueResult};
pub use redis::{RedisQueue, RedisQueueConfig};
pub use sql::{SqlQueue, SqlQueueConfig};

/// The consumer group of the worker (orchestrator) role on the ingest stream.
pub const WORKER_GROUP: &str = "worker";
/// The consumer group of the sender role on the outbox stream.
pub const SENDER_GROUP: &str = "sender";

/// The id of a queue entry, as the backend assigned it (`"1718000000000-0"` on Redis).
///
/// Opaque to callers: compare and print it, don't parse it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(String);

impl EntryId {
    /// Wraps a backend id.
    pub fn new(id: impl Into<String>) -> Self {
        EntryId(id.into())
    }

    /// The id as the backend spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for EntryId {
    fn from(id: String) -> Self {
        EntryId(id)
    }
}

/// One entry handed to a consumer.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The entry's id; pass it to [`Queue::ack`].
    pub id: EntryId,
    /// The bytes that were pushed.
    pub payload: Vec<u8>,
    /// How many times the entry has been delivered, this delivery included (1 the first time).
    pub deliveries: u64,
}

/// Hand-written so that `{:?}` in a log line never prints a payload (phone numbers, bodies).
impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("payload_len", &self.payload.len())
            .field("deliveries", &self.deliveries)
            .finish()
    }
}

/// The names of Alfred's streams, all derived from one prefix.
///
/// The default prefix `alfred` gives `alfred-ingest` and `alfred-outbox` (the seed's names);
/// tests use a random prefix so that parallel tests on one Redis never see each other's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNames {
    /// Raw webhook bodies, webhook → worker.
    pub ingest: String,
    /// Outbound messages, worker → sender.
    pub outbox: String,
}

impl StreamNames {
    /// The prefix used when none is configured.
    pub const DEFAULT_PREFIX: &'static str = "alfred";

    /// `{prefix}-ingest` and `{prefix}-outbox`.
    pub fn with_prefix(prefix: &str) -> Self {
        StreamNames {
            ingest: format!("{prefix}-ingest"),
            outbox: format!("{prefix}-outbox"),
        }
    }
}

impl Default for StreamNames {
    fn default() -> Self {
        StreamNames::with_prefix(Self::DEFAULT_PREFIX)
    }
}

/// The dead-letter stream of `stream` on Redis: `{stream}:dead`.
///
/// Entries there hold the original `payload`, the original id (`orig_id`), the `group`, the
/// number of `deliveries` and the `reason`; nothing reads them automatically, they are for
/// an operator (and a metric/alert) to look at.
pub fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}:dead")
}

/// A durable queue with consumer groups (Redis Streams semantics); see the [module docs](self).
///
/// Every method takes the stream name, so one handle serves both `alfred-ingest` and
/// `alfred-outbox`. Groups are created on first use (idempotently), so no setup step can be
/// forgotten; entries pushed before a group exists are still delivered to it.
pub trait Queue: Send + Sync {
    /// Appends `payload` to `stream`. When this returns `Ok`, the entry is durable (as durable
    /// as the backend is configured to be) and will be delivered to every group.
    fn push(&self, stream: &str, payload: &[u8]) -> impl Future<Output = QueueResult<EntryId>> + Send;

    /// Appends a webhook body to `stream` and, in the same atomic step, hands out the
    /// next arrival numbers of each of its `senders` (`(sender key, message count)`, see
    /// [`crate::roles::order`]). The entry is [`crate::roles::order::header`]`(last numbers)` followed
    /// by `payload`. Durable on `Ok`, like [`Queue::push`].
    fn push_numbered(
        &self,
        stream: &str,
        payload: &[u8],
        senders: &[(String, u32)],
    ) -> impl Future<Output = QueueResult<EntryId>> + Send;

    /// Up to `count` entries for `consumer` of `group`, waiting up to `block` for new ones
    /// (`Duration::ZERO`: don't wait). An empty vector means nothing arrived in time.
    ///
    /// The first reads of a `(stream, group, consumer)` through this handle return the
    /// consumer's own pending entries (delivered before a crash or restart and never acked),
    /// without waiting; once those are exhausted, reads return new entries in stream order.
    /// Run one reading task per consumer name.
    fn read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> impl Future<Output = QueueResult<Vec<Delivery>>> + Send;

    /// Marks the entry as done for `group`: it will not be delivered again.
    ///
    /// Returns `false` if the entry was not pending (already acked, or trimmed away);
    /// acking twice is harmless.
    fn ack(&self, stream: &str, group: &str, id: &EntryId) -> impl Future<Output = QueueResult<bool>> + Send;

    /// Takes over for `consumer` up to `count` entries of `group` that have been pending
    /// (with any consumer, this one included) for at least `min_idle`, and returns them with
    /// their delivery counter already bumped. This is how entries of a crashed consumer, or
    /// ones a handler gave up on without acking, are retried.
    ///
    /// `min_idle` must exceed the longest time a handler can legitimately hold an entry,
    /// otherwise a live consumer's work is stolen and done twice.
    fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> impl Future<Output = QueueResult<Vec<Delivery>>> + Send;

    /// Moves `delivery` out of the live queue, keeping its payload, id, delivery count and
    /// `reason` for an operator: on Redis copied to [`dead_letter_stream`]`(stream)` and then
    /// acked; on SQL the row is marked `dead` with `last_error = reason`.
    ///
    /// `reason` is stored and may be logged: keep personal data out of it.
    fn dead_letter(
        &self,
        stream: &str,
        group: &str,
        delivery: &Delivery,
        reason: &str,
    ) -> impl Future<Output = QueueResult<()>> + Send;

    /// Checks that the backend answers (for `/readyz`).
    fn ping(&self) -> impl Future<Output = QueueResult<()>> + Send;
}

/// Whichever queue backend the configuration selected.
///
/// Roles hold an `AnyQueue` (cheap to clone) so that one binary runs on Redis or on the
/// embedded SQL-table queue.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyQueue {
    /// Redis Streams (`REDIS_URL` set).
    Redis(RedisQueue),
    /// The `queue_jobs` table (the embedded default).
    Sql(SqlQueue),
}

impl From<RedisQueue> for AnyQueue {
    fn from(queue: RedisQueue) -> Self {
        AnyQueue::Redis(queue)
    }
}

impl From<SqlQueue> for AnyQueue {
    fn from(queue: SqlQueue) -> Self {
        AnyQueue::Sql(queue)
    }
}

impl Queue for AnyQueue {
    async fn push(&self, stream: &str, payload: &[u8]) -> QueueResult<EntryId> {
        match self {
            AnyQueue::Redis(q) => q.push(stream, payload).await,
            AnyQueue::Sql(q) => q.push(stream, payload).await,
        }
    }

    async fn push_numbered(&self, stream: &str, payload: &[u8], senders: &[(String, u32)]) -> QueueResult<EntryId> {
        match self {
            AnyQueue::Redis(q) => q.push_numbered(stream, payload, senders).await,
            AnyQueue::Sql(q) => q.push_numbered(stream, payload, senders).await,
        }
    }

    async fn read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> QueueResult<Vec<Delivery>> {
        match self {
            AnyQueue::Redis(q) => q.read(stream, group, consumer, count, block).await,
            AnyQueue::Sql(q) => q.read(stream, group, consumer, count, block).await,
        }
    }

    async fn ack(&self, stream: &str, group: &str, id: &EntryId) -> QueueResult<bool> {
        match self {
            AnyQueue::Redis(q) => q.ack(stream, group, id).await,
            AnyQueue::Sql(q) => q.ack(stream, group, id).await,
        }
    }

    async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> QueueResult<Vec<Delivery>> {
        match self {
            AnyQueue::Redis(q) => q.claim_stale(stream, group, consumer, min_idle, count).await,
            AnyQueue::Sql(q) => q.claim_stale(stream, group, consumer, min_idle, count).await,
        }
    }

    async fn dead_letter(&self, stream: &str, group: &str, delivery: &Delivery, reason: &str) -> QueueResult<()> {
        match self {
            AnyQueue::Redis(q) => q.dead_letter(stream, group, delivery, reason).await,
            AnyQueue::Sql(q) => q.dead_letter(stream, group, delivery, reason).await,
        }
    }

    async fn ping(&self) -> QueueResult<()> {
        match self {
            AnyQueue::Redis(q) => q.ping().await,
            AnyQueue::Sql(q) => q.ping().await,
        }
    }
}
