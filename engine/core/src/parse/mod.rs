//! Reading what family members type: shopping lists, durations, dates and times, numbers.
//!
//! Pure: no I/O and no wall clock ("now" is always a parameter), and no input makes it panic.

use std::sync::LazyLock;

use regex::Regex;

mod dates;
mod duration;
mod items;
mod members;
mod spoken;
#[cfg(test)]
mod tests;
mod text;
mod time;

// The tests (`use super::*`) use these: chrono types, and private limits and helpers.
#[cfg(test)]
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
#[cfg(test)]
use chrono_tz::Tz;
#[cfg(test)]
use items::{MAX_ITEMS, MAX_QTY};
#[cfg(test)]
use text::one_edit;

pub use duration::parse_duration;
pub use items::{ItemList, ListedItem, MAX_ITEM_CHARS, ParsedItem, item_key, parse_item_list, parse_items};
pub use members::parse_member_list;
pub use text::{FILLERS, TYPO_MIN_LEN, normalize, strip_fillers, typo_match};
pub use time::{parse_datetime, resolve_local, split_trailing_time};

/// Error messages quote at most this many chars of the input, so a pasted essay stays readable.
const SHOWN_CHARS: usize = 60;

fn re(pattern: &str) -> Regex {
    // Patterns are constants exercised by the tests, never user input.
    Regex::new(pattern).expect("constant regex")
}

/// A number said as a word, one to twelve and twenty, in English, Dutch and German. One
/// table for every reader (quantities, spoken times), so a language added here is
/// understood by all of them.
fn number_word(word: &str) -> Option<u32> {
    let n = match word {
        "one" | "een" | "eins" => 1,
        "two" | "twee" | "zwei" => 2,
        "three" | "drie" | "drei" => 3,
        "four" | "vier" => 4,
        "five" | "vijf" | "fünf" => 5,
        "six" | "zes" | "sechs" => 6,
        "seven" | "zeven" | "sieben" => 7,
        "eight" | "acht" => 8,
        "nine" | "negen" | "neun" => 9,
        "ten" | "tien" | "zehn" => 10,
        "eleven" | "elf" => 11,
        "twelve" | "twaalf" | "zwölf" => 12,
        "twenty" | "twintig" | "zwanzig" => 20,
        _ => return None,
    };
    Some(n)
}

static NUMBER_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^[+-]?[0-9]+(?:[.,][0-9]+)?$"));

/// Errors for duration/datetime parsing, with a human message that says what forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No duration was given.
    #[error("no duration given; try 20m, 1h30m, 2 hours or 3d")]
    EmptyDuration,
    /// The text is not a duration form we know.
    #[error("\"{0}\" is not a duration I know; try 90s, 20m, 20 min, 1h30m, 2 hours, 3d, 1w, 1.5h")]
    BadDuration(String),
    /// The duration is negative.
    #[error("\"{0}\" is negative; a duration is zero or more, like 20m or 2h")]
    NegativeDuration(String),
    /// The duration is longer than 366 days.
    #[error("\"{0}\" is too long; the longest duration is 366 days")]
    DurationTooLong(String),
    /// No date or time was given.
    #[error("no time given; try 18:00, 6pm, tomorrow 9am, friday at 5pm or in 2 hours")]
    EmptyDateTime,
    /// The text is not a date/time form we know.
    #[error("\"{0}\" is not a time I know; try 18:00, 6pm, tomorrow 9am, friday at 5pm, {ISO_HINT}")]
    BadDateTime(String),
    /// Hour or minute out of range, e.g. "25:00" or "13pm".
    #[error("\"{0}\" is not a time of day; hours go 0-23 (1-12 with am/pm), minutes 0-59")]
    BadTimeOfDay(String),
    /// A calendar date that does not exist, e.g. "2026-02-30".
    #[error("\"{0}\" is not a real date; use YYYY-MM-DD like 2026-12-01")]
    BadDate(String),
    /// A day was named without a time where one is needed ("today").
    #[error("\"{0}\" needs a time of day, like today 18:00 or today 6pm")]
    MissingTime(String),
    /// "today 9am" said after 9am: that moment has passed.
    #[error("\"{0}\" has already passed; try tomorrow, a later time, or in 2 hours")]
    InPast(String),
}

const ISO_HINT: &str = "in 2 hours or 2026-12-01 10:00";

fn shown(text: &str) -> String {
    text.trim().chars().take(SHOWN_CHARS).collect()
}

/// Parses a number as typed by a person: `"3"`, `"3.5"`, `"3,5"`, `" 12 "`, `"-2"` -> f64;
/// None for anything else (no exponents, no NaN/inf).
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim().replace('−', "-");
    if !NUMBER_RE.is_match(&t) {
        return None;
    }
    t.replace(',', ".").parse::<f64>().ok().filter(|v| v.is_finite())
}
