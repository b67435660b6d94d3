//! [`RedisQueue`]: the [`Queue`] on Redis Streams with consumer groups (Redis ≥ 6.2).
//!
//! ## Two kinds of connection, because of redis 1.x's response timeout
//! redis-rs 1.x gives every async connection a **500 ms default response timeout**. A
//! `XREADGROUP … BLOCK 2000` on such a connection fails with an I/O timeout before the server
//! answers, and on a shared multiplexed connection it would also stall every command queued
//! behind it. So:
//! - **Commands** (`XADD`, `XACK`, `XAUTOCLAIM`, `XPENDING`, non-blocking reads) go through one
//!   auto-reconnecting `ConnectionManager` with *explicit* connection and response timeouts
//!   ([`RedisQueueConfig`], 2 s each): a hung server turns into a retryable error quickly, so the
//!   webhook answers 503 instead of hanging Meta's request.
//! - **Blocking reads** use dedicated multiplexed connections with the response timeout
//!   *disabled*, one per concurrent read (kept in a small pool). Instead of the driver's
//!   timeout, each blocking read is bounded by `block + response_timeout` on our side; when that
//!   passes, the connection is dropped (its state is unknown) and the error is retryable.
//!
//! Both are created lazily: the process starts while Redis is down, `push` fails with a
//! retryable error (503), `/readyz` reports it, and everything recovers when Redis is back.
//!
//! ## Keys and entries
//! An entry is one field, `payload` (the raw bytes). Dead letters go to `{stream}:dead` with
//! `payload`, `orig_id`, `group`, `deliveries` and `reason`.
//!
//! ## Bounded streams, and the trimming caveat
//! XACK never deletes entries, so every `XADD` trims with an *approximate* `MAXLEN`
//! ([`RedisQueueConfig::max_len`], 1,000,000 by default; `~` lets Redis trim whole radix-tree
//! nodes, which is cheap). Trimming is by length, not by state: if consumers fall a million
//! entries behind, **pending or never-read entries are trimmed too** and lost. The limit is
//! sized far beyond any household's backlog; when it does happen it is visible: `XAUTOCLAIM`
//! and the pending replay report such entries, they are logged (`warn`, ids only) and counted
//! in [`RedisQueue::trimmed_pending_total`]. (Trimming by `MINID` past the retry horizon would
//! be the alternative if backlogs ever approach the limit.)
//!
//! ## Redis Cluster
//! Every command touches one key, except dead-lettering (two keys, written one after the
//! other, not in a transaction), so the queue does not depend on hash slots. A crash between
//! the dead-letter `XADD` and the `XACK` redelivers the entry, which is dead-lettered again: a
//! duplicate in the dead-letter stream, never a loss.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::streams::{StreamMaxlen, StreamPendingCountReply};
use ::redis::{AsyncCommands, AsyncConnectionConfig, Client, ErrorKind, RedisError, ServerErrorKind, Value};

use super::{Delivery, EntryId, Queue, QueueError, QueueResult, dead_letter_stream};

const BACKEND: &str = "redis";

/// The field an entry's bytes are stored under.
const PAYLOAD_FIELD: &str = "payload";

/// Idle blocking connections kept for reuse; more concurrent readers than this simply open
/// (and then close) extra connections.
const BLOCKING_POOL_MAX: usize = 16;

/// XAUTOCLAIM scans at most `10 × COUNT` pending entries per call; this bounds how many calls
/// one `claim_stale` makes while walking a long pending list, so a sweep stays short.
const CLAIM_MAX_ROUNDS: usize = 16;

/// Settings of a [`RedisQueue`].
#[derive(Clone)]
pub struct RedisQueueConfig {
    /// `redis://[user:password@]host:port[/db]` (`rediss://` needs a TLS feature of the redis
    /// crate, not enabled yet).
    pub url: String,
    /// Deadline for establishing a connection.
    pub connect_timeout: Duration,
    /// Deadline for a non-blocking command's answer (and the grace period added to a blocking
    /// read's `block`).
    pub response_timeout: Duration,
    /// How many times the connection manager retries connecting (exponential back-off from
    /// 100 ms) before a command fails. Small, so that the webhook answers 503 quickly while
    /// Redis is down rather than holding Meta's request.
    pub reconnect_retries: usize,
    /// Approximate `MAXLEN` every `XADD` trims to; see the module docs for the caveat.
    pub max_len: usize,
}

impl RedisQueueConfig {
    /// Defaults: 2 s connection and response timeouts, 1 reconnect retry, `MAXLEN ~ 1000000`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisQueueConfig {
            url: url.into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_retries: 1,
            max_len: 1_000_000,
        }
    }
}

/// Hand-written: the URL may hold a password.
impl fmt::Debug for RedisQueueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueueConfig")
            .field("url", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("max_len", &self.max_len)
            .finish()
    }
}

/// The Redis Streams queue; cheap to clone (all clones share connections and state).
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// For every non-blocking command; reconnects by itself.
    manager: ConnectionManager,
    /// Idle connections without a response timeout, for blocking reads only.
    blocking: Mutex<Vec<MultiplexedConnection>>,
    config: RedisQueueConfig,
    /// `(stream, group)` pairs known to exist, so `XGROUP CREATE` runs once per process and
    /// not before every read.
    groups: Mutex<HashSet<(String, String)>>,
    /// Per `(stream, group, consumer)`: where the replay of the consumer's own pending entries
    /// stands. Absent = not started (start at `0`); `None` = replay done, read new entries.
    replay: Mutex<HashMap<(String, String, String), Option<String>>>,
    /// Pending entries found trimmed away (see the module docs).
    trimmed_pending: AtomicU64,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// One entry as parsed from a reply.
enum RawEntry {
    /// A well-formed entry.
    Entry { id: String, payload: Vec<u8> },
    /// A pending entry whose data was trimmed away (`[id, nil]` in a history read).
    Trimmed { id: String },
    /// Present, but without a `payload` field (not written by Alfred).
    Malformed { id: String, reason: String },
}

impl RedisQueue {
    /// A queue on `config.url`. Connects lazily (see the module docs), so this fails only on
    /// an invalid URL. Must be called inside a Tokio runtime.
    pub fn new(config: RedisQueueConfig) -> QueueResult<Self> {
        let client = Client::open(config.url.as_str())
            .map_err(|e| QueueError::Config(format!("REDIS_URL is not a valid Redis URL: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.reconnect_retries)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| classify(e, &config))?;
        Ok(RedisQueue {
            inner: Arc::new(Inner {
                client,
                manager,
                blocking: Mutex::new(Vec::new()),
                config,
                groups: Mutex::new(HashSet::new()),
                replay: Mutex::new(HashMap::new()),
                trimmed_pending: AtomicU64::new(0),
            }),
        })
    }

    /// This queue's settings.
    pub fn config(&self) -> &RedisQueueConfig {
        &self.inner.config
    }

    /// How many pending entries this process found trimmed away by `MAXLEN` (lost work;
    /// should stay 0, worth an alert when it does not).
    pub fn trimmed_pending_total(&self) -> u64 {
        self.inner.trimmed_pending.load(Ordering::Relaxed)
    }

    /// Creates `group` on `stream` (and the stream) if missing, starting at the beginning of
    /// the stream so entries pushed before the first consumer started are not skipped.
    /// Idempotent: `BUSYGROUP` (the group exists) is success. `read` and `claim_stale` call it.
    pub async fn ensure_group(&self, stream: &str, group: &str) -> QueueResult<()> {
        let key = (stream.to_owned(), group.to_owned());
        if lock(&self.inner.groups).contains(&key) {
            return Ok(());
        }
        let mut conn = self.inner.manager.clone();
        let created: Result<(), RedisError> = conn.xgroup_create_mkstream(stream, group, "0").await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(self.classify(e)),
        }
        lock(&self.inner.groups).insert(key);
        Ok(())
    }

    fn classify(&self, e: RedisError) -> QueueError {
        classify(e, &self.inner.config)
    }

    /// Forgets that the group exists, after a `NOGROUP` (someone deleted the stream key), so
    /// the next `ensure_group` recreates it.
    fn forget_group(&self, stream: &str, group: &str) {
        lock(&self.inner.groups).remove(&(stream.to_owned(), group.to_owned()));
    }

    /// Reads new entries (`>`), blocking up to `block` on a dedicated connection.
    async fn read_new(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> QueueResult<Vec<Delivery>> {
        let cmd = xreadgroup(stream, group, consumer, count, Some(block), ">");
        let reply = if block.is_zero() {
            self.query(&cmd).await?
        } else {
            self.query_blocking(&cmd, block).await?
        };
        let entries = parse_read_reply(reply, stream)?;
        // A `>` read is by definition an entry's first delivery: no XPENDING round trip.
        self.finish(stream, group, entries, None).await
    }

    /// One step of the replay of this consumer's own pending entries, from `from`. Returns
    /// the entries and the id to continue after, or `None` when the replay is complete.
    async fn read_own_pending(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        from: &str,
    ) -> QueueResult<Option<(Vec<Delivery>, String)>> {
        // A history read never blocks, so the shared command connection is fine.
        let cmd = xreadgroup(stream, group, consumer, count, None, from);
        let entries = parse_read_reply(self.query(&cmd).await?, stream)?;
        let Some(last) = entries.last().map(|e| e.id().to_owned()) else {
            return Ok(None);
        };
        let ids: Vec<String> = entries.iter().map(|e| e.id().to_owned()).collect();
        let counts = self.delivery_counts(stream, group, &ids).await?;
        let deliveries = self.finish(stream, group, entries, Some(&counts)).await?;
        Ok(Some((deliveries, last)))
    }

    /// Turns parsed entries into deliveries: trimmed ones are acked and counted, malformed
    /// ones dead-lettered, so neither can block a consumer forever.
    async fn finish(
        &self,
        stream: &str,
        group: &str,
        entries: Vec<RawEntry>,
        counts: Option<&HashMap<String, u64>>,
    ) -> QueueResult<Vec<Delivery>> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry {
                RawEntry::Entry { id, payload } => {
                    let deliveries = counts.and_then(|c| c.get(&id).copied()).unwrap_or(1).max(1);
                    out.push(Delivery {
                        id: EntryId::new(id),
                        payload,
                        deliveries,
                    });
                }
                RawEntry::Trimmed { id } => {
                    self.note_trimmed(stream, group, std::slice::from_ref(&id));
                    // Its data is gone; acking removes the dangling pending reference.
                    self.ack(stream, group, &EntryId::new(id)).await?;
                }
                RawEntry::Malformed { id, reason } => {
                    tracing::warn!(queue.stream = %stream, queue.entry_id = %id, %reason, "Dead-lettering a malformed entry");
                    let deliveries = counts.and_then(|c| c.get(&id).copied()).unwrap_or(1).max(1);
                    // Nothing to copy: the original entry stays in the stream (by `orig_id`)
                    // for inspection until it is trimmed.
                    let delivery = Delivery {
                        id: EntryId::new(id),
                        payload: Vec::new(),
                        deliveries,
                    };
                    self.dead_letter(stream, group, &delivery, &format!("malformed entry: {reason}"))
                        .await?;
                }
            }
        }
        Ok(out)
    }

    fn note_trimmed(&self, stream: &str, group: &str, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        self.inner
            .trimmed_pending
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        tracing::warn!(
            queue.stream = %stream,
            queue.group = %group,
            queue.trimmed = ids.len(),
            queue.entry_ids = ?ids,
            "Pending entries were trimmed by MAXLEN before being acked; their work is lost"
        );
    }

    /// `times_delivered` of each id from the group's pending list, in one round trip.
    async fn delivery_counts(&self, stream: &str, group: &str, ids: &[String]) -> QueueResult<HashMap<String, u64>> {
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("XPENDING").arg(stream).arg(group).arg(id).arg(id).arg(1);
        }
        let mut conn = self.inner.manager.clone();
        let replies: Vec<StreamPendingCountReply> = pipe.query_async(&mut conn).await.map_err(|e| self.classify(e))?;
        Ok(replies
            .into_iter()
            .flat_map(|r| r.ids)
            .map(|p| (p.id, p.times_delivered as u64))
            .collect())
    }

    /// Runs a non-blocking command on the connection manager.
    async fn query(&self, cmd: &::redis::Cmd) -> QueueResult<Value> {
        let mut conn = self.inner.manager.clone();
        cmd.query_async(&mut conn).await.map_err(|e| self.classify(e))
    }

    /// Runs a blocking command on a dedicated connection without a response timeout,
    /// bounded by `block + response_timeout` on our side.
    async fn query_blocking(&self, cmd: &::redis::Cmd, block: Duration) -> QueueResult<Value> {
        let mut conn = self.blocking_connection().await?;
        let deadline = block + self.inner.config.response_timeout;
        match tokio::time::timeout(deadline, cmd.query_async::<Value>(&mut conn)).await {
            Ok(Ok(value)) => {
                self.return_blocking(conn);
                Ok(value)
            }
            Ok(Err(e)) => {
                // A server error (NOGROUP, …) leaves the connection usable; an I/O error does not.
                if !e.is_io_error() && !e.is_unrecoverable_error() {
                    self.return_blocking(conn);
                }
                Err(self.classify(e))
            }
            // The server did not answer a BLOCK within block + grace: the network is probably
            // black-holing packets. The connection's state is unknown, so it is dropped here.
            Err(elapsed) => Err(QueueError::Timeout {
                backend: BACKEND,
                after: deadline,
                source: Box::new(elapsed),
            }),
        }
    }

    async fn blocking_connection(&self) -> QueueResult<MultiplexedConnection> {
        if let Some(conn) = lock(&self.inner.blocking).pop() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.config.connect_timeout))
            // The point of this connection: no response timeout, or BLOCK > 500 ms fails.
            .set_response_timeout(None);
        self.inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.classify(e))
    }

    fn return_blocking(&self, conn: MultiplexedConnection) {
        let mut pool = lock(&self.inner.blocking);
        if pool.len() < BLOCKING_POOL_MAX {
            pool.push(conn);
        }
    }

    async fn read_inner(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> QueueResult<Vec<Delivery>> {
        let key = (stream.to_owned(), group.to_owned(), consumer.to_owned());
        loop {
            let from = lock(&self.inner.replay)
                .get(&key)
                .cloned()
                .unwrap_or_else(|| Some("0".to_owned()));
            let Some(from) = from else {
                return self.read_new(stream, group, consumer, count, block).await;
            };
            match self.read_own_pending(stream, group, consumer, count, &from).await? {
                Some((deliveries, last)) => {
                    lock(&self.inner.replay).insert(key.clone(), Some(last));
                    // A batch of only trimmed/malformed entries is not "nothing pending":
                    // continue the replay instead of returning an empty batch.
                    if !deliveries.is_empty() {
                        return Ok(deliveries);
                    }
                }
                None => {
                    lock(&self.inner.replay).insert(key.clone(), None);
                }
            }
        }
    }

    async fn claim_inner(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> QueueResult<Vec<Delivery>> {
        let min_idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut cursor = "0-0".to_owned();
        let mut entries = Vec::new();
        for _ in 0..CLAIM_MAX_ROUNDS {
            let wanted = count.saturating_sub(entries.len());
            if wanted == 0 {
                break;
            }
            let mut cmd = ::redis::cmd("XAUTOCLAIM");
            cmd.arg(stream)
                .arg(group)
                .arg(consumer)
                .arg(min_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(wanted);
            let (next, claimed, deleted) = parse_autoclaim_reply(self.query(&cmd).await?, stream)?;
            // XAUTOCLAIM already removed these from the pending list (Redis ≥ 7); all that is
            // left to do is to make the loss visible.
            self.note_trimmed(stream, group, &deleted);
            entries.extend(claimed);
            if next == "0-0" {
                break;
            }
            cursor = next;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = entries.iter().map(|e| e.id().to_owned()).collect();
        let counts = self.delivery_counts(stream, group, &ids).await?;
        self.finish(stream, group, entries, Some(&counts)).await
    }
}

impl Queue for RedisQueue {
    async fn push(&self, stream: &str, payload: &[u8]) -> QueueResult<EntryId> {
        let mut conn = self.inner.manager.clone();
        let id: String = conn
            .xadd_maxlen(
                stream,
                StreamMaxlen::Approx(self.inner.config.max_len),
                "*",
                &[(PAYLOAD_FIELD, payload)],
            )
            .await
            .map_err(|e| self.classify(e))?;
        Ok(EntryId::new(id))
    }

    async fn push_numbered(&self, stream: &str, payload: &[u8], senders: &[(String, u32)]) -> QueueResult<EntryId> {
        if senders.is_empty() {
            return self.push(stream, payload).await;
        }
        let mut invocation = NUMBERED_PUSH.key(stream);
        invocation
            .key(seq_key(stream))
            .arg(payload)
            .arg(self.inner.config.max_len);
        for (sender, count) in senders {
            invocation.arg(sender).arg(*count);
        }
        let mut conn = self.inner.manager.clone();
        let id: String = invocation.invoke_async(&mut conn).await.map_err(|e| self.classify(e))?;
        Ok(EntryId::new(id))
    }

    async fn read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> QueueResult<Vec<Delivery>> {
        self.ensure_group(stream, group).await?;
        match self.read_inner(stream, group, consumer, count, block).await {
            Err(QueueError::Backend { ref source, .. }) if is_nogroup(source.as_ref()) => {
                // The stream key was deleted (and the group with it) since we created it.
                self.forget_group(stream, group);
                self.ensure_group(stream, group).await?;
                self.read_inner(stream, group, consumer, count, block).await
            }
            other => other,
        }
    }

    async fn ack(&self, stream: &str, group: &str, id: &EntryId) -> QueueResult<bool> {
        let mut conn = self.inner.manager.clone();
        let acked: u64 = conn
            .xack(stream, group, &[id.as_str()])
            .await
            .map_err(|e| self.classify(e))?;
        Ok(acked > 0)
    }

    async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> QueueResult<Vec<Delivery>> {
        self.ensure_group(stream, group).await?;
        match self.claim_inner(stream, group, consumer, min_idle, count).await {
            Err(QueueError::Backend { ref source, .. }) if is_nogroup(source.as_ref()) => {
                self.forget_group(stream, group);
                self.ensure_group(stream, group).await?;
                self.claim_inner(stream, group, consumer, min_idle, count).await
            }
            other => other,
        }
    }

    async fn dead_letter(&self, stream: &str, group: &str, delivery: &Delivery, reason: &str) -> QueueResult<()> {
        let deliveries = delivery.deliveries.to_string();
        let fields: [(&str, &[u8]); 5] = [
            (PAYLOAD_FIELD, &delivery.payload),
            ("orig_id", delivery.id.as_str().as_bytes()),
            ("group", group.as_bytes()),
            ("deliveries", deliveries.as_bytes()),
            ("reason", reason.as_bytes()),
        ];
        let mut conn = self.inner.manager.clone();
        // XADD first, XACK only once the copy is durable: a failure in between leaves the
        // entry pending (redelivered, dead-lettered again), never lost.
        let _: String = conn
            .xadd_maxlen(
                dead_letter_stream(stream),
                StreamMaxlen::Approx(self.inner.config.max_len),
                "*",
                &fields,
            )
            .await
            .map_err(|e| self.classify(e))?;
        self.ack(stream, group, &delivery.id).await?;
        Ok(())
    }

    async fn ping(&self) -> QueueResult<()> {
        let mut conn = self.inner.manager.clone();
        let _: String = ::redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(())
    }
}

impl RawEntry {
    fn id(&self) -> &str {
        match self {
            RawEntry::Entry { id, .. } | RawEntry::Trimmed { id } | RawEntry::Malformed { id, .. } => id,
        }
    }
}

/// Locks a std mutex, recovering from poisoning: the guarded maps hold caches whose worst
/// stale state is one extra `XGROUP CREATE` or replay step, never a reason to crash a role.
/// Numbers each sender's messages and appends the entry in one atomic step: a crash or
/// a lost connection can never leave numbers handed out for an entry that was not
/// appended (which would make the sender's next message wait for a ghost).
/// KEYS: stream, counters hash. ARGV: payload, MAXLEN, then sender/count pairs.
static NUMBERED_PUSH: std::sync::LazyLock<::redis::Script> = std::sync::LazyLock::new(|| {
    ::redis::Script::new(
        r"
local lasts = {}
for i = 3, #ARGV, 2 do
  lasts[#lasts + 1] = redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
local entry = 'alfred-seq:' .. table.concat(lasts, ',') .. '\n' .. ARGV[1]
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'payload', entry)
",
    )
});

/// The hash of per-sender counters of `stream`. The `{stream}` hash tag puts it in the
/// stream's slot on Redis Cluster (a key without braces hashes as a whole), as a script
/// touching both keys requires.
fn seq_key(stream: &str) -> String {
    format!("{{{stream}}}:seq")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS s id`.
fn xreadgroup(
    stream: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Option<Duration>,
    id: &str,
) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(group).arg(consumer).arg("COUNT").arg(count.max(1));
    if let Some(block) = block.filter(|b| !b.is_zero()) {
        // BLOCK 0 means "forever" to Redis, so a sub-millisecond block is rounded up, not down.
        let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        cmd.arg("BLOCK").arg(ms);
    }
    cmd.arg("STREAMS").arg(stream).arg(id);
    cmd
}

fn is_nogroup(source: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    source
        .downcast_ref::<RedisError>()
        .is_some_and(|e| e.code() == Some("NOGROUP"))
}

/// Maps a redis error onto the retryable/permanent split.
fn classify(e: RedisError, config: &RedisQueueConfig) -> QueueError {
    if e.is_timeout() {
        return QueueError::Timeout {
            backend: BACKEND,
            after: config.response_timeout,
            source: Box::new(e),
        };
    }
    let transient = match e.kind() {
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                // A replica promoted/demoted under us during a failover.
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        ),
        // Out of memory (maxmemory reached) clears once consumers catch up and trim.
        _ => e.code() == Some("OOM"),
    };
    if transient {
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

fn malformed_reply(stream: &str, reason: &str) -> QueueError {
    QueueError::Malformed {
        stream: stream.to_owned(),
        id: String::new(),
        reason: format!("unexpected reply shape: {reason}"),
    }
}

/// An id or string field from a reply.
fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The entries of an `XREADGROUP` reply: `nil` (timeout), or per stream `[key, [entry…]]`
/// (an array in RESP2, a map in RESP3). Only one stream is ever read.
fn parse_read_reply(reply: Value, stream: &str) -> QueueResult<Vec<RawEntry>> {
    let per_stream = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect::<Vec<_>>(),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(mut kv) if kv.len() == 2 => Ok(kv.swap_remove(1)),
                _ => Err(malformed_reply(stream, "XREADGROUP stream item")),
            })
            .collect::<QueueResult<Vec<_>>>()?,
        _ => return Err(malformed_reply(stream, "XREADGROUP top level")),
    };
    let mut out = Vec::new();
    for entries in per_stream {
        out.extend(parse_entries(entries, stream)?);
    }
    Ok(out)
}

/// `[[id, [field, value, …] | nil], …]`.
fn parse_entries(entries: Value, stream: &str) -> QueueResult<Vec<RawEntry>> {
    let Value::Array(entries) = entries else {
        return match entries {
            Value::Nil => Ok(Vec::new()),
            _ => Err(malformed_reply(stream, "entry list")),
        };
    };
    entries.into_iter().map(|entry| parse_entry(entry, stream)).collect()
}

fn parse_entry(entry: Value, stream: &str) -> QueueResult<RawEntry> {
    let Value::Array(mut parts) = entry else {
        return Err(malformed_reply(stream, "entry"));
    };
    if parts.len() != 2 {
        return Err(malformed_reply(stream, "entry arity"));
    }
    let fields = parts.pop().unwrap_or(Value::Nil);
    let id = parts
        .first()
        .and_then(value_string)
        .ok_or_else(|| malformed_reply(stream, "entry id"))?;
    let pairs: Vec<(Value, Value)> = match fields {
        Value::Nil => return Ok(RawEntry::Trimmed { id }),
        Value::Array(flat) => {
            let mut it = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        _ => {
            return Ok(RawEntry::Malformed {
                id,
                reason: "fields are not a list".to_owned(),
            });
        }
    };
    for (k, v) in pairs {
        if value_string(&k).as_deref() == Some(PAYLOAD_FIELD) {
            return Ok(match v {
                Value::BulkString(payload) => RawEntry::Entry { id, payload },
                Value::SimpleString(s) => RawEntry::Entry {
                    id,
                    payload: s.into_bytes(),
                },
                _ => RawEntry::Malformed {
                    id,
                    reason: "payload is not a string".to_owned(),
                },
            });
        }
    }
    Ok(RawEntry::Malformed {
        id,
        reason: format!("no `{PAYLOAD_FIELD}` field"),
    })
}

/// `XAUTOCLAIM` → `[next-cursor, [entry…], [deleted-id…]]` (the third part since Redis 7).
fn parse_autoclaim_reply(reply: Value, stream: &str) -> QueueResult<(String, Vec<RawEntry>, Vec<String>)> {
    let Value::Array(mut parts) = reply else {
        return Err(malformed_reply(stream, "XAUTOCLAIM top level"));
    };
    if parts.len() < 2 {
        return Err(malformed_reply(stream, "XAUTOCLAIM arity"));
    }
    let deleted = if parts.len() >= 3 {
        match parts.swap_remove(2) {
            Value::Array(ids) => ids.iter().filter_map(value_string).collect(),
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let entries = parse_entries(parts.swap_remove(1), stream)?;
    let next = value_string(&parts[0]).ok_or_else(|| malformed_reply(stream, "XAUTOCLAIM cursor"))?;
    Ok((next, entries, deleted))
}
