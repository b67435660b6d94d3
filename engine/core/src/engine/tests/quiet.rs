//! Quiet hours (issue 12, item 10): a timer that is not urgent waits until the member's
//! quiet hours end, in their zone; an urgent one fires at its time; the checker asks a
//! timer `at` a time to say which it is.

use chrono::{TimeZone as _, Utc};

use super::*;
use crate::data::HouseholdData;

const NUDGE: &str = r#"
id: n
triggers: [{ keywords: [go] }]
steps:
  - timer_start: { id: nudge, after: 15h, step: nudge, data: { what: bins } }
  - timer_start: { id: ring, at: "2026-01-05T23:30:00+01:00", urgent: true, step: ring }
  - send: started
    next: end
  - id: nudge
    send: { text: "nudge {{ vars.what }}", outside_window: drop }
    next: end
  - id: ring
    send: { text: ring, outside_window: drop }
"#;

#[test]
fn a_nudge_in_quiet_hours_waits_for_the_morning_and_an_urgent_timer_does_not() {
    let fs = flows(&[NUDGE]);
    // 09:00 Amsterdam: the nudge is due at 00:00, inside 22:00-07:00.
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "go"), ["Anna: started"]);
    assert!(
        trace_lines(&sim).contains(&"quiet hours of Anna: the timer waits until Tue 07:00".to_owned()),
        "{:?}",
        trace_lines(&sim)
    );
    // The urgent one rings at 23:30, in the quiet hours.
    assert_eq!(
        texts(&sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 5, 22, 30, 0).unwrap())),
        ["Anna: ring"]
    );
    assert!(texts(&sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 6, 5, 59, 0).unwrap())).is_empty());
    assert_eq!(
        texts(&sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 6, 6, 0, 0).unwrap())),
        ["Anna: nudge bins"]
    );
}

#[test]
fn quiet_hours_are_per_member_and_in_their_zone() {
    let household = HOUSEHOLD.replace(
        "  - { name: Ben, phone: \"+31600000002\", role: adult }",
        "  - { name: Ben, phone: \"+31600000002\", role: adult, quiet_hours: \"01:00-05:00\" }\n  - { name: Cy, phone: \"+31600000004\", timezone: America/New_York }\n  - { name: Di, phone: \"+31600000005\", quiet_hours: \"off\" }",
    );
    let checked = load(
        Some(&SourceFile {
            path: "household.yaml".into(),
            text: household,
        }),
        &[SourceFile {
            path: "n.yaml".into(),
            text: NUDGE.into(),
        }],
    );
    let fs = checked.flows.expect("checks");
    let fired = |who: &str| {
        let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
        say(&mut sim, who, "go");
        // 00:00 Amsterdam is 23:00 UTC.
        texts(&sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 5, 23, 0, 0).unwrap()))
    };
    // Ben's own quiet hours start at 01:00: midnight is fine for him.
    assert!(fired("Ben").contains(&"Ben: nudge bins".to_owned()));
    // Di has none.
    assert!(fired("Di").contains(&"Di: nudge bins".to_owned()));
    // Cy is in New York: 00:00 Amsterdam is 18:00 for him, not quiet.
    assert!(fired("Cy").contains(&"Cy: nudge bins".to_owned()));
    // Anna keeps the household's 22:00-07:00.
    assert!(!fired("Anna").contains(&"Anna: nudge bins".to_owned()));
}

#[test]
fn the_checker_asks_a_timer_at_a_time_whether_it_is_urgent() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let codes = |text: &str| -> Vec<&'static str> {
        load(
            Some(&household),
            &[SourceFile {
                path: "f.yaml".into(),
                text: text.into(),
            }],
        )
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
    };
    let timer = |extra: &str| {
        format!(
            "id: t\ntriggers: [{{ keywords: [go] }}]\nsteps:\n  - timer_start: {{ id: x, at: 'tomorrow 9:00', step: r{extra} }}\n    next: end\n  - id: r\n    send: {{ text: hi, outside_window: drop }}\n"
        )
    };
    assert_eq!(codes(&timer("")), ["timer-urgency"]);
    assert!(codes(&timer(", urgent: true")).is_empty());
    assert!(codes(&timer(", urgent: false")).is_empty());
    // `after:` is a delay Alfred chose: it may wait, no need to say.
    assert!(codes(&timer("").replace("at: 'tomorrow 9:00'", "after: 3h")).is_empty());
    // Bad quiet hours are an error in household.yaml.
    let bad = load(
        Some(&SourceFile {
            path: "household.yaml".into(),
            text: HOUSEHOLD.replace(
                "timezone: Europe/Amsterdam }",
                "timezone: Europe/Amsterdam, quiet_hours: late }",
            ),
        }),
        &[],
    );
    assert!(
        bad.diagnostics.iter().any(|d| d.code == "quiet-hours"),
        "{:?}",
        bad.diagnostics
    );
    // `zone_of` belongs to `datetime`.
    let zone = "id: z\ntriggers: [{ keywords: [go] }]\nsteps:\n  - ask: { slot: a, prompt: '?', validate: { number: {}, zone_of: '{{ member.name }}' } }\n";
    assert!(codes(zone).contains(&"validate"));
}
