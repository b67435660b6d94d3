//! The pure engine: `handle(flows, state, event, data, now) -> Outcome`.
//!
//! Deterministic: the same inputs give the same outputs. No I/O and no clock; `now`
//! is an argument, ids are derived from the inputs. Everything the edges must do
//! (send, store, start timers) comes back as `Effect`s, applied in one transaction.
//!
//! One `handle` call is a [`Run`]; its methods live in rooms by concept, each an
//! `impl Run` block of its own:
//! - this file: the entry point, the run's state and the message entry (`on_message`),
//!   expiry and flow-version migration, and `finish` (state, effects, trace out).
//! - [`timers`]: schedule slots and timers firing (`on_schedule`, `on_timer`).
//! - [`routing`]: which trigger a message starts (keyword passes, roles, `when`).
//! - [`conversation`]: the frame stack: start, run, jump, return, fail.
//! - [`steps`]: what each step kind does (`exec`).
//! - [`ask`]: questions: prefill, answers, validation, giving up.
//! - [`actions`]: list, record and roster changes, selections, variables.
//! - [`send`]: rendering messages and templates, recipients, the send effect.
//! - [`context`]: the template context and the values it is built from.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use minijinja::Value;

use self::routing::Routing;
use crate::data::HouseholdData;
use crate::event::{ConversationState, Effect, Event, EventKind, InboundMessage, Outcome, Return, Trace, Values};
use crate::flow::{FlowSet, Member, Target};
use crate::model::MessageKind;
use crate::parse::{normalize, strip_fillers};
use crate::roster;

mod actions;
mod ask;
mod context;
mod conversation;
mod detour;
mod routing;
mod send;
mod stale;
mod steps;
#[cfg(test)]
mod tests;
mod texts;
mod timers;

/// Id of the (single) idle-timeout timer of a member's pending question. Timer ids are
/// unique per household, so the member's name is part of it.
pub fn ask_timer_id(member: &str) -> String {
    format!("ask-timeout:{member}")
}

/// A cancel word said about what is going on: "cancel that", "stop it", "forget it",
/// "laat het maar". Never a chore title or an answer (issue 12).
fn is_cancel_phrase(normalized: &str, cancel_words: &std::collections::HashSet<String>) -> bool {
    const ABOUT: &[&str] = &["it", "that", "this", "all", "everything", "het", "dat", "dit", "alles"];
    let Some((head, last)) = normalized.rsplit_once(' ') else {
        return false;
    };
    // "laat het maar": the pronoun inside a cancel phrase.
    let inner = normalized
        .split(' ')
        .filter(|w| !ABOUT.contains(w))
        .collect::<Vec<_>>()
        .join(" ");
    (ABOUT.contains(&last) && (cancel_words.contains(head) || matches!(head, "forget" | "drop" | "vergeet")))
        || (inner != normalized && cancel_words.contains(&inner))
}

/// Runs one event for one member. See the module docs.
pub fn handle(
    flows: &FlowSet,
    state: &ConversationState,
    event: &Event,
    data: &HouseholdData,
    now: DateTime<Utc>,
) -> Outcome {
    let Some(member) = roster::find(roster::effective(&flows.household, data), &event.member) else {
        return Outcome {
            state: state.clone(),
            effects: Vec::new(),
            trace: vec![Trace::Ignored {
                reason: "not a member of this household".to_owned(),
            }],
        };
    };
    let mut run = Run {
        fs: flows,
        member,
        now,
        data: Cow::Borrowed(data),
        original_data: data,
        state: state.clone(),
        effects: Vec::new(),
        trace: Vec::new(),
        message: None,
        captures: BTreeMap::new(),
        full_context: false,
        steps_run: 0,
        data_value: None,
        roster_value: None,
        event_value: Value::UNDEFINED,
        reader_zone: None,
        reader_language: None,
    };
    run.expire_and_migrate();
    let before = run.state.frames.last().map(|f| (f.flow.clone(), f.step.clone()));
    match &event.kind {
        EventKind::Message(m) => run.on_message(m),
        EventKind::Schedule { flow, trigger, slot } => run.on_schedule(flow, *trigger, *slot),
        EventKind::Timer(t) => run.on_timer(t),
    }
    run.finish(before, matches!(event.kind, EventKind::Message(_)))
}

/// One `handle` call in progress.
struct Run<'a> {
    fs: &'a FlowSet,
    member: &'a Member,
    now: DateTime<Utc>,
    /// Borrowed until the first data change, so read-only messages copy nothing.
    data: Cow<'a, HouseholdData>,
    /// The data as given, to roll back to when a step fails.
    original_data: &'a HouseholdData,
    state: ConversationState,
    effects: Vec<Effect>,
    trace: Vec<Trace>,
    message: Option<&'a InboundMessage>,
    captures: BTreeMap<String, String>,
    /// Build every root regardless of masks (the retry after an undefined error;
    /// minijinja does not report every variable a template reads, e.g. in slices).
    full_context: bool,
    steps_run: usize,
    /// `(lists, records)` as template values; rebuilt after a data change.
    data_value: Option<(Value, Value)>,
    /// `(member, members)` from a roster changed over chat (household.yaml's are in
    /// `Statics`); rebuilt after a data change.
    roster_value: Option<(Value, Value)>,
    event_value: Value,
    /// Whose time zone times are shown in while a message renders for one of its
    /// recipients; `None`: the member's own (see `tmpl::READER_ZONE`).
    reader_zone: Option<chrono_tz::Tz>,
    /// The language of that recipient, for day and month names (`tmpl::READER_LANGUAGE`).
    reader_language: Option<String>,
}

/// Why a step could not run: reported as an error effect, and the conversation resets.
struct StepError(String, bool);

impl StepError {
    fn new(msg: impl Into<String>) -> Self {
        StepError(msg.into(), false)
    }

    /// An undefined-value error, which may only mean the context was built too small.
    fn is_undefined(&self) -> bool {
        self.1
    }
}

impl From<minijinja::Error> for StepError {
    fn from(e: minijinja::Error) -> Self {
        let mut msg = e.kind().to_string();
        if let Some(d) = e.detail() {
            msg.push_str(": ");
            msg.push_str(d);
        }
        StepError(msg, e.kind() == minijinja::ErrorKind::UndefinedError)
    }
}

/// What a step tells the run loop.
enum Flowing {
    /// Follow the step's `next`.
    Next,
    /// Go to this target.
    Jump(Target),
    /// The frame stack changed (call/goto); continue with the new top.
    Continue,
    /// Waiting for the member.
    Wait,
}

impl<'a> Run<'a> {
    /// Resets an expired conversation and reconciles frames with changed flows.
    fn expire_and_migrate(&mut self) {
        if let (Some(exp), Some(top)) = (self.state.expires_at, self.state.frames.last())
            && exp <= self.now
        {
            self.trace.push(Trace::Expired { flow: top.flow.clone() });
            self.clear_frames();
            return;
        }
        let mut reset = false;
        for f in &mut self.state.frames {
            match self.fs.flow(&f.flow) {
                Some(flow) if flow.version == f.version => {}
                Some(flow) => {
                    let continued = flow.step_index.contains_key(&f.step);
                    self.trace.push(Trace::VersionChanged {
                        flow: f.flow.clone(),
                        continued,
                    });
                    if continued {
                        f.version = flow.version.clone();
                    } else {
                        reset = true;
                    }
                }
                None => {
                    self.trace.push(Trace::VersionChanged {
                        flow: f.flow.clone(),
                        continued: false,
                    });
                    reset = true;
                }
            }
        }
        if reset {
            self.clear_frames();
        }
    }

    fn on_message(&mut self, m: &'a InboundMessage) {
        self.message = Some(m);
        self.event_value = Value::UNDEFINED;
        let normalized = m.text.as_deref().map(normalize).unwrap_or_default();
        let kind = m.kind();
        let cancel_words = &self.fs.household.cancel_words;
        // A cancel word always cancels; "cancel that", "forget it" only while something
        // is going on (idle, a flow's own "forget it" keyword keeps working).
        let busy = !self.state.frames.is_empty();
        let cancels = |s: &str| cancel_words.contains(s) || (busy && is_cancel_phrase(s, cancel_words));
        let is_cancel = cancels(&normalized) || strip_fillers(&normalized).is_some_and(|s| cancels(&s));
        if kind == MessageKind::Text && is_cancel {
            if self.state.frames.is_empty() {
                self.trace.push(Trace::Ignored {
                    reason: "cancel with nothing to cancel".to_owned(),
                });
            } else {
                self.trace.push(Trace::Cancelled);
            }
            self.clear_frames();
            let reply = self.fs.household.cancel_reply.clone();
            if let Err(e) = self.send_text(&reply) {
                self.fail("cancel", e);
            }
            return;
        }
        if self.state.is_waiting() {
            if self.resolve_literal(m) {
                return;
            }
            let answers_ask = m.reply_id.as_ref().is_some_and(|id| {
                self.state
                    .frames
                    .last()
                    .is_some_and(|f| f.choices.iter().any(|c| &c.id == id))
            });
            if !answers_ask {
                let waiting_flow = self.state.frames.last().map(|f| f.flow.clone()).unwrap_or_default();
                if let Some((t, caps)) = self.route(m, &normalized, Routing::Interrupting, Some(&waiting_flow)) {
                    self.trace.push(Trace::Interrupted {
                        flow: waiting_flow,
                        by: t.flow_id.to_string(),
                    });
                    self.captures = caps;
                    self.start_flow(t.flow, t.start, Return::Reask, Values::new());
                    return;
                }
                if kind == MessageKind::Text && self.command_instead(m, &normalized) {
                    return;
                }
            }
            self.answer(m);
            return;
        }
        if let Some((t, caps)) = self.route(m, &normalized, Routing::Idle, None) {
            self.captures = caps;
            self.clear_frames();
            self.start_flow(t.flow, t.start, Return::None, Values::new());
        } else if m.reply_id.is_some() {
            self.stale_tap(m);
        }
    }

    fn finish(mut self, idle_before: Option<(String, String)>, refresh: bool) -> Outcome {
        // Expiry measures the member's silence: a schedule or timer that leaves the
        // same question waiting must not extend it.
        let idle_now = self.state.frames.last().map(|f| (f.flow.clone(), f.step.clone()));
        if !refresh && idle_now.is_some() && idle_now == idle_before {
            return Outcome {
                state: self.state,
                effects: self.effects,
                trace: self.trace,
            };
        }
        self.state.expires_at = self
            .state
            .frames
            .last()
            .and_then(|f| self.fs.flow(&f.flow))
            .map(|flow| self.now + flow.expires_after);
        Outcome {
            state: self.state,
            effects: self.effects,
            trace: self.trace,
        }
    }
}
