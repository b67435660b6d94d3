//! Routing: trigger priority, roles and conditions, polite words and typos, shadowing.

use crate::check::{SourceFile, load};
use crate::data::HouseholdData;
use crate::sim::Simulator;

use super::*;

#[test]
fn triggers_follow_priority_roles_and_conditions() {
    let fs = flows(&[
        r#"
id: low
priority: 1
triggers: [{ keywords: [hello] }]
steps: [{ send: low }]
"#,
        r#"
id: high
priority: 5
triggers:
  - { keywords: [hello], roles: [admin] }
  - { keywords: [hello], when: "member.language == 'nl'", priority: 4 }
steps: [{ send: high }]
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "Hello!"), ["Anna: high"]);
    assert_eq!(say(&mut sim, "Ben", "hello"), ["Ben: low"]);
    assert_eq!(say(&mut sim, "Kid", "HÉLLO"), ["Kid: high"]);
}

#[test]
fn keywords_forgive_polite_words_and_one_typo_but_exact_wins() {
    let fs = flows(&[r#"
id: k
triggers:
  - { keywords: [shopping list], start: list }
  - { keywords: [shoping list], start: exact_typo }
  - { keywords: [my chores], start: chores }
  - { keywords: [list], start: short }
  - { regex: '^shopping lists$', start: regex }
steps:
  - id: list
    send: list
    next: end
  - id: exact_typo
    send: exact typo keyword
    next: end
  - id: chores
    send: chores
    next: end
  - id: short
    send: short
    next: end
  - id: regex
    send: regex
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "Shopping list pls!"), ["Anna: list"]);
    assert!(
        trace_lines(&sim)
            .iter()
            .any(|l| l.contains("keyword `shopping list`, ignoring polite words"))
    );
    assert_eq!(say(&mut sim, "Anna", "hey Alfred, my chroes please"), ["Anna: chores"]);
    assert!(
        trace_lines(&sim)
            .iter()
            .any(|l| l.contains("keyword `my chores` matched with a typo")),
        "{:?}",
        trace_lines(&sim)
    );
    // An exact keyword wins over an earlier trigger it is a typo of, and so does a regex.
    assert_eq!(say(&mut sim, "Anna", "shoping list"), ["Anna: exact typo keyword"]);
    assert_eq!(say(&mut sim, "Anna", "shopping lists"), ["Anna: regex"]);
    // Short words take no typo.
    assert_eq!(say(&mut sim, "Anna", "lost"), Vec::<String>::new());
    assert_eq!(say(&mut sim, "Anna", "my chorse"), ["Anna: chores"]);
}

#[test]
fn the_checker_knows_typos_never_shadow_and_polite_cancel_words_do() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let flow = SourceFile {
        path: "f.yaml".into(),
        text: r#"
id: x
priority: 5
triggers:
  - { keywords: [shopping list] }
  - { keywords: [shoping list], priority: 1 }
  - { keywords: [stop please, list], priority: 1 }
  - { keywords: [list], priority: 0 }
steps:
  - send: hi
"#
        .into(),
    };
    let checked = load(Some(&household), &[flow]);
    let found: Vec<(&str, &str)> = checked
        .diagnostics
        .iter()
        .map(|d| (d.code, d.message.as_str()))
        .collect();
    // An exact keyword always wins over an earlier typo match: no shadowing.
    assert!(!found.iter().any(|(_, m)| m.contains("shoping")), "{found:?}");
    assert!(
        found
            .iter()
            .any(|(c, m)| *c == "keyword" && m.contains("`stop please` is a cancel word")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(c, m)| *c == "shadowed-trigger" && m.contains("`list`")),
        "{found:?}"
    );
}
