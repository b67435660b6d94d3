//! Rate-limited warnings: a failure that repeats (Meta answering 429 to every send, a
//! dashboard retrying a wrong verify token) is logged once per key and interval, and the
//! next line for that key says how many were suppressed meanwhile. Nothing is dropped
//! silently: the count is carried, and the metrics count every failure anyway.
//!
//! Keys are built from fixed sets (an error code, a route), never from personal data, so
//! the table stays small; it is pruned if it grows anyway.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The default interval: one line per key per minute.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Keys kept before stale ones are pruned.
const MAX_KEYS: usize = 1024;

/// Whether to log now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it, saying how many lines of this key were suppressed since the last one.
    Log {
        /// Suppressed since the key's last line.
        suppressed: u64,
    },
    /// Suppress it (counted for the next line).
    Suppress,
}

/// One line per key per interval.
#[derive(Debug)]
pub struct LogLimit {
    interval: Duration,
    keys: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit::new(DEFAULT_INTERVAL)
    }
}

impl LogLimit {
    /// One line per key per `interval`.
    pub fn new(interval: Duration) -> LogLimit {
        LogLimit {
            interval,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a line for `key` at `now` is logged or suppressed.
    pub fn check(&self, key: &str, now: Instant) -> Verdict {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            let interval = self.interval;
            keys.retain(|_, w| now.saturating_duration_since(w.logged_at) < interval);
        }
        match keys.get_mut(key) {
            Some(w) if now.saturating_duration_since(w.logged_at) < self.interval => {
                w.suppressed += 1;
                Verdict::Suppress
            }
            Some(w) => {
                let suppressed = std::mem::take(&mut w.suppressed);
                w.logged_at = now;
                Verdict::Log { suppressed }
            }
            None => {
                keys.insert(
                    key.to_owned(),
                    Window {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Verdict::Log { suppressed: 0 }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_with_the_suppressed_count() {
        let limit = LogLimit::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(limit.check("retry:130429", at(0)), Verdict::Log { suppressed: 0 });
        for s in 1..=5 {
            assert_eq!(limit.check("retry:130429", at(s)), Verdict::Suppress);
        }
        // Another key has its own window.
        assert_eq!(limit.check("retry:0", at(3)), Verdict::Log { suppressed: 0 });
        assert_eq!(limit.check("retry:130429", at(59)), Verdict::Suppress);
        assert_eq!(limit.check("retry:130429", at(60)), Verdict::Log { suppressed: 6 });
        assert_eq!(limit.check("retry:130429", at(61)), Verdict::Suppress);
        assert_eq!(limit.check("retry:130429", at(200)), Verdict::Log { suppressed: 1 });
        assert_eq!(limit.check("retry:130429", at(400)), Verdict::Log { suppressed: 0 });
    }

    #[test]
    fn the_table_stays_bounded() {
        let limit = LogLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..5000 {
            let _ = limit.check(&format!("k{i}"), t0 + Duration::from_secs(i));
        }
        assert!(limit.keys.lock().unwrap().len() <= MAX_KEYS);
    }
}
