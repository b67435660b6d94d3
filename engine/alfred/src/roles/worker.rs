//! The worker (orchestrator) role: `alfred-ingest` → engine → one transaction →
//! `alfred-outbox`.
//!
//! For each ingest entry (one raw webhook body): parse every `entry × change ×
//! message/status`; for each message find the member, run the pure engine, and commit
//! *all* its effects together with the processed-wamid marker in one transaction; after
//! the commit, publish the new outbox ids and only then ack the entry. A crash anywhere
//! means redelivery, and the wamid marker turns the replay into a no-op, so a message
//! is handled once in effect. Status webhooks update the outbound message they refer
//! to and never start a flow.
//!
//! Several workers may run at once: one member's messages are still handled in arrival
//! order (a per-sender sequence number with a bounded hold-back, see [`crate::roles::order`]),
//! and no update is lost (optimistic concurrency, see [`crate::roles::run::run_event_ordered`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alfred_core::event::{Event, EventKind, OutMessage};
use alfred_core::flow::FlowSet;
use alfred_core::roster;
use chrono::{DateTime, Utc};

use crate::config::UnknownSenderPolicy;
use crate::edges::queue::Consumer;
use crate::edges::queue::{Delivery, Queue};
use crate::edges::store::{CommitOutcome, OrderCheck, Store};
use crate::edges::whatsapp::inbound::{self, Inbound, WebhookBatch};
use crate::roles::blocking;
use crate::roles::order;
use crate::roles::run::{publish, run_event_ordered};

/// Meta's "re-engagement message" error: the member's 24-hour window was closed.
const WINDOW_CLOSED: i64 = 131_047;

/// The role's error type (shared with the other roles).
pub use crate::roles::RoleError as WorkerError;

pub use crate::roles::run::READ_PREFIX;

/// What one ingest entry amounted to (for logs, metrics and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The entry was not a webhook body (the caller dead-letters it).
    pub malformed: bool,
    /// Messages run through the engine and committed.
    pub handled: usize,
    /// Messages already processed before (duplicate deliveries).
    pub duplicates: usize,
    /// Messages from senders who are not members.
    pub unknown_senders: usize,
    /// Status updates applied to outbound messages.
    pub statuses: usize,
    /// Outbox ids published to the outbox stream.
    pub published: Vec<i64>,
}

/// Counters exposed for metrics.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Messages handled.
    pub handled: AtomicU64,
    /// Duplicate deliveries skipped.
    pub duplicates: AtomicU64,
    /// Messages from non-members.
    pub unknown_senders: AtomicU64,
    /// Bodies that were not webhooks (dead-lettered).
    pub malformed: AtomicU64,
    /// Messages handled before an earlier message of their sender, after waiting
    /// [`order::HOLD_BACK`] for it.
    pub order_gaps: AtomicU64,
    /// Times a message found its sender's previous one unhandled and waited.
    pub order_waits: AtomicU64,
}

/// The worker's dependencies.
pub struct Worker<Q> {
    /// The database.
    pub store: Store,
    /// The queues.
    pub queue: Q,
    /// The flows to run.
    pub flows: Arc<FlowSet>,
    /// Outbox stream name.
    pub outbox_stream: String,
    /// What to do with non-members.
    pub unknown_senders: UnknownSenderPolicy,
    /// What non-members are told under [`UnknownSenderPolicy::Reply`].
    pub unknown_sender_reply: String,
    /// The clock (the engine takes `now` as an argument; tests pass a fixed one).
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Counters.
    pub counters: Arc<WorkerCounters>,
    /// How long a message waits for its sender's previous one ([`order::HOLD_BACK`]).
    pub hold_back: Duration,
    /// Woken after every commit, so a message held back for its predecessor re-checks
    /// at once when a worker task of this process committed it (share one between the
    /// tasks of a process; across processes the short poll below does it).
    pub progress: Arc<tokio::sync::Notify>,
}

impl<Q: Queue> Worker<Q> {
    /// Processes one ingest entry. `Ok` means it may be acked; a body that is not a
    /// webhook is `Ok` too, with nothing handled (the caller dead-letters it).
    pub async fn process(&self, delivery: &Delivery) -> Result<Processed, WorkerError> {
        let (lasts, body) = order::split(&delivery.payload);
        let batch = match inbound::parse(body) {
            Ok(b) => b,
            Err(e) => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(entry = %delivery.id, error = %e, "ingest entry is not a webhook");
                return Ok(Processed {
                    malformed: true,
                    ..Processed::default()
                });
            }
        };
        self.process_numbered(batch, lasts.as_deref()).await
    }

    /// Processes a parsed webhook batch without arrival numbers (no ordering check).
    pub async fn process_batch(&self, batch: WebhookBatch) -> Result<Processed, WorkerError> {
        self.process_numbered(batch, None).await
    }

    /// Processes a parsed webhook batch whose senders' messages were numbered `lasts`
    /// by the queue (see [`crate::roles::order`]).
    async fn process_numbered(&self, batch: WebhookBatch, lasts: Option<&[i64]>) -> Result<Processed, WorkerError> {
        let mut out = Processed::default();
        for skipped in &batch.skipped {
            tracing::warn!(reason = %skipped, "webhook part skipped");
        }
        let numbers = order::assign(&batch.messages, lasts);
        for (msg, number) in batch.messages.into_iter().zip(numbers) {
            let check = number.map(|(sender, seq)| OrderCheck {
                sender,
                seq,
                force: false,
            });
            self.handle_message(msg, check, &mut out).await?;
        }
        for st in batch.statuses {
            let store = self.store.clone();
            let error = st.errors.first().map(|e| (e.code, e.title.clone()));
            let status = st.status.as_str();
            let wamid = st.wamid.clone();
            let window_closed = error.as_ref().is_some_and(|(code, _)| *code == WINDOW_CLOSED);
            let found = blocking(move || store.update_delivery(&wamid, status, error)).await?;
            if found {
                out.statuses += 1;
            } else {
                tracing::debug!(status, "status for an unknown outbound message");
            }
            if found && window_closed {
                self.window_closed_after_send(st.wamid, &mut out).await?;
            }
        }
        if !out.published.is_empty() {
            let store = self.store.clone();
            let ids = out.published.clone();
            let now = (self.clock)();
            blocking(move || store.mark_published(&ids, now)).await?;
        }
        Ok(out)
    }

    async fn handle_message(
        &self,
        msg: Inbound,
        mut check: Option<OrderCheck>,
        out: &mut Processed,
    ) -> Result<(), WorkerError> {
        // The roster in effect: an admin may have added or removed members over chat. Read
        // with the data the engine runs on (cached per version), which is handed on below.
        let store = self.store.clone();
        let loaded = blocking(move || store.load_data_versioned()).await?;
        let roster = roster::effective(&self.flows.household, &loaded.0);
        let member =
            roster::find_by_address(roster, msg.wa_id.as_deref(), msg.user_id.as_deref()).map(|m| m.name.clone());
        let Some(member) = member else {
            // Never logged with the number: only that it happened.
            self.counters.unknown_senders.fetch_add(1, Ordering::Relaxed);
            out.unknown_senders += 1;
            tracing::info!(policy = ?self.unknown_senders, "message from a non-member");
            let now = (self.clock)();
            let address = match (&msg.wa_id, &msg.user_id) {
                (Some(w), _) if !w.is_empty() => Some(format!("+{w}")),
                (_, Some(u)) if !u.is_empty() => Some(format!("user:{u}")),
                _ => None,
            };
            match (self.unknown_senders, address) {
                (UnknownSenderPolicy::Reply, Some(address)) => {
                    // Committed like any reply (deduplicated by wamid, then published),
                    // so a redelivery does not answer twice.
                    let store = self.store.clone();
                    let reply = OutMessage::Text {
                        body: self.unknown_sender_reply.clone(),
                    };
                    let wamid = msg.wamid;
                    let committed =
                        blocking(move || store.commit_stranger_reply(&wamid, &address, &reply, check.as_ref(), now))
                            .await?;
                    if let CommitOutcome::Committed { outbox_ids } = committed {
                        publish(&self.queue, &self.outbox_stream, None, &outbox_ids).await?;
                        out.published.extend(outbox_ids);
                    }
                }
                (_, _) => {
                    if let Some(check) = check {
                        // Its number is used up, or the sender's next message would wait for it.
                        let store = self.store.clone();
                        blocking(move || store.advance_order(&check, now)).await?;
                    }
                }
            }
            return Ok(());
        };
        let now = (self.clock)();
        let wamid = msg.wamid.clone();
        let member_name = member.clone();
        let event = Arc::new(Event {
            member,
            kind: EventKind::Message(msg.message),
        });
        let deadline = tokio::time::Instant::now() + self.hold_back;
        let mut pause = Duration::from_millis(2);
        // Only the first run uses the data read above; a held rerun waits, so it reloads.
        let mut loaded = Some(loaded);
        let run = loop {
            let (store, flows, event, wamid, check2) = (
                self.store.clone(),
                self.flows.clone(),
                event.clone(),
                wamid.clone(),
                check.clone(),
            );
            let data = loaded.take();
            let run =
                blocking(move || run_event_ordered(&store, &flows, &event, Some(wamid), check2, now, data)).await?;
            if run.outcome != CommitOutcome::Held {
                break run;
            }
            // An earlier message of this sender is still being handled (or retried)
            // elsewhere: wait for it, but not forever.
            self.counters.order_waits.fetch_add(1, Ordering::Relaxed);
            if tokio::time::Instant::now() >= deadline {
                self.counters.order_gaps.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("gave up waiting for an earlier message of the same sender");
                if let Some(c) = check.as_mut() {
                    c.force = true;
                }
            } else {
                let _ = tokio::time::timeout(pause, self.progress.notified()).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        };
        self.progress.notify_waiters();
        match run.outcome {
            CommitOutcome::Committed { outbox_ids } => {
                self.counters.handled.fetch_add(1, Ordering::Relaxed);
                out.handled += 1;
                // The member's message reopened their window: what waited for it goes
                // first, in its original order, then the replies.
                let store = self.store.clone();
                let member = member_name;
                let mut ids = blocking(move || store.wake_deferred(&member, now)).await?;
                ids.extend(outbox_ids);
                publish(&self.queue, &self.outbox_stream, Some(&wamid), &ids).await?;
                out.published.extend(ids);
            }
            // Held and Conflict never come back from the loop above / run_event_ordered.
            CommitOutcome::Duplicate | CommitOutcome::Held | CommitOutcome::Conflict => {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                out.duplicates += 1;
                // Meta's redelivery got a number of its own; a duplicate commits nothing,
                // so use the number up here, or the sender's next message waits for it.
                if let Some(check) = check {
                    let store = self.store.clone();
                    blocking(move || store.advance_order(&check, now)).await?;
                }
            }
        }
        Ok(())
    }

    /// A `failed` status with 131047: the message hit a closed window after all. The
    /// row's fallback goes out as a new row (once), or its policy applies.
    async fn window_closed_after_send(&self, wamid: String, out: &mut Processed) -> Result<(), WorkerError> {
        let store = self.store.clone();
        let now = (self.clock)();
        if let Some(id) = blocking(move || store.window_closed_after_send(&wamid, now)).await? {
            publish(&self.queue, &self.outbox_stream, None, &[id]).await?;
            out.published.push(id);
        }
        Ok(())
    }
}

impl<Q: Queue + Clone> Worker<Q> {
    /// Reads one batch from the ingest consumer and processes it: each entry is acked
    /// after its effects are committed and published; a body that is not a webhook is
    /// dead-lettered; a retryable failure leaves the entry pending, so it is claimed
    /// and retried later (the consumer dead-letters it after too many deliveries).
    /// Returns the number of entries acked or dead-lettered.
    pub async fn run_once(&self, consumer: &mut Consumer<Q>) -> Result<usize, WorkerError> {
        let mut done = 0;
        for d in consumer.next_batch().await? {
            // Decided from this entry's own result: the counters are shared by every
            // worker task of the process.
            match self.process(&d).await {
                Ok(out) if out.malformed => {
                    consumer.dead_letter(&d, "not a WhatsApp webhook body").await?;
                    done += 1;
                }
                Ok(_) => {
                    consumer.ack(&d.id).await?;
                    done += 1;
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(entry = %d.id, error = %e, "ingest entry will be retried");
                }
                Err(e) => {
                    tracing::error!(entry = %d.id, error = %e, "ingest entry failed permanently");
                    consumer.dead_letter(&d, &format!("permanent failure: {e}")).await?;
                    done += 1;
                }
            }
        }
        Ok(done)
    }

    /// Runs until `shutdown` completes. A batch in progress is dropped at shutdown: each
    /// message's commit is one transaction (all or nothing), and what was not acked is
    /// read again on the next start, where the wamid marker skips what was committed.
    /// While the queue or database is down it backs off and reports through `outage`.
    pub async fn run(
        &self,
        mut consumer: Consumer<Q>,
        shutdown: impl std::future::Future<Output = ()>,
        outage: &crate::roles::outage::Outage,
    ) {
        tokio::pin!(shutdown);
        let mut retry = outage.retry();
        loop {
            let wait = tokio::select! {
                () = &mut shutdown => return,
                r = self.run_once(&mut consumer) => match r {
                    Ok(_) => {
                        retry.recovered();
                        continue;
                    }
                    Err(e) => retry.failed(&e),
                },
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use alfred_core::check::{SourceFile, load};
    use chrono::TimeZone as _;

    use super::*;
    use crate::edges::queue::sql::{SqlQueue, SqlQueueConfig};
    use crate::edges::queue::{AnyQueue, EntryId};

    fn flows() -> Arc<FlowSet> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows");
        let read = |name: &str| SourceFile {
            path: name.to_owned(),
            text: std::fs::read_to_string(dir.join(name)).expect("shipped flow"),
        };
        let household = read("household.yaml");
        let files: Vec<SourceFile> = ["groceries.yaml", "help.yaml", "fallback.yaml", "chores.yaml"]
            .map(read)
            .into();
        Arc::new(load(Some(&household), &files).flows.expect("shipped flows check"))
    }

    struct Fixture {
        worker: Worker<AnyQueue>,
        _dir: tempdir::TempDir,
    }

    mod tempdir {
        //! A throwaway directory for a SQLite file, removed on drop.
        pub struct TempDir(pub std::path::PathBuf);
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn fixture() -> Fixture {
        let dir = std::env::temp_dir().join(format!("alfred-worker-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = Store::open(dir.join("alfred.db").to_str().expect("utf-8 path")).expect("sqlite");
        store.migrate().expect("migrations");
        let queue = AnyQueue::from(SqlQueue::new(store.clone(), SqlQueueConfig::default()));
        let worker = Worker {
            store,
            queue,
            flows: flows(),
            outbox_stream: "test-outbox".to_owned(),
            unknown_senders: UnknownSenderPolicy::Ignore,
            unknown_sender_reply: "private".to_owned(),
            clock: Arc::new(|| Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()),
            counters: Arc::default(),
            hold_back: order::HOLD_BACK,
            progress: Arc::default(),
        };
        Fixture {
            worker,
            _dir: tempdir::TempDir(dir),
        }
    }

    fn rand_suffix() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0);
        h.finish()
    }

    /// A webhook body like Meta's text example, from a member's number.
    fn text_body(from: &str, wamid: &str, text: &str) -> Vec<u8> {
        serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
                "contacts": [{ "profile": { "name": "x" }, "wa_id": from }],
                "messages": [{ "from": from, "id": wamid, "timestamp": "1767600000", "type": "text", "text": { "body": text } }]
            } }] }]
        })
        .to_string()
        .into_bytes()
    }

    fn delivery(payload: Vec<u8>) -> Delivery {
        Delivery {
            id: EntryId::new("1"),
            payload,
            deliveries: 1,
        }
    }

    #[tokio::test]
    async fn add_bananas_stores_the_item_and_queues_the_reply() {
        let f = fixture();
        let out = f
            .worker
            .process(&delivery(text_body("31612345001", "wamid.A", "add bananas")))
            .await
            .unwrap();
        assert_eq!(out.handled, 1);
        assert_eq!(out.published.len(), 1);
        let data = f.worker.store.load_data().unwrap();
        let names: Vec<&str> = data.list("shopping").iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["bananas"]);
        let row = f
            .worker
            .store
            .outbox_row(out.published[0])
            .unwrap()
            .expect("outbox row");
        assert_eq!(row.member, "Anna");
        assert_eq!(row.out_message().unwrap().body(), "Added bananas. The list has 1 item.");
        assert!(row.published_at.is_some());
        // The outbox stream got a read receipt for the message, then the row's id.
        let got = f
            .worker
            .queue
            .read("test-outbox", "sender", "t", 10, Duration::ZERO)
            .await
            .unwrap();
        let payloads: Vec<Vec<u8>> = got.into_iter().map(|d| d.payload).collect();
        assert_eq!(
            payloads,
            [b"read:wamid.A".to_vec(), out.published[0].to_string().into_bytes()]
        );
    }

    /// Pushes `body` numbered like the webhook does and reads it back as a delivery.
    async fn numbered(worker: &Worker<AnyQueue>, body: Vec<u8>) -> Delivery {
        let batch = inbound::parse(&body).unwrap();
        let senders = order::sender_counts(&batch.messages);
        worker
            .queue
            .push_numbered("test-ingest", &body, &senders)
            .await
            .unwrap();
        let mut got = worker
            .queue
            .read("test-ingest", "worker", "t", 1, Duration::ZERO)
            .await
            .unwrap();
        got.pop().expect("the pushed entry")
    }

    #[tokio::test]
    async fn a_message_overtaking_its_predecessor_waits_for_it() {
        let mut f = fixture();
        // Long enough that only the predecessor's commit can release the wait.
        f.worker.hold_back = Duration::from_secs(600);
        let worker = Arc::new(f.worker);
        let first = numbered(&worker, text_body("31612345001", "wamid.1", "add milk")).await;
        let second = numbered(&worker, text_body("31612345001", "wamid.2", "list")).await;
        // A second worker picked up "list" first: it must wait for "add milk".
        let overtaker = tokio::spawn({
            let worker = worker.clone();
            async move { worker.process(&second).await.unwrap() }
        });
        // Only once it has found its predecessor missing and started waiting.
        while worker.counters.order_waits.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let out1 = worker.process(&first).await.unwrap();
        let out2 = overtaker.await.unwrap();
        assert_eq!((out1.handled, out2.handled), (1, 1));
        assert!(out1.published[0] < out2.published[0], "replies in arrival order");
        let list_reply = worker.store.outbox_row(out2.published[0]).unwrap().expect("row");
        assert!(
            list_reply.out_message().unwrap().body().contains("milk"),
            "\"list\" ran after \"add milk\": {}",
            list_reply.out_message().unwrap().body()
        );
        assert_eq!(worker.counters.order_gaps.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_predecessor_that_never_comes_delays_by_the_hold_back_only() {
        let f = fixture();
        let _lost = numbered(&f.worker, text_body("31612345001", "wamid.lost", "add tea")).await;
        let next = numbered(&f.worker, text_body("31612345001", "wamid.next", "add milk")).await;
        let started = tokio::time::Instant::now();
        let out = f.worker.process(&next).await.unwrap();
        assert_eq!(out.handled, 1, "handled after the wait rather than stalled");
        assert!(started.elapsed() >= order::HOLD_BACK, "waited the (virtual) hold-back");
        assert_eq!(f.worker.counters.order_gaps.load(Ordering::Relaxed), 1);
        // The sender's following message does not wait again.
        let after = numbered(&f.worker, text_body("31612345001", "wamid.after", "add eggs")).await;
        let before = f.worker.counters.order_gaps.load(Ordering::Relaxed);
        f.worker.process(&after).await.unwrap();
        assert_eq!(f.worker.counters.order_gaps.load(Ordering::Relaxed), before);
    }

    #[tokio::test]
    async fn a_redelivered_message_does_not_hold_back_the_next_one() {
        let f = fixture();
        let body = text_body("31612345001", "wamid.R1", "add tea");
        // Meta delivers the same message twice: the webhook numbers it twice (1 and 2).
        let first = numbered(&f.worker, body.clone()).await;
        let again = numbered(&f.worker, body).await;
        let next = numbered(&f.worker, text_body("31612345001", "wamid.R2", "list")).await;
        assert_eq!(f.worker.process(&first).await.unwrap().handled, 1);
        assert_eq!(f.worker.process(&again).await.unwrap().duplicates, 1);
        assert_eq!(f.worker.process(&next).await.unwrap().handled, 1);
        assert_eq!(
            f.worker.counters.order_waits.load(Ordering::Relaxed),
            0,
            "number 3 found number 2 used up by the duplicate"
        );
    }

    #[tokio::test]
    async fn a_duplicate_delivery_is_handled_once() {
        let f = fixture();
        let body = text_body("31612345001", "wamid.B", "add milk");
        let first = f.worker.process(&delivery(body.clone())).await.unwrap();
        let second = f.worker.process(&delivery(body)).await.unwrap();
        assert_eq!((first.handled, first.duplicates), (1, 0));
        assert_eq!((second.handled, second.duplicates), (0, 1));
        assert!(second.published.is_empty());
        assert_eq!(f.worker.store.load_data().unwrap().list("shopping")[0].qty, 1);
    }

    #[tokio::test]
    async fn under_the_reply_policy_a_stranger_gets_the_fixed_reply_once() {
        let mut f = fixture();
        f.worker.unknown_senders = UnknownSenderPolicy::Reply;
        let body = text_body("15550000000", "wamid.X1", "list");
        let first = f.worker.process(&delivery(body.clone())).await.unwrap();
        assert_eq!((first.unknown_senders, first.handled, first.published.len()), (1, 0, 1));
        let row = f.worker.store.outbox_row(first.published[0]).unwrap().expect("row");
        assert_eq!(row.to_address.as_deref(), Some("+15550000000"));
        assert_eq!(row.member, "", "no member: the stranger is not one");
        assert_eq!(row.out_message().unwrap().body(), "private");
        // Nothing about the household was touched, and a redelivery does not answer twice.
        assert!(f.worker.store.load_data().unwrap().list("shopping").is_empty());
        let again = f.worker.process(&delivery(body)).await.unwrap();
        assert!(again.published.is_empty());
    }

    #[tokio::test]
    async fn unknown_senders_get_nothing_and_change_nothing() {
        let f = fixture();
        let out = f
            .worker
            .process(&delivery(text_body("15550000000", "wamid.C", "list")))
            .await
            .unwrap();
        assert_eq!(
            out,
            Processed {
                unknown_senders: 1,
                ..Processed::default()
            }
        );
        assert!(f.worker.store.unpublished_outbox(Utc::now(), 10).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_conversation_continues_across_deliveries_and_statuses_update_the_outbox() {
        let f = fixture();
        f.worker
            .process(&delivery(text_body("31612345002", "wamid.D1", "add tea")))
            .await
            .unwrap();
        let ask = f
            .worker
            .process(&delivery(text_body("31612345002", "wamid.D2", "clear")))
            .await
            .unwrap();
        assert_eq!(ask.published.len(), 1);
        let yes = f
            .worker
            .process(&delivery(text_body("31612345002", "wamid.D3", "yes, clear it")))
            .await
            .unwrap();
        let row = f.worker.store.outbox_row(yes.published[0]).unwrap().unwrap();
        assert_eq!(row.out_message().unwrap().body(), "Cleared the shopping list (1 item).");
        assert!(f.worker.store.load_data().unwrap().list("shopping").is_empty());

        // The sender records the wamid Meta returned; a status webhook then updates it.
        assert!(f.worker.store.mark_sent(row.id, "wamid.OUT1", Utc::now()).unwrap());
        let status = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{ "changes": [{ "field": "messages", "value": { "statuses": [
                { "id": "wamid.OUT1", "status": "read", "timestamp": "1767600100", "recipient_id": "31612345002" }
            ] } }] }]
        });
        let out = f
            .worker
            .process(&delivery(status.to_string().into_bytes()))
            .await
            .unwrap();
        assert_eq!(out.statuses, 1);
        let row = f.worker.store.outbox_row(row.id).unwrap().unwrap();
        assert_eq!(row.delivery.map(|d| d.as_str()), Some("read"));
    }

    #[tokio::test]
    async fn run_once_acks_processed_entries_and_dead_letters_garbage() {
        use crate::edges::queue::ConsumerConfig;
        let f = fixture();
        let q = f.worker.queue.clone();
        q.push("test-ingest", &text_body("31612345001", "wamid.E1", "add eggs"))
            .await
            .unwrap();
        q.push("test-ingest", b"not json").await.unwrap();
        q.push("test-ingest", &text_body("31612345001", "wamid.E2", "add flour"))
            .await
            .unwrap();
        let mut cfg = ConsumerConfig::new("test-ingest", "worker", "w1");
        cfg.block = Duration::ZERO;
        let mut consumer = Consumer::new(q.clone(), cfg);
        assert_eq!(f.worker.run_once(&mut consumer).await.unwrap(), 3);
        let names: Vec<String> = f
            .worker
            .store
            .load_data()
            .unwrap()
            .list("shopping")
            .iter()
            .map(|i| i.name.clone())
            .collect();
        assert_eq!(names, ["eggs", "flour"]);
        // Nothing left to deliver: all three were acked or dead-lettered.
        assert_eq!(f.worker.run_once(&mut consumer).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_webhook_is_counted_not_fatal() {
        let f = fixture();
        let out = f.worker.process(&delivery(b"{\"hello\":1}".to_vec())).await.unwrap();
        assert_eq!(
            out,
            Processed {
                malformed: true,
                ..Processed::default()
            }
        );
        assert_eq!(f.worker.counters.malformed.load(Ordering::Relaxed), 1);
    }
}
