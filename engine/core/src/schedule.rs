//! Cron schedules in an IANA time zone, with explicit daylight-saving rules.
//!
//! We use `croner` rather than `cron`: `cron` rejects 5-field expressions and skips a
//! whole day when a slot falls in the spring-forward gap. `croner` only walks naive
//! wall-clock time here; turning wall-clock slots into instants is done in this module
//! so that one rule covers every kind of expression:
//!
//! * every wall-clock time the expression names fires **at most once**;
//! * a time inside a spring-forward gap fires at the first real instant after the gap
//!   (`30 2 * * *` in Amsterdam on 2026-03-29 fires at 03:00 CEST);
//! * a time inside a fall-back repeat fires only on its first pass (CEST, not CET);
//! * several names that land on the same instant fire once.
//!
//! For sub-daily schedules this means: `0 * * * *` fires 23 times on the spring-forward
//! day (02:00 merges into 03:00) and 24 times on the 25-hour fall-back day, leaving
//! two real hours between 02:00 CEST and 03:00 CET. `*/15 * * * *` fires once at
//! 03:00 for the missing quarter hours, and is silent during the repeated hour.
//! There are no duplicates and nothing panics.
//!
//! The module is pure: no I/O and no clock; instants are always parameters.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// How far `next_after` looks ahead (about five years).
const HORIZON: TimeDelta = TimeDelta::days(5 * 366);
/// Wider than any UTC offset (±14 h) plus any gap, so a gap search always brackets.
const GAP_WINDOW: TimeDelta = TimeDelta::hours(26);
/// Safety cap on candidates skipped in one `next_after`; the start point makes one enough.
const MAX_CANDIDATES: usize = 10_000;
/// The help text appended to every expression error.
const FIELDS_HELP: &str = "use 5 fields \"minute hour day-of-month month day-of-week\", \
     e.g. \"0 7 * * 1-5\" for 07:00 on weekdays (an optional 6th field in front sets seconds)";
const FIVE_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
const SIX_FIELDS: [&str; 6] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"];

/// A validated cron schedule in an IANA time zone.
///
/// Slots are wall-clock times in the zone; see the module docs for what happens at
/// daylight-saving changes (gap slots move to the end of the gap, repeated slots fire once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
    // False when no wall-clock time ever matches (e.g. "0 0 30 2 *"); checked once at parse.
    fires: bool,
}

/// Why a schedule could not be built; messages are for humans (shown by `alfred check`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is malformed; the text names the problem and the expected form.
    #[error("invalid cron expression {0}")]
    Cron(String),
    /// The time zone is not a known IANA name.
    #[error("unknown time zone {0}")]
    TimeZone(String),
}

impl CronSchedule {
    /// Parses a 5-field (or 6-field with seconds) cron expression plus an IANA zone name
    /// ("Europe/Amsterdam").
    ///
    /// Names (`MON`, `JAN`), `L`, `W`, `#` and nicknames such as `@daily` are accepted; a
    /// 7th (year) field is not. A schedule that can never fire (`0 0 30 2 *`) parses, but
    /// [`CronSchedule::next_after`] returns `None` for it.
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz = Tz::from_str(timezone.trim()).map_err(|_| {
            ScheduleError::TimeZone(format!(
                "\"{timezone}\": use an IANA name such as \"Europe/Amsterdam\" or \"America/New_York\""
            ))
        })?;
        let cron = parser()
            .parse(expr)
            .map_err(|err| ScheduleError::Cron(explain(expr, &err)))?;
        // Any pattern that matches at all does so within a 400-year Gregorian cycle.
        let fires = NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .is_some_and(|start| cron.find_next_occurrence(&start, true).is_ok());
        Ok(Self {
            expression: expr.to_owned(),
            cron,
            timezone: tz,
            fires,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first slot strictly after `after` (UTC), DST rules as in the module docs.
    /// `None` if there is none within about five years (or the date range runs out).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.fires {
            return None;
        }
        // Slots are whole seconds, so dropping sub-seconds keeps "strictly after" intact.
        let after = DateTime::from_timestamp(after.timestamp(), 0)?;
        let horizon = after.checked_add_signed(HORIZON)?;
        let mut cursor = self.search_start(after)?;
        for _ in 0..MAX_CANDIDATES {
            let naive = self.cron.find_next_occurrence(&cursor, false).ok()?;
            let slot = self.resolve(naive)?;
            if slot > horizon {
                return None;
            }
            if slot > after {
                return Some(slot);
            }
            cursor = naive;
        }
        None
    }

    /// All slots in `(from, to]`, oldest first, at most `limit` of them.
    ///
    /// Work is bounded by `limit` (each step is one bounded [`CronSchedule::next_after`]).
    pub fn slots_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::new();
        let mut cursor = from;
        while slots.len() < limit {
            match self.next_after(cursor) {
                Some(slot) if slot <= to => {
                    slots.push(slot);
                    cursor = slot;
                }
                _ => break,
            }
        }
        slots
    }

    /// Human description from croner (e.g. "At 07:00, on Monday, ..."), else the expression.
    pub fn describe(&self) -> String {
        let text = self.cron.describe();
        if text.trim().is_empty() {
            self.expression.clone()
        } else {
            text
        }
    }

    /// Wall-clock time to search from so that every later match resolves after `after`.
    fn search_start(&self, after: DateTime<Utc>) -> Option<NaiveDateTime> {
        let local = self.local(after)?;
        match self.timezone.from_local_datetime(&local) {
            // `after` is on the second pass of a repeated hour: its times already fired on
            // the first pass, so resume from the last wall-clock time before the switch.
            LocalResult::Ambiguous(earlier, _) if earlier.with_timezone(&Utc) < after => {
                let first = earlier.with_timezone(&Utc);
                let first_offset = self.offset_secs(first)?;
                let switch = bisect(first.timestamp(), after.timestamp(), |t| {
                    Some(self.offset_secs(DateTime::from_timestamp(t, 0)?)? != first_offset)
                })?;
                self.local(DateTime::from_timestamp(switch - 1, 0)?)
            }
            _ => Some(local),
        }
    }

    /// The first instant whose wall clock reads `naive` or later (see module docs).
    fn resolve(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.timezone.from_local_datetime(&naive) {
            LocalResult::Single(dt) => Some(dt.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
            LocalResult::None => self.gap_end(naive),
        }
    }

    /// First instant after the gap that swallows `naive`: the clock jumps over it there.
    fn gap_end(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        let centre = naive.and_utc();
        let lo = centre.checked_sub_signed(GAP_WINDOW)?.timestamp();
        let hi = centre.checked_add_signed(GAP_WINDOW)?.timestamp();
        let later = |t: i64| Some(self.local(DateTime::from_timestamp(t, 0)?)? > naive);
        if later(lo)? || !later(hi)? {
            return None;
        }
        DateTime::from_timestamp(bisect(lo, hi, later)?, 0)
    }

    /// Wall-clock time at `at`, without chrono's panicking `naive_local`.
    fn local(&self, at: DateTime<Utc>) -> Option<NaiveDateTime> {
        let utc = at.naive_utc();
        let offset = self.timezone.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_offset(offset)
    }

    /// UTC offset in seconds at `at`.
    fn offset_secs(&self, at: DateTime<Utc>) -> Option<i32> {
        let offset = self.timezone.offset_from_utc_datetime(&at.naive_utc());
        Some(offset.fix().local_minus_utc())
    }
}

/// The parser we accept: seconds optional, no year field.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

/// Smallest `t` in `(lo, hi]` where `pred` holds, given it fails at `lo` and holds at `hi`.
fn bisect(mut lo: i64, mut hi: i64, pred: impl Fn(i64) -> Option<bool>) -> Option<i64> {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pred(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// A human explanation of why croner rejected `expr`, naming the bad field when it can.
fn explain(expr: &str, err: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let names: &[&str] = match fields.len() {
        5 => &FIVE_FIELDS,
        6 => &SIX_FIELDS,
        _ if expr.trim_start().starts_with('@') => &[],
        0 => return format!("\"{expr}\": it is empty; {FIELDS_HELP}"),
        n => return format!("\"{expr}\": it has {n} fields; {FIELDS_HELP}"),
    };
    let detail = match err {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => other.to_string(),
    };
    let detail = detail.trim_end_matches('.');
    // Re-parse each field alone (others "*") to point at the one that is wrong.
    let culprit = (0..names.len()).find(|&i| {
        let probe: Vec<&str> = (0..names.len()).map(|j| if j == i { fields[j] } else { "*" }).collect();
        parser().parse(&probe.join(" ")).is_err()
    });
    match culprit.and_then(|i| Some((names.get(i)?, fields.get(i)?))) {
        Some((name, value)) => {
            format!("\"{expr}\": the {name} field \"{value}\" is invalid ({detail}); {FIELDS_HELP}")
        }
        None => format!("\"{expr}\": {detail}; {FIELDS_HELP}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn sched(expr: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expr, tz).unwrap()
    }

    /// Slots in `(from, to]`, asserting no duplicates and strict order.
    fn slots(s: &CronSchedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let v = s.slots_between(from, to, 10_000);
        assert!(v.windows(2).all(|w| w[0] < w[1]), "not strictly increasing: {v:?}");
        v
    }

    #[test]
    fn parses_five_and_six_fields() {
        let five = sched("0 7 * * 1-5", "Europe/Amsterdam");
        assert_eq!(five.expression(), "0 7 * * 1-5");
        assert_eq!(five.timezone(), chrono_tz::Europe::Amsterdam);
        assert!(five.describe().contains("07:00"), "{}", five.describe());
        // Friday 2026-01-02 07:00 CET.
        assert_eq!(
            five.next_after(utc(2026, 1, 1, 12, 0, 0)),
            Some(utc(2026, 1, 2, 6, 0, 0))
        );

        let six = sched("30 0 7 * * *", "UTC");
        assert_eq!(
            six.next_after(utc(2026, 1, 1, 7, 0, 0)),
            Some(utc(2026, 1, 1, 7, 0, 30))
        );
        assert_eq!(
            six.next_after(utc(2026, 1, 1, 7, 0, 30)),
            Some(utc(2026, 1, 2, 7, 0, 30))
        );
        // Sub-second `after` still means strictly after.
        let just_after = utc(2026, 1, 1, 7, 0, 30) + TimeDelta::milliseconds(500);
        assert_eq!(six.next_after(just_after), Some(utc(2026, 1, 2, 7, 0, 30)));
        assert_eq!(
            sched("@daily", "UTC").next_after(utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2026, 1, 2, 0, 0, 0))
        );
    }

    #[test]
    fn invalid_expressions_explain_themselves() {
        let err = CronSchedule::parse("0 25 * * *", "UTC").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ScheduleError::Cron(_)));
        assert!(msg.contains("hour field \"25\""), "{msg}");
        assert!(msg.contains("minute hour day-of-month month day-of-week"), "{msg}");
        assert!(msg.contains("0 7 * * 1-5"), "{msg}");

        let msg = CronSchedule::parse("0 7 * *", "UTC").unwrap_err().to_string();
        assert!(msg.contains("has 4 fields"), "{msg}");
        let msg = CronSchedule::parse("0 0 7 * * * 2026", "UTC").unwrap_err().to_string();
        assert!(msg.contains("has 7 fields"), "{msg}");
        let msg = CronSchedule::parse("  ", "UTC").unwrap_err().to_string();
        assert!(msg.contains("empty"), "{msg}");
    }

    #[test]
    fn invalid_zone_is_an_error() {
        let err = CronSchedule::parse("0 7 * * *", "Europe/Amsterdm").unwrap_err();
        assert!(matches!(&err, ScheduleError::TimeZone(m) if m.contains("Europe/Amsterdm")));
        assert!(err.to_string().contains("IANA"), "{err}");
    }

    #[test]
    fn garbage_never_panics() {
        let weird = [
            "",
            "*",
            "@reboot",
            "@hourly",
            "*/0 * * * *",
            "5-3 * * * *",
            "0 0 * * 5#9",
            "0 0 L * *",
            "0 0 LW * *",
            "0 0 15W * *",
            "0 0 * * 5L",
            "? ? ? ? ?",
            "0 0 ? * ?",
            "99999999999 * * * *",
            "-1 * * * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "a b c d e",
            "0 0 * * +1",
            "0 0 1 * +1",
            "ß ß ß ß ß",
            ",,, * * * *",
            "1-/2 * * * *",
            "*/61 * * * *",
            "0 0 31 4 *",
            "0 0 29 2 *",
        ];
        let extremes = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            utc(2026, 3, 29, 0, 59, 59),
        ];
        for expr in weird {
            for tz in [
                "Pacific/Apia",
                "Pacific/Kiritimati",
                "America/Adak",
                "Australia/Lord_Howe",
            ] {
                if let Ok(s) = CronSchedule::parse(expr, tz) {
                    let _ = s.describe();
                    for at in extremes {
                        let _ = s.next_after(at);
                        let _ = s.slots_between(at, DateTime::<Utc>::MAX_UTC, 3);
                    }
                }
            }
        }
    }

    #[test]
    fn amsterdam_daily_briefing_across_both_changes() {
        let s = sched("0 7 * * *", "Europe/Amsterdam");
        // Spring forward on Sunday 2026-03-29: 07:00 CET = 06:00Z, then 07:00 CEST = 05:00Z.
        let spring: Vec<_> = (26..=28)
            .map(|d| utc(2026, 3, d, 6, 0, 0))
            .chain((29..=31).map(|d| utc(2026, 3, d, 5, 0, 0)))
            .chain([utc(2026, 4, 1, 5, 0, 0)])
            .collect();
        assert_eq!(slots(&s, utc(2026, 3, 26, 0, 0, 0), utc(2026, 4, 1, 23, 0, 0)), spring);
        // Fall back on Sunday 2026-10-25.
        let fall: Vec<_> = (22..=24)
            .map(|d| utc(2026, 10, d, 5, 0, 0))
            .chain((25..=28).map(|d| utc(2026, 10, d, 6, 0, 0)))
            .collect();
        assert_eq!(slots(&s, utc(2026, 10, 22, 0, 0, 0), utc(2026, 10, 28, 23, 0, 0)), fall);
    }

    #[test]
    fn new_york_daily_and_weekday_briefings() {
        let daily = sched("0 7 * * *", "America/New_York");
        // DST starts Sunday 2026-03-08: 07:00 EST = 12:00Z, then 07:00 EDT = 11:00Z.
        let want: Vec<_> = (5..=7)
            .map(|d| utc(2026, 3, d, 12, 0, 0))
            .chain((8..=11).map(|d| utc(2026, 3, d, 11, 0, 0)))
            .collect();
        assert_eq!(
            slots(&daily, utc(2026, 3, 5, 0, 0, 0), utc(2026, 3, 11, 23, 0, 0)),
            want
        );

        let weekdays = sched("0 7 * * 1-5", "America/New_York");
        let want: Vec<_> = (2..=6)
            .map(|d| utc(2026, 3, d, 12, 0, 0))
            .chain((9..=13).map(|d| utc(2026, 3, d, 11, 0, 0)))
            .collect();
        assert_eq!(
            slots(&weekdays, utc(2026, 3, 1, 0, 0, 0), utc(2026, 3, 14, 0, 0, 0)),
            want
        );
        // DST ends Sunday 2026-11-01.
        let want: Vec<_> = (26..=30)
            .map(|d| utc(2026, 10, d, 11, 0, 0))
            .chain((2..=6).map(|d| utc(2026, 11, d, 12, 0, 0)))
            .collect();
        assert_eq!(
            slots(&weekdays, utc(2026, 10, 25, 0, 0, 0), utc(2026, 11, 7, 0, 0, 0)),
            want
        );
    }

    #[test]
    fn amsterdam_0230_in_the_gap_and_the_repeat() {
        let s = sched("30 2 * * *", "Europe/Amsterdam");
        // 2026-03-29 02:30 does not exist: fire at 03:00 CEST (01:00Z), then 02:30 CEST.
        let got = slots(&s, utc(2026, 3, 28, 0, 0, 0), utc(2026, 3, 30, 12, 0, 0));
        assert_eq!(
            got,
            [
                utc(2026, 3, 28, 1, 30, 0),
                utc(2026, 3, 29, 1, 0, 0),
                utc(2026, 3, 30, 0, 30, 0)
            ]
        );
        // 2026-10-25 02:30 happens twice: only the first (CEST, 00:30Z) fires.
        let got = slots(&s, utc(2026, 10, 24, 0, 0, 0), utc(2026, 10, 26, 12, 0, 0));
        assert_eq!(
            got,
            [
                utc(2026, 10, 24, 0, 30, 0),
                utc(2026, 10, 25, 0, 30, 0),
                utc(2026, 10, 26, 1, 30, 0)
            ]
        );
        // From inside the second pass (02:10 and 02:30 CET) the next slot is the next day.
        for after in [
            utc(2026, 10, 25, 0, 30, 0),
            utc(2026, 10, 25, 1, 10, 0),
            utc(2026, 10, 25, 1, 30, 0),
        ] {
            assert_eq!(s.next_after(after), Some(utc(2026, 10, 26, 1, 30, 0)));
        }
    }

    #[test]
    fn new_york_gap_and_repeat() {
        // 02:30 on 2026-03-08 does not exist in New York: 03:00 EDT = 07:00Z.
        let gap = sched("30 2 * * *", "America/New_York");
        assert_eq!(gap.next_after(utc(2026, 3, 8, 0, 0, 0)), Some(utc(2026, 3, 8, 7, 0, 0)));
        assert_eq!(
            gap.next_after(utc(2026, 3, 8, 7, 0, 0)),
            Some(utc(2026, 3, 9, 6, 30, 0))
        );
        // 01:30 on 2026-11-01 happens twice: only 01:30 EDT = 05:30Z.
        let repeat = sched("30 1 * * *", "America/New_York");
        let got = slots(&repeat, utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 2, 12, 0, 0));
        assert_eq!(got, [utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 2, 6, 30, 0)]);
    }

    #[test]
    fn hourly_across_dst_has_no_duplicates() {
        let s = sched("0 * * * *", "Europe/Amsterdam");
        // Local day 2026-03-29 runs 23:00Z..22:00Z: 23 hours, 23 slots, 02:00 merged into 03:00.
        let day = slots(&s, utc(2026, 3, 28, 22, 59, 59), utc(2026, 3, 29, 21, 59, 59));
        assert_eq!(day.len(), 23);
        assert_eq!(
            &day[..3],
            [
                utc(2026, 3, 28, 23, 0, 0),
                utc(2026, 3, 29, 0, 0, 0),
                utc(2026, 3, 29, 1, 0, 0)
            ]
        );
        // Local day 2026-10-25 runs 22:00Z..23:00Z: 25 hours, 24 slots, no second 02:00.
        let day = slots(&s, utc(2026, 10, 24, 21, 59, 59), utc(2026, 10, 25, 22, 59, 59));
        assert_eq!(day.len(), 24);
        assert_eq!(&day[2..4], [utc(2026, 10, 25, 0, 0, 0), utc(2026, 10, 25, 2, 0, 0)]);

        let quarter = sched("*/15 * * * *", "Europe/Amsterdam");
        let got = slots(&quarter, utc(2026, 3, 29, 0, 15, 0), utc(2026, 3, 29, 1, 15, 0));
        let want = [(0, 30), (0, 45), (1, 0), (1, 15)].map(|(h, m)| utc(2026, 3, 29, h, m, 0));
        assert_eq!(got, want);
    }

    #[test]
    fn a_skipped_day_fires_after_it() {
        // Samoa skipped 2011-12-30 entirely; noon that day fires at 00:00 on the 31st (+14).
        let s = sched("0 12 * * *", "Pacific/Apia");
        let got = slots(&s, utc(2011, 12, 29, 0, 0, 0), utc(2011, 12, 31, 12, 0, 0));
        assert_eq!(
            got,
            [
                utc(2011, 12, 29, 22, 0, 0),
                utc(2011, 12, 30, 10, 0, 0),
                utc(2011, 12, 30, 22, 0, 0)
            ]
        );
    }

    #[test]
    fn slots_between_counts_and_limits() {
        let s = sched("0 7 * * *", "Europe/Amsterdam");
        let week = slots(&s, utc(2026, 6, 1, 0, 0, 0), utc(2026, 6, 8, 0, 0, 0));
        let want: Vec<_> = (1..=7).map(|d| utc(2026, 6, d, 5, 0, 0)).collect();
        assert_eq!(week, want);
        // The range is half-open: `from` is excluded, `to` included.
        assert_eq!(
            s.slots_between(utc(2026, 6, 1, 5, 0, 0), utc(2026, 6, 2, 5, 0, 0), 10),
            [utc(2026, 6, 2, 5, 0, 0)]
        );
        assert_eq!(
            s.slots_between(utc(2026, 6, 1, 0, 0, 0), utc(2026, 7, 1, 0, 0, 0), 3),
            want[..3]
        );
        assert!(
            s.slots_between(utc(2026, 6, 1, 0, 0, 0), utc(2026, 7, 1, 0, 0, 0), 0)
                .is_empty()
        );
        assert!(
            s.slots_between(utc(2026, 7, 1, 0, 0, 0), utc(2026, 6, 1, 0, 0, 0), 10)
                .is_empty()
        );
    }

    #[test]
    fn never_firing_schedule_returns_nothing_quickly() {
        let started = std::time::Instant::now();
        let s = sched("0 0 30 2 *", "Europe/Amsterdam");
        assert_eq!(s.next_after(utc(2026, 1, 1, 0, 0, 0)), None);
        assert!(
            s.slots_between(utc(2026, 1, 1, 0, 0, 0), DateTime::<Utc>::MAX_UTC, 100)
                .is_empty()
        );
        // Feb 29 fires, but beyond the five-year horizon only when it is that far away.
        let leap = sched("0 0 29 2 *", "UTC");
        assert_eq!(
            leap.next_after(utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2028, 2, 29, 0, 0, 0))
        );
        let rare = sched("0 0 29 2 +1", "UTC"); // Feb 29 that is a Monday: 2044, past the horizon.
        assert_eq!(rare.next_after(utc(2026, 1, 1, 0, 0, 0)), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
