//! Durations as people type them: "90s", "20 min", "1h30", "2 hours", Dutch and German
//! unit words too, bounded to 366 days.
//! Pure: no I/O, no clock; does not turn a duration into an instant.

use std::sync::LazyLock;

use chrono::Duration;
use regex::Regex;

use super::{ParseError, re, shown};

pub(super) const MAX_DURATION_MS: u128 = 366 * 86_400_000;

pub(super) static DUR_PART_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:\s*(?:,|&|and\b|en\b|und\b))?\s*(?:([0-9]+)(?:[.,]([0-9]+))?\s*([a-z]+)|(an?|one|een|eine?)\s+([a-z]+))")
});
pub(super) static DUR_TAIL_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:\s*(?:,|&|and\b|en\b|und\b))?\s*([0-9]{1,2})\s*$"));

/// `"90s"`, `"20m"`, `"20 min"`, `"2h"`, `"1h30m"`, `"1h 30m"`, `"2 hours"`, `"3d"`, `"1w"`,
/// `"45 minutes"`, `"1.5h"`, `"an hour"`, `"1 hour and 30 minutes"`, `"1h30"` -> [`Duration`].
///
/// Dutch and German unit words (minuten, uur, stunden, dagen, tage, weken, ...) work too, and
/// half hours in words ("half an hour", "een half uur", "anderhalf uur").
/// Rejects empty and negative input; zero is allowed; above 366 days is an error. Millisecond
/// precision; all arithmetic is checked, so huge numbers give an error, not an overflow.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let lower = halves(&text.trim().trim_end_matches(['.', '!']).to_lowercase());
    if lower.is_empty() {
        return Err(ParseError::EmptyDuration);
    }
    if lower.starts_with(['-', '−']) {
        return Err(ParseError::NegativeDuration(shown(text)));
    }
    let bad = || ParseError::BadDuration(shown(text));
    let too_long = || ParseError::DurationTooLong(shown(text));
    let mut rest = lower.strip_prefix('+').unwrap_or(&lower);
    let mut total: u128 = 0;
    let mut last_unit: Option<u128> = None;
    // Nobody types more than "1w 2d 3h 4m 5s"; the cap keeps hostile input linear.
    for _ in 0..8 {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let ms = if let Some(c) = DUR_PART_RE.captures(rest) {
            let (int, frac, unit) = match (c.get(1), c.get(3), c.get(5)) {
                (Some(i), Some(u), _) => (i.as_str(), c.get(2).map_or("", |f| f.as_str()), u),
                (_, _, Some(u)) => ("1", "", u),
                _ => return Err(bad()),
            };
            let unit_ms = unit_ms(unit.as_str()).ok_or_else(bad)?;
            last_unit = Some(unit_ms);
            rest = rest.get(c.get(0).map_or(0, |m| m.end())..).unwrap_or("");
            component_ms(int, frac, unit_ms)
        } else if let Some(c) = DUR_TAIL_RE.captures(rest) {
            // "1h30" and "2m30": a unitless tail counts in the next smaller unit.
            let smaller = match last_unit {
                Some(3_600_000) => 60_000,
                Some(60_000) => 1_000,
                _ => return Err(bad()),
            };
            rest = "";
            component_ms(c.get(1).map_or("", |m| m.as_str()), "", smaller)
        } else {
            return Err(bad());
        };
        total = ms.and_then(|ms| total.checked_add(ms)).ok_or_else(too_long)?;
        if total > MAX_DURATION_MS {
            return Err(too_long());
        }
    }
    if last_unit.is_none() || !rest.trim().is_empty() {
        return Err(bad());
    }
    let ms = i64::try_from(total).map_err(|_| too_long())?;
    Duration::try_milliseconds(ms).ok_or_else(too_long)
}

/// Half and quarter hours in words: "half an hour", "een half uur", "anderhalf uur", "an
/// hour and a half", "eine halbe Stunde", "een kwartier", "drie kwartier" become minutes.
fn halves(text: &str) -> String {
    const PHRASES: &[(&str, &str)] = &[
        ("an hour and a half", "90 min"),
        ("one and a half hours", "90 min"),
        ("anderhalf uur", "90 min"),
        ("anderhalve uur", "90 min"),
        ("anderthalb stunden", "90 min"),
        ("eineinhalb stunden", "90 min"),
        ("three quarters of an hour", "45 min"),
        ("drie kwartier", "45 min"),
        ("dreiviertelstunde", "45 min"),
        ("a quarter of an hour", "15 min"),
        ("quarter of an hour", "15 min"),
        ("a quarter hour", "15 min"),
        ("een kwartiertje", "15 min"),
        ("een kwartier", "15 min"),
        ("kwartiertje", "15 min"),
        ("kwartier", "15 min"),
        ("einer viertelstunde", "15 min"),
        ("eine viertelstunde", "15 min"),
        ("viertelstunde", "15 min"),
        ("half an hour", "30 min"),
        ("a half hour", "30 min"),
        ("half hour", "30 min"),
        ("een half uur", "30 min"),
        ("een halfuur", "30 min"),
        ("half uur", "30 min"),
        ("halfuur", "30 min"),
        ("einer halben stunde", "30 min"),
        ("eine halbe stunde", "30 min"),
        ("halbe stunde", "30 min"),
    ];
    let mut out = text.to_owned();
    for (phrase, minutes) in PHRASES {
        if out.contains(phrase) {
            out = out.replace(phrase, minutes);
        }
    }
    out
}

pub(super) fn unit_ms(unit: &str) -> Option<u128> {
    let ms = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" | "seconde" | "seconden" | "sekunde" | "sekunden" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" | "minuut" | "minuten" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" | "uur" | "uren" | "std" | "stunde" | "stunden" => 3_600_000,
        "d" | "day" | "days" | "dag" | "dagen" | "tag" | "tage" | "tagen" => 86_400_000,
        "w" | "wk" | "wks" | "week" | "weeks" | "weken" | "woche" | "wochen" => 604_800_000,
        _ => return None,
    };
    Some(ms)
}

/// `int.frac` units in milliseconds, exactly; None when it overflows (which is "too long" anyway).
pub(super) fn component_ms(int: &str, frac: &str, unit_ms: u128) -> Option<u128> {
    let int = int.trim_start_matches('0');
    if int.len() > 20 {
        return None;
    }
    // Both are plain ASCII digits (or empty, meaning 0), so parsing cannot fail otherwise.
    let whole: u128 = int.parse().unwrap_or(0);
    // Digits beyond nine are below a millisecond for every unit.
    let frac = frac.get(..9).unwrap_or(frac);
    let part: u128 = frac.parse().unwrap_or(0);
    let scale = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    whole
        .checked_mul(unit_ms)?
        .checked_add(part.checked_mul(unit_ms)? / scale)
}
