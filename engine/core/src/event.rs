//! What goes into the engine (events, conversation state) and what comes out
//! (effects and a trace). All plain data, serialisable, so the service can store the
//! state and the outbox rows as they are.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::data::DataChange;
use crate::model::{MessageKind, WindowPolicy};

/// A JSON object of slot or variable values.
pub type Values = BTreeMap<String, serde_json::Value>;

/// Something that happened for one member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Member name (as in the household).
    pub member: String,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The member sent a message.
    Message(InboundMessage),
    /// A schedule slot came due (the scheduler fans out one event per member).
    Schedule {
        /// Flow id.
        flow: String,
        /// Index of the schedule trigger in that flow's `triggers`.
        trigger: usize,
        /// The slot instant.
        slot: DateTime<Utc>,
    },
    /// A durable timer fired.
    Timer(TimerFired),
}

/// An inbound message, reduced to what flows can use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// WhatsApp message id (wamid), when there is one.
    pub id: Option<String>,
    /// Kind of message.
    pub kind: Option<MessageKind>,
    /// Text body, or the caption of media.
    pub text: Option<String>,
    /// Reply id of a tapped button/list row, or a template quick-reply payload.
    pub reply_id: Option<String>,
    /// Title of the tapped button/row.
    pub reply_title: Option<String>,
    /// Other fields (location coordinates, media mime type, …) for templates.
    #[serde(default)]
    pub extra: Values,
}

impl InboundMessage {
    /// A plain text message.
    pub fn text(body: impl Into<String>) -> Self {
        InboundMessage {
            kind: Some(MessageKind::Text),
            text: Some(body.into()),
            ..Default::default()
        }
    }

    /// A tap on a reply button or list row.
    pub fn reply(id: impl Into<String>, title: impl Into<String>) -> Self {
        InboundMessage {
            kind: Some(MessageKind::Reply),
            reply_id: Some(id.into()),
            reply_title: Some(title.into()),
            ..Default::default()
        }
    }

    /// The kind, defaulting to text.
    pub fn kind(&self) -> MessageKind {
        self.kind.unwrap_or(MessageKind::Text)
    }
}

/// A durable timer firing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerFired {
    /// Timer id.
    pub id: String,
    /// Flow to run.
    pub flow: String,
    /// Step to run.
    pub step: String,
    /// Values passed as `vars`.
    #[serde(default)]
    pub data: Values,
    /// For ask timeouts: the wait it belongs to; a conversation that has moved on
    /// ignores it.
    pub wait: Option<u64>,
}

/// A member's conversation: a stack of flow frames (calls and interruptions).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// Active frames; the last one runs. Empty = idle.
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// When the conversation expires if the member says nothing.
    pub expires_at: Option<DateTime<Utc>>,
    /// Counter of questions asked; identifies a wait for its timeout timer.
    #[serde(default)]
    pub wait_seq: u64,
}

impl ConversationState {
    /// Whether a flow is waiting for an answer.
    pub fn is_waiting(&self) -> bool {
        self.frames.last().is_some_and(|f| f.waiting)
    }
}

/// Why a frame sits on top of another one, i.e. what happens when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Return {
    /// Bottom frame: nothing below.
    #[default]
    None,
    /// Called with `call`: the caller continues after its call step.
    Call,
    /// An interruption: the frame below asks its question again.
    Reask,
    /// A timer/schedule ran on top: the frame below just keeps waiting.
    Quiet,
}

/// One running flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Flow id.
    pub flow: String,
    /// Flow version (content hash) the frame started on.
    pub version: String,
    /// Current step id.
    pub step: String,
    /// Collected answers.
    #[serde(default)]
    pub slots: Values,
    /// Variables.
    #[serde(default)]
    pub vars: Values,
    /// Failed answers to the current question.
    #[serde(default)]
    pub attempts: u32,
    /// Waiting for an answer to the `ask` at `step`.
    #[serde(default)]
    pub waiting: bool,
    /// What happens below when this frame ends.
    #[serde(default)]
    pub returns: Return,
    /// Named regex captures of the message that started the flow; kept so that later
    /// steps (after a question) can still use them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captures: BTreeMap<String, String>,
    /// Options offered with the pending question (generated ones included), so a tap
    /// or a typed title can be matched to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// A message that would answer the pending question but reads like a command
    /// ("buy milk" for "What is the chore?"): kept while Alfred asks which it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
}

/// Everything one `handle` call produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// The member's new conversation state.
    pub state: ConversationState,
    /// Effects to apply in one transaction.
    pub effects: Vec<Effect>,
    /// Why things happened.
    pub trace: Vec<Trace>,
}

/// A side effect for the edges to carry out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Send a message.
    Send(Outbound),
    /// Change household data.
    Data(DataChange),
    /// Start (or replace) a durable timer.
    StartTimer(TimerSpec),
    /// Cancel a timer (no-op if it does not exist).
    CancelTimer {
        /// Timer id.
        id: String,
    },
    /// Something went wrong in a flow; the conversation was reset.
    Error {
        /// Flow id, if known.
        flow: Option<String>,
        /// Step id, if known.
        step: Option<String>,
        /// What went wrong (no personal data).
        message: String,
    },
}

/// One outbound message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    /// Recipient member name.
    pub to: String,
    /// The message.
    pub message: OutMessage,
    /// The template to send instead when the member's 24-hour window is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<OutMessage>,
    /// What happens outside the window when there is no fallback.
    #[serde(default, skip_serializing_if = "WindowPolicy::is_default")]
    pub outside_window: WindowPolicy,
}

/// A reply option (button or list row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Reply id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description (list rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A list section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Title.
    pub title: Option<String>,
    /// Rows.
    pub rows: Vec<Choice>,
}

/// A message as WhatsApp will carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutMessage {
    /// Plain text.
    Text {
        /// Body.
        body: String,
    },
    /// Text with reply buttons.
    Buttons {
        /// Body.
        body: String,
        /// 1–3 buttons.
        buttons: Vec<Choice>,
        /// Footer.
        footer: Option<String>,
    },
    /// Text with a list.
    List {
        /// Body.
        body: String,
        /// Label of the list button.
        button: String,
        /// Sections.
        sections: Vec<Section>,
        /// Footer.
        footer: Option<String>,
    },
    /// An approved template.
    Template {
        /// Template name.
        name: String,
        /// Language code.
        language: String,
        /// Body parameter values.
        params: Vec<String>,
    },
}

impl OutMessage {
    /// The body text (template: its name and parameters).
    pub fn body(&self) -> String {
        match self {
            OutMessage::Text { body } | OutMessage::Buttons { body, .. } | OutMessage::List { body, .. } => {
                body.clone()
            }
            OutMessage::Template { name, params, .. } => format!("[template {name}: {}]", params.join(" | ")),
        }
    }

    /// The reply options (buttons or all list rows).
    pub fn choices(&self) -> Vec<&Choice> {
        match self {
            OutMessage::Buttons { buttons, .. } => buttons.iter().collect(),
            OutMessage::List { sections, .. } => sections.iter().flat_map(|s| s.rows.iter()).collect(),
            _ => Vec::new(),
        }
    }
}

/// A timer to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerSpec {
    /// Timer id; starting an existing id replaces it.
    pub id: String,
    /// Member it fires for.
    pub member: String,
    /// When.
    pub fire_at: DateTime<Utc>,
    /// What it does when it fires.
    pub fired: TimerFired,
}

/// One line of "why": what the engine decided and the reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "trace", rename_all = "snake_case")]
pub enum Trace {
    /// The conversation had expired and was reset first.
    Expired {
        /// Flow that was active.
        flow: String,
    },
    /// The flow changed since the conversation started.
    VersionChanged {
        /// Flow id.
        flow: String,
        /// Whether the step still exists (continued) or not (reset).
        continued: bool,
    },
    /// Which trigger matched, and which were tried before it.
    Routed {
        /// Matched flow, if any.
        #[serde(serialize_with = "ser_opt_arc")]
        flow: Option<Arc<str>>,
        /// Matched trigger index.
        trigger: Option<usize>,
        /// Why it matched.
        reason: String,
        /// Triggers tried before (flow, trigger index, why not).
        #[serde(serialize_with = "ser_considered")]
        considered: Vec<(Arc<str>, usize, Miss)>,
    },
    /// A step ran.
    Step {
        /// Flow id.
        flow: String,
        /// Step id.
        step: String,
    },
    /// An answer to a question.
    Answer {
        /// Slot.
        slot: String,
        /// Accepted?
        accepted: bool,
        /// Attempt number (1-based).
        attempt: u32,
    },
    /// A flow was interrupted by another.
    Interrupted {
        /// The waiting flow.
        flow: String,
        /// The interrupting flow.
        by: String,
    },
    /// An interrupted or calling flow resumed.
    Resumed {
        /// Flow id.
        flow: String,
        /// Step id.
        step: String,
    },
    /// The member cancelled.
    Cancelled,
    /// The event was ignored.
    Ignored {
        /// Why.
        reason: String,
    },
    /// A flow ran too many steps without waiting and was stopped.
    LoopGuard {
        /// Flow id.
        flow: String,
        /// Steps run.
        steps: usize,
    },
    /// A flow failed (bad template data, …) and the conversation was reset.
    Failed {
        /// Flow id.
        flow: String,
        /// Step id.
        step: String,
        /// Error message.
        error: String,
    },
    /// A send was addressed to nobody (e.g. `others` in a one-member household).
    NoRecipient {
        /// Step id.
        step: String,
    },
    /// A `to_members` name is not (or no longer) a member, e.g. one an admin removed
    /// after it was stored in a record: that name is skipped.
    NotAMember {
        /// Step id.
        step: String,
        /// The name as given.
        name: String,
    },
    /// A timer that is not urgent fell in the member's quiet hours and fires when they end.
    QuietHours {
        /// The member the timer is for.
        member: String,
        /// When it fires instead, in the member's zone ("Tue 07:00").
        until: String,
    },
    /// The recipient's 24-hour window was closed when a free-form message was due
    /// (recorded by the edges that apply [`crate::window::decide`]).
    Window {
        /// Recipient member.
        to: String,
        /// `template`, `defer`, `drop`, or `delivered` (a deferred message went out).
        decision: String,
    },
}

/// Why a trigger did not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Miss {
    /// Not the kind of message this trigger is for.
    Kind,
    /// Text not among the keywords.
    Keyword,
    /// Regex did not match.
    Regex,
    /// Reply id differs.
    ReplyId,
    /// The member's role is not allowed.
    Role,
    /// The `when` condition was false.
    Condition,
    /// A schedule trigger (only fires from the scheduler).
    Schedule,
    /// Fallbacks are tried last.
    Fallback,
    /// The flow is not interruptible and another flow waits for an answer.
    NotInterruptible,
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trace::Expired { flow } => write!(f, "conversation in `{flow}` had expired; reset"),
            Trace::VersionChanged { flow, continued } => {
                if *continued {
                    write!(f, "flow `{flow}` changed; its step still exists, continuing")
                } else {
                    write!(f, "flow `{flow}` changed and the step is gone; conversation reset")
                }
            }
            Trace::Routed {
                flow,
                trigger,
                reason,
                considered,
            } => {
                match (flow, trigger) {
                    (Some(fl), Some(t)) => write!(f, "matched `{fl}` trigger #{t}: {reason}")?,
                    _ => write!(f, "no trigger matched: {reason}")?,
                }
                if !considered.is_empty() {
                    let list: Vec<String> = considered
                        .iter()
                        .map(|(fl, t, m)| format!("`{fl}`#{t} ({m:?})"))
                        .collect();
                    write!(f, "; tried first: {}", list.join(", "))?;
                }
                Ok(())
            }
            Trace::Step { flow, step } => write!(f, "step `{flow}`.`{step}`"),
            Trace::Answer {
                slot,
                accepted,
                attempt,
            } => {
                write!(
                    f,
                    "answer for `{slot}` attempt {attempt}: {}",
                    if *accepted { "accepted" } else { "rejected" }
                )
            }
            Trace::Interrupted { flow, by } => write!(f, "`{flow}` interrupted by `{by}`"),
            Trace::Resumed { flow, step } => write!(f, "resumed `{flow}` at `{step}`"),
            Trace::Cancelled => write!(f, "cancelled by the member"),
            Trace::Ignored { reason } => write!(f, "ignored: {reason}"),
            Trace::LoopGuard { flow, steps } => {
                write!(f, "flow `{flow}` ran {steps} steps without waiting; stopped")
            }
            Trace::Failed { flow, step, error } => write!(f, "flow `{flow}` failed at `{step}`: {error}"),
            Trace::NoRecipient { step } => write!(f, "send in `{step}` had no recipient"),
            Trace::NotAMember { step, name } => {
                write!(f, "send in `{step}`: `{name}` is not a member (any more), skipped")
            }
            Trace::QuietHours { member, until } => {
                write!(f, "quiet hours of {member}: the timer waits until {until}")
            }
            Trace::Window { to, decision } => match decision.as_str() {
                "delivered" => write!(f, "{to} wrote: deferred message delivered"),
                d => write!(f, "24-hour window of {to} closed: {d}"),
            },
        }
    }
}

fn ser_opt_arc<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    v.as_deref().serialize(s)
}

fn ser_considered<S: serde::Serializer>(v: &[(Arc<str>, usize, Miss)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (f, t, m) in v {
        seq.serialize_element(&(&**f, t, m))?;
    }
    seq.end()
}
