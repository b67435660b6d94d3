//! Member lists: "Ben and Tom", "me", "everyone" → household names in the order given.
//! Pure: no I/O, no clock; the household's names are a parameter, never looked up.

use super::text::normalize;

/// Words for "all of us, taking turns" in a list of members.
pub(super) const EVERYONE: &[&str] = &[
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
