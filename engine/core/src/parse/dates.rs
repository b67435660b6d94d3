//! Calendar days as people name them: "31 march", "march 31st", "15 maart", "15. März",
//! "on the 15th", "op de 15e", "next week" / "volgende week" / "nächste Woche".
//!
//! Finds the phrase in lowercase text and says which day it names; which instant that is
//! (the next such day still ahead, at what time) is [`super::time`]'s. Pure: no clock.

use std::sync::LazyLock;

use chrono::{Datelike, Days, Months, NaiveDate};
use regex::Regex;

use super::re;

const MONTH: &str = r"(january|february|march|april|may|june|july|august|september|october|november|december|januari|februari|maart|mei|juni|juli|augustus|oktober|januar|februar|märz|maerz|mai|juni|oktober|dezember|jan|feb|mar|mrt|apr|jun|jul|aug|sept|sep|oct|okt|nov|dec|dez)";

static DAY_MONTH_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b(?:(?:on|op|am)\s+)?(?:the\s+|de\s+)?([0-9]{{1,2}})(?:st|nd|rd|th|e|ste|de)?\.?\s+(?:of\s+)?{MONTH}\b\.?"
    ))
});
static MONTH_DAY_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b(?:on\s+)?{MONTH}\.?\s+(?:the\s+)?([0-9]{{1,2}})(?:st|nd|rd|th)?\b"
    ))
});
/// A day of the month alone needs an ordinal or "the": "the 15th", "on the 15", "op de 15e".
static DAY_OF_MONTH_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:(?:on|op)\s+)?(?:(?:the|de)\s+([0-9]{1,2})(?:st|nd|rd|th|e|ste|de)?|([0-9]{1,2})(?:st|nd|rd|th|ste|de))\b",
    )
});
static NEXT_WEEK_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:next|volgende|nächste|naechste)\s+(?:week|woche)\b"));

/// A named day, not yet placed on the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Named {
    /// A day of a month: the next such date (this year or a later one).
    DayMonth(u32, u32),
    /// A day of the month: the next month that has it.
    DayOfMonth(u32),
    /// The Monday of next week.
    NextWeek,
}

fn month(word: &str) -> Option<u32> {
    let prefix: String = word.chars().take(3).collect();
    let m = match prefix.as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" | "mrt" | "maa" | "mär" | "mae" => 3,
        "apr" => 4,
        "may" | "mei" | "mai" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" | "okt" => 10,
        "nov" => 11,
        "dec" | "dez" => 12,
        _ => return None,
    };
    Some(m)
}

/// The named day in `text`, and the text without it.
pub(super) fn find_named_day(text: &str) -> Option<(Named, String)> {
    let cut = |m: regex::Match<'_>| format!("{} {}", &text[..m.start()], &text[m.end()..]);
    if let Some(c) = DAY_MONTH_RE.captures(text) {
        let day = c.get(1)?.as_str().parse().ok()?;
        let mon = month(c.get(2)?.as_str())?;
        return Some((Named::DayMonth(day, mon), cut(c.get(0)?)));
    }
    if let Some(c) = MONTH_DAY_RE.captures(text) {
        let mon = month(c.get(1)?.as_str())?;
        let day = c.get(2)?.as_str().parse().ok()?;
        return Some((Named::DayMonth(day, mon), cut(c.get(0)?)));
    }
    if let Some(c) = DAY_OF_MONTH_RE.captures(text) {
        let day = c.get(1).or_else(|| c.get(2))?.as_str().parse().ok()?;
        return Some((Named::DayOfMonth(day), cut(c.get(0)?)));
    }
    if let Some(m) = NEXT_WEEK_RE.find(text) {
        return Some((Named::NextWeek, cut(m)));
    }
    None
}

/// The candidate dates for `named`, soonest first, from `today` on; the caller takes the
/// first whose time is still ahead. Empty when no such date exists ("31 february").
pub(super) fn candidates(named: Named, today: NaiveDate) -> Vec<NaiveDate> {
    match named {
        Named::DayMonth(d, m) => (0..=8)
            .filter_map(|y| NaiveDate::from_ymd_opt(today.year().checked_add(y)?, m, d))
            .filter(|date| *date >= today)
            .take(2)
            .collect(),
        Named::DayOfMonth(d) => {
            let first = today.with_day(1).unwrap_or(today);
            (0..=12)
                .filter_map(|k| first.checked_add_months(Months::new(k)))
                .filter_map(|month| month.with_day(d))
                .filter(|date| *date >= today)
                .take(2)
                .collect()
        }
        Named::NextWeek => {
            let ahead = 7 - u64::from(today.weekday().num_days_from_monday());
            today.checked_add_days(Days::new(ahead)).into_iter().collect()
        }
    }
}
