//! Questions: prefilling an answer from the message that started the flow, taking
//! the member's answer, validating it (numbers, dates, durations, choices, items,
//! members, yes/no) and giving up after too many tries.
//!
//! It does not render or send the question (that is [`super::send`]).

use crate::event::{Effect, InboundMessage, Return, Trace, Values};
use crate::flow::{Action, AskSpec, Validator};
use crate::parse::{normalize, parse_datetime, parse_duration, parse_member_list, parse_number};
use crate::roster::{self, RosterError};
use crate::tmpl::Tpl;

use super::routing::Routing;
use super::texts::give_up;
use super::{Run, StepError, ask_timer_id};

/// "ja" or "yes" typed for buttons such as "Ja, wissen" / "Nee, laten staan": the one
/// button whose title starts with a yes (or no) word, in any language. Tom typed "ja"
/// and was told to choose one of "Ja, wissen, Nee, laten staan".
fn yes_no_button<'c>(choices: &'c [crate::event::Choice], n: &str) -> Option<&'c crate::event::Choice> {
    // "1" and "0" are yes/no to a yes/no question, but here they could mean an option's number.
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let said = yes_no(n)?;
    let mut found = choices.iter().filter(|c| {
        let title = normalize(&c.title);
        title.split(' ').next().and_then(yes_no) == Some(said)
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// What an ask's `prefill` gave.
pub(super) enum Prefill {
    /// Nothing: ask as usual.
    Empty,
    /// A valid answer, stored: the question is skipped.
    Filled,
    /// Text that is not a valid answer; the hint says why.
    Invalid(String),
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

impl<'a> Run<'a> {
    /// Fills the ask's slot from its `prefill` if that renders to a valid answer; the
    /// question is then skipped. An empty or invalid prefill means "ask".
    pub(super) fn prefilled(&mut self, ask: &AskSpec, prefill: &Tpl) -> Result<Prefill, StepError> {
        let text = self.render(prefill)?;
        if text.trim().is_empty() {
            return Ok(Prefill::Empty);
        }
        let zone = self.answer_zone(ask);
        let (value, captures) = match self.validate(ask, &InboundMessage::text(text), zone) {
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

    pub(super) fn answer(&mut self, m: &InboundMessage) {
        let Some((fi, si)) = self.top() else { return };
        let fs = self.fs;
        let step = &fs.flows[fi].steps[si];
        let Action::Ask(ask) = &step.action else {
            // Defensive: a waiting frame always sits on an ask; recover by resetting.
            self.clear_frames();
            return;
        };
        let attempt = self.state.frames.last().map_or(1, |f| f.attempts + 1);
        let zone = self.answer_zone(ask);
        match self.validate(ask, m, zone) {
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
                            if let Err(e) = self.send_text(&give_up()) {
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
    fn start_given_up_message(&mut self, m: &InboundMessage) {
        if !self.state.frames.is_empty() {
            return;
        }
        let normalized = m.text.as_deref().map(normalize).unwrap_or_default();
        if let Some((t, caps)) = self.route(m, &normalized, Routing::NotFallback, None) {
            self.captures = caps;
            self.start_flow(t.flow, t.start, Return::None, Values::new());
        }
    }

    /// The time zone a date/time answer is read in: the member `zone_of` names (a reminder
    /// for Ben is at Ben's 8 o'clock), else the member answering. A name that is not a
    /// member (the flow asks for it first, so only a flow mistake) reads in the answerer's.
    pub(super) fn answer_zone(&mut self, ask: &AskSpec) -> chrono_tz::Tz {
        let Validator::DateTime(Some(tpl)) = &ask.validator else {
            return self.member.timezone;
        };
        match self.render(tpl) {
            Ok(name) => roster::find(self.roster(), name.trim()).map_or(self.member.timezone, |m| m.timezone),
            Err(_) => self.member.timezone,
        }
    }

    /// Validates an answer: the slot value plus extra named captures. A date/time is read in `zone`.
    pub(super) fn validate(
        &self,
        ask: &AskSpec,
        m: &InboundMessage,
        zone: chrono_tz::Tz,
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
            self.say(
                format!("Please choose one of: {}.", titles.join(", ")),
                format!("Kies een van: {}.", titles.join(", ")),
            )
        };
        if text.is_empty() {
            return Err(if choices.is_empty() {
                self.say(
                    "Please answer with a text message.",
                    "Antwoord alsjeblieft met een tekstbericht.",
                )
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
                        .or_else(|| yes_no_button(choices, &n))
                    {
                        Some(c) => Ok((str_value(&c.id), Vec::new())),
                        None => Err(options_hint()),
                    }
                }
            }
            Validator::Choice(opts) => match opts.iter().find(|(k, _)| *k == n) {
                Some((_, v)) => Ok((str_value(v), Vec::new())),
                None if let Some(c) = yes_no_button(choices, &n) => Ok((str_value(&c.id), Vec::new())),
                // Offered buttons are named by their titles, not their ids.
                None if !choices.is_empty() => Err(options_hint()),
                None => {
                    let mut names: Vec<&str> = opts.iter().map(|(_, v)| v.as_str()).collect();
                    names.dedup();
                    Err(self.say(
                        format!("Please answer with one of: {}.", names.join(", ")),
                        format!("Antwoord met een van: {}.", names.join(", ")),
                    ))
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
                None => Err(self.say(
                    "That doesn't look right. Please try again.",
                    "Dat klopt niet helemaal. Probeer het nog eens.",
                )),
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
                    (Some(a), Some(b)) => self.say(
                        format!("Please give a number from {a} to {b}."),
                        format!("Geef een getal van {a} tot en met {b}."),
                    ),
                    (Some(a), None) => self.say(
                        format!("Please give a number of at least {a}."),
                        format!("Geef een getal van minstens {a}."),
                    ),
                    (None, Some(b)) => self.say(
                        format!("Please give a number of at most {b}."),
                        format!("Geef een getal van hoogstens {b}."),
                    ),
                    (None, None) => self.say("Please give a number.", "Geef een getal."),
                }),
                None => Err(self.say("Please answer with a number.", "Antwoord met een getal.")),
            },
            Validator::DateTime(_) => match parse_datetime(text, self.now, zone) {
                Ok(dt) => Ok((str_value(&dt.with_timezone(&zone).to_rfc3339()), Vec::new())),
                Err(_) => Err(self.say(
                    "I didn't get that time. Try \"tomorrow 18:00\", \"at 6pm\" or \"in 20 minutes\".",
                    "Die tijd snap ik niet. Probeer \"morgen 18:00\", \"om 18 uur\" of \"over 20 minuten\".",
                )),
            },
            Validator::Duration => match parse_duration(text) {
                Ok(_) => Ok((str_value(text), Vec::new())),
                Err(_) => Err(self.say(
                    "I didn't get that duration. Try \"20m\", \"2 hours\" or \"1h30m\".",
                    "Die duur snap ik niet. Probeer \"20m\", \"2 uur\" of \"anderhalf uur\".",
                )),
            },
            Validator::Member => {
                if matches!(n.as_str(), "me" | "myself" | "ik" | "ich") {
                    return Ok((str_value(&self.member.name), Vec::new()));
                }
                match self.roster().iter().find(|mm| normalize(&mm.name) == n) {
                    Some(mm) => Ok((str_value(&mm.name), Vec::new())),
                    None => {
                        let names: Vec<&str> = self.roster().iter().map(|m| m.name.as_str()).collect();
                        Err(self.say(
                            format!("Who do you mean? {}.", names.join(", ")),
                            format!("Wie bedoel je? {}.", names.join(", ")),
                        ))
                    }
                }
            }
            Validator::Phone => match roster::normalize_phone(text) {
                Ok(p) => Ok((str_value(&p), Vec::new())),
                Err(_) => Err(self.say(
                    "Please give the number with its country code, like +31 6 1234 5678.",
                    "Geef het nummer met landcode, zoals +31 6 1234 5678.",
                )),
            },
            Validator::Timezone => match roster::parse_timezone(text) {
                Ok(tz) => Ok((str_value(tz.name()), Vec::new())),
                Err(RosterError::BadTimezone(_, Some(hint))) => Err(self.say(
                    format!("I don't know that time zone. Did you mean {hint}?"),
                    format!("Die tijdzone ken ik niet. Bedoel je {hint}?"),
                )),
                Err(_) => Err(self.say(
                    "I don't know that time zone. Try a name like America/New_York.",
                    "Die tijdzone ken ik niet. Probeer een naam als America/New_York.",
                )),
            },
            // A button title typed out ("No, keep") is that button.
            Validator::YesNo => match yes_no(&n).or_else(|| {
                choices
                    .iter()
                    .find(|c| normalize(&c.title) == n)
                    .and_then(|c| yes_no(&normalize(&c.id)))
            }) {
                Some(b) => Ok((serde_json::Value::Bool(b), Vec::new())),
                None => Err(self.say("Please answer yes or no.", "Antwoord met ja of nee.")),
            },
            Validator::Members => {
                // The members in effect: household.yaml, or as changed over chat.
                let names: Vec<&str> = self.roster().iter().map(|m| m.name.as_str()).collect();
                match parse_member_list(text, &self.member.name, &names) {
                    Some(found) => Ok((serde_json::json!(found), Vec::new())),
                    None => {
                        let (first, last) = (
                            names.first().copied().unwrap_or("Anna"),
                            names.last().copied().unwrap_or("Ben"),
                        );
                        let all = names.join(", ");
                        Err(self.say(
                            format!(
                                "Who do you mean? A name ({all}), several names (\"{first} and {last}\", they take turns) or \"everyone\"."
                            ),
                            format!(
                                "Wie bedoel je? Een naam ({all}), meer namen (\"{first} en {last}\", om de beurt) of \"iedereen\"."
                            ),
                        ))
                    }
                }
            }
            Validator::Recurrence => match crate::recur::parse_answer(text) {
                Some(crate::recur::Answer::Once) => Ok((str_value(""), Vec::new())),
                Some(crate::recur::Answer::Repeats(rule)) => Ok((str_value(&rule.to_string()), Vec::new())),
                None => Err(self.say(
                    "How often? Say \"daily\", \"every monday\", \"every 2 weeks\", \"on the 1st\" or \"no\".",
                    "Hoe vaak? Zeg \"elke dag\", \"elke maandag\", \"elke 2 weken\", \"op de 1e\" of \"nee\".",
                )),
            },
        }
    }
}
