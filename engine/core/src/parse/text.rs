//! Text as typed, made comparable: `normalize` for keyword matching, the polite
//! fillers around a command, and one-typo matches of a keyword.
//! Pure: no I/O, no clock; knows no keywords, flows or members itself.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

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

pub(super) fn normalize_once(text: &str) -> String {
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
pub(super) fn one_edit(a: &str, b: &str) -> bool {
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
