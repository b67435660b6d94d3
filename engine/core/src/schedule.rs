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

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::model::CatchUp;

/// How far `next_after` looks ahead (about five years).
const HORIZON: TimeDelta = TimeDelta::days(5 * 366);
/// Wider than any UTC offset (±14 h) plus any gap, so a gap search always brackets.
const GAP_WINDOW: TimeDelta = TimeDelta::hours(26);
/// Safety cap on candidates skipped in one `next_after`; the start point makes one enough.
const MAX_CANDIDATES: usize = 10_000;
/// The help text appended to every expression error.
const FIELDS_HELP: &str = "use 5 fields \"minute hour day-of-month month day-of-week\", \
     e.g. \"0 7 * * 1-5\" for 07:00 on weekdays (an optional 6th field in front sets seconds)";
/// Field names of a 6-field expression; a 5-field one drops the first.
const FIELD_NAMES: &str = "second minute hour day-of-month month day-of-week";

/// How late a slot may be and still count as "on time" under `catch_up: skip`: the
/// scheduler ticks every few seconds, so a slot seen later than this was missed.
pub const ON_TIME: TimeDelta = TimeDelta::minutes(1);
/// The default `catch_up_window`: a missed slot less than an hour late still fires once.
pub const DEFAULT_CATCH_UP_WINDOW: TimeDelta = TimeDelta::hours(1);
/// How far back [`due_slots`] looks for skipped slots, so a long downtime of a frequent
/// schedule costs bounded work.
const MAX_LOOKBACK: TimeDelta = TimeDelta::days(7);
/// Slots per `slots_between` call while walking a window.
const BATCH: usize = 1024;

/// The catch-up policy of one schedule, compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotPolicy {
    /// `once` or `skip`.
    pub catch_up: CatchUp,
    /// The lateness up to which `once` still fires a slot.
    pub window: TimeDelta,
}

impl Default for SlotPolicy {
    fn default() -> Self {
        Self {
            catch_up: CatchUp::Once,
            window: DEFAULT_CATCH_UP_WINDOW,
        }
    }
}

impl SlotPolicy {
    /// How late a slot may be and still fire.
    pub fn allowed_lateness(&self) -> TimeDelta {
        match self.catch_up {
            CatchUp::Once => self.window.max(ON_TIME),
            CatchUp::Skip => ON_TIME,
        }
    }
}

/// What [`due_slots`] decided for one schedule at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DueSlots {
    /// The one slot to fire now, if any: the latest due slot that is not too late.
    pub fire: Option<DateTime<Utc>>,
    /// The latest slot that passed without firing (too late, or older than `fire`).
    /// Recording it moves the schedule's cursor past the downtime.
    pub last_skipped: Option<DateTime<Utc>>,
    /// How many slots were skipped (those within the last 7 days; older ones are not counted).
    pub skipped: usize,
}

/// The slots of `cron` to act on at `now`, given the last slot already handled (fired or
/// recorded as skipped), under `policy`.
///
/// Slots in `(last, now]` are due. At most **one** fires: the latest one that is at most
/// [`SlotPolicy::allowed_lateness`] late. Every other due slot is skipped, so a long
/// downtime never produces a burst of stale messages. With no `last` (a schedule never
/// run before) the past counts as downtime: only a slot within the allowed lateness fires.
pub fn due_slots(cron: &CronSchedule, last: Option<DateTime<Utc>>, now: DateTime<Utc>, policy: SlotPolicy) -> DueSlots {
    let lateness = policy.allowed_lateness();
    let Some(earliest_on_time) = now.checked_sub_signed(lateness) else {
        return DueSlots::default();
    };
    let lookback = now.checked_sub_signed(MAX_LOOKBACK).unwrap_or(earliest_on_time);
    let start = last.unwrap_or(earliest_on_time).max(lookback);
    let mut due = DueSlots::default();
    let mut cursor = start;
    loop {
        let batch = cron.slots_between(cursor, now, BATCH);
        for &slot in &batch {
            if slot >= earliest_on_time {
                if let Some(older) = due.fire.replace(slot) {
                    due.last_skipped = Some(older);
                    due.skipped += 1;
                }
            } else {
                due.last_skipped = Some(slot);
                due.skipped += 1;
            }
        }
        match batch.last() {
            Some(&end) if batch.len() == BATCH => cursor = end,
            _ => break,
        }
    }
    due
}

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
            let help = "use an IANA name such as \"Europe/Amsterdam\" or \"America/New_York\"";
            ScheduleError::TimeZone(format!("\"{timezone}\": {help}"))
        })?;
        let cron = parser()
            .parse(expr)
            .map_err(|err| ScheduleError::Cron(explain(expr, &err)))?;
        reject_empty_fields(expr, &cron).map_err(ScheduleError::Cron)?;
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
    /// `None` if there is none within about five years, or `after` lies outside the
    /// years 1 to 4999 that croner searches.
    ///
    /// Sub-daily schedules follow the same rules: slots in a spring-forward gap collapse
    /// onto its end and a repeated hour fires only on its first pass, so `0 * * * *`
    /// fires 23 times on the short day and 24 times on the long one, never twice at once.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.fires || !(1..5000).contains(&after.year()) {
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

/// Field names for an expression with `count` fields, if that count is accepted.
fn field_names(count: usize) -> Option<Vec<&'static str>> {
    let skip = match count {
        5 => 1,
        6 => 0,
        _ => return None,
    };
    Some(FIELD_NAMES.split(' ').skip(skip).collect())
}

/// croner accepts empty list items (",,,"); such a field matches nothing and a search
/// then crawls second by second for centuries, so they are rejected here.
fn reject_empty_fields(expr: &str, cron: &Cron) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let names = field_names(fields.len()).unwrap_or_default();
    let mut named = names.iter().zip(&fields);
    if let Some((name, value)) = named.find(|(_, v)| v.split(',').any(str::is_empty)) {
        let problem = "has an empty list item";
        return Err(format!(
            "\"{expr}\": the {name} field \"{value}\" {problem}; {FIELDS_HELP}"
        ));
    }
    let p = &cron.pattern;
    if [&p.seconds, &p.minutes, &p.hours, &p.months]
        .iter()
        .any(|c| c.values().is_empty())
    {
        return Err(format!("\"{expr}\": a field matches no value; {FIELDS_HELP}"));
    }
    Ok(())
}

/// A human explanation of why croner rejected `expr`, naming the bad field when it can.
fn explain(expr: &str, err: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let names = match (field_names(fields.len()), fields.len()) {
        (Some(names), _) => names,
        _ if expr.trim_start().starts_with('@') => {
            let nicknames = "@yearly, @annually, @monthly, @weekly, @daily or @hourly";
            return format!("\"{expr}\": unknown nickname, use {nicknames}; or {FIELDS_HELP}");
        }
        (None, 0) => return format!("\"{expr}\": it is empty; {FIELDS_HELP}"),
        (None, n) => return format!("\"{expr}\": it has {n} fields; {FIELDS_HELP}"),
    };
    let detail = match err {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => other.to_string(),
    };
    let detail = detail.trim_end_matches('.');
    // Re-parse each field alone (others "*") to point at the one that is wrong.
    let alone = |i: usize| {
        let probe = fields.iter().enumerate();
        let probe: Vec<&str> = probe.map(|(j, f)| if j == i { f } else { "*" }).collect();
        parser().parse(&probe.join(" ")).is_err()
    };
    let culprit = names.iter().zip(&fields).enumerate().find(|(i, _)| alone(*i));
    match culprit {
        Some((_, (name, value))) => {
            format!("\"{expr}\": the {name} field \"{value}\" is invalid ({detail}); {FIELDS_HELP}")
        }
        None => format!("\"{expr}\": {detail}; {FIELDS_HELP}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exact instant from RFC 3339 text.
    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn sched(expr: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expr, tz).unwrap()
    }

    /// A slot as local RFC 3339: shows the exact instant and the wall clock at once.
    fn show(s: &CronSchedule, slot: DateTime<Utc>) -> String {
        slot.with_timezone(&s.timezone()).to_rfc3339()
    }

    /// Checks `(after, expected next slot or "none")` pairs.
    fn check_next(s: &CronSchedule, cases: &[(&str, &str)]) {
        for (after, want) in cases {
            let got = s.next_after(at(after)).map(|t| show(s, t));
            assert_eq!(got.as_deref().unwrap_or("none"), *want, "after {after}");
        }
    }

    /// Checks that the slots in `(from, to]` are exactly `want` (hence no duplicates).
    fn check_slots(s: &CronSchedule, from: &str, to: &str, want: &[String]) {
        let got = s.slots_between(at(from), at(to), 10_000);
        let got: Vec<String> = got.into_iter().map(|t| show(s, t)).collect();
        assert_eq!(got, want, "({from}, {to}]");
    }

    /// `template` with "{}" replaced by each number of `range`, two digits wide.
    fn series(range: std::ops::RangeInclusive<u32>, template: &str) -> Vec<String> {
        range.map(|n| template.replace("{}", &format!("{n:02}"))).collect()
    }

    fn error(expr: &str) -> String {
        let err = CronSchedule::parse(expr, "UTC").unwrap_err();
        assert!(matches!(err, ScheduleError::Cron(_)));
        err.to_string()
    }

    #[test]
    fn parses_five_and_six_fields() {
        let five = sched("0 7 * * 1-5", "Europe/Amsterdam");
        assert_eq!(five.expression(), "0 7 * * 1-5");
        assert_eq!(five.timezone(), chrono_tz::Europe::Amsterdam);
        assert!(five.describe().contains("07:00"), "{}", five.describe());
        // Thursday noon -> Friday 07:00 CET.
        check_next(&five, &[("2026-01-01T12:00:00Z", "2026-01-02T07:00:00+01:00")]);
        // Strictly after, also with a sub-second `after`.
        let six = [
            ("2026-01-01T07:00:00Z", "2026-01-01T07:00:30+00:00"),
            ("2026-01-01T07:00:30Z", "2026-01-02T07:00:30+00:00"),
            ("2026-01-01T07:00:30.5Z", "2026-01-02T07:00:30+00:00"),
        ];
        check_next(&sched("30 0 7 * * *", "UTC"), &six);
        let daily = [("2026-01-01T00:00:00Z", "2026-01-02T00:00:00+00:00")];
        check_next(&sched("@daily", "UTC"), &daily);
    }

    #[test]
    fn invalid_expressions_explain_themselves() {
        let msg = error("0 25 * * *");
        assert!(msg.contains("the hour field \"25\" is invalid"), "{msg}");
        assert!(msg.contains("\"minute hour day-of-month month day-of-week\""));
        assert!(msg.contains("\"0 7 * * 1-5\" for 07:00 on weekdays"));
        assert!(error("0 7 * *").contains("has 4 fields"));
        assert!(error("0 0 7 * * * 2026").contains("has 7 fields"));
        assert!(error("  ").contains("empty"));
        assert!(error("@fortnightly").contains("unknown nickname, use @yearly"));
        // croner accepts these, then crawls through a field that matches nothing.
        assert!(error(",,, * * * * *").contains("second field \",,,\" has an empty list"));
        assert!(error("0 0 1, * *").contains("day-of-month field"));
    }

    #[test]
    fn invalid_zone_is_an_error() {
        let err = CronSchedule::parse("0 7 * * *", "Europe/Amsterdm").unwrap_err();
        assert!(matches!(&err, ScheduleError::TimeZone(m) if m.contains("Europe/Amsterdm")));
        assert!(err.to_string().contains("IANA"), "{err}");
    }

    #[test]
    fn garbage_never_panics() {
        let weird = "|*|@reboot|@hourly|*/0 * * * *|5-3 * * * *|0 0 * * 5#9|0 0 L * *|0 0 LW * *|\
            0 0 15W * *|0 0 * * 5L|? ? ? ? ?|0 0 ? * ?|99999999999 * * * *|-1 * * * *|0 0 0 * *|\
            0 0 * 13 *|a b c d e|0 0 * * +1|0 0 1 * +1|ß ß ß ß ß|,,, * * * *|1-/2 * * * *|\
            */61 * * * *|0 0 31 4 *|0 0 29 2 *";
        let zones = ["Pacific/Apia", "Pacific/Kiritimati", "Australia/Lord_Howe"];
        let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        for (expr, tz) in weird.split('|').flat_map(|e| zones.map(|z| (e, z))) {
            let Ok(s) = CronSchedule::parse(expr, tz) else {
                continue;
            };
            let _ = s.describe();
            for from in [min, max, at("2026-03-29T00:59:59Z")] {
                let _ = s.next_after(from);
                let _ = s.slots_between(from, max, 3);
            }
        }
    }

    #[test]
    fn amsterdam_daily_briefing_across_both_changes() {
        let s = sched("0 7 * * *", "Europe/Amsterdam");
        // Spring forward on Sunday 2026-03-29.
        let mut want = series(26..=28, "2026-03-{}T07:00:00+01:00");
        want.extend(series(29..=31, "2026-03-{}T07:00:00+02:00"));
        want.extend(series(1..=1, "2026-04-{}T07:00:00+02:00"));
        check_slots(&s, "2026-03-26T00:00:00Z", "2026-04-01T23:00:00Z", &want);
        // Fall back on Sunday 2026-10-25.
        let mut want = series(22..=24, "2026-10-{}T07:00:00+02:00");
        want.extend(series(25..=28, "2026-10-{}T07:00:00+01:00"));
        check_slots(&s, "2026-10-22T00:00:00Z", "2026-10-28T23:00:00Z", &want);
    }

    #[test]
    fn new_york_daily_and_weekday_briefings() {
        // DST starts Sunday 2026-03-08 and ends Sunday 2026-11-01.
        let s = sched("0 7 * * *", "America/New_York");
        let mut want = series(5..=7, "2026-03-{}T07:00:00-05:00");
        want.extend(series(8..=11, "2026-03-{}T07:00:00-04:00"));
        check_slots(&s, "2026-03-05T00:00:00Z", "2026-03-11T23:00:00Z", &want);
        let s = sched("0 7 * * 1-5", "America/New_York");
        let mut want = series(2..=6, "2026-03-{}T07:00:00-05:00");
        want.extend(series(9..=13, "2026-03-{}T07:00:00-04:00"));
        check_slots(&s, "2026-03-01T00:00:00Z", "2026-03-14T00:00:00Z", &want);
        let mut want = series(26..=30, "2026-10-{}T07:00:00-04:00");
        want.extend(series(2..=6, "2026-11-{}T07:00:00-05:00"));
        check_slots(&s, "2026-10-25T00:00:00Z", "2026-11-07T00:00:00Z", &want);
    }

    #[test]
    fn amsterdam_0230_in_the_gap_and_the_repeat() {
        let s = sched("30 2 * * *", "Europe/Amsterdam");
        // 2026-03-29 02:30 does not exist: 03:00 CEST (= 01:00Z) instead, same day.
        assert_eq!(at("2026-03-29T03:00:00+02:00"), at("2026-03-29T01:00:00Z"));
        let cases = [
            ("2026-03-28T00:00:00Z", "2026-03-28T02:30:00+01:00"),
            ("2026-03-28T01:30:00Z", "2026-03-29T03:00:00+02:00"),
            ("2026-03-29T01:00:00Z", "2026-03-30T02:30:00+02:00"),
            // 2026-10-25 02:30 happens twice: only the first pass (CEST, 00:30Z) fires,
            // also when asked from inside the second pass (02:10 / 02:30 CET).
            ("2026-10-24T00:30:00Z", "2026-10-25T02:30:00+02:00"),
            ("2026-10-25T00:30:00Z", "2026-10-26T02:30:00+01:00"),
            ("2026-10-25T01:10:00Z", "2026-10-26T02:30:00+01:00"),
            ("2026-10-25T01:30:00Z", "2026-10-26T02:30:00+01:00"),
        ];
        check_next(&s, &cases);
    }

    #[test]
    fn new_york_gap_and_repeat() {
        let cases = [
            ("2026-03-08T00:00:00Z", "2026-03-08T03:00:00-04:00"),
            ("2026-03-08T07:00:00Z", "2026-03-09T02:30:00-04:00"),
        ];
        check_next(&sched("30 2 * * *", "America/New_York"), &cases);
        // 01:30 happens twice on 2026-11-01: only 01:30 EDT (05:30Z) fires.
        let cases = [
            ("2026-11-01T00:00:00Z", "2026-11-01T01:30:00-04:00"),
            ("2026-11-01T05:30:00Z", "2026-11-02T01:30:00-05:00"),
        ];
        check_next(&sched("30 1 * * *", "America/New_York"), &cases);
    }

    #[test]
    fn hourly_across_dst_has_no_duplicates() {
        let s = sched("0 * * * *", "Europe/Amsterdam");
        // Local 2026-03-29 has 23 hours and 23 slots: 02:00 merges into 03:00.
        let mut want = series(0..=1, "2026-03-29T{}:00:00+01:00");
        want.extend(series(3..=23, "2026-03-29T{}:00:00+02:00"));
        check_slots(&s, "2026-03-28T22:59:59Z", "2026-03-29T21:59:59Z", &want);
        // Local 2026-10-25 has 25 hours and 24 slots: 02:00 fires in CEST only.
        let mut want = series(0..=2, "2026-10-25T{}:00:00+02:00");
        want.extend(series(3..=23, "2026-10-25T{}:00:00+01:00"));
        check_slots(&s, "2026-10-24T21:59:59Z", "2026-10-25T22:59:59Z", &want);
        // Quarter hours in the gap all land on 03:00, once.
        let s = sched("*/15 * * * *", "Europe/Amsterdam");
        let want = ["01:30:00+01:00", "01:45:00+01:00", "03:00:00+02:00"];
        let want = want.map(|t| format!("2026-03-29T{t}"));
        check_slots(&s, "2026-03-29T00:15:00Z", "2026-03-29T01:00:00Z", &want);
    }

    #[test]
    fn a_skipped_day_fires_after_it() {
        // Samoa skipped 2011-12-30 entirely: its noon slot fires at 00:00 on the 31st.
        let cases = [
            ("2011-12-29T00:00:00Z", "2011-12-29T12:00:00-10:00"),
            ("2011-12-29T22:00:00Z", "2011-12-31T00:00:00+14:00"),
            ("2011-12-30T10:00:00Z", "2011-12-31T12:00:00+14:00"),
        ];
        check_next(&sched("0 12 * * *", "Pacific/Apia"), &cases);
    }

    #[test]
    fn slots_between_counts_and_limits() {
        let s = sched("0 7 * * *", "Europe/Amsterdam");
        let week = series(1..=7, "2026-06-{}T07:00:00+02:00");
        check_slots(&s, "2026-06-01T00:00:00Z", "2026-06-08T00:00:00Z", &week);
        assert_eq!(at(&week[0]), at("2026-06-01T05:00:00Z"));
        // Half-open: `from` is excluded, `to` included.
        let second = &week[1..2];
        check_slots(&s, "2026-06-01T05:00:00Z", "2026-06-02T05:00:00Z", second);
        let (from, to) = (at("2026-06-01T00:00:00Z"), at("2026-07-01T00:00:00Z"));
        let first: Vec<_> = week[..3].iter().map(|t| at(t)).collect();
        assert_eq!(s.slots_between(from, to, 3), first);
        assert!(s.slots_between(from, to, 0).is_empty());
        assert!(s.slots_between(to, from, 10).is_empty());
    }

    fn once(window: TimeDelta) -> SlotPolicy {
        SlotPolicy {
            catch_up: CatchUp::Once,
            window,
        }
    }

    const SKIP: SlotPolicy = SlotPolicy {
        catch_up: CatchUp::Skip,
        window: DEFAULT_CATCH_UP_WINDOW,
    };

    #[test]
    fn due_slots_on_time_fires_each_slot_once() {
        let s = sched("0 7 * * *", "Europe/Amsterdam");
        let last = Some(at("2026-06-01T05:00:00Z"));
        for policy in [SlotPolicy::default(), SKIP] {
            // Before the slot nothing is due; at and shortly after it, exactly it.
            assert_eq!(
                due_slots(&s, last, at("2026-06-02T04:59:59Z"), policy),
                DueSlots::default()
            );
            let due = due_slots(&s, last, at("2026-06-02T05:00:10Z"), policy);
            assert_eq!(due.fire, Some(at("2026-06-02T05:00:00Z")));
            assert_eq!((due.skipped, due.last_skipped), (0, None));
            // Once it is the last handled slot it is not due again.
            let again = due_slots(&s, due.fire, at("2026-06-02T05:00:20Z"), policy);
            assert_eq!(again, DueSlots::default());
        }
    }

    #[test]
    fn due_slots_after_downtime() {
        let s = sched("0 7 * * *", "Europe/Amsterdam");
        let last = Some(at("2026-06-01T05:00:00Z"));
        let slot = at("2026-06-02T05:00:00Z");
        // 59 minutes late: `once` fires it, `skip` does not.
        let now = at("2026-06-02T05:59:00Z");
        let due = due_slots(&s, last, now, SlotPolicy::default());
        assert_eq!((due.fire, due.skipped), (Some(slot), 0));
        let due = due_slots(&s, last, now, SKIP);
        assert_eq!((due.fire, due.last_skipped, due.skipped), (None, Some(slot), 1));
        // Two hours late: too late for the default window, in time for a 3h one.
        let now = at("2026-06-02T07:00:00Z");
        let due = due_slots(&s, last, now, SlotPolicy::default());
        assert_eq!((due.fire, due.last_skipped), (None, Some(slot)));
        let due = due_slots(&s, last, now, once(TimeDelta::hours(3)));
        assert_eq!(due.fire, Some(slot));
        // Three days down: only the latest slot within the window fires, once.
        let now = at("2026-06-04T05:30:00Z");
        let due = due_slots(&s, last, now, SlotPolicy::default());
        assert_eq!(due.fire, Some(at("2026-06-04T05:00:00Z")));
        assert_eq!((due.last_skipped, due.skipped), (Some(at("2026-06-03T05:00:00Z")), 2));
        // A quarter-hourly schedule 40 minutes down fires only its latest slot.
        let q = sched("*/15 * * * *", "UTC");
        let due = due_slots(
            &q,
            Some(at("2026-06-01T10:00:00Z")),
            at("2026-06-01T10:40:00Z"),
            SlotPolicy::default(),
        );
        assert_eq!(due.fire, Some(at("2026-06-01T10:30:00Z")));
        assert_eq!((due.last_skipped, due.skipped), (Some(at("2026-06-01T10:15:00Z")), 1));
    }

    #[test]
    fn due_slots_first_run_and_long_downtime_are_bounded() {
        let s = sched("0 7 * * *", "UTC");
        // Never run: the past is downtime, so only a slot within the window fires.
        let due = due_slots(&s, None, at("2026-06-02T07:30:00Z"), SlotPolicy::default());
        assert_eq!((due.fire, due.skipped), (Some(at("2026-06-02T07:00:00Z")), 0));
        assert_eq!(
            due_slots(&s, None, at("2026-06-02T07:30:00Z"), SKIP),
            DueSlots::default()
        );
        // A year down on a per-minute schedule: a week of slots is looked at, no more.
        let m = sched("* * * * *", "UTC");
        let due = due_slots(&m, Some(at("2025-06-01T00:00:00Z")), at("2026-06-01T00:00:30Z"), SKIP);
        assert_eq!(due.fire, Some(at("2026-06-01T00:00:00Z")));
        assert_eq!(due.skipped, 7 * 24 * 60 - 1);
    }

    #[test]
    fn due_slots_across_dst_fire_once_at_local_time() {
        // Ticking every 5 minutes through both change days: each day's slot fires
        // exactly once, at the documented instant.
        let cases = [
            (
                "0 7 * * *",
                "Europe/Amsterdam",
                "2026-03-29",
                "2026-03-29T07:00:00+02:00",
            ),
            (
                "0 7 * * *",
                "Europe/Amsterdam",
                "2026-10-25",
                "2026-10-25T07:00:00+01:00",
            ),
            (
                "0 7 * * *",
                "America/New_York",
                "2026-03-08",
                "2026-03-08T07:00:00-04:00",
            ),
            (
                "0 7 * * *",
                "America/New_York",
                "2026-11-01",
                "2026-11-01T07:00:00-05:00",
            ),
            (
                "30 2 * * *",
                "Europe/Amsterdam",
                "2026-03-29",
                "2026-03-29T03:00:00+02:00",
            ),
            (
                "30 2 * * *",
                "Europe/Amsterdam",
                "2026-10-25",
                "2026-10-25T02:30:00+02:00",
            ),
            (
                "30 1 * * *",
                "America/New_York",
                "2026-11-01",
                "2026-11-01T01:30:00-04:00",
            ),
        ];
        for (expr, tz, day, want) in cases {
            let s = sched(expr, tz);
            let zone = s.timezone();
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
            let local_midnight = zone.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap()).unwrap();
            let (mut now, end) = (local_midnight.to_utc(), local_midnight.to_utc() + TimeDelta::hours(25));
            let mut last = Some(now);
            let mut fired = Vec::new();
            while now < end {
                now += TimeDelta::minutes(5);
                let due = due_slots(&s, last, now, SKIP);
                assert_eq!(due.skipped, 0, "{expr} {tz}");
                if let Some(slot) = due.fire {
                    fired.push(show(&s, slot));
                    last = Some(slot);
                }
            }
            assert_eq!(fired, [want], "{expr} in {tz} on {day}");
        }
    }

    #[test]
    fn never_firing_schedule_returns_nothing_quickly() {
        let started = std::time::Instant::now();
        let s = sched("0 0 30 2 *", "Europe/Amsterdam");
        check_next(&s, &[("2026-01-01T00:00:00Z", "none")]);
        let (from, to) = (at("2026-01-01T00:00:00Z"), DateTime::<Utc>::MAX_UTC);
        assert!(s.slots_between(from, to, 100).is_empty());
        let cases = [("2026-01-01T00:00:00Z", "2028-02-29T00:00:00+00:00")];
        check_next(&sched("0 0 29 2 *", "UTC"), &cases);
        // A Monday 29 February next comes in 2044, past the five-year horizon.
        let cases = [("2026-01-01T00:00:00Z", "none")];
        check_next(&sched("0 0 29 2 +1", "UTC"), &cases);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
