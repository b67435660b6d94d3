//! Texts that miss a language their flow speaks (`missing-language`): a flow whose
//! texts have an `nl:` somewhere should have one everywhere a member reads, or a Dutch
//! member gets a Dutch question followed by an English answer.
//! Pure: reads what the compile context recorded of each text; compiles nothing.
//!
//! Issue 12 (item 11): Tom, whose language is `nl`, mostly got English, and nothing
//! said so. A plain string (no language map) counts as missing every language when it
//! has words outside its template tags: "{{ vars.summary }}" or "👍" is the same in
//! every language, "Done!" is English.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::model::Pos;

use super::ctx::FlowCtx;

/// One text as written: its languages, or `None` for a plain string with words.
pub(super) struct WrittenText {
    pub(super) pos: Pos,
    pub(super) step: Option<String>,
    pub(super) languages: Option<Vec<String>>,
}

/// Whether a plain string says something in some language: letters outside `{{ }}`,
/// `{% %}` and `{# #}` tags.
pub(super) fn has_words(src: &str) -> bool {
    static TAGS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}").expect("static regex"));
    TAGS.replace_all(src, " ")
        .split(|c: char| !c.is_alphabetic())
        .any(|w| w.chars().count() >= 2)
}

/// Warns for each text that lacks a language some other text of the same flow has.
pub(super) fn check_languages(cx: &mut FlowCtx<'_>) {
    let texts = std::mem::take(&mut cx.texts);
    let spoken: BTreeSet<&str> = texts
        .iter()
        .filter_map(|t| t.languages.as_ref())
        .flatten()
        .map(String::as_str)
        .collect();
    if spoken.len() < 2 {
        // One language (or none named): nothing is missing.
        return;
    }
    let step = cx.step.take();
    for t in &texts {
        let missing: Vec<&str> = match &t.languages {
            Some(langs) => {
                // A set: a hostile map of 100,000 languages must not cost 100,000².
                let has: BTreeSet<&str> = langs.iter().map(String::as_str).collect();
                spoken.iter().copied().filter(|l| !has.contains(l)).collect()
            }
            None => spoken.iter().copied().collect(),
        };
        if missing.is_empty() {
            continue;
        }
        cx.step = t.step.clone();
        let what = if t.languages.is_some() {
            "this text"
        } else {
            "this plain text"
        };
        cx.warn(
            "missing-language",
            t.pos,
            format!(
                "{what} has no `{}:` although other texts of this flow do",
                missing.join(":`, `")
            ),
        )
        .hint = Some(format!(
            "write it as a map with every language of the flow ({}), so each member reads their own",
            spoken.iter().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    cx.step = step;
}

#[cfg(test)]
mod tests {
    use super::has_words;

    #[test]
    fn words_are_letters_outside_template_tags() {
        assert!(has_words("Done!"));
        assert!(has_words("{{ n }} items"));
        assert!(!has_words("{{ vars.summary }}"));
        assert!(!has_words("👍 {% if x %}{{ y }}{% endif %}"));
        assert!(!has_words("• {{ i.name }} ×"));
    }
}
