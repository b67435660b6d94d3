//! A waiting question and a message that is plainly something else: another command
//! ("add milk" while "When?" waits) starts that command and the question is asked
//! again afterwards, as an interruption does; the same command again ("add member
//! Lisa" while "What is the new member's name?" waits) starts over. A message that
//! would be a valid free-text answer but reads like a command ("buy milk" for "What is
//! the chore?") is not taken literally without asking which it was.
//!
//! Before this, a waiting question swallowed everything for up to 30 minutes: three
//! "add milk" became three wrong answers and were lost. Cancel phrases are handled
//! before any of this (see `on_message`).
//!
//! It decides and starts; answering belongs to [`super::ask`], routing to
//! [`super::routing`].

use crate::event::{Choice, Effect, InboundMessage, Return, Trace, Values};
use crate::flow::{Action, Validator};
use crate::parse::normalize;

use super::routing::Routing;
use super::texts::both as text;
use super::{Run, ask_timer_id};

/// Button ids of the "answer or new request?" question.
pub(super) const AS_ANSWER: &str = "alfred:as-answer";
pub(super) const AS_COMMAND: &str = "alfred:as-command";

impl<'a> Run<'a> {
    /// While a question waits: starts the command this message plainly is, or asks
    /// whether a command-like valid answer was meant literally. `false`: it is an answer.
    pub(super) fn command_instead(&mut self, m: &InboundMessage, normalized: &str) -> bool {
        let Some((fi, si)) = self.top() else { return false };
        let fs = self.fs;
        let Action::Ask(ask) = &fs.flows[fi].steps[si].action else {
            return false;
        };
        let marks = self.trace.len();
        let Some((t, caps)) = self.route(m, normalized, Routing::Command, None) else {
            return false;
        };
        let waiting = fs.flows[fi].id.clone();
        // The same command again: a trigger that starts the very part of the flow the
        // question is in ("my reminders" while "remind me" asks When? is another command).
        let same_flow = t.flow == fi && self.part_start(fi, si) == Some(t.start);
        let zone = self.answer_zone(ask);
        if !same_flow && self.validate(ask, m, zone).is_ok() {
            let free_text = self.state.frames.last().is_some_and(|f| f.choices.is_empty())
                && matches!(ask.validator, Validator::Any | Validator::Regex(_));
            if !free_text {
                // "tomorrow 18:00" for "When?" is an answer, whatever else it might start.
                self.trace.truncate(marks);
                return false;
            }
            self.trace.truncate(marks);
            return self.ask_literal(m);
        }
        self.captures = caps;
        if same_flow {
            // The same command again, usually with more in it: start that flow over,
            // in the place of the waiting one (a question below it is still asked again).
            let returns = self.state.frames.pop().map_or(Return::None, |f| f.returns);
            self.effects.push(Effect::CancelTimer {
                id: ask_timer_id(&self.member.name),
            });
            self.start_flow(t.flow, t.start, returns, Values::new());
        } else {
            self.trace.push(Trace::Interrupted {
                flow: waiting,
                by: t.flow_id.to_string(),
            });
            self.start_flow(t.flow, t.start, Return::Reask, Values::new());
        }
        true
    }

    /// Where the part of flow `fi` that step `si` belongs to starts: the nearest trigger
    /// start at or before it (flows are written top-down, each trigger starting its part).
    pub(super) fn part_start(&self, fi: usize, si: usize) -> Option<usize> {
        self.fs
            .triggers
            .iter()
            .filter(|t| t.flow == fi && t.start <= si)
            .map(|t| t.start)
            .max()
    }

    /// Asks whether a command-like answer was meant as the answer or as a new request.
    fn ask_literal(&mut self, m: &InboundMessage) -> bool {
        let typed = m.text.as_deref().map(str::trim).unwrap_or_default().to_owned();
        let shown: String = typed.chars().take(60).collect();
        let body = text(
            format!("Did you mean \"{shown}\" as your answer, or as a new request?"),
            format!("Bedoel je \"{shown}\" als antwoord, of als nieuw verzoek?"),
        );
        let choices = vec![
            Choice {
                id: AS_ANSWER.to_owned(),
                title: self.pick(&text("My answer", "Mijn antwoord")),
                description: None,
            },
            Choice {
                id: AS_COMMAND.to_owned(),
                title: self.pick(&text("New request", "Nieuw verzoek")),
                description: None,
            },
        ];
        let body = self.pick(&body);
        self.send_buttons(body, choices.clone());
        if let Some(top) = self.state.frames.last_mut() {
            top.literal = Some(typed);
            top.choices = choices;
        }
        true
    }

    /// The reply to [`Self::ask_literal`]: the kept message as the answer, or as a new
    /// request. Anything else drops the kept message and is handled as usual (`false`).
    pub(super) fn resolve_literal(&mut self, m: &InboundMessage) -> bool {
        let Some(kept) = self.state.frames.last().and_then(|f| f.literal.clone()) else {
            return false;
        };
        let typed = m.text.as_deref().map(normalize).unwrap_or_default();
        let literal = match m.reply_id.as_deref() {
            Some(AS_ANSWER) => Some(true),
            Some(AS_COMMAND) => Some(false),
            _ => match typed.as_str() {
                "my answer" | "answer" | "as answer" | "mijn antwoord" | "antwoord" => Some(true),
                "new request" | "new" | "request" | "nieuw verzoek" | "nieuw" => Some(false),
                _ => None,
            },
        };
        if let Some(top) = self.state.frames.last_mut() {
            top.literal = None;
            top.choices.clear();
        }
        let kept = InboundMessage::text(kept);
        match literal {
            None => false,
            Some(true) => {
                self.answer(&kept);
                true
            }
            Some(false) => {
                let normalized = normalize(kept.text.as_deref().unwrap_or_default());
                let waiting = self.state.frames.last().map(|f| f.flow.clone()).unwrap_or_default();
                match self.route(&kept, &normalized, Routing::Command, None) {
                    Some((t, caps)) => {
                        self.captures = caps;
                        self.trace.push(Trace::Interrupted {
                            flow: waiting,
                            by: t.flow_id.to_string(),
                        });
                        self.start_flow(t.flow, t.start, Return::Reask, Values::new());
                    }
                    None => self.answer(&kept),
                }
                true
            }
        }
    }
}
