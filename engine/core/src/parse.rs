//! Reading what family members type: shopping lists, durations, dates and times, numbers.
//!
//! Pure: no I/O and no wall clock ("now" is always a parameter), and no input makes it panic.

use std::collections::VecDeque;
use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use regex::Regex;
use serde::{Deserialize, Serialize};
use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

const MAX_ITEMS: usize = 50;
const MAX_QTY: u32 = 999;
const MAX_DURATION_MS: u128 = 366 * 86_400_000;
/// Error messages quote at most this many chars of the input, so a pasted essay stays readable.
const SHOWN_CHARS: usize = 60;

fn re(pattern: &str) -> Regex {
    // Patterns are constants exercised by the tests, never user input.
    Regex::new(pattern).expect("constant regex")
}

static SEP_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)[,;\n\r]|\s+(?:and|en|und|&|\+)\s+"));
static DUR_PART_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:\s*(?:,|&|and\b|en\b|und\b))?\s*(?:([0-9]+)(?:[.,]([0-9]+))?\s*([a-z]+)|(an?|one|een|eine?)\s+([a-z]+))")
});
static DUR_TAIL_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:\s*(?:,|&|and\b|en\b|und\b))?\s*([0-9]{1,2})\s*$"));
static CLOCK_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^([0-9]{1,2})(?:[:.h]([0-9]{2})(?::([0-9]{2}))?)?\s*(a\.?m\.?|p\.?m\.?|uur|uhr|h)?$"));
static ISO_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:(?:on|at)\s+)?([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:t|\s+)(?:at\s+)?(.+))?$"));
static NUMBER_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^[+-]?[0-9]+(?:[.,][0-9]+)?$"));

/// Normalises text for keyword matching: Unicode NFKD, strip combining marks (accents), lowercase,
/// replace every char that is not alphanumeric by a space (so punctuation and emoji vanish),
/// collapse runs of whitespace to one space, trim. `"  Dóne, DISHES!! 🎉"` -> `"done dishes"`.
pub fn normalize(text: &str) -> String {
    let mut out = normalize_once(text);
    // A few compatibility chars only settle on a second pass (e.g. one whose
    // decomposition yields an uppercase letter), so run to a fixed point.
    for _ in 0..3 {
        let next = normalize_once(&out);
        if next == out {
            break;
        }
        out = next;
    }
    out
}

fn normalize_once(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        for l in c.to_lowercase() {
            if l.is_alphanumeric() && !is_combining_mark(l) {
                out.push(l);
            } else {
                out.push(' ');
            }
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Polite words and greetings that carry no meaning for routing, written [`normalize`]d.
/// Several words are one filler (`thank you`). English first, then Dutch and German.
pub const FILLERS: &[&str] = &[
    "please",
    "pls",
    "plz",
    "plse",
    "pleas",
    "thanks",
    "thank you",
    "thx",
    "ty",
    "alfred",
    "hey",
    "hi",
    "hello",
    "alsjeblieft",
    "alstublieft",
    "aub",
    "a u b",
    "graag",
    "dank je",
    "dank je wel",
    "dankjewel",
    "bedankt",
    "hoi",
    "hallo",
    "bitte",
    "danke",
];

/// [`normalize`]d text without leading and trailing [`FILLERS`]: `"hey alfred list pls"` ->
/// `"list"`. At least one word always stays, taken from the front (`"hi alfred"` -> `"hi"`,
/// so a greeting keyword still takes it). `None` when nothing was dropped.
pub fn strip_fillers(normalized: &str) -> Option<String> {
    let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
    // The longest filler at the start (or end) of `rest` that leaves a word, in words.
    let filler_len = |rest: &[&str], from_end: bool| -> usize {
        FILLERS
            .iter()
            .map(|f| f.split(' ').collect::<Vec<_>>())
            .filter(|f| {
                f.len() < rest.len()
                    && if from_end {
                        rest[rest.len() - f.len()..] == f[..]
                    } else {
                        rest[..f.len()] == f[..]
                    }
            })
            .map(|f| f.len())
            .max()
            .unwrap_or(0)
    };
    let (mut start, mut end) = (0, words.len());
    loop {
        let n = filler_len(&words[start..end], true);
        if n == 0 {
            break;
        }
        end -= n;
    }
    loop {
        let n = filler_len(&words[start..end], false);
        if n == 0 {
            break;
        }
        start += n;
    }
    if start == 0 && end == words.len() {
        return None;
    }
    Some(words[start..end].join(" "))
}

/// Shortest keyword word that may carry a typo: shorter words have too many neighbours
/// (`list`/`lost`, `car`/`bar`).
pub const TYPO_MIN_LEN: usize = 5;

/// Whether `typed` is `keyword` with exactly one typo in one or more of its words: each
/// word equal, or (for keyword words of at least [`TYPO_MIN_LEN`] letters) one letter
/// added, dropped, changed, or two neighbours swapped (Damerau-Levenshtein 1). Both are
/// [`normalize`]d; equal phrases are not a typo match.
pub fn typo_match(typed: &str, keyword: &str) -> bool {
    if typed == keyword {
        return false;
    }
    let (t, k): (Vec<&str>, Vec<&str>) = (typed.split(' ').collect(), keyword.split(' ').collect());
    t.len() == k.len()
        && t.iter()
            .zip(&k)
            .all(|(tw, kw)| tw == kw || (kw.chars().count() >= TYPO_MIN_LEN && one_edit(tw, kw)))
}

/// Damerau-Levenshtein (optimal string alignment) distance exactly 1.
fn one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    match (a.len(), b.len()) {
        (0, 0) => false,
        (x, y) if x == y => a[1..] == b[1..] || (x >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..]),
        (x, y) if x == y + 1 => a[1..] == *b,
        (x, y) if x + 1 == y => *a == b[1..],
        _ => false,
    }
}

/// A key for "is this the same grocery item": [`normalize`], then naive English singular per word,
/// so `"Bananas"` / `"banana"` / `"BANANA!"` share a key; `"eggs"`/`"egg"` too; `"glass"` stays `"glass"`.
///
/// Words of at most 3 chars are left alone. `-ies` and `-ie` both become `-y` (so berries/berry
/// and cookies/cookie each match), `-es` is stripped after ss/zz/x/ch/sh and from long `-oes`
/// words (tomatoes), otherwise a trailing `s` (but not `ss`) is stripped.
pub fn item_key(text: &str) -> String {
    normalize(text).split(' ').map(singular).collect::<Vec<_>>().join(" ")
}

fn singular(word: &str) -> String {
    let n = word.chars().count();
    if n <= 3 {
        return word.to_string();
    }
    // Only ASCII suffixes are stripped, so every cut lands on a char boundary.
    if let Some(stem) = word.strip_suffix("ies").or_else(|| word.strip_suffix("ie")) {
        let stem_len = stem.chars().count();
        return if stem_len >= 2 {
            format!("{stem}y")
        } else {
            format!("{stem}ie")
        };
    }
    if word.ends_with("ss") {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("es") {
        let sibilant = ["ss", "zz", "x", "ch", "sh"].iter().any(|s| stem.ends_with(s));
        if sibilant || (n >= 7 && stem.ends_with('o')) {
            return stem.to_string();
        }
    }
    word.strip_suffix('s').unwrap_or(word).to_string()
}

/// One parsed item from a free-text list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedItem {
    /// The item as typed, minus quantity, filler words, emoji and trailing punctuation.
    pub name: String,
    /// How many, 1..=999.
    pub qty: u32,
}

/// Splits `"milk, eggs and 2 bread"` into items.
///
/// Separators: commas, semicolons, newlines, `" and "`, `" & "`, `" + "`, `" en "`, `" und "`
/// (case-insensitive). Quantities: `"2 bread"`, `"2x bread"`, `"2 x bread"`, `"bread x2"`,
/// `"bread x 2"`, and a/an/one..ten (Dutch een..tien, German ein/eine..zehn) as a leading word;
/// default 1, capped at 999. A number followed by a unit (`"500 g flour"`) stays part of the name.
/// Strips emoji, bullets and list numbers (`"- "`, `"1. "`), trailing `.,!?`, a leading
/// `"some "`/`"more "` and a leading or trailing `"pls"`/`"please"`; keeps the typed case
/// otherwise. Parts with nothing alphanumeric are dropped. Parts with the same [`item_key`] are
/// merged (quantities add, first spelling wins). At most 50 distinct items; later new ones are ignored.
pub fn parse_items(text: &str) -> Vec<ParsedItem> {
    let mut items: Vec<ParsedItem> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for part in SEP_RE.split(text) {
        let Some(item) = parse_part(part) else {
            continue;
        };
        let key = item_key(&item.name);
        if key.is_empty() {
            continue;
        }
        if let Some(existing) = keys.iter().position(|k| *k == key).and_then(|i| items.get_mut(i)) {
            existing.qty = existing.qty.saturating_add(item.qty).min(MAX_QTY);
        } else if items.len() < MAX_ITEMS {
            keys.push(key);
            items.push(item);
        }
    }
    items
}

const PLEASE: &[&str] = &["pls", "plz", "please"];
const LEADING_FILLER: &[&str] = &["and", "en", "und", "&", "+", "some", "more"];
const UNITS: &[&str] = &[
    "g", "gr", "gram", "grams", "kg", "kilo", "kilos", "mg", "l", "ltr", "liter", "liters", "litre", "litres", "ml",
    "cl", "dl", "lb", "lbs", "oz", "pound", "pounds",
];
/// Emoji blocks plus the joiners and selectors that glue emoji sequences together.
#[rustfmt::skip]
const EMOJI: &[(u32, u32)] = &[
    (0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2300, 0x23FF), (0x2B00, 0x2BFF), (0x2190, 0x21FF),
    (0xFE00, 0xFE0F), (0x200D, 0x200D), (0x20E3, 0x20E3), (0xE0000, 0xE007F),
];

fn is_emoji(c: char) -> bool {
    EMOJI.iter().any(|(lo, hi)| (*lo..=*hi).contains(&u32::from(c)))
}

/// Words of one part; a deque so stripping from the front stays O(1) on silly long input.
type Words = VecDeque<String>;

fn parse_part(raw: &str) -> Option<ParsedItem> {
    let cleaned: String = raw.chars().filter(|c| !is_emoji(*c)).collect();
    let mut words: Words = cleaned.split_whitespace().map(str::to_string).collect();
    strip_list_marker(&mut words);
    let mut qty: Option<u32> = None;
    // Each pass removes at least one word or stops, so this is bounded by the word count.
    loop {
        let before = (words.len(), qty);
        if let Some(last) = words.back_mut() {
            *last = last.trim_end_matches(['.', ',', '!', '?', '…', ':']).to_string();
        }
        if words.back().is_some_and(|w| w.is_empty() || is_word_in(w, PLEASE)) {
            words.pop_back();
        }
        if words.front().is_some_and(|w| is_word_in(w, PLEASE)) {
            words.pop_front();
        }
        if words.len() > 1 && words.front().is_some_and(|w| is_word_in(w, LEADING_FILLER)) {
            words.pop_front();
        }
        if qty.is_none() && words.len() > 1 {
            qty = take_qty(&mut words);
        }
        if (words.len(), qty) == before {
            break;
        }
    }
    let name = Vec::from(words).join(" ");
    let qty = qty.unwrap_or(1);
    (!name.is_empty()).then_some(ParsedItem { name, qty })
}

fn is_word_in(word: &str, set: &[&str]) -> bool {
    set.contains(&word.to_lowercase().as_str())
}

/// Bullets ("- milk", "• milk") and numbered lists ("1. milk", "2) eggs") are layout, not quantities.
fn strip_list_marker(words: &mut Words) {
    let Some(first) = words.front_mut() else {
        return;
    };
    let rest = first
        .trim_start_matches(['-', '*', '•', '·', '–', '—', '>'])
        .to_string();
    let digits = first.trim_end_matches(['.', ')']);
    let numbered =
        digits.len() < first.len() && (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    if rest.is_empty() || numbered {
        words.pop_front();
    } else {
        *first = rest;
    }
}

/// Takes a quantity from the front or back of `words`, which has at least two words.
fn take_qty(words: &mut Words) -> Option<u32> {
    let is_x = |w: Option<&String>| w.is_some_and(|w| matches!(w.as_str(), "x" | "X" | "×"));
    let first = words.front()?.clone();
    if let Some(q) = digits_qty(&first) {
        if words.get(1).is_some_and(|w| is_word_in(w, UNITS)) {
            return Some(1); // "500 g flour": the number belongs to the name
        }
        words.pop_front();
        if words.len() > 1 && is_x(words.front()) {
            words.pop_front();
        }
        return Some(q);
    }
    if let Some(q) = times_qty(&first).or_else(|| word_qty(&first)) {
        words.pop_front();
        return Some(q);
    }
    let last = words.back()?.clone();
    if let Some(q) = times_qty(&last) {
        words.pop_back();
        return Some(q);
    }
    let n = words.len();
    let q = digits_qty(&last).filter(|_| n > 2 && is_x(words.get(n - 2)))?;
    words.truncate(n - 2);
    Some(q)
}

/// "12" -> 12; clamps to 1..=999 without overflowing on long digit strings.
fn digits_qty(word: &str) -> Option<u32> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = word.trim_start_matches('0');
    let q = if significant.len() > 3 {
        MAX_QTY
    } else {
        significant.parse().unwrap_or(0)
    };
    Some(q.clamp(1, MAX_QTY))
}

/// "2x", "x2", "2×" and "×2".
fn times_qty(word: &str) -> Option<u32> {
    let is_x = |c: char| matches!(c, 'x' | 'X' | '×');
    digits_qty(word.strip_suffix(is_x).or_else(|| word.strip_prefix(is_x))?)
}

fn word_qty(word: &str) -> Option<u32> {
    let q = match word.to_lowercase().as_str() {
        "a" | "an" | "one" | "een" | "ein" | "eine" | "einen" => 1,
        "two" | "twee" | "zwei" => 2,
        "three" | "drie" | "drei" => 3,
        "four" | "vier" => 4,
        "five" | "vijf" | "fünf" => 5,
        "six" | "zes" | "sechs" => 6,
        "seven" | "zeven" | "sieben" => 7,
        "eight" | "acht" => 8,
        "nine" | "negen" | "neun" => 9,
        "ten" | "tien" | "zehn" => 10,
        _ => return None,
    };
    Some(q)
}

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

/// `"90s"`, `"20m"`, `"20 min"`, `"2h"`, `"1h30m"`, `"1h 30m"`, `"2 hours"`, `"3d"`, `"1w"`,
/// `"45 minutes"`, `"1.5h"`, `"an hour"`, `"1 hour and 30 minutes"`, `"1h30"` -> [`Duration`].
///
/// Dutch and German unit words (minuten, uur, stunden, dagen, tage, weken, ...) work too.
/// Rejects empty and negative input; zero is allowed; above 366 days is an error. Millisecond
/// precision; all arithmetic is checked, so huge numbers give an error, not an overflow.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let lower = text.trim().trim_end_matches(['.', '!']).to_lowercase();
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

fn unit_ms(unit: &str) -> Option<u128> {
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
fn component_ms(int: &str, frac: &str, unit_ms: u128) -> Option<u128> {
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

/// Parses a number as typed by a person: `"3"`, `"3.5"`, `"3,5"`, `" 12 "`, `"-2"` -> f64;
/// None for anything else (no exponents, no NaN/inf).
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim().replace('−', "-");
    if !NUMBER_RE.is_match(&t) {
        return None;
    }
    t.replace(',', ".").parse::<f64>().ok().filter(|v| v.is_finite())
}

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
fn gap_end(naive: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
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

fn offset_secs(u: DateTime<Utc>, tz: Tz) -> i64 {
    i64::from(tz.offset_from_utc_datetime(&u.naive_utc()).fix().local_minus_utc())
}

/// `u` on the wall clock of `tz`, checked: `with_timezone(..).naive_local()` panics at the very
/// edge of chrono's range.
fn wall_clock(u: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    u.naive_utc().checked_add_signed(Duration::seconds(offset_secs(u, tz)))
}

#[derive(Debug, Clone, Copy)]
enum Day {
    Today,
    Tonight,
    Ahead(u64),
    On(Weekday),
}

#[derive(Debug, Clone, Copy)]
enum Clock {
    At(NaiveTime),
    /// An hour 1..=12 written without minutes or am/pm: could be morning or evening.
    Bare(u32),
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

fn day_word(word: &str) -> Option<Day> {
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
fn parse_clock(s: &str, input: &str) -> Result<Option<Clock>, ParseError> {
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
        _ if minute.is_none() && !hour_text.starts_with('0') && (1..=12).contains(&hour) => {
            return Ok(Some(Clock::Bare(hour)));
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
/// A bare hour 1..=12 without am/pm takes the next future of its morning and evening reading;
/// with tomorrow or a weekday, 1..=6 means pm and 7..=12 as written. A time with no day that has
/// already passed today means tomorrow; `"today"`/`"tonight"` with a passed time is an error.
/// DST follows [`resolve_local`]. Results are never before `now` except explicit ISO dates.
pub fn parse_datetime(text: &str, now: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>, ParseError> {
    let lower = text
        .trim()
        .to_lowercase()
        .replace("day after tomorrow", "overmorgen")
        .replace(',', " ");
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

    let mut day = None;
    let mut clock_words = Vec::new();
    for w in words {
        if matches!(w, "at" | "on" | "om" | "um" | "@" | "next" | "this" | "coming") {
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
        Clock::Bare(h) => vec![hm(h % 12, 0), hm(h % 12 + 12, 0)],
    };
    // With a named later day, "at 3" is the afternoon and "at 8" the morning.
    let day_clock = |c: Option<Clock>| match c {
        None => hm(9, 0),
        Some(Clock::At(t)) => t,
        Some(Clock::Bare(h @ 1..=6)) => hm(h + 12, 0),
        Some(Clock::Bare(h)) => hm(h % 24, 0),
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
                Some(Clock::Bare(h)) => hm(h % 12, 0),
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
    };
    // Defensive: a relative phrase must never land in the past.
    if result < now {
        return Err(past());
    }
    Ok(result)
}

fn parse_iso(c: &regex::Captures<'_>, text: &str, tz: Tz) -> Result<DateTime<Utc>, ParseError> {
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
            Some(Clock::Bare(h)) => hm(h % 24, 0),
            None => return Err(ParseError::BadDateTime(shown(text))),
        }
    };
    let naive = date.and_time(time);
    Ok(if utc { naive.and_utc() } else { resolve_local(naive, tz) })
}

/// Words for "all of us, taking turns" in a list of members.
const EVERYONE: &[&str] = &[
    "everyone",
    "everybody",
    "all",
    "all of us",
    "the family",
    "whole family",
    "the whole family",
    "rotate",
    "take turns",
    "in turns",
    "we take turns",
    "iedereen",
    "om de beurt",
];

/// Reads one or more members: "me", "Ben", "Ben and Tom", "Ben, Tom & me", "Ben and Tom
/// take turns", "everyone" / "take turns" (every member, in household order). Names are
/// matched like `normalize` does, deduplicated, and keep the order given; None when any
/// part is not a member. `me` is the name of who answers, `names` the household's.
pub fn parse_member_list(text: &str, me: &str, names: &[&str]) -> Option<Vec<String>> {
    let n = normalize(text);
    let n = n
        .strip_suffix(" pls")
        .or_else(|| n.strip_suffix(" please"))
        .unwrap_or(&n);
    let n = n
        .strip_suffix(" take turns")
        .or_else(|| n.strip_prefix("rotate "))
        .unwrap_or(n);
    if EVERYONE.contains(&n) {
        return Some(names.iter().map(|m| (*m).to_owned()).collect());
    }
    let find = |word: &str| names.iter().find(|m| normalize(m) == word).map(|m| (*m).to_owned());
    let mut found: Vec<String> = Vec::new();
    // Normalisation already turned "," and "&" into spaces: split on joining words, then
    // on spaces, unless the whole part is one name with a space in it ("Anna Maria").
    for part in n
        .split(" and ")
        .flat_map(|p| p.split(" en "))
        .flat_map(|p| p.split(" und "))
    {
        let words: Vec<&str> = if find(part).is_some() {
            vec![part]
        } else {
            part.split_whitespace().collect()
        };
        for word in words {
            let name = if matches!(word, "me" | "myself" | "ik" | "ich") {
                me.to_owned()
            } else {
                find(word)?
            };
            if !found.contains(&name) {
                found.push(name);
            }
        }
    }
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Amsterdam};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }
    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test naive")
    }
    fn ams(text: &str, now: &str) -> Result<DateTime<Utc>, ParseError> {
        parse_datetime(text, utc(now), Amsterdam)
    }
    /// Items as "qty×name, ..." so each case fits on one line.
    fn show(text: &str) -> String {
        let items: Vec<String> = parse_items(text)
            .iter()
            .map(|i| format!("{}×{}", i.qty, i.name))
            .collect();
        items.join(", ")
    }

    #[test]
    fn normalize_examples() {
        assert_eq!(normalize("  Dóne, DISHES!! 🎉"), "done dishes");
        assert_eq!(normalize("Crème  Brûlée\n\tNOW"), "creme brulee now");
        assert_eq!(normalize("ﬁve²"), "five2");
        assert_eq!(normalize("🎉!!"), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn item_key_examples() {
        #[rustfmt::skip]
        let cases = [
            ("Bananas", "banana"), ("banana", "banana"), ("BANANA!", "banana"), ("eggs", "egg"),
            ("egg", "egg"), ("glass", "glass"), ("glasses", "glass"), ("Dishes", "dish"),
            ("boxes", "box"), ("berries", "berry"), ("berry", "berry"), ("cookies", "cooky"),
            ("cookie", "cooky"), ("pies", "pie"), ("tomatoes", "tomato"), ("cheeses", "cheese"),
            ("bus", "bus"), ("Green Apples", "green apple"),
        ];
        for (text, key) in cases {
            assert_eq!(item_key(text), key, "{text}");
        }
    }

    #[test]
    fn items_basic_list_and_merge() {
        let item = |name: &str, qty| ParsedItem { name: name.into(), qty };
        assert_eq!(
            parse_items("milk, eggs and 2 bread"),
            vec![item("milk", 1), item("eggs", 1), item("bread", 2)]
        );
        assert_eq!(parse_items("Bananas, banana and 2 BANANAS"), vec![item("Bananas", 4)]);
    }

    #[test]
    fn items_table() {
        let cases = [
            (
                "Kaas; melk en 3 appels\nBrot und Butter & jam + tea",
                "1×Kaas, 1×melk, 3×appels, 1×Brot, 1×Butter, 1×jam, 1×tea",
            ),
            ("2x eggs", "2×eggs"),
            ("2 x eggs", "2×eggs"),
            ("eggs x 3", "3×eggs"),
            ("eggs x3", "3×eggs"),
            ("a loaf of bread", "1×loaf of bread"),
            ("an apple", "1×apple"),
            ("three lemons, ten eggs", "3×lemons, 10×eggs"),
            ("twee kiwi's, zwei Zitronen", "2×kiwi's, 2×Zitronen"),
            ("5000 eggs", "999×eggs"),
            ("99999999999999999999999 eggs", "999×eggs"),
            ("600 eggs, 600 eggs", "999×eggs"),
            ("0 eggs", "1×eggs"),
            ("500 g flour, 2kg potatoes", "1×500 g flour, 1×2kg potatoes"),
            ("2 xl shirts", "2×xl shirts"),
            ("2 more eggs", "2×eggs"),
            ("milk 🥛, 🍌 bananas!!", "1×milk, 1×bananas"),
            ("milk pls", "1×milk"),
            ("please milk and eggs please!", "1×milk, 1×eggs"),
            ("milk, please", "1×milk"),
            ("some milk, more Eggs.", "1×milk, 1×Eggs"),
            ("milk, eggs, and bread", "1×milk, 1×eggs, 1×bread"),
            (
                "- milk\n• eggs\n1. bread\n2) 3 apples",
                "1×milk, 1×eggs, 1×bread, 3×apples",
            ),
            ("  Peanut   Butter  ", "1×Peanut Butter"),
            (",,; \n and & 🎉 !!", ""),
            ("", ""),
            ("more", "1×more"),
        ];
        for (text, want) in cases {
            assert_eq!(show(text), want, "{text:?}");
        }
    }

    #[test]
    fn items_capped_at_fifty() {
        let text: Vec<String> = (0..80).map(|i| format!("thing{i}")).collect();
        let items = parse_items(&text.join(", "));
        assert_eq!(items.len(), 50);
        assert_eq!(items.last().map(|i| i.name.as_str()), Some("thing49"));
    }

    #[test]
    fn duration_forms() {
        let (s, m, h) = (Duration::seconds, Duration::minutes, Duration::hours);
        #[rustfmt::skip]
        let cases = [
            ("90s", s(90)), ("20m", m(20)), ("20 min", m(20)), ("2h", h(2)), ("1h30m", m(90)),
            ("1h 30m", m(90)), ("1h30", m(90)), ("2 hours", h(2)), ("3d", h(72)), ("1w", h(168)),
            ("45 minutes", m(45)), ("1.5h", m(90)), ("1,5 uur", m(90)), ("an hour", h(1)),
            ("1 hour and 30 minutes", m(90)), ("20 Minuten", m(20)), ("0s", s(0)),
            ("366d", h(366 * 24)), ("0.001s", Duration::milliseconds(1)), ("20 min.", m(20)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn duration_errors() {
        assert_eq!(parse_duration("  "), Err(ParseError::EmptyDuration));
        assert_eq!(parse_duration("-5m"), Err(ParseError::NegativeDuration("-5m".into())));
        for long in ["367d", "53w", "99999999999999999999999999h"] {
            assert_eq!(parse_duration(long), Err(ParseError::DurationTooLong(long.into())));
        }
        for bad in ["20", "abc", "5 parsecs", "1h30x", "h", "1..5h", "2 20m", "1d30"] {
            assert_eq!(parse_duration(bad), Err(ParseError::BadDuration(bad.into())), "{bad}");
        }
        let msg = ParseError::BadDuration("x".into()).to_string();
        assert!(msg.contains("1h30m") && msg.contains("90s"), "{msg}");
    }

    #[test]
    fn number_forms() {
        let cases = [("3", 3.0), ("3.5", 3.5), ("3,5", 3.5), (" 12 ", 12.0), ("-2", -2.0)];
        for (text, want) in cases {
            assert_eq!(parse_number(text), Some(want), "{text}");
        }
        for bad in ["", "NaN", "inf", "1e5", "3.5.1", "abc", "1 2", "٣", &"9".repeat(400)] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn resolve_local_dst() {
        let cases = [
            // Amsterdam springs 02:00 CET -> 03:00 CEST at 01:00 UTC.
            ("2026-03-29 02:30", Amsterdam, "2026-03-29T01:00:00Z"),
            ("2026-03-29 02:00", Amsterdam, "2026-03-29T01:00:00Z"),
            ("2026-03-29 03:00", Amsterdam, "2026-03-29T01:00:00Z"),
            ("2026-03-29 01:59", Amsterdam, "2026-03-29T00:59:00Z"),
            // New York springs 02:00 EST -> 03:00 EDT at 07:00 UTC.
            ("2026-03-08 02:30", New_York, "2026-03-08T07:00:00Z"),
            // Amsterdam falls back 03:00 CEST -> 02:00 CET: 02:30 happens twice, take the first.
            ("2026-10-25 02:30", Amsterdam, "2026-10-25T00:30:00Z"),
            ("2026-11-01 01:30", New_York, "2026-11-01T05:30:00Z"),
            ("2026-06-10 14:00", Amsterdam, "2026-06-10T12:00:00Z"),
            // Samoa skipped all of 2011-12-30: the first instant after is 31 Dec 00:00 (+14).
            ("2011-12-30 12:00", Tz::Pacific__Apia, "2011-12-30T10:00:00Z"),
        ];
        for (local, tz, want) in cases {
            assert_eq!(resolve_local(naive(local), tz), utc(want), "{local} {tz}");
        }
    }

    #[test]
    fn datetime_table() {
        // 2026-06-10 is a Wednesday; Amsterdam is UTC+2 then, so 12:00Z is 14:00 local.
        let wed = "2026-06-10T12:00:00Z";
        let cases = [
            ("at 6", wed, "2026-06-10T16:00:00Z"),
            ("at 6", "2026-06-10T17:00:00Z", "2026-06-11T04:00:00Z"),
            ("6", "2026-06-10T02:00:00Z", "2026-06-10T04:00:00Z"),
            ("at 12", wed, "2026-06-10T22:00:00Z"),
            ("18:00", wed, "2026-06-10T16:00:00Z"),
            ("9:00", wed, "2026-06-11T07:00:00Z"),
            ("6pm", wed, "2026-06-10T16:00:00Z"),
            ("6:30 pm", wed, "2026-06-10T16:30:00Z"),
            ("At 6:30 P.M.", wed, "2026-06-10T16:30:00Z"),
            ("12am", wed, "2026-06-10T22:00:00Z"),
            ("12pm", wed, "2026-06-11T10:00:00Z"),
            ("om 18.30 uur", wed, "2026-06-10T16:30:00Z"),
            ("midnight", wed, "2026-06-10T22:00:00Z"),
            ("now", wed, wed),
            ("tomorrow 18:00", wed, "2026-06-11T16:00:00Z"),
            ("tomorrow at 7", wed, "2026-06-11T05:00:00Z"),
            ("tomorrow at 3", wed, "2026-06-11T13:00:00Z"),
            ("Tomorrow", wed, "2026-06-11T07:00:00Z"),
            ("morgen", wed, "2026-06-11T07:00:00Z"),
            ("morgen 8:15", wed, "2026-06-11T06:15:00Z"),
            ("18:00 tomorrow", wed, "2026-06-11T16:00:00Z"),
            ("tomorrow morning", wed, "2026-06-11T07:00:00Z"),
            ("day after tomorrow 10:00", wed, "2026-06-12T08:00:00Z"),
            ("today 9pm", wed, "2026-06-10T19:00:00Z"),
            ("today at 6", wed, "2026-06-10T16:00:00Z"),
            ("tonight", wed, "2026-06-10T18:00:00Z"),
            ("tonight at 11", wed, "2026-06-10T21:00:00Z"),
            ("tonight 9:30", wed, "2026-06-10T19:30:00Z"),
            ("tonight at 1", wed, "2026-06-10T23:00:00Z"),
            ("tonight 12", wed, "2026-06-10T22:00:00Z"),
            ("monday 7:00", wed, "2026-06-15T05:00:00Z"),
            ("on Friday at 5pm", wed, "2026-06-12T15:00:00Z"),
            ("vrijdag", wed, "2026-06-12T07:00:00Z"),
            // Today's weekday counts only while the time is still ahead.
            ("wednesday 18:00", wed, "2026-06-10T16:00:00Z"),
            ("wednesday 10:00", wed, "2026-06-17T08:00:00Z"),
            ("in 20 minutes", wed, "2026-06-10T12:20:00Z"),
            ("in 2 hours", wed, "2026-06-10T14:00:00Z"),
            ("In 3 days", wed, "2026-06-13T12:00:00Z"),
            ("over 1 uur", wed, "2026-06-10T13:00:00Z"),
            ("2026-12-01 10:00", wed, "2026-12-01T09:00:00Z"),
            ("2026-12-01T10:00", wed, "2026-12-01T09:00:00Z"),
            ("2026-12-01T10:00Z", wed, "2026-12-01T10:00:00Z"),
            ("on 2026-12-01 at 18:30", wed, "2026-12-01T17:30:00Z"),
            ("2026-12-01", wed, "2026-12-01T08:00:00Z"),
            // Explicit ISO dates may lie in the past.
            ("2020-01-01 10:00", wed, "2020-01-01T09:00:00Z"),
            // DST: tomorrow 02:30 falls in the spring gap / the fall-back overlap.
            ("tomorrow 02:30", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"),
            ("tomorrow 02:30", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"),
        ];
        for (text, now, want) in cases {
            assert_eq!(ams(text, now), Ok(utc(want)), "{text} at {now}");
        }
        let ny = |text, now| parse_datetime(text, utc(now), New_York);
        assert_eq!(
            ny("tomorrow 2:30", "2026-03-07T17:00:00Z"),
            Ok(utc("2026-03-08T07:00:00Z"))
        );
        assert_eq!(ny("tomorrow", wed), Ok(utc("2026-06-11T13:00:00Z")));
    }

    #[test]
    fn datetime_errors() {
        let wed = "2026-06-10T12:00:00Z";
        use ParseError::*;
        let cases = [
            ("today", wed, MissingTime("today".into())),
            ("today 9am", wed, InPast("today 9am".into())),
            ("tonight", "2026-06-10T19:00:00Z", InPast("tonight".into())),
            ("25:00", wed, BadTimeOfDay("25:00".into())),
            ("13pm", wed, BadTimeOfDay("13pm".into())),
            ("10:61", wed, BadTimeOfDay("10:61".into())),
            ("2026-02-30 10:00", wed, BadDate("2026-02-30 10:00".into())),
            ("next blue moon", wed, BadDateTime("next blue moon".into())),
            ("monday friday", wed, BadDateTime("monday friday".into())),
            ("in soon", wed, BadDuration("soon".into())),
            ("   ", wed, EmptyDateTime),
        ];
        for (text, now, want) in cases {
            assert_eq!(ams(text, now), Err(want), "{text}");
        }
        let msg = BadDateTime("x".into()).to_string();
        assert!(msg.contains("tomorrow 9am") && msg.contains("in 2 hours"), "{msg}");
    }

    #[rustfmt::skip]
    const ZONES: [Tz; 5] = [Amsterdam, New_York, Tz::UTC, Tz::Australia__Lord_Howe, Tz::Pacific__Apia];

    /// Phrases built from the relative grammar: day word, optional "at", a clock or "in ...".
    #[rustfmt::skip]
    fn phrase() -> impl Strategy<Value = String> {
        let day = prop::sample::select(vec!["", "today ", "tonight ", "tomorrow ", "morgen ", "on friday ", "next sun "]);
        let at = prop::sample::select(vec!["", "at "]);
        let clock = prop_oneof![
            (0u32..30, 0u32..70).prop_map(|(h, m)| format!("{h}:{m:02}")),
            (0u32..14, prop::sample::select(vec!["am", "pm", " pm", ""])).prop_map(|(h, s)| format!("{h}{s}")),
            prop::sample::select(vec!["", "noon", "midnight", "morning"]).prop_map(str::to_string),
            (0u32..5000, prop::sample::select(vec!["m", " minutes", "h", "d"])).prop_map(|(n, u)| format!("in {n}{u}")),
        ];
        (day, at, clock).prop_map(|(d, a, c)| format!("{d}{a}{c}"))
    }

    fn assert_clean(items: &[ParsedItem]) -> Result<(), TestCaseError> {
        prop_assert!(items.len() <= MAX_ITEMS);
        for it in items {
            prop_assert!((1..=MAX_QTY).contains(&it.qty));
            prop_assert!(!it.name.is_empty());
            prop_assert_eq!(it.name.trim(), it.name.as_str());
        }
        Ok(())
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let phrases = [
            "at 6",
            "tomorrow",
            "monday 9:00",
            "tonight",
            "in 3d",
            "18:00",
            "9999-12-31 23:59",
        ];
        for now in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            for text in phrases {
                for tz in ZONES {
                    if let Ok(when) = parse_datetime(text, now, tz) {
                        assert!(when >= now || text.starts_with("9999"), "{text}");
                    }
                }
            }
        }
        for naive in [NaiveDateTime::MIN, NaiveDateTime::MAX] {
            for tz in ZONES {
                let _ = resolve_local(naive, tz);
            }
        }
    }

    #[test]
    fn fillers_are_dropped_at_the_edges_only() {
        let strip = |t: &str| strip_fillers(&normalize(t));
        assert_eq!(strip("Shopping list pls!"), Some("shopping list".into()));
        assert_eq!(strip("hey Alfred, my chores please 🙏"), Some("my chores".into()));
        assert_eq!(strip("lijst graag, dank je wel"), Some("lijst".into()));
        assert_eq!(strip("thank you"), None, "one filler alone stays");
        assert_eq!(strip("Hi Alfred!"), Some("hi".into()), "the first word stays");
        assert_eq!(strip("thank you alfred"), Some("thank you".into()));
        assert_eq!(strip("list"), None, "nothing to drop");
        // Inside the message a filler is a real word.
        assert_eq!(strip("please list please stop"), Some("list please stop".into()));
    }

    #[test]
    fn one_typo_per_long_word() {
        for (typed, keyword) in [
            ("shoping list", "shopping list"),  // a dropped letter
            ("my remnders", "my reminders"),    // a dropped letter
            ("my chroes", "my chores"),         // swapped neighbours
            ("shopoing list", "shopping list"), // a changed letter
            ("grocceries", "groceries"),        // an added letter
            ("my chore", "my chores"),          // a missing plural s
        ] {
            assert!(typo_match(typed, keyword), "{typed} / {keyword}");
        }
        assert!(
            !typo_match("shopping lisst", "shopping list"),
            "`list` is short: no typo there"
        );
        assert!(!typo_match("list", "list"), "equal is exact, not a typo");
        assert!(!typo_match("lost", "list"), "short words never take a typo");
        assert!(!typo_match("shpoing list", "shopping list"), "two typos in one word");
        assert!(
            !typo_match("shopping", "shopping list"),
            "words are compared one by one"
        );
        assert!(one_edit("ab", "ba") && one_edit("abc", "ab") && one_edit("ab", "abc") && !one_edit("abc", "abc"));
        assert!(!one_edit("abcd", "badc"));
    }

    proptest! {
        #[test]
        fn resolve_local_never_panics(secs in -8_000_000_000_000i64..8_000_000_000_000, zone in 0usize..5) {
            if let Some(naive) = DateTime::<Utc>::from_timestamp(secs, 0).map(|d| d.naive_utc()) {
                let _ = resolve_local(naive, ZONES[zone]);
            }
        }

        #[test]
        fn items_never_panic_and_are_clean(text in any::<String>()) {
            assert_clean(&parse_items(&text))?;
        }

        #[test]
        fn items_from_list_like_text(
            words in prop::collection::vec("[a-zA-Z0-9 xX🍌.,!&+-]{0,12}", 0..80),
            sep in prop::sample::select(vec![", ", " and ", "\n", " & ", ";"]),
        ) {
            assert_clean(&parse_items(&words.join(sep)))?;
        }

        #[test]
        fn a_keyword_is_never_a_typo_of_itself(words in prop::collection::vec("[a-z]{1,9}", 1..4)) {
            let keyword = words.join(" ");
            prop_assert!(!typo_match(&keyword, &keyword));
        }

        #[test]
        fn one_changed_letter_in_a_long_word_is_a_typo(word in "[a-z]{5,10}", at in 0usize..10, c in "[a-z]") {
            let at = at % word.len();
            let typed: String = word.chars().enumerate().map(|(i, x)| if i == at { c.chars().next().unwrap_or(x) } else { x }).collect();
            prop_assert_eq!(typo_match(&typed, &word), typed != word);
        }

        #[test]
        fn strip_fillers_never_grows_and_is_clean(text in any::<String>()) {
            let n = normalize(&text);
            if let Some(s) = strip_fillers(&n) {
                prop_assert!(!s.is_empty() && s.len() < n.len() && n.contains(&s));
                prop_assert_eq!(normalize(&s), s);
            }
        }

        #[test]
        fn normalize_is_idempotent(text in any::<String>()) {
            let once = normalize(&text);
            prop_assert_eq!(normalize(&once), once);
        }

        #[test]
        fn duration_round_trips(h in 0i64..=8000, m in 0i64..60, space in any::<bool>()) {
            let text = if space { format!("{h}h {m}m") } else { format!("{h}h{m}m") };
            prop_assert_eq!(parse_duration(&text), Ok(Duration::hours(h) + Duration::minutes(m)));
        }

        #[test]
        fn duration_is_bounded(text in any::<String>()) {
            if let Ok(d) = parse_duration(&text) {
                prop_assert!(d >= Duration::zero() && d <= Duration::days(366));
            }
        }

        #[test]
        fn datetime_never_panics(text in any::<String>(), secs in -5_000_000_000i64..5_000_000_000, zone in 0usize..5) {
            let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
            let _ = parse_datetime(&text, now, ZONES[zone]);
        }

        #[test]
        fn relative_phrases_are_never_past(text in phrase(), secs in 0i64..4_000_000_000, zone in 0usize..5) {
            let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
            if let Ok(when) = parse_datetime(&text, now, ZONES[zone]) {
                prop_assert!(when >= now, "{} at {} gave {}", text, now, when);
            }
        }
    }
}

#[cfg(test)]
mod member_list_tests {
    use super::parse_member_list;

    const FAMILY: &[&str] = &["Anna", "Ben", "Tom", "Anna Maria"];

    fn read(text: &str) -> Option<Vec<String>> {
        parse_member_list(text, "Ben", FAMILY)
    }

    #[test]
    fn names_in_the_order_given() {
        assert_eq!(read("tom"), Some(vec!["Tom".to_owned()]));
        assert_eq!(read("Me"), Some(vec!["Ben".to_owned()]));
        assert_eq!(read("Tom and me"), Some(vec!["Tom".to_owned(), "Ben".to_owned()]));
        assert_eq!(
            read("anna, TOM & ben!"),
            Some(vec!["Anna".to_owned(), "Tom".to_owned(), "Ben".to_owned()])
        );
        assert_eq!(
            read("Tom en Anna Maria"),
            Some(vec!["Tom".to_owned(), "Anna Maria".to_owned()])
        );
        assert_eq!(read("tom and tom"), Some(vec!["Tom".to_owned()]));
        assert_eq!(
            read("rotate Ben and Tom"),
            Some(vec!["Ben".to_owned(), "Tom".to_owned()])
        );
        assert_eq!(
            read("ben and tom take turns pls"),
            Some(vec!["Ben".to_owned(), "Tom".to_owned()])
        );
    }

    #[test]
    fn everyone_is_the_household_in_order() {
        for text in ["everyone", "Everybody!", "take turns", "iedereen"] {
            assert_eq!(read(text).map(|v| v.len()), Some(FAMILY.len()), "{text}");
        }
    }

    #[test]
    fn anyone_unknown_makes_it_invalid() {
        for text in ["the dog", "Ben and the dog", "", "and", "🎉"] {
            assert_eq!(read(text), None, "{text}");
        }
    }
}

#[cfg(test)]
mod member_list_props {
    use super::parse_member_list;
    use proptest::prelude::*;

    const FAMILY: &[&str] = &["Anna", "Ben", "Tom", "Anna Maria", "Émile"];

    proptest! {
        /// Any text, and any mix of names and joining words: never a panic; an answer is
        /// never empty, holds only household names, each once.
        #[test]
        fn member_lists_are_household_names_once(
            text in "((anna|ben|tom|émile|me|the dog|anna maria|everyone)( and | en |, | & | )){0,6}(pls|take turns)?|\\PC{0,40}"
        ) {
            if let Some(found) = parse_member_list(&text, "Ben", FAMILY) {
                prop_assert!(!found.is_empty());
                for (i, name) in found.iter().enumerate() {
                    prop_assert!(FAMILY.contains(&name.as_str()), "{name}");
                    prop_assert!(!found[..i].contains(name), "{name} twice");
                }
            }
        }
    }
}
