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

/// Issue 12: among same-priority regexes that match, the one that read more of the
/// message as its own words wins, whichever file sorts first.
#[test]
fn the_most_specific_regex_of_a_priority_wins() {
    let fs = flows(&[
        r#"
id: groceries
triggers: [{ regex: '^(?:delete|remove)\s+(?P<items>.+)$' }]
steps: [{ send: "list: {{ captures.items }}" }]
"#,
        r#"
id: reminders
triggers: [{ regex: '^(?:delete|remove)\s+the\s+reminder\s+about\s+(?P<what>.+)$' }]
steps: [{ send: "reminder: {{ captures.what }}" }]
"#,
        r#"
id: higher
priority: 1
triggers: [{ regex: '^remove\s+(?P<x>.+)$' }]
steps: [{ send: "higher: {{ captures.x }}" }]
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Anna", "delete the reminder about the dentist"),
        ["Anna: reminder: the dentist"]
    );
    assert_eq!(say(&mut sim, "Anna", "delete milk"), ["Anna: list: milk"]);
    // A higher priority still wins outright, however much it captures.
    assert_eq!(
        say(&mut sim, "Anna", "remove the reminder about the dentist"),
        ["Anna: higher: the reminder about the dentist"]
    );
    // Within one flow the written order stands: a guard before a catch-all keeps working.
    let fs = flows(&[r#"
id: groceries
triggers:
  - { regex: '^add\s+(?P<items>.*\bat\s+\d.*)$', start: guard }
  - { regex: '^add\s+(?P<items>.+?)(?:\s+pls)?$', start: add }
steps:
  - id: guard
    send: "not shopping: {{ captures.items }}"
    next: end
  - id: add
    send: "added {{ captures.items }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Anna", "add milk at 5 pls"),
        ["Anna: not shopping: milk at 5 pls"]
    );
}

/// Issue 12: `alfred check` warns when a catch-all capture takes another flow's keyword
/// of the same priority, which it loses only because of file order; a guard trigger
/// of its own flow that takes those words first silences it.
#[test]
fn a_catch_all_regex_taking_other_flows_keywords_is_a_warning() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let chores = SourceFile {
        path: "a_chores.yaml".into(),
        text: "id: chores\ntriggers: [{ keywords: [add chore, my chores] }]\nsteps: [{ send: hi }]\n".into(),
    };
    let greedy = |guard: &str| SourceFile {
        path: "b_groceries.yaml".into(),
        text: format!(
            "id: groceries\ntriggers:\n{guard}  - {{ regex: '^add\\s+(?P<items>.+)$' }}\nsteps: [{{ send: hi }}]\n"
        ),
    };
    let warnings = |files: &[SourceFile]| -> Vec<String> {
        load(Some(&household), files)
            .diagnostics
            .iter()
            .filter(|d| d.code == "greedy-trigger")
            .map(|d| d.message.clone())
            .collect()
    };
    let found = warnings(&[chores.clone(), greedy("")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`add chore` (flow `chores`)"), "{found:?}");
    let guarded = greedy("  - { regex: '^add\\s+.*\\bchores?\\b.*$', start: 0 }\n");
    let guarded = SourceFile {
        text: guarded.text.replace(", start: 0", ""),
        ..guarded
    };
    assert!(warnings(&[chores, guarded]).is_empty());
}

/// Issue 12, item 14: `flows` holds what this member may use, and a description may
/// read `member.role` (only that).
#[test]
fn help_lists_what_this_member_may_do() {
    let fs = flows(&[
        r#"
id: help
hidden: true
triggers: [{ keywords: [help] }]
steps: [{ send: "{% for f in flows %}[{{ f.description }}]{% endfor %}" }]
"#,
        r#"
id: admin
description: "members{% if member.role == 'admin' %}, add member{% endif %}"
triggers: [{ keywords: [members] }]
steps: [{ send: hi }]
"#,
        r#"
id: secret
description: only for grown-ups
triggers: [{ keywords: [secret], roles: [admin, adult] }]
steps: [{ send: hi }]
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Anna", "help"),
        ["Anna: [members, add member][only for grown-ups]"]
    );
    assert_eq!(say(&mut sim, "Ben", "help"), ["Ben: [members][only for grown-ups]"]);
    assert_eq!(say(&mut sim, "Kid", "help"), ["Kid: [members]"]);
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let bad = SourceFile {
        path: "bad.yaml".into(),
        text: "id: bad\ndescription: \"{{ member.name }}\"\ntriggers: [{ keywords: [x] }]\nsteps: [{ send: hi }]\n"
            .into(),
    };
    let checked = load(Some(&household), &[bad]);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.message.contains("can only read `member.role`")),
        "{:?}",
        checked.diagnostics
    );
}
