//! The engine's own member-facing words (re-prompts, "please choose one of", giving up,
//! "something went wrong"), in the member's language: English and Dutch.
//!
//! Flows write their texts per language; these are the few the engine says itself.
//! Issue 12 (item 11): Tom, who speaks Dutch, answered a Dutch question and was told
//! "Please choose one of: Ja, wissen, …". A member's language picks the text, then the
//! household's, then English.

use crate::flow::Text;
use crate::tmpl::Tpl;

use super::Run;

/// A text in English and Dutch, the first the fallback.
pub(super) fn both(en: impl Into<String>, nl: impl Into<String>) -> Text {
    Text {
        variants: vec![
            ("en".to_owned(), Tpl::Lit(en.into())),
            ("nl".to_owned(), Tpl::Lit(nl.into())),
        ],
    }
}

/// "Sorry, I still didn't get that": a question gave up.
pub(super) fn give_up() -> Text {
    both(
        "Sorry, I still didn't get that. Let's leave it for now.",
        "Sorry, ik snap het nog steeds niet. We laten het hier even bij.",
    )
}

/// A flow failed on Alfred's side.
pub(super) fn sorry() -> Text {
    both(
        "Sorry, something went wrong on my side. Let's start over.",
        "Sorry, er ging bij mij iets mis. We beginnen opnieuw.",
    )
}

impl<'a> Run<'a> {
    /// The member's variant of an English/Dutch pair.
    pub(super) fn say(&self, en: impl Into<String>, nl: impl Into<String>) -> String {
        self.pick(&both(en, nl))
    }

    /// A literal text in the member's language (templates render to nothing here).
    pub(super) fn pick(&self, t: &Text) -> String {
        match t.pick(&self.member.language, &self.fs.household.language) {
            Tpl::Lit(s) => s.clone(),
            Tpl::Jinja(_) => String::new(),
        }
    }
}
