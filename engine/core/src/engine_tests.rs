//! Engine tests for every construct of the flow language, on small inline flow sets.
//! (The shipped flows have their own conversation tests under `flows/tests/`.)

use chrono::{DateTime, TimeZone as _, Utc};

use crate::check::{SourceFile, load};
use crate::data::HouseholdData;
use crate::engine::handle;
use crate::event::{ConversationState, Effect, Event, EventKind, InboundMessage, OutMessage, TimerFired, Trace};
use crate::flow::FlowSet;
use crate::sim::{Produced, Simulator};

const HOUSEHOLD: &str = r#"
household: { name: Test, timezone: Europe/Amsterdam }
members:
  - { name: Anna, phone: "+31600000001", role: admin }
  - { name: Ben, phone: "+31600000002", role: adult }
  - { name: Kid, phone: "+31600000003", role: child, language: nl }
lists: [shopping]
collections:
  notes: { fields: [text, n] }
templates:
  - name: nudge
    language: en_US
    parameters: [{ name: who }, { name: what }]
"#;

fn flows(sources: &[&str]) -> FlowSet {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let files: Vec<SourceFile> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| SourceFile {
            path: format!("f{i}.yaml"),
            text: (*s).into(),
        })
        .collect();
    let checked = load(Some(&household), &files);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == crate::diag::Severity::Error)
        .map(|d| d.render(None))
        .collect();
    assert!(errors.is_empty(), "flows do not check:\n{}", errors.join("\n"));
    checked.flows.expect("no errors, so a flow set")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()
}

fn texts(p: &[Produced]) -> Vec<String> {
    p.iter()
        .map(|p| match p {
            Produced::Message(o) => format!("{}: {}", o.to, o.message.body()),
            Produced::Error(e) => format!("ERROR {e}"),
        })
        .collect()
}

fn say(sim: &mut Simulator<'_>, who: &str, text: &str) -> Vec<String> {
    texts(&sim.send(who, InboundMessage::text(text)))
}

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

const ASKER: &str = r#"
id: ask
expires_after: 30m
triggers: [{ keywords: [ask] }]
steps:
  - ask:
      slot: n
      prompt: How many?
      validate: { number: { min: 1, max: 10 } }
      max_attempts: 2
  - send: "got {{ slots.n }}"
"#;

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
fn schedule_ticks_run_for_the_audience_and_do_not_disturb_a_waiting_question() {
    let patient = ASKER.replace("expires_after: 30m", "expires_after: 2d");
    let fs = flows(&[
        &patient,
        r#"
id: morning
triggers:
  - schedule: { cron: "0 7 * * 1-5", for: adults }
steps:
  - send:
      text: "Good morning {{ member.name }}, it is {{ now | datefmt('%a %H:%M') }}"
      fallback: { name: nudge, params: ["{{ member.name }}", "{{ now | datefmt('%a') }}"] }
"#,
    ]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    say(&mut sim, "Anna", "ask");
    // Monday 09:00 local → Tuesday 07:00 local: one slot, for the two adults.
    let out = texts(&sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 6, 6, 30, 0).unwrap()));
    assert_eq!(
        out,
        [
            "Anna: Good morning Anna, it is Tue 07:00",
            "Ben: Good morning Ben, it is Tue 07:00"
        ]
    );
    // Anna's question is still waiting.
    assert_eq!(say(&mut sim, "Anna", "2"), ["Anna: got 2"]);
    // Saturday and Sunday have no slot; Monday has.
    let out = texts(&sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 12, 6, 30, 0).unwrap()));
    assert_eq!(out.len(), 8, "Wed, Thu, Fri, Mon for two adults: {out:?}");
    // Days after they last wrote, their windows are closed: the template goes.
    assert_eq!(out[7], "Ben: [template nudge: Ben | Mon]");
}

#[test]
fn a_timer_for_a_question_that_was_answered_is_ignored() {
    let fs = flows(&[r#"
id: t
triggers: [{ keywords: [q] }]
steps:
  - ask: { slot: a, prompt: "?", timeout: 5m, on_timeout: late }
  - send: "ok {{ slots.a }}"
    next: end
  - id: late
    send: too late
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    say(&mut sim, "Anna", "q");
    let state = sim.states["Anna"].clone();
    let stale = TimerFired {
        id: "x".into(),
        flow: "t".into(),
        step: "late".into(),
        data: Default::default(),
        wait: Some(0),
    };
    let ev = Event {
        member: "Anna".into(),
        kind: EventKind::Timer(stale),
    };
    let out = handle(&fs, &state, &ev, &HouseholdData::default(), t0());
    assert!(out.effects.is_empty());
    assert!(matches!(&out.trace[..], [Trace::Ignored { reason }] if reason.contains("already answered")));
    assert_eq!(out.state, state);
}

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

#[test]
fn recipients_templates_and_lists() {
    let fs = flows(&[r#"
id: r
triggers:
  - { keywords: [tell], start: tell }
  - { keywords: [tpl], start: tpl }
  - { keywords: [menu], start: menu }
steps:
  - id: tell
    send: { to: others, text: "{{ member.name }} says hi" }
  - send: { to: admins, text: for admins }
    next: end
  - id: tpl
    send: { template: { name: nudge, params: ["{{ member.name }}", dishes] }, to: Ben }
    next: end
  - id: menu
    ask:
      slot: pick
      prompt: Pick
      list:
        button: Options
        sections:
          - title: A
            rows: [{ id: a1, title: First, description: one }]
          - title: B
            rows: [{ id: b1, title: Second }]
  - send: "picked {{ slots.pick }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Ben", "tell"),
        ["Anna: Ben says hi", "Kid: Ben says hi", "Anna: for admins"]
    );
    let out = sim.send("Anna", InboundMessage::text("tpl"));
    match &out[..] {
        [Produced::Message(o)] => {
            assert_eq!(o.to, "Ben");
            assert_eq!(
                o.message,
                OutMessage::Template {
                    name: "nudge".into(),
                    language: "en_US".into(),
                    params: vec!["Anna".into(), "dishes".into()]
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let out = sim.send("Anna", InboundMessage::text("menu"));
    let Produced::Message(o) = &out[0] else {
        panic!("{out:?}")
    };
    let ids: Vec<&str> = o.message.choices().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1"]);
    assert_eq!(
        texts(&sim.send("Anna", InboundMessage::reply("b1", "Second"))),
        ["Anna: picked b1"]
    );
}

#[test]
fn timers_start_fire_once_and_cancel() {
    let fs = flows(&[r#"
id: remind
outside_window: defer
triggers:
  - { regex: '^in (?P<d>\S+) say (?P<w>.+)$', start: start }
  - { keywords: [never mind], start: stop }
steps:
  - id: start
    timer_start: { id: "r-{{ member.name }}", after: "{{ captures.d }}", step: fire, data: { what: "{{ captures.w }}" } }
  - send: ok
    next: end
  - id: stop
    timer_cancel: "r-{{ member.name }}"
  - send: stopped
    next: end
  - id: fire
    send: "{{ vars.what }}!"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "in 20m say tea"), ["Anna: ok"]);
    assert!(texts(&sim.advance_to(t0() + chrono::Duration::minutes(19))).is_empty());
    assert_eq!(
        texts(&sim.advance_to(t0() + chrono::Duration::minutes(20))),
        ["Anna: tea!"]
    );
    assert!(texts(&sim.advance_to(t0() + chrono::Duration::hours(5))).is_empty());
    assert_eq!(say(&mut sim, "Anna", "in 1h say x"), ["Anna: ok"]);
    assert_eq!(say(&mut sim, "Anna", "never mind"), ["Anna: stopped"]);
    assert!(sim.timers.is_empty());
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

#[test]
fn each_recipient_reads_their_own_language_and_template_params_are_made_safe() {
    let fs = flows(&[r#"
id: tell
triggers: [{ keywords: [tell] }, { keywords: [tpl], start: tpl }]
steps:
  - send: { to: everyone, text: { en: "{{ member.name }} is home", nl: "{{ member.name }} is thuis" } }
    next: end
  - id: tpl
    send: { template: { name: nudge, params: ["a\nb\t c      d", x] } }
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Ben", "tell"),
        ["Anna: Ben is home", "Ben: Ben is home", "Kid: Ben is thuis"]
    );
    let out = sim.send("Anna", InboundMessage::text("tpl"));
    let Produced::Message(o) = &out[0] else {
        panic!("{out:?}")
    };
    assert!(
        matches!(&o.message, OutMessage::Template { params, .. } if params[0] == "a b c d"),
        "{:?}",
        o.message
    );
}

#[test]
fn schedules_honour_when_and_roles() {
    let fs = flows(&[r#"
id: brief
outside_window: defer
triggers:
  - schedule: { cron: "0 7 * * *" }
    when: member.name != 'Ben'
    roles: [admin, adult]
steps:
  - send: "morning {{ member.name }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    let out = texts(&sim.advance_to(Utc.with_ymd_and_hms(2026, 1, 6, 6, 30, 0).unwrap()));
    assert_eq!(out, ["Anna: morning Anna"]);
}

const PREFILL: &str = r#"
id: remind
triggers:
  - regex: '^remind me(?: (?P<when>.+?))?(?: to (?P<what>.+))?$'
steps:
  - set: { what: "captures.what | default('')" }
  - ask:
      slot: when
      prompt: When?
      validate: { datetime: true }
      prefill: "{{ captures.when | default('') }}"
  - ask:
      slot: what
      prompt: Remind you to do what?
      prefill: "{{ vars.what }}"
  - send: "{{ slots.what }} at {{ slots.when | datefmt('%a %H:%M') }}"
"#;

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
fn outside_the_window_a_timer_message_is_templated_deferred_or_dropped() {
    let fs = flows(&[r#"
id: later
outside_window: defer
triggers: [{ keywords: [later] }]
steps:
  - timer_start: { id: "t-{{ member.name }}", after: 2d, step: fire }
  - send: ok
    next: end
  - id: fire
    send:
      text: "free-form {{ member.name }}"
      fallback: { name: nudge, params: ["{{ member.name }}", "late"] }
  - send: deferred
  - send:
      text: dropped
      outside_window: drop
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(say(&mut sim, "Anna", "later"), ["Anna: ok"]);
    // Two days later Anna's window is closed.
    let out = sim.advance_to(t0() + chrono::Duration::days(2));
    assert_eq!(texts(&out), ["Anna: [template nudge: Anna | late]"]);
    let trace: Vec<String> = sim.last_trace.iter().map(|(_, t)| t.to_string()).collect();
    for d in ["template", "defer", "drop"] {
        assert!(
            trace.contains(&format!("24-hour window of Anna closed: {d}")),
            "{trace:?}"
        );
    }
    // Her next message reopens the window: the deferred one goes first, then the reply.
    assert_eq!(say(&mut sim, "Anna", "later"), ["Anna: deferred", "Anna: ok"]);
    assert!(sim.deferred.is_empty());
    // Within the window (she wrote an hour before the timer) it goes as written.
    sim.advance_to(t0() + chrono::Duration::days(4) - chrono::Duration::hours(1));
    assert!(say(&mut sim, "Anna", "hmm").is_empty());
    let out = sim.advance_to(t0() + chrono::Duration::days(4));
    assert_eq!(texts(&out), ["Anna: free-form Anna", "Anna: deferred", "Anna: dropped"]);
}

#[test]
fn a_proactive_free_form_send_must_say_what_happens_outside_the_window() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let flow = |text: &str| SourceFile {
        path: "f.yaml".into(),
        text: text.into(),
    };
    let codes = |text: &str| -> Vec<&'static str> {
        load(Some(&household), &[flow(text)])
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect()
    };
    // From a timer started without a step: the first step is proactive.
    let timer = "id: t\ntriggers: [{ keywords: [go] }]\nsteps:\n  - timer_start: { id: x, after: 1h, flow: r }\n";
    let checked = load(
        Some(&household),
        &[
            flow(timer),
            SourceFile {
                path: "r.yaml".into(),
                text: "id: r\nsteps:\n  - send: hi\n  - ask: { slot: a, prompt: ok?, outside_window: drop }\n".into(),
            },
        ],
    );
    let got: Vec<&str> = checked.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(got, ["proactive-send"], "{:?}", checked.diagnostics);
    // A schedule reaching a question; nothing after the question is checked.
    let sched = "id: s\ntriggers: [{ schedule: { cron: '0 7 * * *' } }]\nsteps:\n  - ask: { slot: a, prompt: Up? }\n  - send: thanks\n";
    assert_eq!(codes(sched), ["proactive-send"]);
    // A flow-level policy, a fallback or a template send settles it.
    assert!(codes(&format!("outside_window: drop\n{sched}")).is_empty());
    let fb = "id: s\ntriggers: [{ schedule: { cron: '0 7 * * *' } }]\nsteps:\n  - send: { text: hi, fallback: { name: nudge, params: [a, b] } }\n";
    assert!(codes(fb).is_empty());
    let bad_fb = "id: s\ntriggers: [{ schedule: { cron: '0 7 * * *' } }]\nsteps:\n  - send: { text: hi, fallback: { name: nudge, params: [a] } }\n";
    assert_eq!(codes(bad_fb), ["template-params"]);
    // A template crosses the window itself: a fallback on it is pointless (a warning).
    let tpl_fb = "id: s\ntriggers: [{ keywords: [x] }]\nsteps:\n  - send: { template: { name: nudge, params: [a, b] }, fallback: { name: nudge, params: [a, b] } }\n";
    assert_eq!(codes(tpl_fb), ["fallback"]);
}

#[test]
fn member_zone_schedules_fire_at_each_members_local_time() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: r#"
household: { name: Test, timezone: Europe/Amsterdam }
members:
  - { name: Anna, phone: "+31600000001" }
  - { name: Cleo, phone: "+12125550100", timezone: America/New_York }
"#
        .into(),
    };
    let flow = SourceFile {
        path: "f.yaml".into(),
        text: r#"
id: brief
outside_window: defer
triggers:
  - schedule: { cron: "0 7 * * *", timezone: member }
steps:
  - send: "Morning, it is {{ event.slot | datefmt('%H:%M') }}"
"#
        .into(),
    };
    let checked = load(Some(&household), &[flow]);
    let fs = checked.flows.expect("checks");
    let spec = &fs.flows[0].schedules[0].1;
    assert!(spec.member_zone);
    let groups = fs.schedule_groups(spec, &fs.household.members);
    let zones: Vec<_> = groups.iter().map(|g| g.zone.map(|z| z.name())).collect();
    assert_eq!(zones, [Some("America/New_York"), Some("Europe/Amsterdam")]);
    // 2026-03-08: New York is already on EDT, Amsterdam still on CET.
    let start = Utc.with_ymd_and_hms(2026, 3, 8, 0, 0, 0).unwrap();
    let mut sim = Simulator::new(&fs, start, HouseholdData::default());
    let at_6 = sim.advance_to(Utc.with_ymd_and_hms(2026, 3, 8, 6, 0, 0).unwrap());
    assert_eq!(texts(&at_6), ["Anna: Morning, it is 07:00"]);
    let at_11 = sim.advance_to(Utc.with_ymd_and_hms(2026, 3, 8, 11, 0, 0).unwrap());
    assert_eq!(texts(&at_11), ["Cleo: Morning, it is 07:00"]);
}

#[test]
fn schedule_catch_up_and_overlap_are_compiled_and_checked() {
    use crate::model::{CatchUp, Overlap};
    let fs = flows(&[r#"
id: s
outside_window: defer
triggers:
  - schedule: { cron: "0 7 * * *" }
  - schedule: { cron: "0 8 * * *", catch_up: skip, overlap: queue }
  - schedule: { cron: "0 9 * * *", catch_up_window: 90m }
steps:
  - send: hi
"#]);
    let specs: Vec<_> = fs.flows[0].schedules.iter().map(|(_, s)| s).collect();
    let got: Vec<_> = specs
        .iter()
        .map(|s| (s.policy.catch_up, s.policy.window.num_minutes(), s.overlap))
        .collect();
    assert_eq!(
        got,
        [
            (CatchUp::Once, 60, Overlap::Skip),
            (CatchUp::Skip, 60, Overlap::Queue),
            (CatchUp::Once, 90, Overlap::Skip)
        ]
    );
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let bad = SourceFile {
        path: "bad.yaml".into(),
        text: r#"
id: bad
triggers:
  - schedule: { cron: "0 7 * * *", catch_up_window: 0s }
  - schedule: { cron: "0 8 * * *", catch_up_window: 2d }
  - schedule: { cron: "0 9 * * *", catch_up_window: soon }
  - schedule: { cron: "0 10 * * *", catch_up: skip, catch_up_window: 1h }
steps:
  - send: hi
outside_window: defer
"#
        .into(),
    };
    let checked = load(Some(&household), &[bad]);
    assert!(checked.flows.is_none());
    let got: Vec<String> = checked
        .diagnostics
        .iter()
        .map(|d| format!("{:?} {}:{} {}", d.severity, d.code, d.pos.line, d.message))
        .collect();
    assert_eq!(
        got,
        [
            "Error schedule:4 `catch_up_window` \"0s\" must be between 1m and 1d",
            "Error schedule:5 `catch_up_window` \"2d\" must be between 1m and 1d",
            "Error schedule:6 invalid `catch_up_window`: \"soon\" is not a duration I know; \
             try 90s, 20m, 20 min, 1h30m, 2 hours, 3d, 1w, 1.5h",
            "Warning schedule:7 `catch_up_window` has no effect with `catch_up: skip`",
        ]
    );
}

fn trace_lines(sim: &Simulator<'_>) -> Vec<String> {
    sim.last_trace.iter().map(|(_, t)| t.to_string()).collect()
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

#[test]
fn to_members_sends_to_each_member_of_a_computed_list() {
    let fs = flows(&[r#"
id: n
outside_window: drop
triggers:
  - { keywords: [tell], start: tell }
  - { keywords: [maps], start: maps }
  - { keywords: [nobody], start: nobody }
  - { keywords: [bad], start: bad }
  - { keywords: [stranger], start: stranger }
steps:
  - id: tell
    send:
      to_members: "['ben', 'Kid', 'Ben', member.name] | reject('eq', member.name) | list"
      text: { en: "{{ member.name }} says hi", nl: "{{ member.name }} zegt hoi" }
    next: end
  - id: maps
    send: { to_members: "members | selectattr('role', 'eq', 'admin') | list", text: admins only }
    next: end
  - id: nobody
    send: { to_members: "[]", text: nobody }
  - send: done
    next: end
  - id: bad
    send: { to_members: "'Ben'", text: not a list }
    next: end
  - id: stranger
    send: { to_members: "['Zed']", text: who }
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    // Duplicates go once, in list order, each in their own language.
    assert_eq!(
        say(&mut sim, "Anna", "tell"),
        ["Ben: Anna says hi", "Kid: Anna zegt hoi"]
    );
    assert_eq!(say(&mut sim, "Ben", "maps"), ["Anna: admins only"]);
    assert_eq!(say(&mut sim, "Ben", "nobody"), ["Ben: done"]);
    assert!(trace_lines(&sim).iter().any(|l| l.contains("had no recipient")));
    let out = say(&mut sim, "Ben", "bad");
    assert!(
        out[0].starts_with("ERROR") && out[0].contains("list of member names"),
        "{out:?}"
    );
    // A name that is no member (say one an admin removed after it was stored) is skipped
    // with a trace line; it does not fail the run.
    assert!(say(&mut sim, "Ben", "stranger").is_empty());
    let trace = trace_lines(&sim);
    assert!(
        trace
            .iter()
            .any(|l| l.contains("`Zed` is not a member (any more), skipped")),
        "{trace:?}"
    );
    assert!(trace.iter().any(|l| l.contains("had no recipient")), "{trace:?}");
}

#[test]
fn to_members_needs_a_window_policy_and_excludes_to() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let flow = SourceFile {
        path: "f.yaml".into(),
        text:
            "id: x\ntriggers: [{ keywords: [x] }]\nsteps:\n  - send: { to: Ben, to_members: \"['Anna']\", text: hi }\n"
                .into(),
    };
    let checked = load(Some(&household), &[flow]);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.code == "proactive-send" && d.message.contains("`to_members`")),
        "a send to other members must say what happens outside their window: {:?}",
        checked.diagnostics
    );
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.render(None).contains("only one of `to` and `to_members`")),
        "{:?}",
        checked.diagnostics
    );
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
