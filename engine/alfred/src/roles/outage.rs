//! A dependency outage (the database or the queue unreachable) as the operator sees it.
//!
//! Every role loop retries when its database or queue fails. Before, each worker and
//! sender task logged a WARN and slept a fixed second: with Redis down that was about
//! five lines a second, forever, and all tasks retried in lockstep. Here the tasks of a
//! process share one [`Outage`]: the first failure is logged once (WARN), the recovery
//! once (INFO, with how long it lasted and how many attempts failed); each task backs
//! off on its own ([`Retry`]), capped exponentially with jitter, so they spread out.
//!
//! Whether the process is *ready* meanwhile is `/readyz`'s business
//! ([`crate::edges::health`]), not this log's.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::edges::graph::backoff;

/// The first retry's wait during an outage.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts during an outage.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// One process's view of its dependencies being down; cheap to clone, shared by tasks.
#[derive(Clone, Debug, Default)]
pub struct Outage {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    since: Option<Instant>,
    failed: u64,
}

/// What an [`Outage`] wants logged; returned so tests can check it without a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first failure: the outage starts.
    Started,
    /// A failure during a known outage: not logged.
    Continues,
    /// The first success after an outage.
    Ended {
        /// How long it lasted.
        lasted: Duration,
        /// How many attempts failed meanwhile (every task's).
        failed: u64,
    },
    /// A success with nothing to report.
    Fine,
}

impl Outage {
    /// A failure at `now`; logs the outage's start if it is one.
    pub fn failed_at(&self, error: &dyn Display, now: Instant) -> Event {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.failed += 1;
        if s.since.is_some() {
            return Event::Continues;
        }
        s.since = Some(now);
        tracing::warn!(
            error = %error,
            "a dependency is unreachable (database or queue); retrying with backoff, logged again when it recovers"
        );
        Event::Started
    }

    /// A success at `now`; logs the outage's end if there was one.
    pub fn recovered_at(&self, now: Instant) -> Event {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(since) = s.since.take() else {
            return Event::Fine;
        };
        let failed = std::mem::take(&mut s.failed);
        let lasted = now.saturating_duration_since(since);
        tracing::info!(
            lasted_secs = lasted.as_secs(),
            failed_attempts = failed,
            "dependencies reachable again; the outage is over"
        );
        Event::Ended { lasted, failed }
    }

    /// Whether an outage is going on.
    pub fn is_down(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .since
            .is_some()
    }

    /// One task's retry schedule during this outage.
    pub fn retry(&self) -> Retry {
        static TASKS: AtomicU64 = AtomicU64::new(0);
        Retry {
            outage: self.clone(),
            attempt: 0,
            seed: u64::from(std::process::id()) << 32 | TASKS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// One task's retries: exponential from [`FIRST_RETRY`], capped at [`MAX_RETRY`], with
/// a jitter drawn from the task's own seed so tasks do not retry in lockstep.
#[derive(Debug)]
pub struct Retry {
    outage: Outage,
    attempt: u32,
    seed: u64,
}

impl Retry {
    /// The task's work failed: how long to wait before trying again.
    pub fn failed(&mut self, error: &dyn Display) -> Duration {
        self.outage.failed_at(error, Instant::now());
        self.next_wait()
    }

    /// The task's work succeeded.
    pub fn recovered(&mut self) {
        self.attempt = 0;
        if self.outage.is_down() {
            self.outage.recovered_at(Instant::now());
        }
    }

    /// The wait after one more failed attempt.
    fn next_wait(&mut self) -> Duration {
        let wait = backoff(self.attempt, FIRST_RETRY, self.seed).min(MAX_RETRY);
        self.attempt = self.attempt.saturating_add(1);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
        let outage = Outage::default();
        let t0 = Instant::now();
        assert_eq!(outage.recovered_at(t0), Event::Fine);
        assert_eq!(outage.failed_at(&"connection refused", t0), Event::Started);
        for i in 1..100 {
            let other_task = outage.clone();
            assert_eq!(
                other_task.failed_at(&"connection refused", t0 + Duration::from_millis(i)),
                Event::Continues
            );
        }
        assert_eq!(
            outage.recovered_at(t0 + Duration::from_secs(42)),
            Event::Ended {
                lasted: Duration::from_secs(42),
                failed: 100
            }
        );
        assert_eq!(outage.recovered_at(t0 + Duration::from_secs(43)), Event::Fine);
        assert_eq!(outage.failed_at(&"again", t0 + Duration::from_secs(44)), Event::Started);
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_a_cap() {
        let outage = Outage::default();
        let mut a = outage.retry();
        let mut b = outage.retry();
        let waits: Vec<Duration> = (0..20).map(|_| a.next_wait()).collect();
        assert!(waits[0] >= FIRST_RETRY && waits[0] < FIRST_RETRY * 2, "{waits:?}");
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "never shorter: {waits:?}");
        assert!(waits[3] >= FIRST_RETRY * 8, "doubling: {waits:?}");
        assert_eq!(*waits.last().unwrap(), MAX_RETRY, "capped: {waits:?}");
        let other: Vec<Duration> = (0..6).map(|_| b.next_wait()).collect();
        assert_ne!(&waits[..6], &other[..], "two tasks draw different jitter");
        a.recovered();
        assert!(a.next_wait() < FIRST_RETRY * 2, "a success starts over");
    }
}
