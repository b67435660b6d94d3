//! Questions: validation, re-prompts, giving up, interruptions, captures, timeouts, prefill.

use crate::data::HouseholdData;
use crate::sim::Simulator;

use super::*;

#[test]
fn ask_validates_reprompts_and_gives_up() {
    let fs = flows(&[ASKER]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "ask"), ["Anna: How many?"]);
    assert_eq!(
        say(&mut sim, "Anna", "11"),
        ["Anna: Please give a number from 1 to 10."]
    );
    assert_eq!(
        say(&mut sim, "Anna", "lots"),
        ["Anna: Sorry, I still didn't get that. Let's leave it for now."]
    );
    assert!(sim.states["Anna"].frames.is_empty());
    assert_eq!(say(&mut sim, "Anna", "ask"), ["Anna: How many?"]);
    assert_eq!(say(&mut sim, "Anna", "3"), ["Anna: got 3"]);
}

#[test]
fn a_non_interruptible_flow_does_not_interrupt_a_question() {
    let fs = flows(&[
        ASKER,
        r#"
id: other
triggers: [{ regex: '^\d+$' }]
steps: [{ send: other ran }]
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    say(&mut sim, "Anna", "ask");
    assert_eq!(say(&mut sim, "Anna", "5"), ["Anna: got 5"]);
    assert_eq!(say(&mut sim, "Anna", "5"), ["Anna: other ran"]);
}

#[test]
fn captures_survive_a_question() {
    let fs = flows(&[r#"
id: cap
triggers: [{ regex: '^rate (?P<what>.+)$' }]
steps:
  - ask: { slot: stars, prompt: "How many stars for {{ captures.what }}?", validate: { number: { min: 1, max: 5 } } }
  - send: "{{ captures.what }}: {{ slots.stars }} stars"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "rate pizza"), ["Anna: How many stars for pizza?"]);
    assert_eq!(say(&mut sim, "Anna", "4"), ["Anna: pizza: 4 stars"]);
}

#[test]
fn an_ask_timeout_may_end_the_flow() {
    let fs = flows(&[r#"
id: q
triggers: [{ keywords: [q] }]
steps:
  - ask: { slot: a, prompt: "?", timeout: 1m, on_timeout: end }
  - send: "got {{ slots.a }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    say(&mut sim, "Anna", "q");
    assert!(texts(&sim.advance_to(t0() + chrono::Duration::minutes(2))).is_empty());
    assert!(sim.states["Anna"].frames.is_empty());
}

#[test]
fn prefill_skips_a_question_whose_answer_was_given_and_asks_otherwise() {
    let fs = flows(&[PREFILL]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    // Both known: no question at all.
    assert_eq!(
        say(&mut sim, "Anna", "remind me tomorrow 18:00 to call grandma"),
        ["Anna: call grandma at Tue 18:00"]
    );
    // The time does not validate: asked for it with the reason, the rest kept.
    assert_eq!(
        say(&mut sim, "Anna", "remind me someday to water plants"),
        ["Anna: I didn't get that time. Try \"tomorrow 18:00\", \"at 6pm\" or \"in 20 minutes\"."]
    );
    assert_eq!(say(&mut sim, "Anna", "at 8pm"), ["Anna: water plants at Mon 20:00"]);
    // Nothing given: both asked.
    assert_eq!(say(&mut sim, "Anna", "remind me"), ["Anna: When?"]);
    assert_eq!(say(&mut sim, "Anna", "in 20 minutes"), ["Anna: Remind you to do what?"]);
    assert_eq!(
        say(&mut sim, "Anna", "check the oven"),
        ["Anna: check the oven at Mon 09:20"]
    );
}

#[test]
fn a_typo_is_an_answer_while_a_question_waits_and_polite_cancel_cancels() {
    let fs = flows(&[
        r#"
id: ask
triggers: [{ keywords: [pizza] }]
steps:
  - ask: { slot: size, prompt: Which size? }
  - send: "size {{ slots.size }}"
"#,
        r#"
id: helper
interruptible: true
triggers: [{ keywords: [helping] }]
steps:
  - send: help text
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "pizza"), ["Anna: Which size?"]);
    assert_eq!(
        say(&mut sim, "Anna", "helping please"),
        ["Anna: help text", "Anna: Which size?"]
    );
    assert_eq!(say(&mut sim, "Anna", "helpimg"), ["Anna: size helpimg"]);
    assert_eq!(say(&mut sim, "Anna", "pizza"), ["Anna: Which size?"]);
    assert_eq!(say(&mut sim, "Anna", "Cancel please!"), ["Anna: OK, cancelled."]);
    assert!(sim.states.get("Anna").is_none_or(|s| s.frames.is_empty()));
}

const CHORE_ASKS: &str = r#"
id: chores
expires_after: 30m
triggers: [{ keywords: [new chore] }]
steps:
  - ask: { slot: title, prompt: What is the chore?, validate: { regex: '^.{2,60}$' } }
  - ask: { slot: due, prompt: When?, validate: { datetime: true } }
  - send: "chore {{ slots.title }}"
"#;

const ADDER: &str = r#"
id: groceries
triggers: [{ regex: '^add\s+(?P<items>.+)$' }]
steps: [{ send: "added {{ captures.items }}" }]
"#;

/// Issue 12, item 6: a waiting question does not swallow another command. Not a valid
/// answer: the command runs and the question is asked again. A valid free-text answer
/// that reads like a command: Alfred asks which it was. The same command again: start over.
#[test]
fn a_command_while_a_question_waits_runs_and_the_question_is_asked_again() {
    let fs = flows(&[CHORE_ASKS, ADDER]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "new chore"), ["Anna: What is the chore?"]);
    assert_eq!(
        say(&mut sim, "Anna", "add milk"),
        ["Anna: Did you mean \"add milk\" as your answer, or as a new request?"]
    );
    let tap = |id: &str, title: &str| InboundMessage::reply(id, title);
    assert_eq!(
        texts(&sim.send("Anna", tap(super::super::detour::AS_COMMAND, "New request"))),
        ["Anna: added milk", "Anna: What is the chore?"]
    );
    say(&mut sim, "Anna", "add the dog to bed");
    assert_eq!(
        texts(&sim.send("Anna", tap(super::super::detour::AS_ANSWER, "My answer"))),
        ["Anna: When?"]
    );
    // Not a time: plainly the other command, three times, none lost.
    for item in ["eggs", "bread", "cheese"] {
        assert_eq!(
            say(&mut sim, "Anna", &format!("add {item}")),
            [format!("Anna: added {item}"), "Anna: When?".to_owned()]
        );
    }
    assert_eq!(
        say(&mut sim, "Anna", "tomorrow 18:00"),
        ["Anna: chore add the dog to bed"]
    );
    // The same command again starts over instead of becoming the answer.
    say(&mut sim, "Anna", "new chore");
    assert_eq!(say(&mut sim, "Anna", "new chore"), ["Anna: What is the chore?"]);
    assert_eq!(sim.states["Anna"].frames.len(), 1);
}

/// Issue 12, item 6: "cancel that", "forget it", "stop it" cancel; they are not answers.
#[test]
fn cancel_phrases_cancel_instead_of_answering() {
    let fs = flows(&[
        CHORE_ASKS,
        "id: forget
triggers: [{ keywords: [forget it] }]
steps: [{ send: forgotten }]
",
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    // Idle, a flow's own "forget it" keyword still works.
    assert_eq!(say(&mut sim, "Anna", "forget it"), ["Anna: forgotten"]);
    for phrase in ["cancel that", "forget it", "stop it", "Cancel that pls!"] {
        say(&mut sim, "Anna", "new chore");
        let reply = say(&mut sim, "Anna", phrase);
        assert_eq!(reply.len(), 1, "{phrase}: {reply:?}");
        assert!(!reply[0].contains("When?"), "{phrase}: {reply:?}");
        assert!(sim.states["Anna"].frames.is_empty(), "{phrase}");
    }
}
