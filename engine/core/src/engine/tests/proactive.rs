//! Schedules and timers: audiences, catch-up, member zones, the 24-hour window.

use crate::check::{SourceFile, load};
use crate::data::HouseholdData;
use crate::engine::handle;
use crate::event::{Event, EventKind, TimerFired, Trace};
use crate::sim::Simulator;
use chrono::{TimeZone as _, Utc};

use super::*;

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
