//! Languages (issue 12, item 11): the engine's own texts (re-prompts, giving up,
//! "choose one of") are in the member's language, the examples they give are
//! understood, and the checker warns about a text that misses a language its flow speaks.

use chrono::Utc;

use super::*;
use crate::data::HouseholdData;
use crate::parse::{parse_datetime, parse_duration, parse_member_list};

const QUESTIONS: &str = r#"
id: q
expires_after: 30m
triggers: [{ keywords: [when] }]
steps:
  - ask:
      slot: at
      prompt: { en: When?, nl: Wanneer? }
      validate: { datetime: true }
      max_attempts: 2
  - ask:
      slot: how
      prompt: { en: Which one?, nl: Welke? }
      buttons:
        - { id: a, title: { en: The first, nl: De eerste } }
        - { id: b, title: { en: The second, nl: De tweede } }
  - ask:
      slot: often
      prompt: { en: How often?, nl: Hoe vaak? }
      validate: { recurrence: true }
  - send: { text: { en: "done", nl: "klaar" } }
"#;

#[test]
fn the_engine_re_prompts_a_dutch_member_in_dutch_and_an_english_one_in_english() {
    let fs = flows(&[QUESTIONS, ASKER]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Kid", "when"), ["Kid: Wanneer?"]);
    let again = say(&mut sim, "Kid", "ooit");
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].starts_with("Kid: Die tijd snap ik niet."), "{again:?}");
    assert_eq!(say(&mut sim, "Kid", "morgen 18:00"), ["Kid: Welke?"]);
    let choose = say(&mut sim, "Kid", "de derde");
    assert!(choose[0].contains("Kies een van: De eerste, De tweede."), "{choose:?}");
    assert_eq!(say(&mut sim, "Kid", "de tweede"), ["Kid: Hoe vaak?"]);
    let often = say(&mut sim, "Kid", "soms");
    assert!(often[0].starts_with("Kid: Hoe vaak? Zeg \"elke dag\""), "{often:?}");
    assert_eq!(say(&mut sim, "Kid", "elke maandag"), ["Kid: klaar"]);

    // Numbers, and giving up.
    assert_eq!(say(&mut sim, "Kid", "ask"), ["Kid: How many?"]);
    assert_eq!(say(&mut sim, "Kid", "11"), ["Kid: Geef een getal van 1 tot en met 10."]);
    assert_eq!(
        say(&mut sim, "Kid", "veel"),
        ["Kid: Sorry, ik snap het nog steeds niet. We laten het hier even bij."]
    );

    // Anna reads the same engine in English.
    assert_eq!(say(&mut sim, "Anna", "ask"), ["Anna: How many?"]);
    assert_eq!(
        say(&mut sim, "Anna", "11"),
        ["Anna: Please give a number from 1 to 10."]
    );
    assert_eq!(say(&mut sim, "Anna", "when"), ["Anna: When?"]);
    let again = say(&mut sim, "Anna", "sometime");
    assert!(again[0].starts_with("Anna: I didn't get that time."), "{again:?}");
}

#[test]
fn the_examples_the_dutch_re_prompts_give_are_understood() {
    let ams: chrono_tz::Tz = "Europe/Amsterdam".parse().unwrap();
    let now = Utc::now();
    for t in ["morgen 18:00", "om 18 uur", "over 20 minuten"] {
        assert!(parse_datetime(t, now, ams).is_ok(), "{t}");
    }
    for d in ["20m", "2 uur", "anderhalf uur"] {
        assert!(parse_duration(d).is_ok(), "{d}");
    }
    for r in ["elke dag", "elke maandag", "elke 2 weken", "op de 1e", "nee"] {
        assert!(crate::recur::parse_answer(r).is_some(), "{r}");
    }
    let names = ["Anna", "Ben", "Kid"];
    assert_eq!(
        parse_member_list("Anna en Ben", "Kid", &names),
        Some(vec!["Anna".to_owned(), "Ben".to_owned()])
    );
    assert!(parse_member_list("iedereen", "Kid", &names).is_some());
}

#[test]
fn the_checker_warns_about_a_text_that_misses_a_language_its_flow_speaks() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let warnings = |text: &str| -> Vec<(u32, String)> {
        load(
            Some(&household),
            &[SourceFile {
                path: "f.yaml".into(),
                text: text.into(),
            }],
        )
        .diagnostics
        .iter()
        .filter(|d| d.code == "missing-language")
        .map(|d| (d.pos.line, d.message.clone()))
        .collect()
    };
    let flow = |first: &str| {
        format!(
            "id: t\ntriggers: [{{ keywords: [go] }}]\nsteps:\n  - send: {{ text: {first} }}\n  - send: {{ text: {{ en: Done!, nl: Klaar! }} }}\n  - send: \"{{{{ vars.x }}}} 👍\"\n"
        )
    };
    // An English-only map and a plain sentence miss `nl`; a plain template without words does not.
    let found = warnings(&flow("{ en: Hello }"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, 4);
    assert!(found[0].1.contains("no `nl:`"), "{found:?}");
    let found = warnings(&flow("Hello there"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.contains("plain text"), "{found:?}");
    // Every text in both languages, or a flow in one language only: nothing to say.
    assert!(warnings(&flow("{ en: Hello, nl: Hallo }")).is_empty());
    assert!(
        warnings("id: t\ntriggers: [{ keywords: [go] }]\nsteps:\n  - send: Hello\n  - send: { text: { en: Bye } }\n")
            .is_empty()
    );
}

const CLEAR: &str = r#"
id: c
triggers: [{ keywords: [clear] }]
steps:
  - ask:
      slot: sure
      prompt: { en: Clear it?, nl: Wissen? }
      buttons:
        - { id: clear_yes, title: { en: "Yes, clear it", nl: "Ja, wissen" } }
        - { id: clear_no, title: { en: "No, keep it", nl: "Nee, laten staan" } }
  - send: "{{ slots.sure }}"
"#;

#[test]
fn yes_or_no_typed_for_yes_and_no_buttons_is_that_button_in_any_language() {
    let fs = flows(&[CLEAR]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Kid", "clear"), ["Kid: Wissen?"]);
    assert_eq!(say(&mut sim, "Kid", "ja"), ["Kid: clear_yes"]);
    assert_eq!(say(&mut sim, "Anna", "clear"), ["Anna: Clear it?"]);
    assert_eq!(say(&mut sim, "Anna", "nope"), ["Anna: clear_no"]);
    // A number is not a yes: it could be an option's place.
    say(&mut sim, "Anna", "clear");
    let one = say(&mut sim, "Anna", "1");
    assert!(
        one[0].contains("Please choose one of: Yes, clear it, No, keep it."),
        "{one:?}"
    );
}
