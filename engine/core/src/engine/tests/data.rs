//! Records and the roster changed over chat.

use crate::data::HouseholdData;
use crate::sim::Simulator;
use chrono::{TimeZone as _, Utc};

use super::*;

#[test]
fn records_create_update_query_delete() {
    let fs = flows(&[r#"
id: notes
triggers:
  - { regex: '^note (?P<t>.+)$', start: create }
  - { keywords: [bump], start: bump }
  - { keywords: [notes], start: show }
  - { keywords: [forget], start: forget }
steps:
  - id: create
    record_create: { collection: notes, fields: { text: captures.t, n: "1" }, as: note }
  - send: "saved #{{ vars.note.id }}"
    next: end
  - id: bump
    record_update: { collection: notes, where: "record.n < 3", fields: { n: "record.n + 1" }, as: bumped }
  - send: "bumped {{ vars.bumped | length }}"
    next: end
  - id: show
    record_query: { collection: notes, as: all }
  - send: "{% for n in vars.all %}{{ n.id }}={{ n.text }}/{{ n.n }} {% endfor %}"
    next: end
  - id: forget
    record_delete: { collection: notes, id: "1", as: gone }
  - send: "deleted {{ vars.gone | length }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "note buy stamps"), ["Anna: saved #1"]);
    assert_eq!(say(&mut sim, "Ben", "note call mum"), ["Ben: saved #2"]);
    assert_eq!(say(&mut sim, "Anna", "bump"), ["Anna: bumped 2"]);
    assert_eq!(say(&mut sim, "Anna", "bump"), ["Anna: bumped 2"]);
    assert_eq!(say(&mut sim, "Anna", "bump"), ["Anna: bumped 0"]);
    assert_eq!(say(&mut sim, "Anna", "notes"), ["Anna: 1=buy stamps/3 2=call mum/3"]);
    assert_eq!(say(&mut sim, "Anna", "forget"), ["Anna: deleted 1"]);
    assert_eq!(say(&mut sim, "Anna", "notes"), ["Anna: 2=call mum/3"]);
    assert_eq!(sim.data.collection("notes")[0].created_by, "Ben");
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(48))]

    /// Whatever the priorities, a keyword typed exactly goes to its own trigger, even when
    /// an earlier trigger's keyword is one typo away; and each keyword matches itself.
    #[test]
    fn a_typo_match_never_beats_an_exact_one(
        words in proptest::collection::vec("[a-z]{5,8}", 1..3),
        word in 0usize..2,
        at in 0usize..8,
        letter in "[a-z]",
    ) {
        proptest::prop_assume!(words.iter().all(|w| !crate::parse::FILLERS.contains(&w.as_str())));
        let exact = words.join(" ");
        let mut typo_words = words.clone();
        let w = &mut typo_words[word % words.len()];
        let at = at % w.len();
        w.replace_range(at..=at, &letter);
        let typo = typo_words.join(" ");
        proptest::prop_assume!(typo != exact);
        let fs = flows(&[&format!(
            "id: p\ntriggers:\n  - {{ keywords: ['{typo}'], priority: 9, start: a }}\n  - {{ keywords: ['{exact}'], start: b }}\nsteps:\n  - id: a\n    send: typo trigger\n    next: end\n  - id: b\n    send: exact trigger\n"
        )]);
        let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
        proptest::prop_assert_eq!(say(&mut sim, "Anna", &exact), ["Anna: exact trigger"]);
        proptest::prop_assert_eq!(say(&mut sim, "Anna", &typo.to_uppercase()), ["Anna: typo trigger"]);
    }
}

#[test]
fn member_set_adds_a_member_who_can_then_be_addressed_talk_and_get_schedules() {
    let fs = flows(&[
        r#"
id: m
outside_window: defer
triggers:
  - regex: '^add (?P<name>\w+) (?P<phone>\+[\d ]+) (?P<tz>\S+)$'
  - schedule: { cron: "0 7 * * *", timezone: member }
    start: morning
steps:
  - member_set:
      name: "{{ captures.name }}"
      phone: "{{ captures.phone }}"
      timezone: "{{ captures.tz }}"
      as: added
  - send:
      to: "{{ vars.added.name }}"
      text: "Welcome {{ vars.added.name }} ({{ vars.added.role }}, {{ vars.added.phone }})"
    next: end
  - id: morning
    send: "Morning {{ member.name }}"
"#,
        r#"
id: hi
triggers:
  - keywords: [hi]
steps:
  - send: "Hi {{ member.name }}, {{ members | length }} of us"
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    // Sent to in the same run that added her (the run sees its own change); she never
    // wrote, so her 24-hour window is closed and the welcome waits for her first message.
    assert!(say(&mut sim, "Anna", "add Cleo +1 212 555 0100 america/new_york").is_empty());
    let stored = sim.data.members.as_ref().expect("the roster is stored");
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[3].timezone, chrono_tz::America::New_York);
    assert_eq!(
        say(&mut sim, "Cleo", "hi"),
        ["Cleo: Welcome Cleo (adult, +12125550100)", "Cleo: Hi Cleo, 4 of us"]
    );
    // 07:00 in New York is 12:00 UTC; in Amsterdam 06:00 UTC (already past today).
    let noon = sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap());
    assert_eq!(texts(&noon), ["Cleo: Morning Cleo"]);
    let next = sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 6, 6, 0, 0).unwrap());
    assert_eq!(
        texts(&next),
        ["Anna: Morning Anna", "Ben: Morning Ben", "Kid: Morning Kid"]
    );
}

#[test]
fn member_changes_that_break_the_roster_are_refused_and_change_nothing() {
    let fs = flows(&[r#"
id: m
triggers:
  - regex: '^set (?P<name>\w+) (?P<field>role|phone|timezone|language) (?P<value>.+)$'
  - regex: '^remove (?P<name>\w+)$'
    start: remove
steps:
  - next:
      - if: captures.field == 'role'
        then: role
      - if: captures.field == 'phone'
        then: phone
      - if: captures.field == 'timezone'
        then: tz
      - else: language
  - id: role
    member_set: { name: "{{ captures.name }}", role: "{{ captures.value }}", on_error: refused }
    next: done
  - id: phone
    member_set: { name: "{{ captures.name }}", phone: "{{ captures.value }}", on_error: refused }
    next: done
  - id: tz
    member_set: { name: "{{ captures.name }}", timezone: "{{ captures.value }}", on_error: refused }
    next: done
  - id: language
    member_set: { name: "{{ captures.name }}", language: "{{ captures.value }}" }
    next: done
  - id: remove
    member_remove: { name: "{{ captures.name }}", on_error: refused }
  - id: done
    send: done
    next: end
  - id: refused
    send: "no: {{ vars.error }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    let cases = [
        (
            "set Anna role adult",
            "Anna: no: Anna is the last admin; make someone else an admin first",
        ),
        (
            "set Ben role boss",
            "Anna: no: \"boss\" is not a role: use admin, adult or child",
        ),
        (
            "set Ben phone +31600000003",
            "Anna: no: Kid already has that phone number",
        ),
        (
            "set Ben phone 0612345678",
            "Anna: no: \"0612345678\" is not a phone number with a country code, like +31 6 1234 5678",
        ),
        (
            "set Ben timezone Mars/Base",
            "Anna: no: there is no time zone \"Mars/Base\" (use a name like Europe/Amsterdam or America/New_York)",
        ),
        ("set Zed role adult", "Anna: no: Zed needs a phone number"),
        ("remove Anna", "Anna: no: you cannot remove yourself"),
        ("remove Zed", "Anna: no: there is no member called Zed"),
        // Without `on_error` the reason is said and the flow ends.
        (
            "set Ben language English",
            "Anna: \"English\" is not a language code like en or nl.",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(say(&mut sim, "Anna", input), [expected], "{input}");
    }
    assert_eq!(sim.data.members, None, "a refused change stores nothing");
    assert_eq!(say(&mut sim, "Anna", "set Ben role admin"), ["Anna: done"]);
    assert_eq!(say(&mut sim, "Ben", "remove Anna"), ["Ben: done"]);
    let names: Vec<&str> = sim.data.members.iter().flatten().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Ben", "Kid"]);
    // Anna is not a member any more: ignored, like any stranger.
    assert!(say(&mut sim, "Anna", "remove Kid").is_empty());
}
