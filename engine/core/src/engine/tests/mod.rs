//! Engine tests for every construct of the flow language, on small inline flow sets.
//! (The shipped flows have their own conversation tests under `flows/tests/`.)

use chrono::{DateTime, TimeZone as _, Utc};

use crate::check::{SourceFile, load};
use crate::event::InboundMessage;
use crate::flow::FlowSet;
use crate::sim::{Produced, Simulator};

pub(super) const HOUSEHOLD: &str = r#"
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

pub(super) fn flows(sources: &[&str]) -> FlowSet {
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

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()
}

pub(super) fn texts(p: &[Produced]) -> Vec<String> {
    p.iter()
        .map(|p| match p {
            Produced::Message(o) => format!("{}: {}", o.to, o.message.body()),
            Produced::Error(e) => format!("ERROR {e}"),
        })
        .collect()
}

pub(super) fn say(sim: &mut Simulator<'_>, who: &str, text: &str) -> Vec<String> {
    texts(&sim.send(who, InboundMessage::text(text)))
}

pub(super) const ASKER: &str = r#"
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

pub(super) const PREFILL: &str = r#"
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

pub(super) fn trace_lines(sim: &Simulator<'_>) -> Vec<String> {
    sim.last_trace.iter().map(|(_, t)| t.to_string()).collect()
}

mod asks;
mod data;
mod frames;
mod languages;
mod proactive;
mod quiet;
mod routing;
mod sends;
