//! [`Consumer`]: the receive side of a role (worker, sender) on one stream, with retries,
//! orphan recovery and dead-lettering built in.
//!
//! A role loops `next_batch` → handle each delivery → `ack` (or `dead_letter` on a
//! permanent failure, or *nothing* on a retryable one: the entry stays pending and comes back
//! through `claim_stale` after `min_idle`, which doubles as the retry back-off).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Delivery, EntryId, Queue, QueueResult};

/// Settings of a [`Consumer`].
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The stream to consume (e.g. `alfred-ingest`).
    pub stream: String,
    /// The consumer group: one per role (`worker`, `sender`), shared by all its replicas.
    pub group: String,
    /// This consumer's name: **stable per replica** (the hostname or `INSTANCE`, not a pid),
    /// so that after a restart it gets back the entries it held.
    pub consumer: String,
    /// Most entries returned by one [`Consumer::next_batch`].
    pub batch: usize,
    /// How long a read waits for new entries before returning an empty batch; bounds how
    /// late a shutdown request is noticed.
    pub block: Duration,
    /// How long an entry must sit unacked before `claim_stale` takes it over. Must exceed
    /// the longest legitimate handling time, or live work is stolen and done twice.
    pub min_idle: Duration,
    /// How often to look for stale entries.
    pub claim_every: Duration,
    /// Deliveries allowed before an entry is dead-lettered instead of handled. With 3, an
    /// always-failing entry is handled three times and dead-lettered on its fourth delivery.
    pub max_deliveries: u64,
}

impl ConsumerConfig {
    /// Defaults for a role: batches of 100, 2 s blocking reads, entries idle for 60 s are
    /// taken over, the claim sweep runs every 30 s, 5 deliveries at most.
    pub fn new(stream: impl Into<String>, group: impl Into<String>, consumer: impl Into<String>) -> Self {
        ConsumerConfig {
            stream: stream.into(),
            group: group.into(),
            consumer: consumer.into(),
            batch: 100,
            block: Duration::from_secs(2),
            min_idle: Duration::from_secs(60),
            claim_every: Duration::from_secs(30),
            max_deliveries: 5,
        }
    }
}

/// One consumer of one stream.
///
/// A role loops [`next_batch`](Self::next_batch) → handle each delivery → [`ack`](Self::ack)
/// (or [`dead_letter`](Self::dead_letter) on a permanent failure, or nothing on a retryable
/// one: the entry comes back through the claim sweep once idle for `min_idle`).
///
/// Cancellation: dropping a `next_batch` future (e.g. in a `tokio::select!` with a shutdown
/// token) loses nothing. Entries the server handed out to a dropped read are pending for this
/// consumer and come back on the next start (own pending first) or via `claim_stale`.
#[derive(Debug)]
pub struct Consumer<Q> {
    queue: Q,
    config: ConsumerConfig,
    /// When the last claim sweep ran; `None` before the first batch, so a starting consumer
    /// sweeps at once and picks up what crashed replicas left behind.
    last_claim: Option<Instant>,
    /// Counts every entry this consumer dead-letters (for metrics), if set.
    dead_letters: Option<Arc<AtomicU64>>,
}

impl<Q: Queue> Consumer<Q> {
    /// A consumer of `config.stream` through `queue`.
    pub fn new(queue: Q, config: ConsumerConfig) -> Self {
        Consumer {
            queue,
            config,
            last_claim: None,
            dead_letters: None,
        }
    }

    /// Counts every dead-lettered entry (both the over-delivered and the explicitly
    /// dead-lettered ones) in `counter`, which the metrics endpoint reads.
    pub fn count_dead_letters(mut self, counter: Arc<AtomicU64>) -> Self {
        self.dead_letters = Some(counter);
        self
    }

    fn counted_dead_letter(&self) {
        if let Some(c) = &self.dead_letters {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// This consumer's settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The next deliveries to handle (possibly none, after waiting up to `block`).
    ///
    /// Order of sources: stale entries (when a sweep is due), else this consumer's own
    /// pending entries (after a restart), else new entries. Deliveries past
    /// `max_deliveries` are dead-lettered here and not returned.
    pub async fn next_batch(&mut self) -> QueueResult<Vec<Delivery>> {
        let c = &self.config;
        let mut batch = Vec::new();
        let sweep_due = self.last_claim.is_none_or(|at| at.elapsed() >= c.claim_every);
        if sweep_due {
            // Stamp before the call: a failing sweep should not be retried on every batch.
            self.last_claim = Some(Instant::now());
            batch = self
                .queue
                .claim_stale(&c.stream, &c.group, &c.consumer, c.min_idle, c.batch)
                .await?;
        }
        if batch.is_empty() {
            batch = self
                .queue
                .read(&c.stream, &c.group, &c.consumer, c.batch, c.block)
                .await?;
        }

        let mut ready = Vec::with_capacity(batch.len());
        for delivery in batch {
            if delivery.deliveries > c.max_deliveries {
                let reason = format!(
                    "delivered {} times, more than max_deliveries = {}",
                    delivery.deliveries, c.max_deliveries
                );
                tracing::warn!(
                    queue.stream = %c.stream,
                    queue.group = %c.group,
                    queue.entry_id = %delivery.id,
                    queue.deliveries = delivery.deliveries,
                    "Dead-lettering an entry that keeps failing"
                );
                self.queue.dead_letter(&c.stream, &c.group, &delivery, &reason).await?;
                self.counted_dead_letter();
            } else {
                ready.push(delivery);
            }
        }
        Ok(ready)
    }

    /// Acks a handled delivery.
    pub async fn ack(&self, id: &EntryId) -> QueueResult<bool> {
        self.queue.ack(&self.config.stream, &self.config.group, id).await
    }

    /// Dead-letters a delivery that failed permanently (keep personal data out of `reason`).
    pub async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> QueueResult<()> {
        self.queue
            .dead_letter(&self.config.stream, &self.config.group, delivery, reason)
            .await?;
        self.counted_dead_letter();
        Ok(())
    }
}
