//! Quiet hours: the part of a member's night in which Alfred does not start talking.
//!
//! The household has quiet hours (default 22:00–07:00, `household.quiet_hours`), a member
//! may have their own (`members[].quiet_hours`, or `off`). A timer that is not `urgent`
//! (a nudge, a heads-up) and would fire inside them fires when they end instead, in the
//! member's own zone; a reminder the member set for a time is `urgent` and fires then.
//!
//! Pure: the moment is computed from the timer's instant and the member's zone, never
//! from a clock.

use chrono::{DateTime, Days, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::parse::resolve_local;

/// A daily span of local time, `start` inclusive, `end` exclusive; it may run past
/// midnight (22:00–07:00). `start == end` is never quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// When quiet starts.
    pub start: NaiveTime,
    /// When quiet ends.
    pub end: NaiveTime,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours {
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(7, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

/// Why a quiet-hours value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not quiet hours; write a span like \"22:00-07:00\", or \"off\"")]
pub struct BadQuietHours(pub String);

/// `"22:00-07:00"` (also with `–` or ` to `) → quiet hours; `"off"` / `"none"` → `None`.
pub fn parse(text: &str) -> Result<Option<QuietHours>, BadQuietHours> {
    let t = text.trim().to_lowercase();
    if matches!(t.as_str(), "off" | "none" | "never") {
        return Ok(None);
    }
    let bad = || BadQuietHours(text.trim().to_owned());
    let t = t.replace('–', "-").replace(" to ", "-");
    let (a, b) = t.split_once('-').ok_or_else(bad)?;
    let time = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
    let q = QuietHours {
        start: time(a)?,
        end: time(b)?,
    };
    Ok((q.start != q.end).then_some(q))
}

impl QuietHours {
    /// Whether local time `t` is inside the quiet hours.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// `at`, or the end of the quiet hours `at` falls in (in `tz`): the first moment a
    /// non-urgent message may go. Never earlier than `at`.
    pub fn after(&self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let local = at.with_timezone(&tz).naive_local();
        let t = local.time().with_nanosecond(0).unwrap_or(local.time());
        if !self.contains(t) {
            return at;
        }
        // The end is today when we are past midnight (or the span does not wrap), else tomorrow.
        let day = if t < self.end {
            local.date()
        } else {
            local.date().checked_add_days(Days::new(1)).unwrap_or(local.date())
        };
        resolve_local(day.and_time(self.end), tz).max(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Amsterdam};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("instant").with_timezone(&Utc)
    }

    #[test]
    fn parse_forms() {
        let q = parse("22:00-07:00").unwrap().unwrap();
        assert_eq!(q, QuietHours::default());
        assert_eq!(
            parse("23:30 to 06:15").unwrap().unwrap().end,
            NaiveTime::from_hms_opt(6, 15, 0).unwrap()
        );
        assert_eq!(parse("off"), Ok(None));
        assert_eq!(parse("07:00-07:00"), Ok(None));
        assert!(parse("late").is_err());
        assert!(parse("25:00-07:00").is_err());
    }

    #[test]
    fn a_midnight_nudge_waits_for_the_morning_in_the_members_zone() {
        let q = QuietHours::default();
        // 00:00 in Amsterdam (winter, UTC+1) → 07:00 the same day.
        assert_eq!(
            q.after(utc("2026-03-02T23:00:00Z"), Amsterdam),
            utc("2026-03-03T06:00:00Z")
        );
        // 23:00 → 07:00 the next day.
        assert_eq!(
            q.after(utc("2026-03-02T22:00:00Z"), Amsterdam),
            utc("2026-03-03T06:00:00Z")
        );
        // 12:00 is not quiet.
        assert_eq!(
            q.after(utc("2026-03-02T11:00:00Z"), Amsterdam),
            utc("2026-03-02T11:00:00Z")
        );
        // The same instant is 18:00 in New York: not quiet there.
        assert_eq!(
            q.after(utc("2026-03-02T23:00:00Z"), New_York),
            utc("2026-03-02T23:00:00Z")
        );
        // A span that does not wrap.
        let day = parse("13:00-15:00").unwrap().unwrap();
        assert_eq!(
            day.after(utc("2026-03-02T13:30:00Z"), Tz::UTC),
            utc("2026-03-02T15:00:00Z")
        );
    }

    proptest! {
        #[test]
        fn after_is_never_earlier_and_never_quiet(secs in 0i64..4_000_000_000, s in 0u32..24, e in 0u32..24, z in 0usize..2) {
            let tz = [Amsterdam, New_York][z];
            let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
            let q = QuietHours { start: NaiveTime::from_hms_opt(s, 0, 0).unwrap(), end: NaiveTime::from_hms_opt(e, 0, 0).unwrap() };
            prop_assume!(s != e);
            let out = q.after(at, tz);
            prop_assert!(out >= at);
            prop_assert!(out - at <= chrono::Duration::hours(25));
            let local = out.with_timezone(&tz).naive_local().time();
            prop_assert!(!q.contains(local.with_nanosecond(0).unwrap_or(local)), "{} in {} -> {}", at, tz, out);
        }
    }
}
