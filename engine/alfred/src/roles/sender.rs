//! The sender role: `alfred-outbox` → WhatsApp Graph API.
//!
//! The outbox stream carries row ids; the row in the database is the truth. A row is
//! sent only while it is `pending` or `failed` (the store's updates are conditional on
//! that), so a redelivered id never produces a second successful send in the store's
//! records. One caveat no client can remove: if Meta accepts a send and the process dies
//! before `mark_sent`, the retry sends again (Meta has no idempotency key).
//!
//! Failures are classified by Meta's error code (`whatsapp::errors`): retryable ones get
//! exponential backoff with jitter and come back through the retry sweep; permanent ones
//! are dead with the reason; 190 (token) is a loud operator error and pauses sending
//! instead of failing every message.
//!
//! The recipient's address is on the row: resolved from the roster in effect when the
//! row was committed, and re-resolved for open rows when an admin changes the roster
//! (a removed member's open rows are dead then), so sending reads no roster.
//!
//! The 24-hour window is applied at send time, the moment that matters
//! ([`alfred_core::window::decide`] with the member's last inbound time, read with the
//! claim): outside it a free-form row is replaced by its fallback template, parked
//! until the member writes (`defer`), or dropped. Meta's 131047 (window closed) leads to
//! the same decision, taken as if the window were closed.
//!
//! Before the Graph call a row is claimed (a lease, and only on the member's oldest
//! unsent row) and paced (Meta's pair rate and the global rate): see [`crate::roles::pacing`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alfred_core::flow::FlowSet;
use alfred_core::roster;
use alfred_core::window::WindowDecision;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::edges::graph::{Outbound, backoff};
use crate::edges::queue::{Consumer, Queue};
use crate::edges::store::{Claim, Claimed, NOT_A_MEMBER, OutboxRow, Store, address_of};
use crate::edges::whatsapp::errors::SendFailure;
use crate::edges::whatsapp::outbound::Recipient;
use crate::roles::blocking;
use crate::roles::log_limit::{LogLimit, Verdict};
use crate::roles::outage::Outage;
use crate::roles::pacing::Pacing;

/// Attempts before a retryable failure becomes permanent.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long sending pauses after an authentication error (190).
pub const AUTH_PAUSE: Duration = Duration::from_secs(300);
/// How long a stopping sender lets the delivery in hand finish: a Graph call and its
/// `mark_sent`, well inside Docker's default 10 s between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The role's error type (shared with the other roles).
pub use crate::roles::RoleError as SenderError;

/// What happened to one outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Accepted by WhatsApp, with its wamid.
    Sent(String),
    /// Will be retried at the given time.
    Retry(DateTime<Utc>),
    /// Meta reported the window closed and the row has no way around it (dead, 131047).
    WindowClosed,
    /// The window is closed: parked until the member writes again.
    Deferred,
    /// The window is closed and the policy is `drop`: dead with that reason.
    Dropped,
    /// Failed for good; the reason is on the row.
    Dead,
    /// The token is invalid: an operator must act. The row is retried later.
    AuthFailed,
    /// Nothing to do: already sent or dead, or no such row.
    Skipped,
    /// Not sendable yet (an older message to the member is unsent, another sender holds
    /// it, or pacing asks for a long wait): the retry sweep brings it back at this time.
    Held(DateTime<Utc>),
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct SenderCounters {
    /// Accepted sends.
    pub sent: AtomicU64,
    /// Retries scheduled.
    pub retried: AtomicU64,
    /// Dead letters (including window-closed).
    pub dead: AtomicU64,
    /// Window-closed errors (131047) in send responses.
    pub window_closed: AtomicU64,
    /// Fallback templates sent because the window was closed.
    pub window_template: AtomicU64,
    /// Rows parked until their member writes.
    pub window_deferred: AtomicU64,
    /// Rows dropped by an `outside_window: drop` policy.
    pub window_dropped: AtomicU64,
    /// Authentication failures.
    pub auth_failed: AtomicU64,
    /// Retry warnings, one per error code and minute ([`LogLimit`]).
    pub retry_log: LogLimit,
}

/// The sender's dependencies.
pub struct Sender<Q> {
    /// The database.
    pub store: Store,
    /// The queues.
    pub queue: Q,
    /// Where messages go (Graph API or console).
    pub outbound: Arc<Outbound>,
    /// The flows (for the household's member addresses).
    pub flows: Arc<FlowSet>,
    /// Outbox stream name (the retry sweep re-publishes to it).
    pub outbox_stream: String,
    /// The clock.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Counters.
    pub counters: Arc<SenderCounters>,
    /// Claims and rate limits (shared by this process's sender tasks).
    pub pacing: Arc<Pacing>,
}

impl<Q: Queue + Clone> Sender<Q> {
    /// Sends one outbox row.
    pub async fn deliver(&self, id: i64) -> Result<SendResult, SenderError> {
        let Claimed { row, last_inbound, tat } = match self.claim(id, (self.clock)()).await? {
            Claim::Owned(claimed) => *claimed,
            Claim::Done => return Ok(SendResult::Skipped),
            Claim::Held(at) => return Ok(SendResult::Held(at)),
        };
        let Some(recipient) = self.recipient_of(&row).await? else {
            return self.dead(id, None, NOT_A_MEMBER).await;
        };
        let message = match row.out_message() {
            Ok(m) => m,
            Err(e) => return self.dead(id, None, &format!("undecodable outbox message: {e}")).await,
        };
        let plan = match row.window_plan() {
            Ok(p) => p,
            Err(e) => return self.dead(id, None, &format!("undecodable window plan: {e}")).await,
        };
        if let Some(held) = self.pace(&row, tat).await? {
            return Ok(held);
        }
        let now = (self.clock)();
        // A reply to a non-member answers the message they just sent: inside their window.
        let decision = if row.is_stranger() {
            WindowDecision::Send
        } else {
            plan.decide(&message, last_inbound, now)
        };
        if let Some(result) = self.outside_window(id, row.attempts, &recipient, decision, now).await? {
            return Ok(result);
        }
        match self.outbound.send(&recipient, &message).await {
            Ok(sent) => {
                let store = self.store.clone();
                let wamid = sent.wamid.clone();
                blocking(move || store.mark_sent(id, &wamid, now)).await?;
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                Ok(SendResult::Sent(sent.wamid))
            }
            Err(SendFailure::Retry {
                code,
                min_backoff,
                reason,
            }) => {
                if row.attempts + 1 >= MAX_ATTEMPTS {
                    return self
                        .dead(
                            id,
                            Some(code),
                            &format!("gave up after {MAX_ATTEMPTS} attempts: {reason}"),
                        )
                        .await;
                }
                let wait = self.rate_limit_backoff(&row, code, min_backoff, now).await?;
                let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60));
                self.warn_retry(id, code, row.attempts + 1, at);
                let store = self.store.clone();
                blocking(move || store.mark_retry(id, Some(code), &reason, at)).await?;
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                Ok(SendResult::Retry(at))
            }
            Err(SendFailure::WindowClosed { reason }) => {
                self.counters.window_closed.fetch_add(1, Ordering::Relaxed);
                // Meta knows best: the window is closed, whatever our records say.
                let decision = plan.decide(&message, None, now);
                if let Some(result) = self.outside_window(id, row.attempts, &recipient, decision, now).await? {
                    return Ok(result);
                }
                self.dead(id, Some(131_047), &format!("window closed: {reason}"))
                    .await?;
                Ok(SendResult::WindowClosed)
            }
            Err(SendFailure::Permanent { code, reason }) => self.dead(id, Some(code), &reason).await,
            Err(SendFailure::Auth { code, reason }) => {
                // Loud, once per failure, and no retry storm: the row waits out the pause.
                tracing::error!(code, "WhatsApp rejected the access token; sending is paused: {reason}");
                self.counters.auth_failed.fetch_add(1, Ordering::Relaxed);
                let at = now + chrono::Duration::from_std(AUTH_PAUSE).unwrap_or(chrono::Duration::minutes(5));
                let store = self.store.clone();
                blocking(move || store.mark_retry(id, Some(code), &reason, at)).await?;
                Ok(SendResult::AuthFailed)
            }
        }
    }

    /// Where a row goes: the address it was committed with (see [`crate::edges::store::address_of`]).
    /// A row stored before addresses were has none: its member is looked up in the roster
    /// in effect (the stored one, else household.yaml's). `None`: no longer a member.
    async fn recipient_of(&self, row: &OutboxRow) -> Result<Option<Recipient>, SenderError> {
        let address = match &row.to_address {
            Some(address) => Some(address.clone()),
            None => {
                let store = self.store.clone();
                let stored = blocking(move || store.members_versioned()).await?;
                let members = stored.as_deref().unwrap_or(&self.flows.household.members);
                roster::find(members, &row.member).and_then(address_of)
            }
        };
        Ok(address.map(|a| match a.strip_prefix("user:") {
            Some(user) => Recipient::UserId(user.to_owned()),
            None => Recipient::Phone(a),
        }))
    }

    /// Carries out a 24-hour window decision for row `id`; `None` means "send the row as
    /// written". Kept apart from `deliver` so the window logic reads in one place.
    async fn outside_window(
        &self,
        id: i64,
        attempts: i32,
        recipient: &Recipient,
        decision: WindowDecision,
        now: DateTime<Utc>,
    ) -> Result<Option<SendResult>, SenderError> {
        let store = self.store.clone();
        match decision {
            WindowDecision::Send => Ok(None),
            WindowDecision::Defer => {
                tracing::info!(outbox.id = id, "window closed: deferred until the member writes");
                blocking(move || store.mark_deferred(id, now)).await?;
                self.counters.window_deferred.fetch_add(1, Ordering::Relaxed);
                Ok(Some(SendResult::Deferred))
            }
            WindowDecision::Drop => {
                self.counters.window_dropped.fetch_add(1, Ordering::Relaxed);
                self.dead(
                    id,
                    Some(131_047),
                    "window closed; dropped by the `outside_window: drop` policy",
                )
                .await?;
                blocking(move || store.mark_window_action(id, "dropped")).await?;
                Ok(Some(SendResult::Dropped))
            }
            WindowDecision::SendTemplate(template) => {
                tracing::info!(outbox.id = id, "window closed: sending the fallback template");
                match self.outbound.send(recipient, &template).await {
                    Ok(sent) => {
                        let wamid = sent.wamid.clone();
                        // The row keeps its identity: status webhooks match the template's wamid.
                        blocking(move || {
                            store.mark_sent(id, &wamid, now)?;
                            store.mark_window_action(id, "template")
                        })
                        .await?;
                        self.counters.window_template.fetch_add(1, Ordering::Relaxed);
                        self.counters.sent.fetch_add(1, Ordering::Relaxed);
                        Ok(Some(SendResult::Sent(sent.wamid)))
                    }
                    Err(SendFailure::Retry {
                        code,
                        min_backoff,
                        reason,
                    }) if attempts + 1 < MAX_ATTEMPTS => {
                        // The next attempt decides again (the member may have written by then).
                        let wait = backoff(u32::try_from(attempts).unwrap_or(0), min_backoff, id.unsigned_abs());
                        let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60));
                        self.warn_retry(id, code, attempts + 1, at);
                        blocking(move || store.mark_retry(id, Some(code), &reason, at)).await?;
                        self.counters.retried.fetch_add(1, Ordering::Relaxed);
                        Ok(Some(SendResult::Retry(at)))
                    }
                    Err(SendFailure::Auth { code, reason }) => {
                        tracing::error!(code, "WhatsApp rejected the access token; sending is paused: {reason}");
                        self.counters.auth_failed.fetch_add(1, Ordering::Relaxed);
                        let at = now + chrono::Duration::from_std(AUTH_PAUSE).unwrap_or(chrono::Duration::minutes(5));
                        blocking(move || store.mark_retry(id, Some(code), &reason, at)).await?;
                        Ok(Some(SendResult::AuthFailed))
                    }
                    Err(SendFailure::Retry { code, reason, .. } | SendFailure::Permanent { code, reason }) => Ok(Some(
                        self.dead(id, Some(code), &format!("fallback template failed: {reason}"))
                            .await?,
                    )),
                    Err(SendFailure::WindowClosed { reason }) => Ok(Some(
                        self.dead(id, Some(131_047), &format!("fallback template failed: {reason}"))
                            .await?,
                    )),
                }
            }
        }
    }

    /// A retryable send failure at WARN: the code, the outbox id and the attempt, never
    /// the recipient or the text (Meta's reason is on the row, `outbox.last_error`). One
    /// line per code per minute; the next says how many were suppressed.
    fn warn_retry(&self, id: i64, code: i64, attempt: i32, at: DateTime<Utc>) {
        let key = format!("send-retry:{code}");
        if let Verdict::Log { suppressed } = self.counters.retry_log.check(&key, std::time::Instant::now()) {
            tracing::warn!(
                outbox.id = id,
                code,
                attempt,
                retry_at = %at,
                suppressed,
                "WhatsApp send failed, will retry (code 0: no answer or a connection error; the reason is in outbox.last_error)"
            );
        }
    }

    async fn dead(&self, id: i64, code: Option<i64>, reason: &str) -> Result<SendResult, SenderError> {
        tracing::warn!(outbox.id = id, code, "outbound message dead-lettered: {reason}");
        let store = self.store.clone();
        let reason = reason.to_owned();
        blocking(move || store.mark_dead(id, code, &reason)).await?;
        self.counters.dead.fetch_add(1, Ordering::Relaxed);
        Ok(SendResult::Dead)
    }

    /// Re-publishes rows whose retry time has come, and committed rows that were never
    /// published (a worker that died between commit and publish). Returns how many.
    pub async fn sweep(&self, unpublished_older_than: Duration) -> Result<usize, SenderError> {
        let now = (self.clock)();
        let store = self.store.clone();
        let due = blocking(move || store.retry_due(now, 100)).await?;
        let store = self.store.clone();
        let cutoff = now - chrono::Duration::from_std(unpublished_older_than).unwrap_or_default();
        let stale = blocking(move || store.unpublished_outbox(cutoff, 100)).await?;
        let ids: Vec<i64> = due.iter().chain(&stale).map(|r| r.id).collect();
        for id in &ids {
            self.queue.push(&self.outbox_stream, id.to_string().as_bytes()).await?;
        }
        if !stale.is_empty() {
            let store = self.store.clone();
            let stale_ids: Vec<i64> = stale.iter().map(|r| r.id).collect();
            blocking(move || store.mark_published(&stale_ids, now)).await?;
        }
        Ok(ids.len())
    }

    /// Reads one batch and sends it, in order (so one member's messages go out in
    /// order). Entries are acked once their row is recorded as sent, retried or dead.
    /// Returns whether an authentication error asks the caller to pause.
    pub async fn run_once(&self, consumer: &mut Consumer<Q>) -> Result<bool, SenderError> {
        self.run_batch(consumer, None).await
    }

    /// [`run_once`](Self::run_once) that starts no further delivery once `stop` is
    /// cancelled (the entries left unacked are re-read by this consumer after a restart).
    async fn run_batch(
        &self,
        consumer: &mut Consumer<Q>,
        stop: Option<&CancellationToken>,
    ) -> Result<bool, SenderError> {
        for d in consumer.next_batch().await? {
            if stop.is_some_and(CancellationToken::is_cancelled) {
                break;
            }
            if let Some(wamid) = d.payload.strip_prefix(crate::roles::run::READ_PREFIX.as_bytes()) {
                // A read receipt is a courtesy: a failure is logged, never retried.
                let wamid = String::from_utf8_lossy(wamid).into_owned();
                if let Err(e) = self.outbound.mark_read(&wamid, false).await {
                    tracing::debug!(error = ?e, "mark as read failed");
                }
                consumer.ack(&d.id).await?;
                continue;
            }
            let Some(id) = std::str::from_utf8(&d.payload)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
            else {
                consumer.dead_letter(&d, "outbox entry is not a row id").await?;
                continue;
            };
            let result = self.deliver(id).await?;
            if matches!(
                result,
                SendResult::Sent(_) | SendResult::Dead | SendResult::WindowClosed
            ) {
                self.hand_off(id).await?;
            }
            consumer.ack(&d.id).await?;
            if result == SendResult::AuthFailed {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The send loop of one sender task, until `stop` is cancelled. A stop never cuts a
    /// delivery short: the one in hand may finish (sent and marked) for up to
    /// [`STOP_GRACE`], and no new one starts. Whatever is still claimed after that is
    /// released by [`Sender::release_claims`], which the caller runs once every task ended.
    pub async fn run(&self, mut consumer: Consumer<Q>, stop: CancellationToken, outage: &Outage) {
        let mut retry = outage.retry();
        while !stop.is_cancelled() {
            let batch = self.run_batch(&mut consumer, Some(&stop));
            let grace = async {
                stop.cancelled().await;
                tokio::time::sleep(STOP_GRACE).await;
            };
            let result = tokio::select! {
                r = batch => r,
                () = grace => {
                    tracing::warn!(grace = ?STOP_GRACE, "sender stopped with a delivery still in flight; its claim is released");
                    return;
                }
            };
            let wait = match result {
                Ok(auth_failed) => {
                    retry.recovered();
                    if auth_failed { AUTH_PAUSE } else { Duration::ZERO }
                }
                Err(e) => retry.failed(&e),
            };
            if !wait.is_zero() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// Ends the leases this sender still holds (see [`Store::release_claims`]), so a
    /// restart does not wait out the lease of a row whose send was cut short.
    pub async fn release_claims(&self) {
        let store = self.store.clone();
        let by = self.pacing.instance().to_owned();
        match blocking(move || store.release_claims(&by)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "sender stopped: unfinished claims released"),
            Err(e) => {
                tracing::warn!(error = %e, "sender stopped: its claims could not be released; they expire with their lease")
            }
        }
    }
}

mod pace;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use alfred_core::check::{SourceFile, load};
    use alfred_core::event::{Effect, OutMessage, Outbound as EngineOutbound};
    use chrono::TimeZone as _;

    use super::*;
    use crate::edges::graph::GraphClient;
    use crate::edges::queue::sql::{SqlQueue, SqlQueueConfig};
    use crate::edges::queue::{AnyQueue, ConsumerConfig};
    use crate::edges::store::{CommitOutcome, EventCommit, OutboxStatus};
    use alfred_fake_graph as fake_graph;

    struct Fixture {
        sender: Sender<AnyQueue>,
        fake: fake_graph::FakeGraph,
        dir: PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
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

    async fn fixture() -> Fixture {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(1);
        let dir = std::env::temp_dir().join(format!("alfred-sender-{}-{}", std::process::id(), h.finish()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(dir.join("a.db").to_str().unwrap()).unwrap();
        store.migrate().unwrap();
        let fake = fake_graph::start().await;
        let graph = GraphClient::new(&fake.base_url(), "v25.0", "106540352242922", fake_graph::TOKEN).unwrap();
        let sender = Sender {
            queue: AnyQueue::from(SqlQueue::new(store.clone(), SqlQueueConfig::default())),
            store,
            outbound: Arc::new(Outbound::Graph(graph)),
            flows: flows(),
            outbox_stream: "t-outbox".into(),
            clock: Arc::new(|| Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()),
            counters: Arc::default(),
            pacing: Arc::new(Pacing::new("s1", crate::config::DEFAULT_SEND_RATE)),
        };
        Fixture { sender, fake, dir }
    }

    fn queue_reply(f: &Fixture, wamid: &str, to: &str, body: &str) -> i64 {
        let commit = EventCommit {
            fired: None,
            inbound_wamid: Some(wamid.into()),
            member: to.into(),
            state: Default::default(),
            effects: vec![Effect::Send(EngineOutbound {
                to: to.into(),
                message: OutMessage::Text { body: body.into() },
                fallback: None,
                // A reply that finds the window closed (131047) is dropped, not parked.
                outside_window: alfred_core::window::WindowPolicy::Drop,
            })],
            now: Utc::now(),
            ..Default::default()
        };
        match f.sender.store.commit_event(&commit).unwrap() {
            CommitOutcome::Committed { outbox_ids } => outbox_ids[0],
            other => panic!("not committed: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_reply_reaches_the_graph_api_once_in_e164() {
        let f = fixture().await;
        let id = queue_reply(&f, "w1", "Anna", "hello");
        let r = f.sender.deliver(id).await.unwrap();
        let SendResult::Sent(wamid) = r else { panic!("{r:?}") };
        // Delivering the same id again (a redelivered queue entry) sends nothing.
        assert_eq!(f.sender.deliver(id).await.unwrap(), SendResult::Skipped);
        let reqs = f.fake.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].body["to"], serde_json::json!("+31612345001"));
        assert_eq!(reqs[0].body["text"]["body"], serde_json::json!("hello"));
        let row = f.sender.store.outbox_row(id).unwrap().unwrap();
        assert_eq!(row.wamid.as_deref(), Some(wamid.as_str()));
    }

    #[tokio::test]
    async fn rate_limited_then_ok_is_delivered_once() {
        let f = fixture().await;
        f.fake.fail_next(
            1,
            429,
            fake_graph::error_body(
                130_429,
                "(#130429) Rate limit hit",
                "Cloud API message throughput has been reached.",
            ),
        );
        let id = queue_reply(&f, "w2", "Ben", "hi");
        let SendResult::Retry(at) = f.sender.deliver(id).await.unwrap() else {
            panic!("expected a retry")
        };
        assert!(at > (f.sender.clock)());
        // The sweep re-publishes the row once its time has come.
        let later = at;
        let sweeper = Sender {
            clock: Arc::new(move || later),
            ..f.sender.clone_for_test()
        };
        assert_eq!(sweeper.sweep(Duration::from_secs(3600)).await.unwrap(), 1);
        let mut consumer = Consumer::new(f.sender.queue.clone(), {
            let mut c = ConsumerConfig::new("t-outbox", "sender", "s1");
            c.block = Duration::ZERO;
            c
        });
        assert!(!sweeper.run_once(&mut consumer).await.unwrap());
        let row = f.sender.store.outbox_row(id).unwrap().unwrap();
        assert_eq!(row.status, OutboxStatus::Sent);
        assert_eq!(f.fake.requests().len(), 2, "one refused, one accepted");
    }

    #[tokio::test]
    async fn window_closed_permanent_and_auth_failures_are_recorded_distinctly() {
        let f = fixture().await;
        f.fake.fail_next(
            1,
            400,
            fake_graph::error_body(131_047, "(#131047) Re-engagement message", "more than 24 hours"),
        );
        let id = queue_reply(&f, "w3", "Anna", "late");
        assert_eq!(f.sender.deliver(id).await.unwrap(), SendResult::Dropped);
        let row = f.sender.store.outbox_row(id).unwrap().unwrap();
        assert_eq!((row.status, row.error_code), (OutboxStatus::Dead, Some(131_047)));
        assert_eq!(f.sender.counters.window_closed.load(Ordering::Relaxed), 1);

        f.fake.fail_next(
            1,
            400,
            fake_graph::error_body(131_026, "(#131026) Message undeliverable", ""),
        );
        let id = queue_reply(&f, "w4", "Anna", "x");
        assert_eq!(f.sender.deliver(id).await.unwrap(), SendResult::Dead);

        f.fake
            .fail_next(1, 401, fake_graph::error_body(190, "Error validating access token", ""));
        let id = queue_reply(&f, "w5", "Anna", "y");
        assert_eq!(f.sender.deliver(id).await.unwrap(), SendResult::AuthFailed);
        let row = f.sender.store.outbox_row(id).unwrap().unwrap();
        assert_eq!(row.status, OutboxStatus::Failed, "kept for after the pause, not dead");
        assert_eq!(f.sender.counters.auth_failed.load(Ordering::Relaxed), 1);
    }

    /// Log lines written while a test runs (JSON, one per line).
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Issue 11, defect 7: a retry used to log nothing (the reason was only in
    /// `outbox.last_error`). Now it is a WARN with the code and the outbox id, never the
    /// recipient or the text, and the same failure again within the minute is suppressed
    /// (and counted on the next line).
    #[tokio::test(flavor = "current_thread")]
    async fn a_retry_is_one_warning_with_code_and_id_but_no_phone_or_text() {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(logs.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let f = fixture().await;
        f.fake.fail_next(
            2,
            503,
            fake_graph::error_body(2, "(#2) Service temporarily unavailable", ""),
        );
        let first = queue_reply(&f, "w-log1", "Anna", "the secret shopping list");
        let second = queue_reply(&f, "w-log2", "Ben", "the secret shopping list");
        for id in [first, second] {
            let r = f.sender.deliver(id).await.unwrap();
            assert!(matches!(r, SendResult::Retry(_)), "{r:?}");
        }
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let ours: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["target"].as_str().is_some_and(|t| t.starts_with("alfred")))
            .collect();
        let retries: Vec<&serde_json::Value> = ours
            .iter()
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("will retry"))
            })
            .collect();
        assert_eq!(retries.len(), 1, "the second identical failure is suppressed: {text}");
        assert_eq!(retries[0]["level"], "WARN");
        assert_eq!(retries[0]["fields"]["outbox.id"], first);
        assert_eq!(retries[0]["fields"]["code"], 2);
        assert_eq!(
            f.sender
                .counters
                .retry_log
                .check("send-retry:2", std::time::Instant::now()),
            Verdict::Suppress
        );
        for line in &ours {
            let line = line.to_string();
            assert!(!line.contains("3161234500"), "a phone number in the log: {line}");
            assert!(!line.contains("secret"), "a message text in the log: {line}");
        }
    }

    impl Sender<AnyQueue> {
        fn clone_for_test(&self) -> Self {
            Sender {
                store: self.store.clone(),
                queue: self.queue.clone(),
                outbound: self.outbound.clone(),
                flows: self.flows.clone(),
                outbox_stream: self.outbox_stream.clone(),
                clock: self.clock.clone(),
                counters: self.counters.clone(),
                pacing: self.pacing.clone(),
            }
        }
    }
}
