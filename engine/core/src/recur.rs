//! Recurrence rules for repeating things ("every monday", "every 2 weeks", "on the 1st").
//!
//! Pure: a rule is read from what a member typed, and the next occurrence is computed
//! from the previous one in an IANA zone, so "every monday 18:00" stays at 18:00 local
//! time across daylight-saving changes. Templates reach this through the `next_due`
//! filter, `ask` through the `recurrence` validator.

use chrono::{DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, NaiveTime, Weekday};

/// The days of the week in Dutch, Monday first: said in rules here, and in dates by the
/// templates' `datefmt`.
pub(crate) const DUTCH_WEEKDAYS: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
use chrono_tz::Tz;
use regex::Regex;
use std::sync::LazyLock;

use crate::parse::{normalize, resolve_local};

/// A rule for when something comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Every n days (1 = daily).
    Days(u32),
    /// Every n weeks, on the same weekday (1 = weekly).
    Weeks(u32),
    /// Every week on this weekday.
    Weekday(Weekday),
    /// Every month on the same day as the previous occurrence (clamped: after 28 Feb,
    /// the 28th; `MonthDay(31)` is the rule that keeps to the month's end).
    Monthly,
    /// Every month on this day (1–31), clamped to the month's last day.
    MonthDay(u32),
}

/// Why a recurrence could not be read or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurError {
    /// The text is not a rule Alfred knows.
    #[error("not a recurrence: `{0}` (try \"daily\", \"every monday\", \"every 2 weeks\", \"on the 1st\")")]
    UnknownRule(String),
    /// The text says it does not repeat, so there is no next time.
    #[error("`{0}` does not repeat")]
    NoRepeat(String),
    /// Not a date/time in RFC 3339.
    #[error("not a date/time: `{0}`")]
    BadDate(String),
    /// Not an IANA time zone name.
    #[error("unknown time zone `{0}`")]
    BadZone(String),
    /// Not a time of day ("18:00").
    #[error("not a time of day: `{0}` (like \"18:00\")")]
    BadTime(String),
    /// The next occurrence is beyond what dates can hold (or absurdly far).
    #[error("no next occurrence within range")]
    OutOfRange,
}

/// What a member typed when asked "does it repeat?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// "no", "once", "none", …
    Once,
    /// A rule.
    Repeats(Rule),
}

/// Largest n in "every n days" / "every n weeks": beyond that it is not a routine.
const MAX_DAYS: u32 = 366;
const MAX_WEEKS: u32 = 52;
/// Steps tried when catching up to `after` (a daily rule over 100 years).
const MAX_STEPS: u32 = 40_000;

static EVERY_N: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:every|each) (?P<n>\d{1,3}|two|three|four) (?P<unit>days?|weeks?)$").expect("static regex")
});
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?:every|each) month |monthly )?(?P<on>on )?(?P<the>the |every |each )?(?P<d>\d{1,2}) ?(?P<sfx>st|nd|rd|th)?(?: of (?:the|each|every) month)?$",
    )
    .expect("static regex")
});

/// Reads an answer to "does it repeat?": a rule, or one of the ways to say it does not.
/// Case, punctuation, emoji and a trailing "pls" do not matter.
pub fn parse_answer(text: &str) -> Option<Answer> {
    let n = normalize(text);
    let n = n
        .strip_suffix(" pls")
        .or_else(|| n.strip_suffix(" please"))
        .unwrap_or(&n)
        .trim();
    let n = n
        .strip_prefix("repeat ")
        .or_else(|| n.strip_prefix("repeats "))
        .unwrap_or(n);
    if matches!(
        n,
        "no" | "n"
            | "nope"
            | "none"
            | "once"
            | "just once"
            | "only once"
            | "one time"
            | "never"
            | "no repeat"
            | "dont repeat"
            | "don t repeat"
            | "does not repeat"
            | "nee"
            | "eenmalig"
            | "een keer"
            | "1 keer"
            | "niet"
            | "nooit"
            | "nein"
    ) {
        return Some(Answer::Once);
    }
    parse_rule(n).map(Answer::Repeats)
}

/// Reads a rule ("daily", "every monday", "mondays", "every other week", "on the 15th").
pub fn parse_rule(text: &str) -> Option<Rule> {
    let n = normalize(text);
    parse_english_rule(&n).or_else(|| parse_english_rule(&dutch_rule_in_english(&n)?))
}

/// A Dutch rule said in the English words the parser reads ("elke maandag" is "every
/// monday", "om de week" "every other week", "op de 15e" "on the 15th"), or `None`
/// when no word was Dutch.
fn dutch_rule_in_english(n: &str) -> Option<String> {
    let whole = match n {
        "om de dag" | "om de andere dag" | "elke twee dagen" => Some("every other day"),
        "om de week" | "om de andere week" | "om de twee weken" | "tweewekelijks" => Some("every other week"),
        "dagelijks" | "elke dag" | "iedere dag" | "elke ochtend" | "elke avond" => Some("daily"),
        "wekelijks" | "elke week" | "iedere week" | "een keer per week" | "1 keer per week" => Some("weekly"),
        "maandelijks" | "elke maand" | "iedere maand" | "een keer per maand" => Some("monthly"),
        _ => None,
    };
    if let Some(w) = whole {
        return Some(w.to_owned());
    }
    let mut changed = false;
    let words: Vec<String> = n
        .split(' ')
        .map(|w| {
            let en = match w {
                "elke" | "iedere" | "ieder" => "every",
                "op" => "on",
                "de" => "the",
                "dag" => "day",
                "dagen" => "days",
                "weken" => "weeks",
                "maand" => "month",
                "twee" => "two",
                "drie" => "three",
                "vier" => "four",
                "maandag" | "maandags" => "monday",
                "dinsdag" | "dinsdags" => "tuesday",
                "woensdag" | "woensdags" => "wednesday",
                "donderdag" | "donderdags" => "thursday",
                "vrijdag" | "vrijdags" => "friday",
                "zaterdag" | "zaterdags" => "saturday",
                "zondag" | "zondags" => "sunday",
                _ => {
                    // "15e", "1ste": a Dutch ordinal.
                    let digits = w.trim_end_matches(|c: char| c.is_alphabetic());
                    if !digits.is_empty() && digits.len() < w.len() && matches!(&w[digits.len()..], "e" | "ste" | "de")
                    {
                        changed = true;
                        return format!("{digits}th");
                    }
                    return w.to_owned();
                }
            };
            changed = true;
            // "maandags" (on Mondays) is a routine by itself, like "mondays".
            if w.ends_with("dags") {
                format!("{en}s")
            } else {
                en.to_owned()
            }
        })
        .collect();
    changed.then(|| words.join(" "))
}

fn parse_english_rule(n: &str) -> Option<Rule> {
    let rule = match n {
        "daily" | "every day" | "each day" | "everyday" | "every morning" | "every evening" | "every night" => {
            Rule::Days(1)
        }
        "every other day" | "every second day" => Rule::Days(2),
        "weekly" | "every week" | "each week" | "once a week" => Rule::Weeks(1),
        "every other week" | "every second week" | "biweekly" | "fortnightly" | "every fortnight" => Rule::Weeks(2),
        "monthly" | "every month" | "each month" | "once a month" => Rule::Monthly,
        _ => {
            return parse_every_n(n)
                .or_else(|| parse_weekday_rule(n))
                .or_else(|| parse_month_day(n));
        }
    };
    Some(rule)
}

fn parse_every_n(n: &str) -> Option<Rule> {
    let c = EVERY_N.captures(n)?;
    let count = match &c["n"] {
        "two" => 2,
        "three" => 3,
        "four" => 4,
        digits => digits.parse::<u32>().ok()?,
    };
    if c["unit"].starts_with("day") {
        (1..=MAX_DAYS).contains(&count).then_some(Rule::Days(count))
    } else {
        (1..=MAX_WEEKS).contains(&count).then_some(Rule::Weeks(count))
    }
}

fn parse_weekday_rule(n: &str) -> Option<Rule> {
    let rest = ["every ", "each ", "on ", "weekly on "]
        .iter()
        .find_map(|p| n.strip_prefix(p))
        .unwrap_or(n);
    let (day, plural) = match rest.strip_suffix('s') {
        Some(d) if weekday(d).is_some() => (d, true),
        _ => (rest, false),
    };
    // A bare "monday" is a date, not a routine; "mondays" or "every monday" is.
    (plural || rest.len() != n.len())
        .then(|| weekday(day))
        .flatten()
        .map(Rule::Weekday)
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn parse_month_day(n: &str) -> Option<Rule> {
    let c = MONTH_DAY.captures(n)?;
    let d: u32 = c["d"].parse().ok()?;
    // A bare number is too easily something else: it needs "on the", "every" or "1st".
    let marked = c.name("sfx").is_some() || (c.name("on").is_some() && c.name("the").is_some());
    (marked && (1..=31).contains(&d)).then_some(Rule::MonthDay(d))
}

impl std::fmt::Display for Rule {
    /// The canonical text, which `parse_rule` reads back to the same rule.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rule::Days(1) => f.write_str("daily"),
            Rule::Days(n) => write!(f, "every {n} days"),
            Rule::Weeks(1) => f.write_str("weekly"),
            Rule::Weeks(n) => write!(f, "every {n} weeks"),
            Rule::Weekday(w) => write!(f, "every {}", weekday_name(w)),
            Rule::Monthly => f.write_str("monthly"),
            Rule::MonthDay(d) => write!(f, "on the {d}{}", ordinal_suffix(d)),
        }
    }
}

impl Rule {
    /// The rule as a member reads it in `language` ("elke maandag" in Dutch); English
    /// (the canonical text) for any other language.
    pub fn said_in(&self, language: &str) -> String {
        if language.split(['-', '_']).next() != Some("nl") {
            return self.to_string();
        }
        match *self {
            Rule::Days(1) => "elke dag".to_owned(),
            Rule::Days(2) => "om de dag".to_owned(),
            Rule::Days(n) => format!("elke {n} dagen"),
            Rule::Weeks(1) => "elke week".to_owned(),
            Rule::Weeks(2) => "om de week".to_owned(),
            Rule::Weeks(n) => format!("elke {n} weken"),
            Rule::Weekday(w) => format!("elke {}", DUTCH_WEEKDAYS[w.num_days_from_monday() as usize]),
            Rule::Monthly => "elke maand".to_owned(),
            Rule::MonthDay(d) => format!("op de {d}e"),
        }
    }
}

fn weekday_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

fn ordinal_suffix(d: u32) -> &'static str {
    match (d % 10, d % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

fn last_day_of_month(year: i32, month: u32) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = first.checked_add_months(Months::new(1))?;
    next.pred_opt().map(|d| d.day())
}

/// Day `day` of the month `date` is in, clamped to its last day.
fn clamped(date: NaiveDate, day: u32) -> Option<NaiveDate> {
    let last = last_day_of_month(date.year(), date.month())?;
    date.with_day(day.min(last))
}

/// The next date after `date` (strictly) for the rule; `anchor` is the day of month the
/// walk started on, so catching up "monthly" from Jan 31 past February lands on Mar 31.
fn next_date(rule: Rule, date: NaiveDate, anchor: u32) -> Option<NaiveDate> {
    match rule {
        Rule::Days(n) => date.checked_add_days(Days::new(n.into())),
        Rule::Weeks(n) => date.checked_add_days(Days::new(7 * u64::from(n))),
        Rule::Weekday(w) => {
            let ahead = (w.num_days_from_monday() + 7 - date.weekday().num_days_from_monday() - 1) % 7 + 1;
            date.checked_add_days(Days::new(ahead.into()))
        }
        Rule::Monthly | Rule::MonthDay(_) => {
            let day = if let Rule::MonthDay(d) = rule { d } else { anchor };
            match clamped(date, day) {
                Some(this_month) if this_month > date => Some(this_month),
                _ => clamped(date.with_day(1)?.checked_add_months(Months::new(1))?, day),
            }
        }
    }
}

/// The first occurrence of `rule` strictly after `prev` (and strictly after `after`, if
/// given), at the same local time of day in `tz` as `prev`. A local time that does not
/// exist that day (spring forward) moves to the end of the gap; an ambiguous one takes
/// the earlier instant. The result is in `tz`'s offset on that date.
pub fn next_after(
    prev: DateTime<FixedOffset>,
    rule: Rule,
    tz: Tz,
    after: Option<DateTime<FixedOffset>>,
) -> Result<DateTime<FixedOffset>, RecurError> {
    next_after_at(prev, rule, tz, after, None)
}

/// `next_after`, at the local time of day `at` instead of `prev`'s. A series keeps its
/// own time this way: when `prev` fell into a spring-forward gap (02:30 became 03:00),
/// the occurrences after it go back to 02:30 instead of staying at 03:00 for good.
pub fn next_after_at(
    prev: DateTime<FixedOffset>,
    rule: Rule,
    tz: Tz,
    after: Option<DateTime<FixedOffset>>,
    at: Option<NaiveTime>,
) -> Result<DateTime<FixedOffset>, RecurError> {
    let local = prev.with_timezone(&tz).naive_local();
    let (mut date, time, anchor) = (local.date(), at.unwrap_or(local.time()), local.day());
    for _ in 0..MAX_STEPS {
        date = next_date(rule, date, anchor).ok_or(RecurError::OutOfRange)?;
        let at = resolve_local(date.and_time(time), tz).with_timezone(&tz).fixed_offset();
        if at > prev && after.is_none_or(|a| at > a) {
            return Ok(at);
        }
    }
    Err(RecurError::OutOfRange)
}

/// `next_after` on text, as the `next_due` template filter takes it: RFC 3339 values, a
/// rule as typed (or canonical), an IANA zone name. Gives RFC 3339 text.
pub fn next_due(prev: &str, rule: &str, tz: &str, after: Option<&str>) -> Result<String, RecurError> {
    next_due_at(prev, rule, tz, after, None)
}

/// `next_due` at the series' local time of day `at`: a time ("18:00") or a date/time in
/// RFC 3339 (usually the series' first occurrence), whose time of day in `tz` is used.
/// An empty `at` is `prev`'s time.
pub fn next_due_at(
    prev: &str,
    rule: &str,
    tz: &str,
    after: Option<&str>,
    at: Option<&str>,
) -> Result<String, RecurError> {
    let zone: Tz = tz.parse().map_err(|_| RecurError::BadZone(tz.to_owned()))?;
    let at = match at.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&zone).time())
                .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
                .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
                .map_err(|_| RecurError::BadTime(t.to_owned()))?,
        ),
        None => None,
    };
    let rule = match parse_answer(rule) {
        Some(Answer::Repeats(r)) => r,
        Some(Answer::Once) => return Err(RecurError::NoRepeat(rule.to_owned())),
        None => return Err(RecurError::UnknownRule(rule.to_owned())),
    };
    let zone: Tz = tz.parse().map_err(|_| RecurError::BadZone(tz.to_owned()))?;
    let read = |s: &str| DateTime::parse_from_rfc3339(s).map_err(|_| RecurError::BadDate(s.to_owned()));
    let prev = read(prev)?;
    // An empty `after` is "none": templates pass '' when they have no cut-off.
    let after = after.filter(|a| !a.trim().is_empty()).map(read).transpose()?;
    Ok(next_after_at(prev, rule, zone, after, at)?.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AMS: &str = "Europe/Amsterdam";

    fn next(prev: &str, rule: &str) -> String {
        next_due(prev, rule, AMS, None).unwrap()
    }

    #[test]
    fn reads_the_ways_dutch_people_say_it() {
        let cases = [
            ("elke dag", Rule::Days(1)),
            ("Dagelijks!", Rule::Days(1)),
            ("om de dag", Rule::Days(2)),
            ("elke 3 dagen", Rule::Days(3)),
            ("wekelijks", Rule::Weeks(1)),
            ("elke 2 weken", Rule::Weeks(2)),
            ("om de week", Rule::Weeks(2)),
            ("elke maandag", Rule::Weekday(Weekday::Mon)),
            ("iedere vrijdag 👍", Rule::Weekday(Weekday::Fri)),
            ("zondags", Rule::Weekday(Weekday::Sun)),
            ("maandelijks", Rule::Monthly),
            ("op de 15e", Rule::MonthDay(15)),
            ("op de 1ste", Rule::MonthDay(1)),
        ];
        for (text, rule) in cases {
            assert_eq!(parse_rule(text), Some(rule), "{text}");
        }
        for text in ["nee", "eenmalig", "een keer", "nooit"] {
            assert_eq!(parse_answer(text), Some(Answer::Once), "{text}");
        }
        // Said back in Dutch, and read back to the same rule.
        for (text, said) in [
            ("every monday", "elke maandag"),
            ("every other week", "om de week"),
            ("on the 15th", "op de 15e"),
        ] {
            let rule = parse_rule(text).unwrap();
            assert_eq!(rule.said_in("nl"), said);
            assert_eq!(parse_rule(said), Some(rule));
            assert_eq!(rule.said_in("en"), rule.to_string());
        }
        // A bare weekday is a date, not a routine, in Dutch too.
        assert_eq!(parse_rule("maandag"), None);
    }

    #[test]
    fn reads_the_ways_people_say_it() {
        let cases = [
            ("daily", Rule::Days(1)),
            ("Every day!", Rule::Days(1)),
            ("every 3 days", Rule::Days(3)),
            ("every other day", Rule::Days(2)),
            ("weekly", Rule::Weeks(1)),
            ("every 2 weeks", Rule::Weeks(2)),
            ("Every two weeks", Rule::Weeks(2)),
            ("every other week", Rule::Weeks(2)),
            ("every monday", Rule::Weekday(Weekday::Mon)),
            ("Mondays 👍", Rule::Weekday(Weekday::Mon)),
            ("on fridays", Rule::Weekday(Weekday::Fri)),
            ("every sat", Rule::Weekday(Weekday::Sat)),
            ("monthly", Rule::Monthly),
            ("on the 1st", Rule::MonthDay(1)),
            ("every 1st", Rule::MonthDay(1)),
            ("the 15th", Rule::MonthDay(15)),
            ("on the 31st of the month", Rule::MonthDay(31)),
            ("every month on the 2nd", Rule::MonthDay(2)),
            ("on the 22", Rule::MonthDay(22)),
        ];
        for (text, rule) in cases {
            assert_eq!(parse_rule(text), Some(rule), "{text}");
            // The canonical form reads back to the same rule.
            assert_eq!(parse_rule(&rule.to_string()), Some(rule), "{rule}");
        }
        for text in [
            "monday",
            "15",
            "on the 32nd",
            "every 0 days",
            "sometimes",
            "every 99 weeks",
            "",
        ] {
            assert_eq!(parse_rule(text), None, "{text}");
        }
    }

    #[test]
    fn no_once_none_mean_it_does_not_repeat() {
        for text in ["no", "No.", "once", "none", "just once pls", "never", "nee"] {
            assert_eq!(parse_answer(text), Some(Answer::Once), "{text}");
        }
        assert_eq!(
            parse_answer("repeat every monday pls"),
            Some(Answer::Repeats(Rule::Weekday(Weekday::Mon)))
        );
        assert_eq!(parse_answer("maybe"), None);
    }

    #[test]
    fn canonical_names() {
        assert_eq!(Rule::MonthDay(1).to_string(), "on the 1st");
        assert_eq!(Rule::MonthDay(2).to_string(), "on the 2nd");
        assert_eq!(Rule::MonthDay(13).to_string(), "on the 13th");
        assert_eq!(Rule::MonthDay(23).to_string(), "on the 23rd");
        assert_eq!(Rule::Weeks(2).to_string(), "every 2 weeks");
        assert_eq!(Rule::Weekday(Weekday::Sun).to_string(), "every sunday");
    }

    #[test]
    fn next_occurrences() {
        // Monday 5 Jan 2026.
        assert_eq!(next("2026-01-05T18:00:00+01:00", "daily"), "2026-01-06T18:00:00+01:00");
        assert_eq!(
            next("2026-01-05T18:00:00+01:00", "every monday"),
            "2026-01-12T18:00:00+01:00"
        );
        assert_eq!(
            next("2026-01-05T18:00:00+01:00", "every friday"),
            "2026-01-09T18:00:00+01:00"
        );
        assert_eq!(
            next("2026-01-05T18:00:00+01:00", "every 2 weeks"),
            "2026-01-19T18:00:00+01:00"
        );
        // Across a month end and a year end.
        assert_eq!(
            next("2026-01-28T09:00:00+01:00", "on the 1st"),
            "2026-02-01T09:00:00+01:00"
        );
        assert_eq!(next("2026-12-31T09:00:00+01:00", "daily"), "2027-01-01T09:00:00+01:00");
        assert_eq!(
            next("2026-01-10T09:00:00+01:00", "on the 15th"),
            "2026-01-15T09:00:00+01:00"
        );
    }

    #[test]
    fn month_end_is_clamped_without_drifting() {
        assert_eq!(
            next("2026-01-31T09:00:00+01:00", "on the 31st"),
            "2026-02-28T09:00:00+01:00"
        );
        assert_eq!(
            next("2026-02-28T09:00:00+01:00", "on the 31st"),
            "2026-03-31T09:00:00+02:00"
        );
        assert_eq!(
            next("2028-01-31T09:00:00+01:00", "on the 31st"),
            "2028-02-29T09:00:00+01:00"
        );
        assert_eq!(
            next("2026-01-31T09:00:00+01:00", "monthly"),
            "2026-02-28T09:00:00+01:00"
        );
        assert_eq!(
            next("2026-04-30T09:00:00+02:00", "on the 31st"),
            "2026-05-31T09:00:00+02:00"
        );
    }

    #[test]
    fn local_time_survives_daylight_saving() {
        // Summer time starts 29 Mar 2026: the offset changes, 18:00 stays 18:00.
        assert_eq!(next("2026-03-28T18:00:00+01:00", "daily"), "2026-03-29T18:00:00+02:00");
        assert_eq!(next("2026-10-24T18:00:00+02:00", "daily"), "2026-10-25T18:00:00+01:00");
        // 02:30 does not exist on 29 Mar: the end of the gap.
        assert_eq!(next("2026-03-28T02:30:00+01:00", "daily"), "2026-03-29T03:00:00+02:00");
        // A value written in another offset is read in the zone.
        assert_eq!(next("2026-01-05T17:00:00+00:00", "daily"), "2026-01-06T18:00:00+01:00");
    }

    #[test]
    fn a_series_goes_back_to_its_own_time_after_the_spring_forward_gap() {
        // Daily at 02:30: on 29 Mar 2026 that is 03:00 (the gap), the day after 02:30 again.
        let gap_day = next_due_at("2026-03-28T02:30:00+01:00", "daily", AMS, None, Some("02:30")).unwrap();
        assert_eq!(gap_day, "2026-03-29T03:00:00+02:00");
        let after = next_due_at(&gap_day, "daily", AMS, None, Some("02:30")).unwrap();
        assert_eq!(after, "2026-03-30T02:30:00+02:00");
        // The first occurrence, written in another member's offset, gives the same time.
        let first = "2026-03-20T21:30:00-04:00";
        assert_eq!(next_due_at(&gap_day, "daily", AMS, None, Some(first)).unwrap(), after);
        // Without the series' time, the gap's 03:00 would stick.
        assert_eq!(next(&gap_day, "daily"), "2026-03-30T03:00:00+02:00");
        // Empty values are "not given"; a bad time is an error, not a panic.
        assert_eq!(
            next_due_at(&gap_day, "daily", AMS, Some(""), Some("")).unwrap(),
            "2026-03-30T03:00:00+02:00"
        );
        assert!(matches!(
            next_due_at(&gap_day, "daily", AMS, None, Some("25:99")),
            Err(RecurError::BadTime(_))
        ));
    }

    #[test]
    fn catches_up_past_after_keeping_the_rhythm() {
        let got = next_due(
            "2026-01-05T18:00:00+01:00",
            "every 2 weeks",
            AMS,
            Some("2026-02-10T12:00:00+01:00"),
        )
        .unwrap();
        assert_eq!(got, "2026-02-16T18:00:00+01:00");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            next_due("2026-01-05T18:00:00+01:00", "once", AMS, None),
            Err(RecurError::NoRepeat(_))
        ));
        assert!(matches!(
            next_due("2026-01-05T18:00:00+01:00", "whenever", AMS, None),
            Err(RecurError::UnknownRule(_))
        ));
        assert!(matches!(
            next_due("tomorrow", "daily", AMS, None),
            Err(RecurError::BadDate(_))
        ));
        assert!(matches!(
            next_due("2026-01-05T18:00:00+01:00", "daily", "Mars/Olympus", None),
            Err(RecurError::BadZone(_))
        ));
        assert!(matches!(
            next_due("+262142-12-31T18:00:00+00:00", "daily", AMS, None),
            Err(RecurError::OutOfRange | RecurError::BadDate(_))
        ));
    }

    fn rules() -> impl Strategy<Value = Rule> {
        prop_oneof![
            (1u32..=MAX_DAYS).prop_map(Rule::Days),
            (1u32..=MAX_WEEKS).prop_map(Rule::Weeks),
            (0u8..7).prop_map(|d| Rule::Weekday(Weekday::try_from(d).expect("0..7"))),
            Just(Rule::Monthly),
            (1u32..=31).prop_map(Rule::MonthDay),
        ]
    }

    proptest! {
        /// The next occurrence is always later, keeps the local time of day unless it
        /// fell into a DST gap, and is at most a little over a year away.
        #[test]
        fn next_is_later(secs in 1_600_000_000i64..2_100_000_000, rule in rules(),
                         zone in prop::sample::select(vec!["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])) {
            let tz: Tz = zone.parse().unwrap();
            let prev = DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&tz).fixed_offset();
            let next = next_after(prev, rule, tz, None).unwrap();
            prop_assert!(next > prev);
            prop_assert!(next - prev <= chrono::Duration::days(7 * i64::from(MAX_WEEKS) + 1).max(chrono::Duration::days(i64::from(MAX_DAYS) + 1)));
            let (p, n) = (prev.with_timezone(&tz), next.with_timezone(&tz));
            prop_assert!(n.date_naive() > p.date_naive());
            if let Rule::MonthDay(d) = rule {
                prop_assert!(n.day() == d || n.day() == last_day_of_month(n.year(), n.month()).unwrap());
            }
            if let Rule::Weekday(w) = rule {
                prop_assert_eq!(n.weekday(), w);
            }
            // Re-reading the canonical name gives the same answer.
            let again = next_due(&prev.to_rfc3339(), &rule.to_string(), zone, None).unwrap();
            prop_assert_eq!(again, next.to_rfc3339());
        }

        /// Whatever is typed: reading it never panics, and a rule it reads to prints as
        /// canonical text that reads back to the same rule (chores store that text).
        #[test]
        fn typed_rules_round_trip_through_their_canonical_text(
            text in "(every |each |on the |on |the |monthly |repeat )?([0-9]{1,5}|two|other|second)?(st|nd|rd|th| days?| weeks?| monday| fridays|day|week|month)?( of the month)?( pls)?[.!]?|\\PC{0,30}"
        ) {
            if let Some(Answer::Repeats(rule)) = parse_answer(&text) {
                prop_assert_eq!(parse_rule(&rule.to_string()), Some(rule));
                prop_assert_eq!(parse_answer(&rule.to_string()), Some(Answer::Repeats(rule)));
            }
        }

        /// With `after`, the result is later than both, and stepping once more from the
        /// occurrence just before it would not have been after `after` (none is skipped).
        #[test]
        fn catch_up_skips_only_past_occurrences(secs in 1_600_000_000i64..2_000_000_000, ahead in 0i64..200 * 86_400,
                                                rule in rules()) {
            let tz: Tz = "Europe/Amsterdam".parse().unwrap();
            let prev = DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&tz).fixed_offset();
            let after = prev + chrono::Duration::seconds(ahead);
            let next = next_after(prev, rule, tz, Some(after)).unwrap();
            prop_assert!(next > prev && next > after);
            // Walking the series one step at a time reaches the same occurrence.
            // Each step keeps the series' own time of day, as chores do with their `time`.
            let wall = Some(prev.with_timezone(&tz).time());
            let mut walk = next_after_at(prev, rule, tz, None, wall).unwrap();
            while walk <= after {
                walk = next_after_at(walk, rule, tz, None, wall).unwrap();
            }
            // "monthly" is the exception: walking restarts it from a clamped day.
            if !matches!(rule, Rule::Monthly) {
                prop_assert_eq!(walk, next);
            }
        }
    }
}

#[cfg(test)]
mod check_tests {
    use crate::check::{SourceFile, load};

    fn codes(flow: &str) -> Vec<&'static str> {
        let household = SourceFile {
            path: "household.yaml".into(),
            text: "household: { name: T, timezone: Europe/Amsterdam }\nmembers:\n  - { name: Anna, phone: \"+31600000001\", role: admin }\n".into(),
        };
        let files = [SourceFile {
            path: "f.yaml".into(),
            text: flow.into(),
        }];
        load(Some(&household), &files)
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn the_checker_reads_literal_rules_and_knows_the_validators() {
        let ok = r#"
id: f
triggers: [{ keywords: [go] }]
steps:
  - ask: { slot: who, prompt: Who?, validate: { members: true } }
  - ask: { slot: rule, prompt: How often?, validate: { recurrence: true } }
  - send: "{{ now | next_due('every monday', household.timezone) }} {{ now | next_due(slots.rule, 'UTC') }} {{ now | add_days(-7) }}"
"#;
        assert_eq!(codes(ok), Vec::<&str>::new());
        let typo = ok.replace("'every monday'", "'every mondya'");
        assert_eq!(codes(&typo), vec!["recurrence"]);
        let once = r#"
id: f
triggers: [{ keywords: [go] }]
steps:
  - set: { next: "now | next_due(\"once\", 'UTC')" }
  - send: "{{ vars.next }}"
"#;
        assert_eq!(codes(once), vec!["recurrence"]);
    }
}
