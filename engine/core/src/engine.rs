//! The pure engine: `handle(flows, state, event, data, now) -> Outcome`.
//!
//! Deterministic: the same inputs give the same outputs. No I/O and no clock; `now`
//! is an argument, ids are derived from the inputs. Everything the edges must do
//! (send, store, start timers) comes back as `Effect`s, applied in one transaction.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use minijinja::Value;
use serde::Serialize;

use crate::check::MAX_STEPS_PER_EVENT;
use crate::data::{DataChange, HouseholdData, ListItem, Record};
use crate::event::{
    Choice, ConversationState, Effect, Event, EventKind, Frame, InboundMessage, Miss, OutMessage, Outbound, Outcome,
    Return, Section, TimerFired, TimerSpec, Trace, Values,
};
use crate::flow::{
    Action, AskSpec, FlowSet, Matcher, Member, MemberRemoveSpec, MemberSetSpec, Next, Options, Recipient,
    RoutedTrigger, Select, SendSpec, Statics, Target, Text, Validator,
};
use crate::model::{MessageKind, Role};
use crate::parse::{
    item_key, normalize, parse_datetime, parse_duration, parse_items, parse_member_list, parse_number, strip_fillers,
    typo_match,
};
use crate::roster::{self, RosterError};
use crate::tmpl::{Expr, Tpl, roots};
use crate::window::WindowPolicy;

/// Id of the (single) idle-timeout timer of a member's pending question. Timer ids are
/// unique per household, so the member's name is part of it.
pub fn ask_timer_id(member: &str) -> String {
    format!("ask-timeout:{member}")
}
const MAX_BODY: usize = 4096;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_ROW_TITLE: usize = 24;
const SORRY: &str = "Sorry, something went wrong on my side. Let's start over.";
/// Which triggers a message may start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Routing {
    /// Nothing waits: every trigger, the fallback last.
    Idle,
    /// A question waits: interruptible flows only, exact keywords only.
    Interrupting,
    /// A question just gave up on this message: every trigger but the fallback.
    NotFallback,
}

/// What an ask's `prefill` gave.
enum Prefill {
    /// Nothing: ask as usual.
    Empty,
    /// A valid answer, stored: the question is skipped.
    Filled,
    /// Text that is not a valid answer; the hint says why.
    Invalid(String),
}

const GIVE_UP: &str = "Sorry, I still didn't get that. Let's leave it for now.";

/// How loosely a routing pass compares keywords (see [`Run::route`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeywordPass {
    /// The normalised text equals a keyword (and every other matcher is tried).
    Exact,
    /// The text without polite words at its edges ([`strip_fillers`]) equals a keyword.
    Fillers,
    /// The text is a keyword with a typo in a word ([`typo_match`]).
    Typo,
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

#[derive(Serialize)]
struct MemberView<'a> {
    name: &'a str,
    role: &'a str,
    timezone: &'a str,
    language: &'a str,
}

#[derive(Serialize)]
struct ItemView<'a> {
    name: &'a str,
    qty: u32,
    added_by: &'a str,
    added_at: String,
}

impl<'a> Run<'a> {
    // ---- entry points -------------------------------------------------------------

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
        let is_cancel =
            cancel_words.contains(&normalized) || strip_fillers(&normalized).is_some_and(|s| cancel_words.contains(&s));
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
            }
            self.answer(m);
            return;
        }
        if let Some((t, caps)) = self.route(m, &normalized, Routing::Idle, None) {
            self.captures = caps;
            self.clear_frames();
            self.start_flow(t.flow, t.start, Return::None, Values::new());
        }
    }

    fn on_schedule(&mut self, flow_id: &str, trigger: usize, slot: DateTime<Utc>) {
        let Some(&fi) = self.fs.flow_index.get(flow_id) else {
            self.trace.push(Trace::Ignored {
                reason: format!("schedule for unknown flow `{flow_id}`"),
            });
            return;
        };
        let Some((_, spec)) = self.fs.flows[fi].schedules.iter().find(|(ti, _)| *ti == trigger) else {
            self.trace.push(Trace::Ignored {
                reason: format!("flow `{flow_id}` has no schedule trigger #{trigger}"),
            });
            return;
        };
        self.event_value = to_value(serde_json::json!({
            "type": "schedule",
            "slot": slot.with_timezone(&self.member.timezone).to_rfc3339(),
        }));
        if !spec.roles.is_empty() && !spec.roles.contains(&self.member.role) {
            self.trace.push(Trace::Ignored {
                reason: "schedule is not for this member's role".to_owned(),
            });
            return;
        }
        if let Some(cond) = &spec.when {
            match self.truthy(cond) {
                Ok(true) => {}
                Ok(false) => {
                    self.trace.push(Trace::Ignored {
                        reason: "schedule condition is false for this member".to_owned(),
                    });
                    return;
                }
                Err(e) => {
                    let id = self.fs.flows[fi].id.clone();
                    return self.fail(&id, e);
                }
            }
        }
        self.trace.push(Trace::Routed {
            flow: Some(self.fs.flows[fi].id.as_str().into()),
            trigger: Some(trigger),
            reason: format!("schedule `{}` slot {}", spec.cron.expression(), slot.to_rfc3339()),
            considered: Vec::new(),
        });
        let returns = if self.state.frames.is_empty() {
            Return::None
        } else {
            Return::Quiet
        };
        self.start_flow(fi, spec.start, returns, Values::new());
    }

    fn on_timer(&mut self, t: &TimerFired) {
        let Some(&fi) = self.fs.flow_index.get(&t.flow) else {
            self.trace.push(Trace::Ignored {
                reason: format!("timer `{}` for unknown flow `{}`", t.id, t.flow),
            });
            return;
        };
        // An ask timeout may lead to `end` (no step); every other timer names a step.
        let step = self.fs.flows[fi].step_index.get(&t.step).copied();
        let Some(si) = step.or(if t.wait.is_some() && t.step == "end" {
            Some(usize::MAX)
        } else {
            None
        }) else {
            self.trace.push(Trace::Ignored {
                reason: format!("timer `{}` for unknown step `{}`", t.id, t.step),
            });
            return;
        };
        self.event_value = to_value(serde_json::json!({ "type": "timer", "id": t.id }));
        if let Some(wait) = t.wait {
            // An ask timeout only applies to the very question it was started for.
            let current = self.state.is_waiting()
                && self.state.wait_seq == wait
                && self.state.frames.last().is_some_and(|f| f.flow == t.flow);
            if !current {
                self.trace.push(Trace::Ignored {
                    reason: "ask timeout for a question that was already answered or left".to_owned(),
                });
                return;
            }
            if let Some(top) = self.state.frames.last_mut() {
                top.waiting = false;
                top.choices.clear();
            }
            if si == usize::MAX {
                self.end_frame();
            } else if let Some(top) = self.state.frames.last_mut() {
                top.step = t.step.clone();
            }
            self.run_steps();
            return;
        }
        let returns = if self.state.frames.is_empty() {
            Return::None
        } else {
            Return::Quiet
        };
        self.start_flow(fi, si, returns, t.data.clone());
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

    // ---- routing -------------------------------------------------------------------

    /// Finds the first trigger (in priority order) that matches the message.
    /// While `Interrupting`, only interruptible flows other than `exclude` qualify.
    fn route(
        &mut self,
        m: &InboundMessage,
        normalized: &str,
        routing: Routing,
        exclude: Option<&str>,
    ) -> Option<(&'a RoutedTrigger, BTreeMap<String, String>)> {
        let interrupting = routing == Routing::Interrupting;
        let fs = self.fs;
        let text = m.text.as_deref().map(str::trim).unwrap_or_default();
        let kind = m.kind();
        let regex_hits: Option<Vec<usize>> = match (&fs.regex_set, kind) {
            (Some(set), MessageKind::Text) if !fs.regex_triggers.is_empty() => {
                Some(set.matches(text).into_iter().collect())
            }
            _ => None,
        };
        let mut considered = Vec::new();
        let mut fallback: Option<&RoutedTrigger> = None;
        let stripped = strip_fillers(normalized);
        // Exact matches (of any matcher) first; only then keywords without polite words,
        // then keywords with a typo, so a looser match never beats a stricter one.
        // While a question waits, typos stay answers: they could be anything.
        let passes: &[KeywordPass] = if interrupting {
            &[KeywordPass::Exact, KeywordPass::Fillers]
        } else {
            &[KeywordPass::Exact, KeywordPass::Fillers, KeywordPass::Typo]
        };
        for &pass in passes {
            if pass == KeywordPass::Fillers && stripped.is_none() {
                continue;
            }
            let mut regex_pos = 0usize;
            for t in &fs.triggers {
                let is_regex = matches!(t.matcher, Matcher::Regex(_));
                let this_regex = regex_pos;
                if is_regex {
                    regex_pos += 1;
                }
                if interrupting && (!t.interruptible || exclude == Some(&*t.flow_id)) {
                    continue;
                }
                if pass != KeywordPass::Exact
                    && (kind != MessageKind::Text || !matches!(t.matcher, Matcher::Keywords(_)))
                {
                    continue;
                }
                let mut loose_reason = None;
                let hit: Result<BTreeMap<String, String>, Miss> = match &t.matcher {
                    Matcher::Keywords(k) => {
                        let found = match pass {
                            _ if kind != MessageKind::Text => None,
                            KeywordPass::Exact => k.contains(normalized).then(String::new),
                            KeywordPass::Fillers => stripped
                                .as_ref()
                                .filter(|s| k.contains(*s))
                                .map(|s| format!("keyword `{s}`, ignoring polite words")),
                            // The smallest, so the trace does not depend on set order.
                            KeywordPass::Typo => k
                                .iter()
                                .filter(|kw| {
                                    typo_match(normalized, kw) || stripped.as_ref().is_some_and(|s| typo_match(s, kw))
                                })
                                .min()
                                .map(|kw| format!("keyword `{kw}` matched with a typo")),
                        };
                        match found {
                            None if kind != MessageKind::Text => Err(Miss::Kind),
                            None => Err(Miss::Keyword),
                            Some(reason) => {
                                loose_reason = Some(reason).filter(|r| !r.is_empty());
                                Ok(BTreeMap::new())
                            }
                        }
                    }
                    Matcher::Regex(re) => {
                        if kind != MessageKind::Text {
                            Err(Miss::Kind)
                        } else {
                            let matched = match &regex_hits {
                                Some(hits) => hits.binary_search(&this_regex).is_ok(),
                                None => re.is_match(text),
                            };
                            if matched {
                                Ok(captures_of(re, text))
                            } else {
                                Err(Miss::Regex)
                            }
                        }
                    }
                    Matcher::Reply(ids) => match &m.reply_id {
                        Some(id) if ids.contains(id) => Ok(BTreeMap::new()),
                        _ => Err(Miss::ReplyId),
                    },
                    Matcher::Kind(k) => {
                        if *k == kind {
                            Ok(BTreeMap::new())
                        } else {
                            Err(Miss::Kind)
                        }
                    }
                    Matcher::Fallback => {
                        if kind == MessageKind::Text && fallback.is_none() && routing == Routing::Idle {
                            fallback = Some(t);
                        }
                        Err(Miss::Fallback)
                    }
                };
                let hit = hit.and_then(|caps| self.allowed(t, caps));
                match hit {
                    Ok(caps) => {
                        let reason = loose_reason.unwrap_or_else(|| describe_match(t, m));
                        self.trace.push(Trace::Routed {
                            flow: Some(t.flow_id.clone()),
                            trigger: Some(t.index),
                            reason,
                            considered,
                        });
                        return Some((t, caps));
                    }
                    // The looser passes retry the same triggers: each is listed once.
                    Err(miss) if pass == KeywordPass::Exact => considered.push((t.flow_id.clone(), t.index, miss)),
                    Err(_) => {}
                }
            }
        }
        if let Some(t) = fallback
            && let Ok(caps) = self.allowed(t, BTreeMap::new())
        {
            self.trace.push(Trace::Routed {
                flow: Some(t.flow_id.clone()),
                trigger: Some(t.index),
                reason: "fallback: no other trigger matched".to_owned(),
                considered,
            });
            return Some((t, caps));
        }
        if routing == Routing::Idle {
            self.trace.push(Trace::Routed {
                flow: None,
                trigger: None,
                reason: format!("nothing matches this {} message", kind.as_str()),
                considered,
            });
        }
        None
    }

    /// Role and `when` checks, after the matcher hit.
    fn allowed(&mut self, t: &RoutedTrigger, caps: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Miss> {
        if !t.roles.is_empty() && !t.roles.contains(&self.member.role) {
            return Err(Miss::Role);
        }
        if let Some(w) = &t.when {
            let saved = std::mem::replace(&mut self.captures, caps);
            let ok = self.truthy(w).unwrap_or(false);
            let caps = std::mem::replace(&mut self.captures, saved);
            return if ok { Ok(caps) } else { Err(Miss::Condition) };
        }
        Ok(caps)
    }

    // ---- frames --------------------------------------------------------------------

    fn clear_frames(&mut self) {
        let had_timeout = self.state.frames.iter().any(|f| f.waiting);
        self.state.frames.clear();
        if had_timeout {
            self.effects.push(Effect::CancelTimer {
                id: ask_timer_id(&self.member.name),
            });
        }
    }

    fn start_flow(&mut self, fi: usize, step: usize, returns: Return, vars: Values) {
        let flow = &self.fs.flows[fi];
        self.state.frames.push(Frame {
            flow: flow.id.clone(),
            version: flow.version.clone(),
            step: flow.steps[step].id.clone(),
            slots: Values::new(),
            vars,
            attempts: 0,
            waiting: false,
            returns,
            captures: self.captures.clone(),
            choices: Vec::new(),
        });
        self.run_steps();
    }

    /// Position of the top frame: (flow index, step index).
    fn top(&self) -> Option<(usize, usize)> {
        let f = self.state.frames.last()?;
        let fi = *self.fs.flow_index.get(&f.flow)?;
        let si = *self.fs.flows[fi].step_index.get(&f.step)?;
        Some((fi, si))
    }

    /// Runs steps of the top frame until it waits or the conversation is idle.
    fn run_steps(&mut self) {
        loop {
            let Some((fi, si)) = self.top() else { return };
            self.steps_run += 1;
            if self.steps_run > MAX_STEPS_PER_EVENT {
                let flow = self.fs.flows[fi].id.clone();
                self.trace.push(Trace::LoopGuard {
                    flow: flow.clone(),
                    steps: MAX_STEPS_PER_EVENT,
                });
                self.effects.push(Effect::Error {
                    flow: Some(flow),
                    step: Some(self.fs.flows[fi].steps[si].id.clone()),
                    message: format!("stopped after {MAX_STEPS_PER_EVENT} steps without waiting for the member"),
                });
                self.clear_frames();
                let _ = self.send_text(&Text::literal(SORRY));
                return;
            }
            let fs = self.fs;
            let flow = &fs.flows[fi];
            let step = &flow.steps[si];
            self.trace.push(Trace::Step {
                flow: flow.id.clone(),
                step: step.id.clone(),
            });
            match self.exec(fi, si) {
                Ok(Flowing::Next) => match self.next_target(&step.next) {
                    Ok(t) => self.go(fi, t),
                    Err(e) => return self.fail(&step.id, e),
                },
                Ok(Flowing::Jump(t)) => self.go(fi, t),
                Ok(Flowing::Continue) => {}
                Ok(Flowing::Wait) => return,
                Err(e) => return self.fail(&step.id, e),
            }
            // Idle, or back on a frame that waits for an answer (after an interruption
            // or a timer ran on top of it): nothing more to run now.
            if self.state.frames.last().is_none_or(|f| f.waiting) {
                return;
            }
        }
    }

    /// Moves the top frame to a target, ending the frame at `End`.
    fn go(&mut self, fi: usize, t: Target) {
        match t {
            Target::Step(i) => {
                if let Some(top) = self.state.frames.last_mut() {
                    top.step = self.fs.flows[fi].steps[i].id.clone();
                }
            }
            Target::End => self.end_frame(),
        }
    }

    /// Pops the top frame and resumes what is below, per its `returns`.
    fn end_frame(&mut self) {
        let Some(done) = self.state.frames.pop() else { return };
        match done.returns {
            Return::None | Return::Quiet => {}
            Return::Call => {
                // The caller sits on its `call` step: continue with that step's `next`.
                let Some((fi, si)) = self.top() else { return };
                let next = &self.fs.flows[fi].steps[si].next;
                match self.next_target(next) {
                    Ok(t) => self.go(fi, t),
                    Err(e) => {
                        let id = self.fs.flows[fi].steps[si].id.clone();
                        self.fail(&id, e);
                    }
                }
            }
            Return::Reask => {
                let Some((fi, si)) = self.top() else { return };
                let flow_id = self.fs.flows[fi].id.clone();
                let step_id = self.fs.flows[fi].steps[si].id.clone();
                self.trace.push(Trace::Resumed {
                    flow: flow_id,
                    step: step_id.clone(),
                });
                if let Action::Ask(a) = &self.fs.flows[fi].steps[si].action
                    && let Err(e) = self.send_prompt(a, None)
                {
                    self.fail(&step_id, e);
                }
            }
        }
    }

    /// A step failed: nothing of this event takes effect (no half-applied changes, no
    /// messages about them), the conversation resets, and the member hears so.
    fn fail(&mut self, step: &str, e: StepError) {
        let flow = self.state.frames.last().map(|f| f.flow.clone()).unwrap_or_default();
        self.effects.clear();
        self.data = Cow::Borrowed(self.original_data);
        self.data_value = None;
        self.trace.push(Trace::Failed {
            flow: flow.clone(),
            step: step.to_owned(),
            error: e.0.clone(),
        });
        self.effects.push(Effect::Error {
            flow: Some(flow),
            step: Some(step.to_owned()),
            message: e.0,
        });
        self.clear_frames();
        let _ = self.send_text(&Text::literal(SORRY));
    }

    fn next_target(&mut self, next: &Next) -> Result<Target, StepError> {
        match next {
            Next::To(t) => Ok(*t),
            Next::Branches(bs, otherwise) => {
                for (cond, t) in bs {
                    if self.truthy(cond)? {
                        return Ok(*t);
                    }
                }
                Ok(*otherwise)
            }
        }
    }

    // ---- steps ---------------------------------------------------------------------

    fn exec(&mut self, fi: usize, si: usize) -> Result<Flowing, StepError> {
        let fs = self.fs;
        let step = &fs.flows[fi].steps[si];
        match &step.action {
            Action::Nothing => Ok(Flowing::Next),
            Action::Send(s) => {
                self.send(s, None)?;
                Ok(Flowing::Next)
            }
            Action::Ask(a) => {
                // A prefill that is there but wrong ("new chore … for Lisa") is answered
                // like a wrong typed answer, so the member learns why they are asked.
                let mut body = None;
                if let Some(t) = &a.prefill {
                    match self.prefilled(a, t)? {
                        Prefill::Filled => return Ok(Flowing::Next),
                        Prefill::Empty => {}
                        Prefill::Invalid(hint) => {
                            body = Some(match &a.reprompt {
                                Some(t) => self.render_text(t)?,
                                None => hint,
                            });
                        }
                    }
                }
                self.state.wait_seq += 1;
                let choices = self.send_prompt(a, body)?;
                let seq = self.state.wait_seq;
                if let Some(top) = self.state.frames.last_mut() {
                    top.waiting = true;
                    top.attempts = 0;
                    top.choices = choices;
                }
                if let Some((d, to)) = &a.timeout {
                    let step = match to {
                        Target::Step(i) => fs.flows[fi].steps[*i].id.clone(),
                        Target::End => "end".to_owned(),
                    };
                    self.effects.push(Effect::StartTimer(TimerSpec {
                        id: ask_timer_id(&self.member.name),
                        member: self.member.name.clone(),
                        fire_at: self.now + *d,
                        fired: TimerFired {
                            id: ask_timer_id(&self.member.name),
                            flow: fs.flows[fi].id.clone(),
                            step,
                            data: Values::new(),
                            wait: Some(seq),
                        },
                    }));
                }
                Ok(Flowing::Wait)
            }
            Action::Set(assignments) => {
                for (name, e) in assignments {
                    let v = self.eval(e)?;
                    if let Some(top) = self.state.frames.last_mut() {
                        top.vars.insert(name.clone(), v);
                    }
                }
                Ok(Flowing::Next)
            }
            Action::Switch { on, cases, default } => {
                let v = self.eval(on)?;
                let key = match &v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let target = cases.iter().find(|(k, _)| *k == key).map_or(*default, |(_, t)| *t);
                Ok(Flowing::Jump(target))
            }
            Action::Call(callee) => {
                let flow = &fs.flows[*callee];
                self.state.frames.push(Frame {
                    flow: flow.id.clone(),
                    version: flow.version.clone(),
                    step: flow.steps[0].id.clone(),
                    slots: Values::new(),
                    vars: Values::new(),
                    attempts: 0,
                    waiting: false,
                    returns: Return::Call,
                    captures: Default::default(),
                    choices: Vec::new(),
                });
                Ok(Flowing::Continue)
            }
            Action::Goto(target) => {
                let flow = &fs.flows[*target];
                if let Some(top) = self.state.frames.last_mut() {
                    top.flow = flow.id.clone();
                    top.version = flow.version.clone();
                    top.step = flow.steps[0].id.clone();
                    top.slots.clear();
                    top.vars.clear();
                }
                Ok(Flowing::Continue)
            }
            Action::End => Ok(Flowing::Jump(Target::End)),
            Action::ListAdd { list, items } => {
                let text = self.render(items)?;
                let mut added = Vec::new();
                let mut already = Vec::new();
                for p in parse_items(&text) {
                    let key = item_key(&p.name);
                    let existing = self.data.list(list).iter().find(|i| i.key == key).cloned();
                    let item = match existing {
                        Some(mut i) => {
                            already.push(serde_json::json!({ "name": i.name, "qty": p.qty }));
                            i.qty = i.qty.saturating_add(p.qty).min(999);
                            i
                        }
                        None => {
                            added.push(serde_json::json!({ "name": p.name, "qty": p.qty }));
                            ListItem {
                                key,
                                name: p.name,
                                qty: p.qty,
                                added_by: self.member.name.clone(),
                                added_at: self.now,
                            }
                        }
                    };
                    self.change(DataChange::ListPut {
                        list: list.clone(),
                        item,
                    });
                }
                self.set_var("added", serde_json::Value::Array(added));
                self.set_var("already", serde_json::Value::Array(already));
                Ok(Flowing::Next)
            }
            Action::ListRemove { list, items } => {
                let text = self.render(items)?;
                let mut removed = Vec::new();
                let mut missing = Vec::new();
                for p in parse_items(&text) {
                    let key = item_key(&p.name);
                    match self.data.list(list).iter().find(|i| i.key == key) {
                        Some(i) => {
                            removed.push(serde_json::Value::String(i.name.clone()));
                            self.change(DataChange::ListRemove {
                                list: list.clone(),
                                key,
                            });
                        }
                        None => missing.push(serde_json::Value::String(p.name)),
                    }
                }
                self.set_var("removed", serde_json::Value::Array(removed));
                self.set_var("missing", serde_json::Value::Array(missing));
                Ok(Flowing::Next)
            }
            Action::ListClear(list) => {
                let n = self.data.list(list).len();
                if n > 0 {
                    self.change(DataChange::ListClear { list: list.clone() });
                }
                self.set_var("cleared", serde_json::json!(n));
                Ok(Flowing::Next)
            }
            Action::RecordCreate {
                collection,
                fields,
                into,
            } => {
                let mut values = BTreeMap::new();
                for (k, e) in fields {
                    values.insert(k.clone(), self.eval(e)?);
                }
                let record = Record {
                    id: self.data.next_record_id(collection),
                    fields: values,
                    created_by: self.member.name.clone(),
                    created_at: self.now,
                    updated_at: self.now,
                };
                if let Some(v) = into {
                    self.set_var(v, record_json(&record, self.member));
                }
                self.change(DataChange::RecordPut {
                    collection: collection.clone(),
                    record,
                });
                Ok(Flowing::Next)
            }
            Action::RecordUpdate { select, fields } => {
                let selected = self.select(select)?;
                let mut out = Vec::new();
                for mut r in selected {
                    let rec_value = to_value(record_json(&r, self.member));
                    let ctx = self.context(roots::ALL, &[("record", rec_value)]);
                    for (k, e) in fields {
                        r.fields.insert(k.clone(), fs.templates.eval(e, &ctx)?);
                    }
                    r.updated_at = self.now;
                    out.push(record_json(&r, self.member));
                    self.change(DataChange::RecordPut {
                        collection: select.collection.clone(),
                        record: r,
                    });
                }
                if let Some(v) = &select.into {
                    self.set_var(v, serde_json::Value::Array(out));
                }
                Ok(Flowing::Next)
            }
            Action::RecordDelete(select) => {
                let selected = self.select(select)?;
                let out: Vec<_> = selected.iter().map(|r| record_json(r, self.member)).collect();
                for r in selected {
                    self.change(DataChange::RecordDelete {
                        collection: select.collection.clone(),
                        id: r.id,
                    });
                }
                if let Some(v) = &select.into {
                    self.set_var(v, serde_json::Value::Array(out));
                }
                Ok(Flowing::Next)
            }
            Action::RecordQuery(select) => {
                let selected = self.select(select)?;
                let out: Vec<_> = selected.iter().map(|r| record_json(r, self.member)).collect();
                if let Some(v) = &select.into {
                    self.set_var(v, serde_json::Value::Array(out));
                }
                Ok(Flowing::Next)
            }
            Action::TimerStart(t) => {
                let ctx = self.context(roots::ALL, &[]);
                let id = fs.templates.render(&t.id, &ctx)?;
                let member = match &t.member {
                    Some(m) => {
                        let name = fs.templates.render(m, &ctx)?;
                        roster::find(self.roster(), name.trim())
                            .cloned()
                            .ok_or_else(|| StepError::new(format!("timer for unknown member `{}`", name.trim())))?
                    }
                    None => self.member.clone(),
                };
                let fire_at = if let Some(at) = &t.at {
                    let text = fs.templates.render(at, &ctx)?;
                    match DateTime::parse_from_rfc3339(text.trim()) {
                        Ok(dt) => dt.with_timezone(&Utc),
                        Err(_) => parse_datetime(&text, self.now, member.timezone)
                            .map_err(|e| StepError::new(format!("timer `at`: {e}")))?,
                    }
                } else if let Some(after) = &t.after {
                    let text = fs.templates.render(after, &ctx)?;
                    self.now + parse_duration(&text).map_err(|e| StepError::new(format!("timer `after`: {e}")))?
                } else {
                    return Err(StepError::new("timer has neither `at` nor `after`"));
                };
                let mut data = Values::new();
                for (k, v) in &t.data {
                    data.insert(k.clone(), serde_json::Value::String(fs.templates.render(v, &ctx)?));
                }
                let flow = &fs.flows[t.flow];
                self.effects.push(Effect::StartTimer(TimerSpec {
                    id: id.clone(),
                    member: member.name.clone(),
                    fire_at,
                    fired: TimerFired {
                        id,
                        flow: flow.id.clone(),
                        step: flow.steps[t.step].id.clone(),
                        data,
                        wait: None,
                    },
                }));
                Ok(Flowing::Next)
            }
            Action::TimerCancel(id) => {
                let ctx = self.context(roots::ALL, &[]);
                let id = fs.templates.render(id, &ctx)?;
                self.effects.push(Effect::CancelTimer { id });
                Ok(Flowing::Next)
            }
            Action::MemberSet(m) => {
                let result = self.member_set(m)?;
                self.member_result(result, m.into.as_deref(), m.on_error)
            }
            Action::MemberRemove(m) => {
                let result = self.member_remove(m)?;
                self.member_result(result, m.into.as_deref(), m.on_error)
            }
        }
    }

    /// The members in effect now, including changes made earlier in this run.
    fn roster(&self) -> &[Member] {
        roster::effective(&self.fs.household, &self.data)
    }

    /// Renders an optional `member_set` field; empty counts as not given.
    fn render_opt(&mut self, t: Option<&Tpl>) -> Result<Option<String>, StepError> {
        Ok(match t {
            Some(t) => Some(self.render(t)?.trim().to_owned()).filter(|s| !s.is_empty()),
            None => None,
        })
    }

    /// Adds or changes a member; a refusal is `Ok(Err(..))` so the flow can handle it.
    fn member_set(&mut self, m: &MemberSetSpec) -> Result<Result<serde_json::Value, RosterError>, StepError> {
        let name = self.render(&m.name)?.trim().to_owned();
        let phone = self.render_opt(m.phone.as_ref())?;
        let role = self.render_opt(m.role.as_ref())?;
        let timezone = self.render_opt(m.timezone.as_ref())?;
        let language = self.render_opt(m.language.as_ref())?;
        let before = self.roster().to_vec();
        let mut next = before.clone();
        let existing = roster::find(&before, &name).map(|e| e.name.clone());
        let added = existing.is_none();
        let index = match &existing {
            Some(found) => next.iter().position(|x| &x.name == found).unwrap_or_default(),
            None => {
                let Some(phone) = &phone else {
                    return Ok(Err(RosterError::NoAddress(name)));
                };
                next.push(Member {
                    name: name.clone(),
                    phone: Some(phone.clone()),
                    user_id: None,
                    role: crate::model::Role::Adult,
                    timezone: self.fs.household.timezone,
                    language: self.fs.household.language.clone(),
                });
                next.len() - 1
            }
        };
        let changed = &mut next[index];
        let parsed = (|| {
            if let Some(p) = &phone {
                changed.phone = Some(roster::normalize_phone(p)?);
            }
            if let Some(r) = &role {
                changed.role = roster::parse_role(r)?;
            }
            if let Some(t) = &timezone {
                changed.timezone = roster::parse_timezone(t)?;
            }
            if let Some(l) = &language {
                if !roster::is_language(l) {
                    return Err(RosterError::BadLanguage(l.clone()));
                }
                changed.language = l.clone();
            }
            Ok(())
        })();
        if let Err(e) = parsed {
            return Ok(Err(e));
        }
        let view = member_json(&next[index], added);
        if let Err(e) = roster::validate_change(&before, &next) {
            return Ok(Err(e));
        }
        self.change(DataChange::SetMembers { members: next });
        Ok(Ok(view))
    }

    /// Removes a member; yourself and the last admin are refused.
    fn member_remove(&mut self, m: &MemberRemoveSpec) -> Result<Result<serde_json::Value, RosterError>, StepError> {
        let name = self.render(&m.name)?.trim().to_owned();
        let before = self.roster().to_vec();
        let Some(gone) = roster::find(&before, &name).cloned() else {
            return Ok(Err(RosterError::UnknownMember(name)));
        };
        if gone.name == self.member.name {
            return Ok(Err(RosterError::RemoveSelf));
        }
        let next: Vec<Member> = before.iter().filter(|x| x.name != gone.name).cloned().collect();
        if let Err(e) = roster::validate_change(&before, &next) {
            return Ok(Err(e));
        }
        self.change(DataChange::SetMembers { members: next });
        Ok(Ok(member_json(&gone, false)))
    }

    /// Where a member change continues: `next` when done; a refusal puts its reason in
    /// `vars.error` and goes to `on_error`, or says it and ends.
    fn member_result(
        &mut self,
        result: Result<serde_json::Value, RosterError>,
        into: Option<&str>,
        on_error: Option<Target>,
    ) -> Result<Flowing, StepError> {
        match result {
            Ok(view) => {
                if let Some(v) = into {
                    self.set_var(v, view);
                }
                Ok(Flowing::Next)
            }
            Err(e) => {
                let reason = e.to_string();
                self.set_var("error", serde_json::Value::String(reason.clone()));
                match on_error {
                    Some(t) => Ok(Flowing::Jump(t)),
                    None => {
                        let mut text = reason;
                        if let Some(first) = text.get(..1) {
                            text = first.to_uppercase() + &text[1..];
                        }
                        self.send_text(&Text::literal(&format!("{text}.")))?;
                        Ok(Flowing::Jump(Target::End))
                    }
                }
            }
        }
    }

    fn select(&mut self, s: &Select) -> Result<Vec<Record>, StepError> {
        if let Some(id) = &s.id {
            let ctx = self.context(self.mask_tpl(id), &[]);
            let id = self.fs.templates.render(id, &ctx)?;
            let id = id.trim();
            return Ok(self
                .data
                .collection(&s.collection)
                .iter()
                .filter(|r| r.id == id)
                .cloned()
                .collect());
        }
        let Some(filter) = &s.filter else {
            return Ok(self.data.collection(&s.collection).to_vec());
        };
        let mut out = Vec::new();
        let all = self.data.collection(&s.collection).to_vec();
        for r in &all {
            let ctx = self.context(
                self.mask_expr(filter),
                &[("record", to_value(record_json(r, self.member)))],
            );
            if self.fs.templates.truthy(filter, &ctx)? {
                out.push(r.clone());
            }
        }
        Ok(out)
    }

    fn set_var(&mut self, name: &str, v: serde_json::Value) {
        if let Some(top) = self.state.frames.last_mut() {
            top.vars.insert(name.to_owned(), v);
        }
    }

    fn change(&mut self, c: DataChange) {
        self.data.to_mut().apply(&c);
        self.data_value = None;
        self.roster_value = None;
        self.effects.push(Effect::Data(c));
    }

    // ---- answers -------------------------------------------------------------------

    /// Fills the ask's slot from its `prefill` if that renders to a valid answer; the
    /// question is then skipped. An empty or invalid prefill means "ask".
    fn prefilled(&mut self, ask: &AskSpec, prefill: &Tpl) -> Result<Prefill, StepError> {
        let text = self.render(prefill)?;
        if text.trim().is_empty() {
            return Ok(Prefill::Empty);
        }
        let (value, captures) = match self.validate(ask, &InboundMessage::text(text)) {
            Ok(answer) => answer,
            Err(hint) => {
                self.trace.push(Trace::Answer {
                    slot: ask.slot.clone(),
                    accepted: false,
                    attempt: 0,
                });
                return Ok(Prefill::Invalid(hint));
            }
        };
        self.trace.push(Trace::Answer {
            slot: ask.slot.clone(),
            accepted: true,
            attempt: 0,
        });
        if let Some(top) = self.state.frames.last_mut() {
            top.slots.insert(ask.slot.clone(), value);
            for (k, v) in captures {
                top.slots.insert(k, serde_json::Value::String(v));
            }
        }
        Ok(Prefill::Filled)
    }

    fn answer(&mut self, m: &'a InboundMessage) {
        let Some((fi, si)) = self.top() else { return };
        let fs = self.fs;
        let step = &fs.flows[fi].steps[si];
        let Action::Ask(ask) = &step.action else {
            // Defensive: a waiting frame always sits on an ask; recover by resetting.
            self.clear_frames();
            return;
        };
        let attempt = self.state.frames.last().map_or(1, |f| f.attempts + 1);
        match self.validate(ask, m) {
            Ok(value) => {
                self.trace.push(Trace::Answer {
                    slot: ask.slot.clone(),
                    accepted: true,
                    attempt,
                });
                if let Some(top) = self.state.frames.last_mut() {
                    top.slots.insert(ask.slot.clone(), value.0);
                    for (k, v) in value.1 {
                        top.slots.insert(k, serde_json::Value::String(v));
                    }
                    top.waiting = false;
                    top.attempts = 0;
                    top.choices.clear();
                }
                if ask.timeout.is_some() {
                    self.effects.push(Effect::CancelTimer {
                        id: ask_timer_id(&self.member.name),
                    });
                }
                match self.next_target(&step.next) {
                    Ok(t) => self.go(fi, t),
                    Err(e) => return self.fail(&step.id, e),
                }
                self.run_steps();
            }
            Err(hint) => {
                self.trace.push(Trace::Answer {
                    slot: ask.slot.clone(),
                    accepted: false,
                    attempt,
                });
                if attempt >= ask.max_attempts {
                    if let Some(top) = self.state.frames.last_mut() {
                        top.waiting = false;
                        top.attempts = 0;
                        top.choices.clear();
                    }
                    if ask.timeout.is_some() {
                        self.effects.push(Effect::CancelTimer {
                            id: ask_timer_id(&self.member.name),
                        });
                    }
                    match ask.on_fail {
                        Some(t) => {
                            self.go(fi, t);
                            self.run_steps();
                        }
                        None => {
                            if let Err(e) = self.send_text(&Text::literal(GIVE_UP)) {
                                return self.fail(&step.id, e);
                            }
                            self.end_frame();
                            self.run_steps();
                            self.start_given_up_message(m);
                        }
                    }
                    return;
                }
                if let Some(top) = self.state.frames.last_mut() {
                    top.attempts = attempt;
                }
                let reprompt = match &ask.reprompt {
                    Some(t) => self.render_text(t),
                    None => Ok(hint),
                };
                let res = reprompt.and_then(|body| self.send_prompt(ask, Some(body)).map(|_| ()));
                if let Err(e) = res {
                    self.fail(&step.id, e);
                }
            }
        }
    }

    /// A message that used up a question's last attempt is often not an answer at all but
    /// a new request ("remind Ben at 8 …" while a button question waits). Once nothing
    /// else waits, it starts whatever it would start when idle, so it is not lost; text
    /// that only the fallback would take stays dropped (the give-up reply said so).
    fn start_given_up_message(&mut self, m: &'a InboundMessage) {
        if !self.state.frames.is_empty() {
            return;
        }
        let normalized = m.text.as_deref().map(normalize).unwrap_or_default();
        if let Some((t, caps)) = self.route(m, &normalized, Routing::NotFallback, None) {
            self.captures = caps;
            self.start_flow(t.flow, t.start, Return::None, Values::new());
        }
    }

    /// Validates an answer: the slot value plus extra named captures.
    fn validate(
        &self,
        ask: &AskSpec,
        m: &InboundMessage,
    ) -> Result<(serde_json::Value, Vec<(String, String)>), String> {
        let choices = self.state.frames.last().map(|f| f.choices.as_slice()).unwrap_or(&[]);
        // A tap on one of the offered options is always a valid answer. Under `yes_no`,
        // buttons with ids `yes`/`no` answer true/false like typed text does: the id
        // string "no" would otherwise be a truthy answer ("No, keep" removing a member).
        if let Some(id) = &m.reply_id
            && choices.iter().any(|c| &c.id == id)
        {
            let value = match (&ask.validator, yes_no(&normalize(id))) {
                (Validator::YesNo, Some(b)) => serde_json::Value::Bool(b),
                _ => serde_json::Value::String(id.clone()),
            };
            return Ok((value, Vec::new()));
        }
        let text = m.text.as_deref().map(str::trim).unwrap_or_default();
        let text = if text.is_empty() {
            m.reply_title.as_deref().unwrap_or_default().trim()
        } else {
            text
        };
        let options_hint = || {
            let titles: Vec<&str> = choices.iter().map(|c| c.title.as_str()).collect();
            format!("Please choose one of: {}.", titles.join(", "))
        };
        if text.is_empty() {
            return Err(if choices.is_empty() {
                "Please answer with a text message.".to_owned()
            } else {
                options_hint()
            });
        }
        let n = normalize(text);
        let str_value = |s: &str| serde_json::Value::String(s.to_owned());
        match &ask.validator {
            Validator::Any => {
                if choices.is_empty() {
                    Ok((str_value(text), Vec::new()))
                } else {
                    match choices
                        .iter()
                        .find(|c| normalize(&c.title) == n || normalize(&c.id) == n)
                    {
                        Some(c) => Ok((str_value(&c.id), Vec::new())),
                        None => Err(options_hint()),
                    }
                }
            }
            Validator::Choice(opts) => match opts.iter().find(|(k, _)| *k == n) {
                Some((_, v)) => Ok((str_value(v), Vec::new())),
                // Offered buttons are named by their titles, not their ids.
                None if !choices.is_empty() => Err(options_hint()),
                None => {
                    let mut names: Vec<&str> = opts.iter().map(|(_, v)| v.as_str()).collect();
                    names.dedup();
                    Err(format!("Please answer with one of: {}.", names.join(", ")))
                }
            },
            Validator::Regex(re) => match re.captures(text) {
                Some(c) => {
                    let extra = re
                        .capture_names()
                        .flatten()
                        .filter_map(|name| c.name(name).map(|v| (name.to_owned(), v.as_str().to_owned())))
                        .collect();
                    Ok((str_value(text), extra))
                }
                None => Err("That doesn't look right. Please try again.".to_owned()),
            },
            Validator::Number(min, max) => match parse_number(text) {
                Some(x) if min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m) => {
                    let v = serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number);
                    // Whole numbers stay integers, so templates print "3", not "3.0".
                    let v = if x.fract() == 0.0 && x.abs() < 9e15 {
                        serde_json::json!(x as i64)
                    } else {
                        v
                    };
                    Ok((v, Vec::new()))
                }
                Some(_) => Err(match (min, max) {
                    (Some(a), Some(b)) => format!("Please give a number from {a} to {b}."),
                    (Some(a), None) => format!("Please give a number of at least {a}."),
                    (None, Some(b)) => format!("Please give a number of at most {b}."),
                    (None, None) => "Please give a number.".to_owned(),
                }),
                None => Err("Please answer with a number.".to_owned()),
            },
            Validator::DateTime => match parse_datetime(text, self.now, self.member.timezone) {
                Ok(dt) => Ok((
                    str_value(&dt.with_timezone(&self.member.timezone).to_rfc3339()),
                    Vec::new(),
                )),
                Err(_) => {
                    Err("I didn't get that time. Try \"tomorrow 18:00\", \"at 6pm\" or \"in 20 minutes\".".to_owned())
                }
            },
            Validator::Duration => match parse_duration(text) {
                Ok(_) => Ok((str_value(text), Vec::new())),
                Err(_) => Err("I didn't get that duration. Try \"20m\", \"2 hours\" or \"1h30m\".".to_owned()),
            },
            Validator::Member => {
                if matches!(n.as_str(), "me" | "myself" | "ik" | "ich") {
                    return Ok((str_value(&self.member.name), Vec::new()));
                }
                match self.roster().iter().find(|mm| normalize(&mm.name) == n) {
                    Some(mm) => Ok((str_value(&mm.name), Vec::new())),
                    None => {
                        let names: Vec<&str> = self.roster().iter().map(|m| m.name.as_str()).collect();
                        Err(format!("Who do you mean? {}.", names.join(", ")))
                    }
                }
            }
            Validator::Phone => match roster::normalize_phone(text) {
                Ok(p) => Ok((str_value(&p), Vec::new())),
                Err(_) => Err("Please give the number with its country code, like +31 6 1234 5678.".to_owned()),
            },
            Validator::Timezone => match roster::parse_timezone(text) {
                Ok(tz) => Ok((str_value(tz.name()), Vec::new())),
                Err(RosterError::BadTimezone(_, Some(hint))) => {
                    Err(format!("I don't know that time zone. Did you mean {hint}?"))
                }
                Err(_) => Err("I don't know that time zone. Try a name like America/New_York.".to_owned()),
            },
            // A button title typed out ("No, keep") is that button.
            Validator::YesNo => match yes_no(&n).or_else(|| {
                choices
                    .iter()
                    .find(|c| normalize(&c.title) == n)
                    .and_then(|c| yes_no(&normalize(&c.id)))
            }) {
                Some(b) => Ok((serde_json::Value::Bool(b), Vec::new())),
                None => Err("Please answer yes or no.".to_owned()),
            },
            Validator::Members => {
                // The members in effect: household.yaml, or as changed over chat.
                let names: Vec<&str> = self.roster().iter().map(|m| m.name.as_str()).collect();
                match parse_member_list(text, &self.member.name, &names) {
                    Some(found) => Ok((serde_json::json!(found), Vec::new())),
                    None => Err(format!(
                        "Who do you mean? A name ({}), several names (\"{} and {}\", they take turns) or \"everyone\".",
                        names.join(", "),
                        names.first().copied().unwrap_or("Anna"),
                        names.last().copied().unwrap_or("Ben"),
                    )),
                }
            }
            Validator::Recurrence => match crate::recur::parse_answer(text) {
                Some(crate::recur::Answer::Once) => Ok((str_value(""), Vec::new())),
                Some(crate::recur::Answer::Repeats(rule)) => Ok((str_value(&rule.to_string()), Vec::new())),
                None => Err(
                    "How often? Say \"daily\", \"every monday\", \"every 2 weeks\", \"on the 1st\" or \"no\"."
                        .to_owned(),
                ),
            },
        }
    }

    // ---- sending -------------------------------------------------------------------

    fn render_text(&mut self, t: &Text) -> Result<String, StepError> {
        let tpl = t.pick(&self.member.language, &self.fs.household.language);
        self.render(tpl)
    }

    fn send_text(&mut self, t: &Text) -> Result<(), StepError> {
        let body = self.render_text(t)?;
        self.push_send(
            std::slice::from_ref(&self.member.name),
            OutMessage::Text {
                body: clip(body.trim(), MAX_BODY),
            },
            None,
            WindowPolicy::default(),
        );
        Ok(())
    }

    /// Sends an ask's prompt (or a re-prompt body with the same options); returns the
    /// options offered, to match the answer against.
    fn send_prompt(&mut self, a: &AskSpec, body: Option<String>) -> Result<Vec<Choice>, StepError> {
        self.send(&a.prompt, body)
    }

    /// Renders and sends a message; returns the reply options it offered.
    fn send(&mut self, s: &SendSpec, body_override: Option<String>) -> Result<Vec<Choice>, StepError> {
        let recipients = self.recipients(&s.to)?;
        if recipients.is_empty() {
            let step = self.state.frames.last().map(|f| f.step.clone()).unwrap_or_default();
            self.trace.push(Trace::NoRecipient { step });
            return Ok(Vec::new());
        }
        // Each recipient reads their own language; `member` stays the one who acted.
        let mut by_language: Vec<(String, Vec<String>)> = Vec::new();
        for name in recipients {
            let lang =
                roster::find(self.roster(), &name).map_or_else(|| self.member.language.clone(), |m| m.language.clone());
            match by_language.iter_mut().find(|(l, _)| *l == lang) {
                Some((_, names)) => names.push(name),
                None => by_language.push((lang, vec![name])),
            }
        }
        // A template has its own fixed language, so one fallback serves every recipient.
        let fallback = match &s.fallback {
            Some((name, params)) => Some(self.render_template(name, params)?),
            None => None,
        };
        let flow_policy = self
            .state
            .frames
            .last()
            .and_then(|f| self.fs.flow(&f.flow))
            .and_then(|f| f.outside_window);
        let policy = s.outside_window.or(flow_policy).unwrap_or_default();
        let mut offered = Vec::new();
        for (lang, names) in by_language {
            let (msg, choices) = match self.render_message(s, &lang, body_override.clone()) {
                Err(e) if e.is_undefined() && !self.full_context => {
                    self.full_context = true;
                    let r = self.render_message(s, &lang, body_override.clone());
                    self.full_context = false;
                    r?
                }
                other => other?,
            };
            if names.contains(&self.member.name) || offered.is_empty() {
                offered = choices;
            }
            self.push_send(&names, msg, fallback.clone(), policy);
        }
        Ok(offered)
    }

    /// Renders an approved template with its parameters.
    fn render_template(&mut self, name: &str, params: &[Tpl]) -> Result<OutMessage, StepError> {
        let language = self
            .fs
            .household
            .templates
            .get(name)
            .ok_or_else(|| StepError::new(format!("unknown template `{name}`")))?
            .language
            .clone();
        let mut values = Vec::with_capacity(params.len());
        for p in params {
            let v = self.render(p)?;
            values.push(template_param(&v));
        }
        Ok(OutMessage::Template {
            name: name.to_owned(),
            language,
            params: values,
        })
    }

    /// Renders a message in one language: the message and the options it offers.
    fn render_message(
        &mut self,
        s: &SendSpec,
        lang: &str,
        body_override: Option<String>,
    ) -> Result<(OutMessage, Vec<Choice>), StepError> {
        let lang = lang.to_owned();
        let fallback_lang = self.fs.household.language.clone();
        let ctx = self.context(mask_send(&self.fs.templates, s), &[]);
        let tpls = &self.fs.templates;
        let render = |t: &Text| -> Result<String, StepError> { Ok(tpls.render(t.pick(&lang, &fallback_lang), &ctx)?) };
        if let Some((name, params)) = &s.template {
            let info = self
                .fs
                .household
                .templates
                .get(name)
                .ok_or_else(|| StepError::new(format!("unknown template `{name}`")))?;
            let mut values = Vec::new();
            for p in params {
                values.push(template_param(&tpls.render(p, &ctx)?));
            }
            let msg = OutMessage::Template {
                name: name.clone(),
                language: info.language.clone(),
                params: values,
            };
            return Ok((msg, Vec::new()));
        }
        let body = match body_override {
            Some(b) => b,
            None => match &s.text {
                Some(t) => render(t)?,
                None => String::new(),
            },
        };
        let body = clip(body.trim(), MAX_BODY);
        let footer = match &s.footer {
            Some(f) => Some(render(f)?),
            None => None,
        };
        let (msg, choices) = match &s.options {
            Options::None => (OutMessage::Text { body }, Vec::new()),
            Options::Buttons(bs) => {
                let mut buttons = Vec::new();
                for (id, t) in bs {
                    buttons.push(Choice {
                        id: id.clone(),
                        title: clip(&render(t)?, MAX_BUTTON_TITLE),
                        description: None,
                    });
                }
                (
                    OutMessage::Buttons {
                        body,
                        buttons: buttons.clone(),
                        footer,
                    },
                    buttons,
                )
            }
            Options::ButtonsFrom { each, id, title } => {
                let items = tpls.eval(each, &ctx)?;
                let items = match items {
                    serde_json::Value::Array(a) => a,
                    serde_json::Value::Null => Vec::new(),
                    other => vec![other],
                };
                let mut choices = Vec::new();
                for item in items.into_iter().take(10) {
                    let mask = tpls.mask_of_tpl(id) | tpls.mask_of_tpl(title);
                    let ictx = self.context(mask, &[("item", to_value(&item))]);
                    let cid = tpls.render(id, &ictx)?;
                    let ctitle = tpls.render(title, &ictx)?;
                    choices.push(Choice {
                        id: cid,
                        title: ctitle,
                        description: None,
                    });
                }
                if choices.is_empty() {
                    (OutMessage::Text { body }, choices)
                } else if choices.len() <= 3 {
                    for c in &mut choices {
                        c.title = clip(&c.title, MAX_BUTTON_TITLE);
                    }
                    (
                        OutMessage::Buttons {
                            body,
                            buttons: choices.clone(),
                            footer,
                        },
                        choices,
                    )
                } else {
                    // More than WhatsApp's 3 buttons: offer the same options as a list.
                    for c in &mut choices {
                        c.title = clip(&c.title, MAX_ROW_TITLE);
                    }
                    let sections = vec![Section {
                        title: None,
                        rows: choices.clone(),
                    }];
                    (
                        OutMessage::List {
                            body,
                            button: "Choose".to_owned(),
                            sections,
                            footer,
                        },
                        choices,
                    )
                }
            }
            Options::List { button, sections } => {
                let mut out = Vec::new();
                let mut all = Vec::new();
                for (title, rows) in sections {
                    let title = match title {
                        Some(t) => Some(render(t)?),
                        None => None,
                    };
                    let mut rs = Vec::new();
                    for (id, t, d) in rows {
                        let description = match d {
                            Some(d) => Some(render(d)?),
                            None => None,
                        };
                        rs.push(Choice {
                            id: id.clone(),
                            title: clip(&render(t)?, MAX_ROW_TITLE),
                            description,
                        });
                    }
                    all.extend(rs.iter().cloned());
                    out.push(Section { title, rows: rs });
                }
                (
                    OutMessage::List {
                        body,
                        button: clip(&render(button)?, MAX_BUTTON_TITLE),
                        sections: out,
                        footer,
                    },
                    all,
                )
            }
        };
        Ok((msg, choices))
    }

    fn push_send(&mut self, to: &[String], message: OutMessage, fallback: Option<OutMessage>, policy: WindowPolicy) {
        for name in to {
            self.effects.push(Effect::Send(Outbound {
                to: name.clone(),
                message: message.clone(),
                fallback: fallback.clone(),
                outside_window: policy,
            }));
        }
    }

    fn recipients(&mut self, r: &Recipient) -> Result<Vec<String>, StepError> {
        let names = |keep: &dyn Fn(&Member) -> bool| -> Vec<String> {
            self.roster()
                .iter()
                .filter(|m| keep(m))
                .map(|m| m.name.clone())
                .collect()
        };
        let me = self.member.name.clone();
        Ok(match r {
            Recipient::Current => vec![me],
            Recipient::Others => names(&|m| m.name != me),
            Recipient::Admins => names(&|m| m.role == Role::Admin),
            Recipient::Adults => names(&|m| m.role != Role::Child),
            Recipient::Everyone => names(&|_| true),
            Recipient::Named(t) => {
                let name = self.render(t)?;
                match roster::find(self.roster(), name.trim()) {
                    Some(m) => vec![m.name.clone()],
                    None => return Err(StepError::new(format!("no member named `{}`", name.trim()))),
                }
            }
            Recipient::Members(e) => self.members_of(e)?,
        })
    }

    /// The members a `to_members` expression names, once each, in its order.
    fn members_of(&mut self, e: &Expr) -> Result<Vec<String>, StepError> {
        let value = self.eval(e)?;
        let serde_json::Value::Array(items) = value else {
            return Err(StepError::new(format!(
                "`to_members` must give a list of member names, not `{value}`"
            )));
        };
        let mut names: Vec<String> = Vec::with_capacity(items.len());
        for item in &items {
            let name = match item {
                serde_json::Value::String(s) => s.as_str(),
                serde_json::Value::Object(o) => o.get("name").and_then(|n| n.as_str()).unwrap_or_default(),
                _ => "",
            };
            // A stored name can outlive its member (an admin removed them): skip it,
            // so one stale opt-in cannot fail everybody's change.
            let Some(m) = roster::find(self.roster(), name.trim()) else {
                let step = self.state.frames.last().map(|f| f.step.clone()).unwrap_or_default();
                let name = if name.is_empty() {
                    item.to_string()
                } else {
                    name.to_owned()
                };
                self.trace.push(Trace::NotAMember { step, name });
                continue;
            };
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
        Ok(names)
    }

    // ---- template context ----------------------------------------------------------

    /// The template context. `lists`/`records` are converted once per data version.
    fn context(&mut self, mask: u32, extra: &[(&str, Value)]) -> Value {
        let mask = if self.full_context { roots::ALL } else { mask };
        let fs = self.fs;
        let statics = fs.statics.get_or_init(|| build_statics(fs));
        let mut pairs: Vec<(&str, Value)> = Vec::with_capacity(4 + extra.len());
        let frame = self.state.frames.last();
        let empty = Values::new();
        // Statics describe household.yaml's members; a roster changed over chat is
        // converted once per run (and again after it changes).
        let (member, members) = match self.data.members.as_deref() {
            None => (
                statics.member_views.get(&self.member.name).cloned().unwrap_or_default(),
                statics.members.clone(),
            ),
            Some(stored) => self
                .roster_value
                .get_or_insert_with(|| (member_view(self.member), members_value(stored)))
                .clone(),
        };
        if mask & roots::MEMBER != 0 {
            pairs.push(("member", member));
        }
        if mask & roots::MEMBERS != 0 {
            pairs.push(("members", members));
        }
        if mask & roots::HOUSEHOLD != 0 {
            pairs.push(("household", statics.household.clone()));
        }
        if mask & roots::FLOWS != 0 {
            // A member added over chat may read a language household.yaml never had.
            let v = statics
                .flows_by_language
                .get(&self.member.language)
                .cloned()
                .unwrap_or_else(|| flows_value(fs, &self.member.language));
            pairs.push(("flows", v));
        }
        if mask & roots::SLOTS != 0 {
            pairs.push(("slots", to_value(frame.map_or(&empty, |f| &f.slots))));
        }
        if mask & roots::VARS != 0 {
            pairs.push(("vars", to_value(frame.map_or(&empty, |f| &f.vars))));
        }
        if mask & roots::CAPTURES != 0 {
            // This message's captures while routing; afterwards the ones the flow started with.
            let caps = if self.captures.is_empty() {
                frame.map_or(&self.captures, |f| &f.captures)
            } else {
                &self.captures
            };
            pairs.push(("captures", to_value(caps)));
        }
        if mask & roots::FLOW != 0 {
            pairs.push((
                "flow",
                to_value(serde_json::json!({ "id": frame.map(|f| f.flow.as_str()) })),
            ));
        }
        if mask & (roots::LISTS | roots::RECORDS) != 0 {
            let (lists, records) = self
                .data_value
                .get_or_insert_with(|| data_values(fs, &self.data, self.member))
                .clone();
            pairs.push(("lists", lists));
            pairs.push(("records", records));
        }
        if mask & (roots::NOW | roots::TODAY) != 0 {
            let local_now = self.now.with_timezone(&self.member.timezone);
            pairs.push(("now", Value::from(local_now.to_rfc3339())));
            pairs.push(("today", Value::from(local_now.format("%Y-%m-%d").to_string())));
        }
        if mask & roots::MESSAGE != 0 {
            let message = match self.message {
                Some(m) => {
                    let mut v = serde_json::json!({
                        "id": m.id,
                        "kind": m.kind().as_str(),
                        "text": m.text.as_deref().unwrap_or_default(),
                        "reply_id": m.reply_id,
                        "reply_title": m.reply_title,
                    });
                    if let serde_json::Value::Object(o) = &mut v {
                        for (k, x) in &m.extra {
                            o.entry(k.clone()).or_insert_with(|| x.clone());
                        }
                    }
                    to_value(v)
                }
                // Schedules and timers have no message; an empty one keeps templates simple.
                None => to_value(serde_json::json!({ "kind": "none", "text": "" })),
            };
            pairs.push(("message", message));
        }
        if mask & roots::EVENT != 0 && !self.event_value.is_undefined() {
            pairs.push(("event", self.event_value.clone()));
        }
        pairs.extend(extra.iter().cloned());
        Value::from_pairs(pairs)
    }

    fn mask_tpl(&self, t: &Tpl) -> u32 {
        self.fs.templates.mask_of_tpl(t)
    }

    fn mask_expr(&self, e: &Expr) -> u32 {
        self.fs.templates.mask_of_expr(e)
    }

    /// Runs `f` with a context of just the roots it reads; if that turns out too small
    /// (an undefined value), once more with every root.
    fn with_context<T>(
        &mut self,
        mask: u32,
        f: impl Fn(&mut Self, &Value) -> Result<T, StepError>,
    ) -> Result<T, StepError> {
        let ctx = self.context(mask, &[]);
        match f(self, &ctx) {
            Err(e) if e.is_undefined() && !self.full_context => {
                self.full_context = true;
                let ctx = self.context(roots::ALL, &[]);
                let result = f(self, &ctx);
                self.full_context = false;
                result
            }
            other => other,
        }
    }

    /// Renders a template with just the context it reads.
    fn render(&mut self, t: &Tpl) -> Result<String, StepError> {
        if let Tpl::Lit(s) = t {
            return Ok(s.clone());
        }
        self.with_context(self.mask_tpl(t), |run, ctx| Ok(run.fs.templates.render(t, ctx)?))
    }

    /// Evaluates an expression with just the context it reads.
    fn eval(&mut self, e: &Expr) -> Result<serde_json::Value, StepError> {
        self.with_context(self.mask_expr(e), |run, ctx| Ok(run.fs.templates.eval(e, ctx)?))
    }

    /// Evaluates a condition with just the context it reads.
    fn truthy(&mut self, e: &Expr) -> Result<bool, StepError> {
        self.with_context(self.mask_expr(e), |run, ctx| Ok(run.fs.templates.truthy(e, ctx)?))
    }
}

/// Every root any template of a send reads: one context serves the whole message.
fn mask_send(tpls: &crate::tmpl::Templates, s: &SendSpec) -> u32 {
    let text = |t: &Text| t.variants.iter().fold(0, |m, (_, tpl)| m | tpls.mask_of_tpl(tpl));
    let mut mask = s.text.as_ref().map_or(0, text) | s.footer.as_ref().map_or(0, text);
    if let Some((_, params)) = &s.template {
        mask |= params.iter().fold(0, |m, p| m | tpls.mask_of_tpl(p));
    }
    match &s.options {
        Options::None => {}
        Options::Buttons(bs) => mask |= bs.iter().fold(0, |m, (_, t)| m | text(t)),
        Options::ButtonsFrom { each, .. } => mask |= tpls.mask_of_expr(each),
        Options::List { button, sections } => {
            mask |= text(button);
            for (title, rows) in sections {
                mask |= title.as_ref().map_or(0, text);
                for (_, t, d) in rows {
                    mask |= text(t) | d.as_ref().map_or(0, text);
                }
            }
        }
    }
    mask
}

/// Values that do not change while a flow set is loaded.
fn build_statics(fs: &FlowSet) -> Statics {
    let member_views = fs
        .household
        .members
        .iter()
        .map(|m| (m.name.clone(), member_view(m)))
        .collect();
    let mut languages: Vec<&str> = fs.household.members.iter().map(|m| m.language.as_str()).collect();
    languages.push(&fs.household.language);
    let flows_by_language = languages
        .into_iter()
        .map(|l| (l.to_owned(), flows_value(fs, l)))
        .collect();
    Statics {
        members: members_value(&fs.household.members),
        household: to_value(serde_json::json!({
            "name": fs.household.name,
            "timezone": fs.household.timezone.name(),
        })),
        member_views,
        flows_by_language,
    }
}

/// `member`: who is talking.
fn member_view(m: &Member) -> Value {
    to_value(MemberView {
        name: &m.name,
        role: m.role.as_str(),
        timezone: m.timezone.name(),
        language: &m.language,
    })
}

/// `members`: everyone, with role, time zone and language (no phone numbers: every flow reads this).
fn members_value(members: &[Member]) -> Value {
    let all: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "role": m.role.as_str(),
                "timezone": m.timezone.name(),
                "language": m.language,
            })
        })
        .collect();
    to_value(all)
}

/// A member as a `member_set` / `member_remove` result (`as:`), for the admin's confirmation.
fn member_json(m: &Member, added: bool) -> serde_json::Value {
    serde_json::json!({
        "name": m.name,
        "phone": m.phone,
        "role": m.role.as_str(),
        "timezone": m.timezone.name(),
        "language": m.language,
        "added": added,
    })
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

/// WhatsApp template parameters may not contain newlines or tabs, nor more than four
/// spaces in a row, and are at most 1024 characters: Meta rejects the whole send
/// otherwise, so values from data are made to fit.
fn template_param(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut spaces = 0;
    for c in v.trim().chars() {
        let c = if c == '\n' || c == '\t' || c == '\r' { ' ' } else { c };
        if c == ' ' {
            spaces += 1;
            if spaces > 1 {
                continue;
            }
        } else {
            spaces = 0;
        }
        out.push(c);
    }
    clip(&out, 1024)
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn captures_of(re: &regex::Regex, text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(c) = re.captures(text) {
        for name in re.capture_names().flatten() {
            if let Some(v) = c.name(name) {
                // "done dishes!" means "dishes": trailing punctuation is tone, not data.
                let v = v.as_str().trim().trim_end_matches(['.', '!', '?', ',', ';']).trim_end();
                out.insert(name.to_owned(), v.to_owned());
            }
        }
    }
    out
}

fn describe_match(t: &RoutedTrigger, m: &InboundMessage) -> String {
    match &t.matcher {
        Matcher::Keywords(_) => "keyword".to_owned(),
        Matcher::Regex(re) => format!("regex `{}`", re.as_str()),
        Matcher::Reply(_) => format!("reply id `{}`", m.reply_id.as_deref().unwrap_or_default()),
        Matcher::Kind(k) => format!("message kind `{}`", k.as_str()),
        Matcher::Fallback => "fallback".to_owned(),
    }
}

fn yes_no(n: &str) -> Option<bool> {
    const YES: &[&str] = &[
        "yes",
        "y",
        "yeah",
        "yep",
        "yup",
        "ok",
        "okay",
        "sure",
        "ja",
        "jawohl",
        "yes please",
        "oui",
        "si",
        "true",
        "1",
    ];
    const NO: &[&str] = &[
        "no",
        "n",
        "nope",
        "nah",
        "nee",
        "nein",
        "non",
        "no thanks",
        "false",
        "0",
    ];
    if YES.contains(&n) {
        Some(true)
    } else if NO.contains(&n) {
        Some(false)
    } else {
        None
    }
}

fn record_json(r: &Record, member: &Member) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &r.fields {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".to_owned(), serde_json::Value::String(r.id.clone()));
    m.insert("created_by".to_owned(), serde_json::Value::String(r.created_by.clone()));
    m.insert(
        "created_at".to_owned(),
        serde_json::Value::String(r.created_at.with_timezone(&member.timezone).to_rfc3339()),
    );
    serde_json::Value::Object(m)
}

fn data_values(fs: &FlowSet, data: &HouseholdData, member: &Member) -> (Value, Value) {
    // Declared lists and collections always exist in templates, even when empty.
    let mut lists: BTreeMap<&str, Vec<ItemView<'_>>> =
        fs.household.lists.iter().map(|l| (l.as_str(), Vec::new())).collect();
    let mut records: BTreeMap<&str, Vec<serde_json::Value>> = fs
        .household
        .collections
        .keys()
        .map(|c| (c.as_str(), Vec::new()))
        .collect();
    lists.extend(data.lists.iter().map(|(name, items)| {
        let v = items
            .iter()
            .map(|i| ItemView {
                name: &i.name,
                qty: i.qty,
                added_by: &i.added_by,
                added_at: i.added_at.with_timezone(&member.timezone).to_rfc3339(),
            })
            .collect();
        (name.as_str(), v)
    }));
    records.extend(
        data.records
            .iter()
            .map(|(name, recs)| (name.as_str(), recs.iter().map(|r| record_json(r, member)).collect())),
    );
    (to_value(lists), to_value(records))
}

/// `flows` in templates: every visible flow's id and description, in the member's
/// language (descriptions are rendered with an empty context).
fn flows_value(fs: &FlowSet, language: &str) -> Value {
    let ctx = Value::from_pairs(std::iter::empty::<(&str, Value)>());
    let v: Vec<serde_json::Value> = fs
        .flows
        .iter()
        .filter(|f| !f.hidden)
        .filter_map(|f| {
            let d = f.description.as_ref()?;
            let text = fs
                .templates
                .render(d.pick(language, &fs.household.language), &ctx)
                .ok()?;
            Some(serde_json::json!({ "id": f.id, "description": text }))
        })
        .collect();
    to_value(v)
}

/// Any serialisable value as a template value.
fn to_value<T: Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}
