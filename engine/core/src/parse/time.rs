//! Dates and times of day in the member's time zone: "tomorrow 18:00", "friday at 5pm",
//! "half past 6", "31 march", ISO dates, and local times across DST gaps and overlaps.
//! Pure: no I/O and no wall clock ("now" is always a parameter).

use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use regex::Regex;

use super::dates::{Named, candidates, find_named_day};
use super::duration::parse_duration;
use super::spoken::spoken_clock;
use super::{ParseError, re, shown};

pub(super) static CLOCK_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^([0-9]{1,2})(?:[:.hu]([0-9]{2})(?::([0-9]{2}))?)?\s*(a\.?m\.?|p\.?m\.?|uur|uhr|u|h)?$"));
pub(super) static ISO_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:(?:on|at)\s+)?([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:t|\s+)(?:at\s+)?(.+))?$"));

/// Resolves a local naive datetime in `tz`: a time inside a spring-forward gap becomes the first
/// instant after the gap (the transition itself); an ambiguous fall-back time takes the earlier
/// occurrence.
pub fn resolve_local(naive: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(dt) => dt.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        chrono::LocalResult::None => gap_end(naive, tz),
    }
}

/// First instant whose local time is at or after `naive`, found by bisection in UTC.
pub(super) fn gap_end(naive: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let as_utc = naive.and_utc();
    let day = Duration::days(1);
    let (Some(before), Some(after)) = (as_utc.checked_sub_signed(day), as_utc.checked_add_signed(day)) else {
        return as_utc;
    };
    // Reading `naive` with the later (larger) offset lands before the gap, with the earlier one after.
    let mut lo = as_utc.timestamp() - offset_secs(after, tz);
    let mut hi = as_utc.timestamp() - offset_secs(before, tz);
    let wall_at = |secs| DateTime::from_timestamp(secs, 0).and_then(|u| wall_clock(u, tz));
    if lo >= hi || wall_at(hi).is_none_or(|l| l < naive) {
        return DateTime::from_timestamp(hi, 0).unwrap_or(as_utc);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall_at(mid).is_some_and(|l| l >= naive) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(as_utc)
}

pub(super) fn offset_secs(u: DateTime<Utc>, tz: Tz) -> i64 {
    i64::from(tz.offset_from_utc_datetime(&u.naive_utc()).fix().local_minus_utc())
}

/// `u` on the wall clock of `tz`, checked: `with_timezone(..).naive_local()` panics at the very
/// edge of chrono's range.
pub(super) fn wall_clock(u: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    u.naive_utc().checked_add_signed(Duration::seconds(offset_secs(u, tz)))
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Day {
    Today,
    Tonight,
    Ahead(u64),
    On(Weekday),
    /// A calendar day by name ("31 march", "the 15th", "next week").
    Named(Named),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Clock {
    At(NaiveTime),
    /// An hour 1..=12 (and its minutes) without am/pm or a leading zero: "6", "6.30",
    /// "half past 6". It could be morning or evening; one rule reads them all.
    Bare(u32, u32),
}

pub(super) fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

pub(super) fn day_word(word: &str) -> Option<Day> {
    use Weekday::*;
    let day = match word {
        "today" | "vandaag" | "heute" => Day::Today,
        "tonight" | "vanavond" => Day::Tonight,
        "tomorrow" | "tmrw" | "tmr" | "morgen" => Day::Ahead(1),
        "overmorgen" | "übermorgen" | "ubermorgen" => Day::Ahead(2),
        "monday" | "mon" | "maandag" | "montag" => Day::On(Mon),
        "tuesday" | "tue" | "tues" | "dinsdag" | "dienstag" => Day::On(Tue),
        "wednesday" | "wed" | "woensdag" | "mittwoch" => Day::On(Wed),
        "thursday" | "thu" | "thur" | "thurs" | "donderdag" | "donnerstag" => Day::On(Thu),
        "friday" | "fri" | "vrijdag" | "freitag" => Day::On(Fri),
        "saturday" | "sat" | "zaterdag" | "samstag" => Day::On(Sat),
        "sunday" | "sun" | "zondag" | "sonntag" => Day::On(Sun),
        _ => return None,
    };
    Some(day)
}

/// Reads a time of day; `Ok(None)` means "not a time at all" so the caller can say so.
pub(super) fn parse_clock(s: &str, input: &str) -> Result<Option<Clock>, ParseError> {
    let named = match s {
        "morning" => Some(hm(9, 0)),
        "noon" | "midday" => Some(hm(12, 0)),
        "afternoon" => Some(hm(15, 0)),
        "evening" => Some(hm(19, 0)),
        "night" => Some(hm(20, 0)),
        "midnight" => Some(hm(0, 0)),
        _ => None,
    };
    if let Some(t) = named {
        return Ok(Some(Clock::At(t)));
    }
    let Some(c) = CLOCK_RE.captures(s) else {
        return Ok(None);
    };
    let num = |i: usize| c.get(i).map(|m| m.as_str().parse::<u32>().unwrap_or(99));
    let hour_text = c.get(1).map_or("", |m| m.as_str());
    let (hour, minute, second) = (num(1).unwrap_or(99), num(2), num(3).unwrap_or(0));
    let suffix = c.get(4).map_or("", |m| m.as_str());
    let bad = || ParseError::BadTimeOfDay(shown(input));
    let hour = match suffix.chars().next() {
        Some(ampm @ ('a' | 'p')) => {
            if !(1..=12).contains(&hour) {
                return Err(bad());
            }
            (hour % 12) + if ampm == 'p' { 12 } else { 0 }
        }
        _ if c.get(3).is_none() && !hour_text.starts_with('0') && (1..=12).contains(&hour) => {
            let minute = minute.unwrap_or(0);
            return if minute < 60 {
                Ok(Some(Clock::Bare(hour, minute)))
            } else {
                Err(bad())
            };
        }
        _ => hour,
    };
    NaiveTime::from_hms_opt(hour, minute.unwrap_or(0), second)
        .map(|t| Some(Clock::At(t)))
        .ok_or_else(bad)
}

/// Natural date/time in the member's timezone, relative to `now`; returns the UTC instant.
///
/// Accepts (case-insensitive, optional leading "at"/"on"): `"18:00"`, `"6pm"`, `"6:30 pm"`,
/// `"at 6"`, `"tomorrow 18:00"`, `"tomorrow at 7"`, `"today 9pm"`, `"tonight"` (today 20:00),
/// `"tomorrow"` (09:00), weekdays (`"monday 7:00"`, `"on friday at 5pm"`: the next such day, today
/// only if the time is still ahead), morning/noon/afternoon/evening/night/midnight, `"in 20
/// minutes"` (via [`parse_duration`]), `"now"`, ISO `"2026-12-01 10:00"` / `"2026-12-01T10:00"`
/// (a trailing `Z` means UTC; date alone means 09:00), Dutch/German `"morgen"` and weekday names.
///
/// Spoken times: `"half past 6"`, `"quarter to 8"`, Dutch `"kwart over 8"`, `"half 7"` (6:30),
/// `"18u30"`, German `"viertel nach 8"`, `"halb 7"`. Named days: `"31 march"`, `"march 31st"`,
/// `"15 maart"`, `"on the 15th"` (the next month that has it), `"next week"` (its Monday);
/// durations with a decimal comma (`"in 1,5 uur"`) and `"in half an hour"`.
///
/// One rule for the hour: an hour 1..=12 without am/pm or a leading zero, with or without
/// minutes (`"at 6"`, `"at 6.30"`, `"half past 6"`), takes the next future of its morning and
/// evening reading; with a named day (tomorrow, a weekday, a date), 1..=6 means pm and 7..=12 as
/// written. `"06:30"` and `"18:30"` are read as written. A time with no day that has already
/// passed today means tomorrow; `"today"`/`"tonight"` with a passed time is an error.
/// DST follows [`resolve_local`]. Results are never before `now` except explicit ISO dates.
pub fn parse_datetime(text: &str, now: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>, ParseError> {
    let lower = decimal_commas_kept(&text.trim().to_lowercase().replace("day after tomorrow", "overmorgen"));
    let words: Vec<&str> = lower.trim_end_matches(['.', '!', '?']).split_whitespace().collect();
    if words.is_empty() {
        return Err(ParseError::EmptyDateTime);
    }
    let joined = words.join(" ");
    let bad = || ParseError::BadDateTime(shown(text));

    if let Some(rest) = joined.strip_prefix("in ").or_else(|| joined.strip_prefix("over ")) {
        return now.checked_add_signed(parse_duration(rest)?).ok_or_else(bad);
    }
    if matches!(joined.as_str(), "now" | "right now" | "nu" | "jetzt") {
        return Ok(now);
    }
    if let Some(c) = ISO_RE.captures(&joined) {
        return parse_iso(&c, text, tz);
    }

    let spoken = spoken_clock(&joined);
    let (mut day, rest) = match find_named_day(&spoken) {
        Some((named, rest)) => (Some(Day::Named(named)), rest),
        None => (None, spoken),
    };
    let mut clock_words = Vec::new();
    for w in rest.split_whitespace() {
        if matches!(
            w,
            "at" | "on" | "om" | "op" | "um" | "@" | "next" | "this" | "coming" | "around" | "rond"
        ) {
            continue;
        }
        match day_word(w) {
            Some(_) if day.is_some() => return Err(bad()),
            Some(d) => day = Some(d),
            None => clock_words.push(w),
        }
    }
    let clock_text = clock_words.join(" ");
    let clock = if clock_text.is_empty() {
        None
    } else {
        Some(parse_clock(&clock_text, text)?.ok_or_else(bad)?)
    };

    let today = wall_clock(now, tz).ok_or_else(bad)?.date();
    let date = |n: u64| today.checked_add_days(Days::new(n)).ok_or_else(bad);
    let at = |d: NaiveDate, t: NaiveTime| resolve_local(d.and_time(t), tz);
    let past = || ParseError::InPast(shown(text));
    // A bare hour reads as morning, then evening.
    let times = |c: Clock| match c {
        Clock::At(t) => vec![t],
        Clock::Bare(h, m) => vec![hm(h % 12, m), hm(h % 12 + 12, m)],
    };
    // With a named later day, "at 3" is the afternoon and "at 8" the morning.
    let day_clock = |c: Option<Clock>| match c {
        None => hm(9, 0),
        Some(Clock::At(t)) => t,
        Some(Clock::Bare(h @ 1..=6, m)) => hm(h + 12, m),
        Some(Clock::Bare(h, m)) => hm(h % 24, m),
    };

    let result = match (day, clock) {
        (None, None) => return Err(bad()),
        (None, Some(c)) => {
            let days = [date(0)?, date(1)?];
            let mut all = days.iter().flat_map(|d| times(c).into_iter().map(|t| at(*d, t)));
            all.find(|u| *u > now).ok_or_else(bad)?
        }
        (Some(Day::Today), None) => return Err(ParseError::MissingTime(shown(text))),
        (Some(Day::Today), Some(c)) => {
            let d = date(0)?;
            let mut all = times(c).into_iter().map(|t| at(d, t));
            all.find(|u| *u > now).ok_or_else(past)?
        }
        (Some(Day::Tonight), c) => {
            let t = match c {
                None => hm(20, 0),
                Some(Clock::At(t)) => t,
                Some(Clock::Bare(h, m)) => hm(h % 12, m),
            };
            // Tonight, 9 means 21:00 and 1 means 01:00 after midnight.
            let (d, t) = match t.hour() {
                0..5 => (date(1)?, t),
                5..12 => (date(0)?, t + Duration::hours(12)),
                _ => (date(0)?, t),
            };
            Some(at(d, t)).filter(|u| *u > now).ok_or_else(past)?
        }
        (Some(Day::Ahead(n)), c) => at(date(n)?, day_clock(c)),
        (Some(Day::On(wd)), c) => {
            let ahead = (7 + wd.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
            let t = day_clock(c);
            let first = at(date(u64::from(ahead))?, t);
            if first > now {
                first
            } else {
                at(date(u64::from(ahead) + 7)?, t)
            }
        }
        (Some(Day::Named(named)), c) => {
            let t = day_clock(c);
            let days = candidates(named, today);
            if days.is_empty() {
                return Err(ParseError::BadDate(shown(text)));
            }
            days.into_iter().map(|d| at(d, t)).find(|u| *u > now).ok_or_else(past)?
        }
    };
    // Defensive: a relative phrase must never land in the past.
    if result < now {
        return Err(past());
    }
    Ok(result)
}

pub(super) fn parse_iso(c: &regex::Captures<'_>, text: &str, tz: Tz) -> Result<DateTime<Utc>, ParseError> {
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    let year = num(1).and_then(|y| i32::try_from(y).ok());
    let date = match (year, num(2), num(3)) {
        (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y, m, d),
        _ => None,
    }
    .ok_or_else(|| ParseError::BadDate(shown(text)))?;
    let time_text = c.get(4).map_or("", |m| m.as_str()).trim();
    let (time_text, utc) = match time_text.strip_suffix('z') {
        Some(t) => (t.trim(), true),
        None => (time_text, false),
    };
    let time = if time_text.is_empty() {
        hm(9, 0)
    } else {
        match parse_clock(time_text, text)? {
            Some(Clock::At(t)) => t,
            // An ISO date reads its clock as 24-hour.
            Some(Clock::Bare(h, m)) => hm(h % 24, m),
            None => return Err(ParseError::BadDateTime(shown(text))),
        }
    };
    let naive = date.and_time(time);
    Ok(if utc { naive.and_utc() } else { resolve_local(naive, tz) })
}

/// Commas become spaces ("tomorrow, 8pm"), except a decimal comma between digits ("1,5 uur").
fn decimal_commas_kept(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digit_at = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(char::is_ascii_digit);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if *c == ',' && !(digit_at(i.checked_sub(1)) && digit_at(Some(i + 1))) {
                ' '
            } else {
                *c
            }
        })
        .collect()
}

/// Words that start a time phrase at the end of a sentence ("call grandma at 7pm").
const TIME_LEADS: &[&str] = &[
    "at", "om", "um", "on", "op", "am", "in", "over", "by", "next", "this", "coming", "volgende", "nächste", "half",
    "kwart", "quarter", "viertel", "halb", "the",
];

/// Splits a trailing time phrase off a sentence: `"call grandma at 7pm"` → `("call grandma",
/// "at 7pm")`: the longest tail that starts like a time ("at", "in", a day, "half past", a
/// date) and reads as one. `None` when there is none, so "set the table for 6" stays whole.
/// A tail that has already passed ("today 9am" after 9) still counts: asking again is better
/// than a reminder text that ends in a time.
pub fn split_trailing_time(text: &str, now: DateTime<Utc>, tz: Tz) -> Option<(String, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    (1..words.len()).find_map(|i| {
        let first = words[i].to_lowercase();
        let first = first.trim_matches(|c: char| !c.is_alphanumeric());
        let tail = words[i..].join(" ");
        let starts = TIME_LEADS.contains(&first)
            || day_word(first).is_some()
            || (first.starts_with(|c: char| c.is_ascii_digit()) && find_named_day(&tail.to_lowercase()).is_some());
        if !starts {
            return None;
        }
        match parse_datetime(&tail, now, tz) {
            Ok(_) | Err(ParseError::InPast(_)) => Some((words[..i].join(" "), tail)),
            Err(_) => None,
        }
    })
}
