//! Times of day as people say them, rewritten to clock text the clock reader knows:
//! "half past 6" → "6:30", "quarter to 8" → "7:45", Dutch "kwart over 8" → "8:15",
//! "half 7" → "6:30" (Dutch and German count the half towards the next hour), "tien over
//! half 7" → "6:40", German "viertel nach 8" / "halb 7".
//!
//! An hour 1..=12 stays a 12-hour reading ("half past 6" is 6:30 or 18:30, whichever
//! comes first, like "at 6:30"); 0 and 13..=23 stay 24-hour ("kwart over 18" is 18:15).
//! Pure text in, text out: no clock, no zone.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::re;

const HOUR: &str = r"([0-9]{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|een|twee|drie|vier|vijf|zes|zeven|acht|negen|tien|elf|twaalf|eins|zwei|drei|fünf|sechs|sieben|neun|zehn|zwölf)";
const MINS: &str =
    r"([0-9]{1,2}|one|two|three|four|five|ten|twenty|een|twee|drie|vier|vijf|tien|twintig|fünf|zehn|zwanzig)";

/// (pattern, minutes from the hour in the last group, sign of the first group's minutes).
static RULES: LazyLock<Vec<(Regex, i32, i32)>> = LazyLock::new(|| {
    let r = |p: String, base, sign| (re(&p), base, sign);
    vec![
        // "ten past half 7": minutes around the half (Dutch/German).
        r(
            format!(r"\b{MINS}\s+(?:minuten\s+)?(?:over|nach)\s+(?:half|halb)\s+{HOUR}\b"),
            -30,
            1,
        ),
        r(
            format!(r"\b{MINS}\s+(?:minuten\s+)?(?:voor|vor)\s+(?:half|halb)\s+{HOUR}\b"),
            -30,
            -1,
        ),
        r(
            format!(r"\b(?:a\s+)?(?:quarter|kwart|viertel)\s+(?:past|after|over|nach)\s+{HOUR}\b"),
            15,
            0,
        ),
        r(
            format!(r"\b(?:a\s+)?(?:quarter|kwart|viertel)\s+(?:to|before|voor|vor)\s+{HOUR}\b"),
            -15,
            0,
        ),
        r(format!(r"\bhalf\s+past\s+{HOUR}\b"), 30, 0),
        // Dutch "half 7" and German "halb 7" are 6:30.
        r(format!(r"\b(?:half|halb)\s+{HOUR}\b"), -30, 0),
        // "10 past 8", "5 over 8", "10 voor 8", "zehn nach 8".
        r(
            format!(r"\b{MINS}\s+(?:minutes?\s+|minuten\s+)?(?:past|after|over|nach)\s+{HOUR}\b"),
            0,
            1,
        ),
        r(
            format!(r"\b{MINS}\s+(?:minutes?\s+|minuten\s+)?(?:to|before|voor|vor)\s+{HOUR}\b"),
            0,
            -1,
        ),
    ]
});

fn number(word: &str) -> Option<i32> {
    if let Ok(n) = word.parse::<i32>() {
        return Some(n);
    }
    super::number_word(word).and_then(|n| i32::try_from(n).ok())
}

/// "h:mm" for an hour said 1..=12 (still a 12-hour reading), "hh:mm" otherwise.
fn clock(hour: i32, offset: i32) -> Option<String> {
    if !(0..=24).contains(&hour) || !(-59..=59).contains(&offset) {
        return None;
    }
    let total = (hour * 60 + offset).rem_euclid(24 * 60);
    let (h, m) = (total / 60, total % 60);
    Some(if (1..=12).contains(&hour) {
        let h12 = if h % 12 == 0 { 12 } else { h % 12 };
        format!("{h12}:{m:02}")
    } else {
        format!("{h:02}:{m:02}")
    })
}

/// Rewrites spoken times of day in lowercase `text` to clock text; anything else is kept.
/// A phrase whose numbers are out of range is left alone (and so fails as a time).
pub(super) fn spoken_clock(text: &str) -> String {
    let mut out = text.to_owned();
    for (rule, base, sign) in RULES.iter() {
        if !rule.is_match(&out) {
            continue;
        }
        out = rule
            .replace_all(&out, |c: &Captures<'_>| {
                let whole = c.get(0).map_or("", |m| m.as_str()).to_owned();
                let groups: Vec<&str> = c.iter().skip(1).flatten().map(|m| m.as_str()).collect();
                let (mins, hour) = match (*sign, groups.as_slice()) {
                    (0, [h]) => (Some(0), number(h)),
                    (_, [m, h]) => (number(m), number(h)),
                    _ => (None, None),
                };
                match (mins, hour) {
                    (Some(m), Some(h)) if m < 30 || *sign == 0 => clock(h, base + sign * m).unwrap_or(whole),
                    _ => whole,
                }
            })
            .into_owned();
    }
    out
}
