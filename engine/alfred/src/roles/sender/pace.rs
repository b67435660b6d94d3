//! The sender's side of pacing: claiming a row before it is sent, waiting for the pair
//! and global rates ([`crate::roles::pacing`] holds the rates themselves), and backing
//! off when Meta says 131056 or 130429. See `docs/time.md`, Pacing.

use crate::edges::graph::backoff;
use crate::edges::queue::Queue;
use crate::edges::store::{Claim, OutboxRow};
use crate::roles::blocking;
use chrono::{DateTime, Utc};
use std::time::Duration;

use super::{SendResult, Sender, SenderError};
use crate::roles::pacing::{self, CLAIM_LEASE, MAX_INLINE_WAIT, PAIR_RATE_HIT, THROUGHPUT_HIT, pair_backoff};

impl<Q: Queue + Clone> Sender<Q> {
    /// Claims row `id` for this sender. A held row is deferred (the sweep brings it back
    /// when it may be sendable), so acking its queue entry loses nothing.
    pub(crate) async fn claim(&self, id: i64, now: DateTime<Utc>) -> Result<Claim, SenderError> {
        let store = self.store.clone();
        let by = self.pacing.instance().to_owned();
        let claim = blocking(move || store.claim_outbox(id, &by, now, pacing::chrono(CLAIM_LEASE))).await?;
        if let Claim::Held(at) = claim {
            tracing::debug!(
                outbox.id = id,
                "outbound message held back (order, claim or retry time)"
            );
            let store = self.store.clone();
            blocking(move || store.defer_outbox(id, at, None)).await?;
        }
        Ok(claim)
    }

    /// Row `id` is done: publishes the member's next message if it was held back behind
    /// it (the sweep would bring it too, a few seconds later).
    pub(crate) async fn hand_off(&self, id: i64) -> Result<(), SenderError> {
        let store = self.store.clone();
        let now = (self.clock)();
        if let Some(next) = blocking(move || store.release_successor(id, now)).await? {
            self.queue
                .push(&self.outbox_stream, next.to_string().as_bytes())
                .await?;
        }
        Ok(())
    }

    /// Waits for the row's pair-rate and global slot, reserving both; `tat` is the
    /// member's pair-rate state read with the claim. `Some` if the wait is too long to
    /// sit out: the row was handed back to the sweep. Nothing at all with pacing off.
    pub(crate) async fn pace(
        &self,
        row: &OutboxRow,
        tat: Option<DateTime<Utc>>,
    ) -> Result<Option<SendResult>, SenderError> {
        if !self.pacing.enabled() {
            return Ok(None);
        }
        let now = (self.clock)();
        let pair = self.pacing.pair();
        let (pair_slot, _) = pair.next_slot(tat, now);
        let latest = now + pacing::chrono(MAX_INLINE_WAIT);
        let slot = if pair_slot > latest {
            Err(pair_slot)
        } else {
            self.pacing.reserve_global(pair_slot, latest)
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(at) => {
                let (store, id, by) = (self.store.clone(), row.id, self.pacing.instance().to_owned());
                blocking(move || store.defer_outbox(id, at, Some(&by))).await?;
                return Ok(Some(SendResult::Held(at)));
            }
        };
        let (_, next_tat) = pair.next_slot(tat, slot);
        let store = self.store.clone();
        let member = row.member.clone();
        blocking(move || store.set_recipient_tat(&member, next_tat)).await?;
        if let Ok(wait) = (slot - now).to_std()
            && !wait.is_zero()
        {
            tokio::time::sleep(wait).await;
        }
        Ok(None)
    }

    /// The retry wait after a retryable failure with `code`, applying Meta's back-off
    /// advice: 131056 pauses this member (4^X s), 130429 pauses the whole sender.
    pub(crate) async fn rate_limit_backoff(
        &self,
        row: &OutboxRow,
        code: i64,
        min_backoff: Duration,
        now: DateTime<Utc>,
    ) -> Result<Duration, SenderError> {
        let attempts = u32::try_from(row.attempts).unwrap_or(0);
        let mut wait = backoff(attempts, min_backoff, row.id.unsigned_abs());
        if code == PAIR_RATE_HIT {
            wait = wait.max(pair_backoff(attempts));
            let until = now + pacing::chrono(wait);
            let store = self.store.clone();
            let member = row.member.clone();
            let pair = self.pacing.pair();
            blocking(move || {
                let tat = store.recipient_tat(&member)?;
                store.set_recipient_tat(&member, pair.paused_until(tat, until))
            })
            .await?;
        } else if code == THROUGHPUT_HIT {
            self.pacing.pause_global(now + pacing::chrono(wait));
        }
        Ok(wait)
    }
}
