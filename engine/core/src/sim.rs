//! A whole household on a virtual clock: conversation states, data, timers and
//! schedules, all in memory. `alfred test` and `alfred shell` run on it, so both behave
//! exactly like the service minus the I/O: the same `handle`, the same effects, and the
//! same 24-hour window decision ([`crate::window::decide`]) on the virtual clock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::data::HouseholdData;
use crate::engine::handle;
use crate::event::{ConversationState, Effect, Event, EventKind, InboundMessage, Outbound, TimerSpec, Trace};
use crate::flow::FlowSet;
use crate::roster::effective;
use crate::window::{WindowDecision, decide};

/// Upper bound of events one `advance_to` may fire, so a timer that re-arms itself at
/// the same instant cannot spin forever.
const MAX_EVENTS_PER_ADVANCE: usize = 10_000;

/// Something the simulator produced, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Produced {
    /// A message to a member.
    Message(Outbound),
    /// A flow error (the conversation was reset).
    Error(String),
}

/// An in-memory household.
#[derive(Debug)]
pub struct Simulator<'a> {
    /// The flows.
    pub flows: &'a FlowSet,
    /// Virtual now.
    pub now: DateTime<Utc>,
    /// Household data.
    pub data: HouseholdData,
    /// Conversation state per member.
    pub states: BTreeMap<String, ConversationState>,
    /// Pending timers by id (ids are unique per household).
    pub timers: BTreeMap<String, TimerSpec>,
    /// Trace of the last event, per member.
    pub last_trace: Vec<(String, Trace)>,
    /// Each member's last inbound message (their 24-hour window). At the start every
    /// member has just written (all windows open); see [`Simulator::close_windows`].
    pub last_inbound: BTreeMap<String, DateTime<Utc>>,
    /// Messages held until their recipient writes (window closed, policy `defer`).
    pub deferred: BTreeMap<String, Vec<Outbound>>,
    /// Last slot fired per schedule (flow, trigger, member zone); absent = none yet.
    schedule_cursor: HashMap<(usize, usize, Option<String>), DateTime<Utc>>,
    /// Where schedules start counting: slots before it never fire.
    start: DateTime<Utc>,
}

impl<'a> Simulator<'a> {
    /// A simulator starting at `now` with `data`.
    pub fn new(flows: &'a FlowSet, now: DateTime<Utc>, data: HouseholdData) -> Self {
        // Tests mostly start mid-conversation, so every member counts as having just written.
        let last_inbound = flows.household.members.iter().map(|m| (m.name.clone(), now)).collect();
        Simulator {
            flows,
            now,
            data,
            states: BTreeMap::new(),
            timers: BTreeMap::new(),
            last_trace: Vec::new(),
            last_inbound,
            deferred: BTreeMap::new(),
            schedule_cursor: HashMap::new(),
            start: now,
        }
    }

    /// Forgets every member's last message: all 24-hour windows closed until they write.
    pub fn close_windows(&mut self) {
        self.last_inbound.clear();
    }

    /// A member sends a message; returns what Alfred produced.
    pub fn send(&mut self, member: &str, msg: InboundMessage) -> Vec<Produced> {
        self.last_trace.clear();
        self.dispatch(Event {
            member: member.to_owned(),
            kind: EventKind::Message(msg),
        })
    }

    /// Moves the clock to `to`, firing due timers and schedule slots in time order.
    pub fn advance_to(&mut self, to: DateTime<Utc>) -> Vec<Produced> {
        self.last_trace.clear();
        let mut out = Vec::new();
        for _ in 0..MAX_EVENTS_PER_ADVANCE {
            let next_timer = self
                .timers
                .iter()
                .filter(|(_, t)| t.fire_at <= to)
                .min_by_key(|(k, t)| (t.fire_at, (*k).clone()))
                .map(|(k, t)| (k.clone(), t.fire_at));
            let (flows, cursors, start) = (self.flows, &self.schedule_cursor, self.start);
            // Members an admin added or removed over chat count from then on.
            let members = effective(&flows.household, &self.data);
            let next_slot = flows
                .schedules()
                .flat_map(|(f, t, s)| {
                    flows.schedule_groups(s, members).into_iter().filter_map(move |g| {
                        let key = (f, t, g.zone.map(|z| z.name().to_owned()));
                        let cursor = cursors.get(&key).copied().unwrap_or(start);
                        let slot = g.cron.next_after(cursor)?;
                        let members: Vec<String> = g.members.iter().map(|m| m.name.clone()).collect();
                        (slot <= to).then_some((slot, key, members))
                    })
                })
                .min();
            match (next_timer, next_slot) {
                (Some((key, at)), slot) if slot.as_ref().is_none_or(|(s, _, _)| at <= *s) => {
                    let Some(timer) = self.timers.remove(&key) else { break };
                    self.now = self.now.max(at);
                    out.extend(self.dispatch(Event {
                        member: timer.member,
                        kind: EventKind::Timer(timer.fired),
                    }));
                }
                (_, Some((slot, key, members))) => {
                    self.schedule_cursor.insert(key.clone(), slot);
                    self.now = self.now.max(slot);
                    let (f, t, _) = key;
                    let flow = self.flows.flows[f].id.clone();
                    for m in members {
                        let kind = EventKind::Schedule {
                            flow: flow.clone(),
                            trigger: t,
                            slot,
                        };
                        out.extend(self.dispatch(Event { member: m, kind }));
                    }
                }
                _ => break,
            }
        }
        self.now = self.now.max(to);
        out
    }

    fn dispatch(&mut self, event: Event) -> Vec<Produced> {
        let member = event.member.clone();
        let state = self.states.get(&member).cloned().unwrap_or_default();
        let outcome = handle(self.flows, &state, &event, &self.data, self.now);
        let mut out = Vec::new();
        let mut window_trace = Vec::new();
        if matches!(event.kind, EventKind::Message(_)) {
            // Writing reopens the window; what waited for it goes out first, in order.
            self.last_inbound.insert(member.clone(), self.now);
            for o in self.deferred.remove(&member).unwrap_or_default() {
                window_trace.push(Trace::Window {
                    to: member.clone(),
                    decision: "delivered".to_owned(),
                });
                out.push(Produced::Message(o));
            }
        }
        for e in outcome.effects {
            match e {
                Effect::Send(o) => {
                    let last = self.last_inbound.get(&o.to).copied();
                    let decision = decide(&o.message, o.fallback.as_ref(), o.outside_window, last, self.now);
                    if decision != WindowDecision::Send {
                        window_trace.push(Trace::Window {
                            to: o.to.clone(),
                            decision: decision.as_str().to_owned(),
                        });
                    }
                    match decision {
                        WindowDecision::Send => out.push(Produced::Message(o)),
                        WindowDecision::SendTemplate(t) => out.push(Produced::Message(Outbound {
                            to: o.to,
                            message: t,
                            fallback: None,
                            outside_window: o.outside_window,
                        })),
                        WindowDecision::Defer => self.deferred.entry(o.to.clone()).or_default().push(o),
                        WindowDecision::Drop => {}
                    }
                }
                Effect::Data(c) => self.data.apply(&c),
                Effect::StartTimer(t) => {
                    self.timers.insert(t.id.clone(), t);
                }
                Effect::CancelTimer { id } => {
                    self.timers.remove(&id);
                }
                Effect::Error { flow, step, message } => out.push(Produced::Error(format!(
                    "{}{}: {message}",
                    flow.unwrap_or_default(),
                    step.map(|s| format!(".{s}")).unwrap_or_default()
                ))),
            }
        }
        self.last_trace.extend(
            outcome
                .trace
                .into_iter()
                .chain(window_trace)
                .map(|t| (member.clone(), t)),
        );
        self.states.insert(member, outcome.state);
        out
    }
}
