//! Outbound pacing: the claim on a row before it is sent, Meta's per-recipient pair rate,
//! and the global throughput limit of the business number. See `docs/time.md`, Pacing.
//! This room holds the rates and their arithmetic ([`Rate`], [`Pacing`]); the sender
//! applies them (`roles/sender/pace.rs`), so pacing never depends on the sender.
//!
//! - **Claim** ([`Store::claim_outbox`](crate::edges::store::Store::claim_outbox)): a lease on the
//!   row, taken atomically before the Graph call, and only on a member's oldest open row.
//!   That both stops two senders from sending one row and keeps one member's messages in
//!   order across any number of sender tasks and processes.
//! - **Pair rate** (Meta: 1 message per 6 s to one user, bursts up to 45 borrowing later
//!   quota; over it → 131056; we allow [`PAIR_BURST`] = 40): a GCRA per member whose state lives in the database
//!   (`recipient_pacing`), so every sender process sees it. The claim serializes one
//!   member's sends, so that state has one writer at a time.
//! - **Global rate** (Meta: 80 messages/s per number by default; over it → 130429): a
//!   GCRA in this process. Several sender processes each get their own; configure
//!   `ALFRED_SEND_RATE` to the number's limit divided by the number of sender processes.
//!
//! A wait up to [`MAX_INLINE_WAIT`] is slept out holding the claim; a longer one (a
//! 131056/130429 back-off) releases the row to the retry sweep instead, so one member's
//! back-off never stalls the sender for everyone else.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::edges::graph::MAX_BACKOFF;

// The pacing state arrives with the claim (`Claimed::tat`): see `Store::claim_outbox`.

/// Meta's sustained pair rate: one message per 6 s to the same user.
pub const PAIR_INTERVAL: Duration = Duration::from_secs(6);
/// Messages one member may get ahead of the 6 s spacing. Meta documents bursts of up to
/// 45 in 6 s that borrow from later quota (131056 only beyond that); GCRA models exactly
/// that borrowing (each message moves the member's `tat` 6 s ahead, and a message may go
/// while the debt is under `burst` intervals). 40 keeps a margin of five under Meta's 45,
/// so a member answering several questions in a row (creating a chore is four) gets
/// every reply at once; a sustained conversation still settles at one per 6 s. Should
/// Meta count the borrowing more strictly, its 131056 is still handled (4^X s back-off).
/// (It was 5 until issue 11: every sixth quick reply then waited 6 s.)
pub const PAIR_BURST: u32 = 40;
/// The longest pacing wait slept out while holding a claim; longer ones go to the sweep.
/// One pair interval: a member's next bubble waits inline, but the sender (which reads
/// its batch in order) never blocks other members for longer than that.
pub const MAX_INLINE_WAIT: Duration = PAIR_INTERVAL;
/// The claim's lease: covers the longest inline wait plus the Graph request timeout, so
/// a live sender never loses its row to another one mid-send.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// Error code: pair rate limit hit (same business → same user too fast).
pub const PAIR_RATE_HIT: i64 = 131_056;
/// Error code: the number's throughput was reached.
pub const THROUGHPUT_HIT: i64 = 130_429;

pub(crate) fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A rate as GCRA parameters: one message per `interval` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Sustained spacing between messages.
    pub interval: Duration,
    /// Messages allowed at once (at least 1).
    pub burst: u32,
}

impl Rate {
    /// Meta's pair rate, with our burst allowance.
    pub const PAIR: Rate = Rate {
        interval: PAIR_INTERVAL,
        burst: PAIR_BURST,
    };

    /// `n` messages per second, evenly spaced (no burst: at most `n + 1` in any second).
    pub fn per_second(n: u32) -> Rate {
        Rate {
            interval: Duration::from_secs(1) / n.max(1),
            burst: 1,
        }
    }

    fn tolerance(&self) -> chrono::Duration {
        chrono(self.interval * self.burst.max(1).saturating_sub(1))
    }

    /// GCRA: the earliest time at or after `at` a message may go, given the stored
    /// theoretical arrival time `tat`, and the `tat` to store once it went then.
    pub fn next_slot(&self, tat: Option<DateTime<Utc>>, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let tat = tat.map_or(at, |t| t.max(at));
        let slot = (tat - self.tolerance()).max(at);
        (slot, tat + chrono(self.interval))
    }

    /// The `tat` that makes the next slot no earlier than `until` (a back-off).
    pub fn paused_until(&self, tat: Option<DateTime<Utc>>, until: DateTime<Utc>) -> DateTime<Utc> {
        let paused = until + self.tolerance();
        tat.map_or(paused, |t| t.max(paused))
    }
}

/// Meta's advice on 131056: retry after 4^X seconds (X = 0, 1, 2, … failed attempts),
/// capped like every back-off.
pub fn pair_backoff(attempts: u32) -> Duration {
    let secs = 4u64.checked_pow(attempts).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// One sender's pacing: its claim name, the pair rate and the in-process global limit.
#[derive(Debug)]
pub struct Pacing {
    instance: String,
    pair: Rate,
    global: Rate,
    global_tat: Mutex<Option<DateTime<Utc>>>,
    /// `false` (`ALFRED_PACING=off`): no rate limit at all, and no pacing state read or
    /// written. The claim still orders and leases rows.
    enabled: bool,
}

impl Pacing {
    /// Pacing for sender `instance` (the name on its claims), sending at most
    /// `send_rate` messages per second, with Meta's pair rate.
    pub fn new(instance: impl Into<String>, send_rate: u32) -> Pacing {
        Pacing {
            instance: instance.into(),
            pair: Rate::PAIR,
            global: Rate::per_second(send_rate),
            global_tat: Mutex::new(None),
            enabled: true,
        }
    }

    /// No pacing (`ALFRED_PACING=off`, for load tests against a fake Graph API): claims
    /// only, no waits and no pacing state in the database.
    pub fn off(instance: impl Into<String>) -> Pacing {
        Pacing {
            enabled: false,
            ..Pacing::new(instance, crate::config::DEFAULT_SEND_RATE)
        }
    }

    /// Whether rate limits apply.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The same with another pair rate (tests use a tighter one).
    pub fn with_pair_rate(mut self, pair: Rate) -> Pacing {
        self.pair = pair;
        self
    }

    /// The same with another global rate (`ALFRED_PACING=off` for load tests).
    pub fn with_global_rate(mut self, global: Rate) -> Pacing {
        self.global = global;
        self
    }

    /// The name this sender puts on its claims.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The per-recipient rate.
    pub fn pair(&self) -> Rate {
        self.pair
    }

    fn global_tat(&self) -> std::sync::MutexGuard<'_, Option<DateTime<Utc>>> {
        self.global_tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves the first global slot at or after `earliest` if it is no later than
    /// `latest`; otherwise reserves nothing and says when the first slot is.
    pub fn reserve_global(
        &self,
        earliest: DateTime<Utc>,
        latest: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, DateTime<Utc>> {
        let mut tat = self.global_tat();
        let (slot, next) = self.global.next_slot(*tat, earliest);
        if slot > latest {
            return Err(slot);
        }
        *tat = Some(next);
        Ok(slot)
    }

    /// 130429: no message goes out from this process before `until`.
    pub fn pause_global(&self, until: DateTime<Utc>) {
        let mut tat = self.global_tat();
        *tat = Some(self.global.paused_until(*tat, until));
    }
}

#[cfg(test)]
mod tests;
