//! Fuzz target: the engine fed arbitrary message text. The real flows of `flows/` are
//! loaded once; the input is split into up to 8 lines, each sent by member "Anna"
//! through `alfred_core::handle` at a fixed instant, threading the conversation state
//! and applying data changes like the service does. Two kinds of line are special:
//! - `#tap <id> <title>`: a tap on a reply button instead of text;
//! - `#fire`: the earliest pending timer fires (a reminder, an ask timeout), for the
//!   member it belongs to, with the clock moved to its instant.
//!
//! Must never panic.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use alfred_core::check::{SourceFile, load};
use alfred_core::data::HouseholdData;
use alfred_core::event::{ConversationState, Effect, Event, EventKind, InboundMessage, TimerSpec};
use alfred_core::flow::FlowSet;
use alfred_core::handle;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;

const HOUSEHOLD: &str = include_str!("../../../flows/household.yaml");
/// Every flow file of `flows/` when this target was written (add new ones here).
const FLOWS: &[(&str, &str)] = &[
    ("chores.yaml", include_str!("../../../flows/chores.yaml")),
    ("fallback.yaml", include_str!("../../../flows/fallback.yaml")),
    ("groceries.yaml", include_str!("../../../flows/groceries.yaml")),
    ("help.yaml", include_str!("../../../flows/help.yaml")),
];
const MAX_LINES: usize = 8;
const MEMBER: &str = "Anna";

fn flows() -> &'static FlowSet {
    static FLOW_SET: OnceLock<FlowSet> = OnceLock::new();
    FLOW_SET.get_or_init(|| {
        let household = SourceFile {
            path: "household.yaml".to_owned(),
            text: HOUSEHOLD.to_owned(),
        };
        let files: Vec<SourceFile> = FLOWS
            .iter()
            .map(|(path, text)| SourceFile {
                path: (*path).to_owned(),
                text: (*text).to_owned(),
            })
            .collect();
        let checked = load(Some(&household), &files);
        match checked.flows {
            Some(fs) => fs,
            None => {
                let shown: Vec<String> = checked.diagnostics.iter().map(|d| d.render(None)).collect();
                panic!("the real flows do not load:\n{}", shown.join("\n"));
            }
        }
    })
}

/// A fixed instant (a Monday morning in Amsterdam), so runs are reproducible.
fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_741_600_800, 0).expect("valid timestamp") // 2025-03-10T10:00:00Z
}

fn message(line: &str) -> InboundMessage {
    match line.strip_prefix("#tap ") {
        Some(rest) => {
            let (id, title) = rest.split_once(' ').unwrap_or((rest, ""));
            InboundMessage::reply(id, title)
        }
        None => InboundMessage::text(line),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let flows = flows();
    let input = String::from_utf8_lossy(bytes);
    let mut now = start();
    let mut states: BTreeMap<String, ConversationState> = BTreeMap::new();
    let mut data = HouseholdData::default();
    let mut timers: BTreeMap<String, TimerSpec> = BTreeMap::new();
    for line in input.split('\n').take(MAX_LINES) {
        let event = if line.trim_end() == "#fire" {
            let Some(id) = timers
                .values()
                .min_by_key(|t| (t.fire_at, t.id.clone()))
                .map(|t| t.id.clone())
            else {
                continue;
            };
            let Some(timer) = timers.remove(&id) else { continue };
            now = now.max(timer.fire_at);
            Event {
                member: timer.member,
                kind: EventKind::Timer(timer.fired),
            }
        } else {
            Event {
                member: MEMBER.to_owned(),
                kind: EventKind::Message(message(line)),
            }
        };
        let state = states.get(&event.member).cloned().unwrap_or_default();
        let outcome = handle(flows, &state, &event, &data, now);
        for effect in &outcome.effects {
            match effect {
                Effect::Data(change) => data.apply(change),
                Effect::StartTimer(t) => {
                    timers.insert(t.id.clone(), t.clone());
                }
                Effect::CancelTimer { id } => {
                    timers.remove(id);
                }
                Effect::Send(_) | Effect::Error { .. } => {}
            }
        }
        states.insert(event.member, outcome.state);
    }
});
