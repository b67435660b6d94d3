//! Item lists: "milk, eggs and 2 bread" → named items with quantities, and the key
//! that says two spellings are the same item.
//! Pure: no I/O, no clock; does not read or change the household's lists.

use std::collections::VecDeque;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::re;
use super::text::normalize;

pub(super) const MAX_ITEMS: usize = 50;
/// The longest item name, in characters: a pasted paragraph is not a grocery, and one
/// such "item" would push every later one off the list display.
pub const MAX_ITEM_CHARS: usize = 100;
pub(super) const MAX_QTY: u32 = 999;

pub(super) static SEP_RE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)[,;\n\r]|\s+(?:and|en|und|&|\+)\s+"));

/// A key for "is this the same grocery item": [`normalize`], then naive English singular per word,
/// so `"Bananas"` / `"banana"` / `"BANANA!"` share a key; `"eggs"`/`"egg"` too; `"glass"` stays `"glass"`.
///
/// Words of at most 3 chars are left alone. `-ies` and `-ie` both become `-y` (so berries/berry
/// and cookies/cookie each match), `-es` is stripped after ss/zz/x/ch/sh and from long `-oes`
/// words (tomatoes), otherwise a trailing `s` (but not `ss`) is stripped.
pub fn item_key(text: &str) -> String {
    normalize(text).split(' ').map(singular).collect::<Vec<_>>().join(" ")
}

pub(super) fn singular(word: &str) -> String {
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
    parse_item_list(text).items.into_iter().map(|l| l.item).collect()
}

/// One item of an [`ItemList`], with whether its quantity was typed ("2 bread") or
/// is the default 1 ("bread"): "add bread" twice is the same wish, "add 2 bread" is more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedItem {
    /// The item.
    pub item: ParsedItem,
    /// The member typed a quantity.
    pub counted: bool,
}

/// Everything [`parse_item_list`] read, including what it refused, so nothing is
/// dropped without a word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemList {
    /// The items, at most 50, merged by [`item_key`].
    pub items: Vec<ListedItem>,
    /// Names longer than [`MAX_ITEM_CHARS`] (clipped to 30 characters for showing).
    pub too_long: Vec<String>,
    /// How many distinct items came after the first 50 and were not taken.
    pub over_limit: usize,
}

/// [`parse_items`] with the details: typed quantities, and what was refused and why.
pub fn parse_item_list(text: &str) -> ItemList {
    let mut out = ItemList::default();
    let mut keys: Vec<String> = Vec::new();
    for part in SEP_RE.split(text) {
        let Some((item, counted)) = parse_part(part) else {
            continue;
        };
        let key = item_key(&item.name);
        if key.is_empty() {
            continue;
        }
        if item.name.chars().count() > MAX_ITEM_CHARS {
            let mut shown: String = item.name.chars().take(30).collect();
            shown.push('…');
            out.too_long.push(shown);
            continue;
        }
        if let Some(existing) = keys.iter().position(|k| *k == key).and_then(|i| out.items.get_mut(i)) {
            existing.item.qty = existing.item.qty.saturating_add(item.qty).min(MAX_QTY);
            existing.counted = true;
        } else if out.items.len() < MAX_ITEMS {
            keys.push(key);
            out.items.push(ListedItem { item, counted });
        } else {
            keys.push(key);
            out.over_limit += 1;
        }
    }
    out
}

/// Where a list is named at the end of an item ("bananas from the list", "chips van de
/// lijst"): the words that may make up that tail, read from its end.
const LIST_WORDS: &[&str] = &["list", "lijst", "lijstje", "boodschappenlijst", "boodschappenlijstje"];
const LIST_QUALIFIERS: &[&str] = &[
    "shopping",
    "grocery",
    "groceries",
    "the",
    "my",
    "our",
    "de",
    "mijn",
    "onze",
];
const LIST_PREPOSITIONS: &[&str] = &["from", "off", "to", "on", "of", "van", "uit", "op", "af"];

/// Drops a trailing "from the (shopping) list" / "van de lijst": where, not what.
fn strip_list_tail(words: &mut Words) {
    if words.len() < 3 || !words.back().is_some_and(|w| is_word_in(w, LIST_WORDS)) {
        return;
    }
    let mut n = words.len() - 1;
    while n > 1 && is_word_in(&words[n - 1], LIST_QUALIFIERS) {
        n -= 1;
    }
    if n > 1 && is_word_in(&words[n - 1], LIST_PREPOSITIONS) {
        words.truncate(n - 1);
    }
}

pub(super) const PLEASE: &[&str] = &["pls", "plz", "please"];
/// Leading words that are not part of the item: joiners, "some", and articles
/// ("the milk", "de chips", "het brood"; "a"/"een" are quantities, see [`word_qty`]).
pub(super) const LEADING_FILLER: &[&str] = &[
    "and", "en", "und", "&", "+", "some", "more", "also", "the", "de", "het", "die", "der", "das", "my", "our",
];
pub(super) const UNITS: &[&str] = &[
    "g", "gr", "gram", "grams", "kg", "kilo", "kilos", "mg", "l", "ltr", "liter", "liters", "litre", "litres", "ml",
    "cl", "dl", "lb", "lbs", "oz", "pound", "pounds",
];
/// Emoji blocks plus the joiners and selectors that glue emoji sequences together.
#[rustfmt::skip]
pub(super) const EMOJI: &[(u32, u32)] = &[
    (0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2300, 0x23FF), (0x2B00, 0x2BFF), (0x2190, 0x21FF),
    (0xFE00, 0xFE0F), (0x200D, 0x200D), (0x20E3, 0x20E3), (0xE0000, 0xE007F),
];

pub(super) fn is_emoji(c: char) -> bool {
    EMOJI.iter().any(|(lo, hi)| (*lo..=*hi).contains(&u32::from(c)))
}

/// Words of one part; a deque so stripping from the front stays O(1) on silly long input.
pub(super) type Words = VecDeque<String>;

/// One part of an item list: the item, and whether a quantity was typed.
pub(super) fn parse_part(raw: &str) -> Option<(ParsedItem, bool)> {
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
        strip_list_tail(&mut words);
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
    let counted = qty.is_some();
    let qty = qty.unwrap_or(1);
    (!name.is_empty()).then_some((ParsedItem { name, qty }, counted))
}

pub(super) fn is_word_in(word: &str, set: &[&str]) -> bool {
    set.contains(&word.to_lowercase().as_str())
}

/// Bullets ("- milk", "• milk") and numbered lists ("1. milk", "2) eggs") are layout, not quantities.
pub(super) fn strip_list_marker(words: &mut Words) {
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
pub(super) fn take_qty(words: &mut Words) -> Option<u32> {
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
pub(super) fn digits_qty(word: &str) -> Option<u32> {
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
pub(super) fn times_qty(word: &str) -> Option<u32> {
    let is_x = |c: char| matches!(c, 'x' | 'X' | '×');
    digits_qty(word.strip_suffix(is_x).or_else(|| word.strip_prefix(is_x))?)
}

pub(super) fn word_qty(word: &str) -> Option<u32> {
    match word.to_lowercase().as_str() {
        // An article is one of a thing ("een" is both).
        "a" | "an" | "ein" | "eine" | "einen" => Some(1),
        // A quantity said as a word goes up to ten ("twelve eggs" stays the item's name).
        w => super::number_word(w).filter(|&n| n <= 10),
    }
}
