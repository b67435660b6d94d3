//! Frames and steps: call/goto, set, branches, the loop guard, expiry, flow changes, failures.

use crate::data::HouseholdData;
use crate::engine::handle;
use crate::event::{ConversationState, Effect, Event, EventKind, InboundMessage, Trace};
use crate::sim::Simulator;

use super::*;

#[test]
fn call_returns_to_the_caller_and_goto_does_not() {
    let fs = flows(&[
        r#"
id: main
triggers: [{ keywords: [go] }, { keywords: [jump], start: jump }]
steps:
  - send: before
  - call: sub
  - send: after call
    next: end
  - id: jump
    goto: sub
  - send: never
"#,
        r#"
id: sub
steps:
  - send: in sub
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Anna", "go"),
        ["Anna: before", "Anna: in sub", "Anna: after call"]
    );
    assert_eq!(say(&mut sim, "Anna", "jump"), ["Anna: in sub"]);
    assert!(sim.states["Anna"].frames.is_empty());
}

#[test]
fn set_keeps_types_and_switch_branches_with_default() {
    let fs = flows(&[r#"
id: count
triggers: [{ regex: '^count (?P<n>\d+)$' }]
steps:
  - set: { n: "captures.n | int", double: "(captures.n | int) * 2", big: "(captures.n | int) > 5" }
  - switch:
      on: vars.n
      cases: { "1": one, "2": two }
      default: many
  - id: one
    send: "one {{ vars.double }}"
    next: end
  - id: two
    send: "two {{ vars.double }}"
    next: end
  - id: many
    send: "many {{ vars.double }} {{ vars.big }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "count 1"), ["Anna: one 2"]);
    assert_eq!(say(&mut sim, "Anna", "count 2"), ["Anna: two 4"]);
    assert_eq!(say(&mut sim, "Anna", "count 9"), ["Anna: many 18 True"]);
}

#[test]
fn if_elif_else_branches() {
    let fs = flows(&[r#"
id: grade
triggers: [{ regex: '^score (?P<n>\d+)$' }]
steps:
  - next:
      - if: (captures.n | int) >= 90
        then: a
      - if: (captures.n | int) >= 50
        then: b
      - else: c
  - id: a
    send: A
    next: end
  - id: b
    send: B
    next: end
  - id: c
    send: C
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "score 95"), ["Anna: A"]);
    assert_eq!(say(&mut sim, "Anna", "score 60"), ["Anna: B"]);
    assert_eq!(say(&mut sim, "Anna", "score 3"), ["Anna: C"]);
}

#[test]
fn loop_guard_stops_a_flow_that_never_waits() {
    let fs = flows(&[r#"
id: spin
triggers: [{ keywords: [spin] }]
steps:
  - id: a
    next: b
  - id: b
    next: a
"#]);
    let state = ConversationState::default();
    let ev = Event {
        member: "Anna".into(),
        kind: EventKind::Message(InboundMessage::text("spin")),
    };
    let out = handle(&fs, &state, &ev, &HouseholdData::default(), t0());
    assert!(
        out.trace
            .iter()
            .any(|t| matches!(t, Trace::LoopGuard { steps: 100, .. })),
        "{:?}",
        out.trace
    );
    assert!(
        out.effects
            .iter()
            .any(|e| matches!(e, Effect::Error { message, .. } if message.contains("100 steps")))
    );
    assert!(out.state.frames.is_empty());
}

#[test]
fn the_same_inputs_give_the_same_outcome() {
    let fs = flows(&[r#"
id: g
triggers: [{ regex: '^add (?P<items>.+)$' }]
steps:
  - list_add: { list: shopping, items: "{{ captures.items }}" }
  - send: "{{ lists.shopping | map(attribute='name') | join(',') }} at {{ now }}"
"#]);
    let ev = Event {
        member: "Ben".into(),
        kind: EventKind::Message(InboundMessage::text("add milk, 2 eggs")),
    };
    let a = handle(&fs, &ConversationState::default(), &ev, &HouseholdData::default(), t0());
    let b = handle(&fs, &ConversationState::default(), &ev, &HouseholdData::default(), t0());
    assert_eq!(a, b);
    assert_eq!(a.effects.len(), 3);
    match &a.effects[2] {
        Effect::Send(o) => assert_eq!(o.message.body(), "milk,eggs at 2026-01-05T09:00:00+01:00"),
        other => panic!("expected a send, got {other:?}"),
    }
}

#[test]
fn unknown_members_are_ignored() {
    let fs = flows(&[r#"
id: g
triggers: [{ fallback: true }]
steps: [{ send: hi }]
"#]);
    let ev = Event {
        member: "Mallory".into(),
        kind: EventKind::Message(InboundMessage::text("hi")),
    };
    let out = handle(&fs, &ConversationState::default(), &ev, &HouseholdData::default(), t0());
    assert!(out.effects.is_empty());
    assert!(matches!(&out.trace[..], [Trace::Ignored { .. }]));
}

#[test]
fn a_conversation_expires_after_its_idle_time() {
    let fs = flows(&[ASKER]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    say(&mut sim, "Anna", "ask");
    sim.advance_to(t0() + chrono::Duration::minutes(31));
    // The answer arrives after expiry: the question is gone, "3" matches nothing.
    assert!(say(&mut sim, "Anna", "3").is_empty());
    assert!(sim.last_trace.iter().any(|(_, t)| matches!(t, Trace::Expired { .. })));
}

#[test]
fn a_changed_flow_keeps_a_conversation_whose_step_still_exists() {
    let before = flows(&[ASKER]);
    let mut sim = Simulator::new(&before, t0(), HouseholdData::default());
    say(&mut sim, "Anna", "ask");
    let state = sim.states["Anna"].clone();
    let after = flows(&[&ASKER.replace("got {{ slots.n }}", "now {{ slots.n }}")]);
    let ev = Event {
        member: "Anna".into(),
        kind: EventKind::Message(InboundMessage::text("4")),
    };
    let out = handle(&after, &state, &ev, &HouseholdData::default(), t0());
    assert!(out.trace.contains(&Trace::VersionChanged {
        flow: "ask".into(),
        continued: true
    }));
    assert!(matches!(&out.effects[0], Effect::Send(o) if o.message.body() == "now 4"));

    let renamed = flows(&[&ASKER.replace("  - ask:\n", "  - id: renamed\n    ask:\n")]);
    let out = handle(&renamed, &state, &ev, &HouseholdData::default(), t0());
    assert!(out.trace.contains(&Trace::VersionChanged {
        flow: "ask".into(),
        continued: false
    }));
    assert!(out.state.frames.is_empty());
}

#[test]
fn a_template_error_resets_the_conversation_with_an_error_effect() {
    let fs = flows(&[r#"
id: bad
triggers: [{ keywords: [boom] }]
steps:
  - send: "{{ vars.missing.deeper }}"
"#]);
    let ev = Event {
        member: "Anna".into(),
        kind: EventKind::Message(InboundMessage::text("boom")),
    };
    let out = handle(&fs, &ConversationState::default(), &ev, &HouseholdData::default(), t0());
    assert!(matches!(&out.effects[0], Effect::Error { step: Some(s), .. } if s == "step1"));
    assert!(matches!(&out.effects[1], Effect::Send(o) if o.message.body().starts_with("Sorry")));
    assert!(out.state.frames.is_empty());
}

#[test]
fn set_evaluates_in_the_order_written() {
    let fs = flows(&[r#"
id: order
triggers: [{ keywords: [go] }]
steps:
  - set: { zeta: "2", alpha: "vars.zeta * 10" }
  - send: "{{ vars.alpha }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "go"), ["Anna: 20"]);
}

#[test]
fn a_failing_step_rolls_back_everything_the_event_did() {
    let fs = flows(&[r#"
id: half
triggers: [{ keywords: [go] }]
steps:
  - list_add: { list: shopping, items: milk }
  - send: added
  - send: "{{ vars.nope.deeper }}"
"#]);
    let ev = Event {
        member: "Anna".into(),
        kind: EventKind::Message(InboundMessage::text("go")),
    };
    let out = handle(&fs, &ConversationState::default(), &ev, &HouseholdData::default(), t0());
    assert_eq!(out.effects.len(), 2, "{:?}", out.effects);
    assert!(matches!(&out.effects[0], Effect::Error { .. }));
    assert!(matches!(&out.effects[1], Effect::Send(o) if o.message.body().starts_with("Sorry")));
}
