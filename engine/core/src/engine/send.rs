//! Sending: rendering a message (text, buttons, lists) or an approved
//! template within WhatsApp's limits, resolving recipients, and the send effect
//! with its 24-hour-window policy.
//!
//! It produces effects only; delivery, pacing and the window check are the edges'.

use crate::event::{Choice, Effect, OutMessage, Outbound, Section, Trace};
use crate::flow::{AskSpec, Member, Options, Recipient, SendSpec, Text};
use crate::model::Role;
use crate::roster;
use crate::tmpl::{Expr, Tpl};
use crate::window::WindowPolicy;

use super::context::to_value;
use super::{Run, StepError};

const MAX_BODY: usize = 4096;

const MAX_BUTTON_TITLE: usize = 20;

const MAX_ROW_TITLE: usize = 24;

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

/// Splits a text longer than WhatsApp's body limit into several messages, at line
/// breaks where it can (a long shopping list stays one item per line, every item
/// visible), else at spaces, else anywhere. Short texts come back as they are.
pub(super) fn split_body(s: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = s.trim();
    while rest.chars().count() > max {
        let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..cut];
        // The last line break (or space) within the limit, if the piece before it is not tiny.
        let at = head
            .rfind('\n')
            .filter(|&i| i > max / 4)
            .or_else(|| head.rfind(' ').filter(|&i| i > max / 4))
            .unwrap_or(cut);
        parts.push(rest[..at].trim_end().to_owned());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

impl<'a> Run<'a> {
    pub(super) fn render_text(&mut self, t: &Text) -> Result<String, StepError> {
        let tpl = t.pick(&self.member.language, &self.fs.household.language);
        self.render(tpl)
    }

    pub(super) fn send_text(&mut self, t: &Text) -> Result<(), StepError> {
        let body = self.render_text(t)?;
        for body in split_body(&body, MAX_BODY) {
            self.push_send(
                std::slice::from_ref(&self.member.name),
                OutMessage::Text { body },
                None,
                WindowPolicy::default(),
            );
        }
        Ok(())
    }

    /// Sends the engine's own question with buttons to the member (no flow's text).
    pub(super) fn send_buttons(&mut self, body: String, buttons: Vec<Choice>) {
        self.push_send(
            std::slice::from_ref(&self.member.name),
            OutMessage::Buttons {
                body: clip(&body, MAX_BODY),
                buttons,
                footer: None,
            },
            None,
            WindowPolicy::default(),
        );
    }

    /// Sends an ask's prompt (or a re-prompt body with the same options); returns the
    /// options offered, to match the answer against.
    pub(super) fn send_prompt(&mut self, a: &AskSpec, body: Option<String>) -> Result<Vec<Choice>, StepError> {
        self.send(&a.prompt, body)
    }

    /// Renders and sends a message; returns the reply options it offered.
    pub(super) fn send(&mut self, s: &SendSpec, body_override: Option<String>) -> Result<Vec<Choice>, StepError> {
        let recipients = self.recipients(&s.to)?;
        if recipients.is_empty() {
            let step = self.state.frames.last().map(|f| f.step.clone()).unwrap_or_default();
            self.trace.push(Trace::NoRecipient { step });
            return Ok(Vec::new());
        }
        // Each recipient reads their own language, and times in their own zone; `member`
        // stays the one who acted.
        let mut groups: Vec<(String, chrono_tz::Tz, Vec<String>)> = Vec::new();
        for name in recipients {
            let (lang, tz) = roster::find(self.roster(), &name).map_or_else(
                || (self.member.language.clone(), self.member.timezone),
                |m| (m.language.clone(), m.timezone),
            );
            match groups.iter_mut().find(|(l, z, _)| *l == lang && *z == tz) {
                Some((_, _, names)) => names.push(name),
                None => groups.push((lang, tz, vec![name])),
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
        for (lang, tz, names) in groups {
            self.reader_zone = Some(tz);
            self.reader_language = Some(lang.clone());
            let rendered = match self.render_message(s, &lang, body_override.clone()) {
                Err(e) if e.is_undefined() && !self.full_context => {
                    self.full_context = true;
                    let r = self.render_message(s, &lang, body_override.clone());
                    self.full_context = false;
                    r
                }
                other => other,
            };
            self.reader_zone = None;
            self.reader_language = None;
            let (msg, choices) = rendered?;
            if names.contains(&self.member.name) || offered.is_empty() {
                offered = choices;
            }
            // A plain text past WhatsApp's limit goes as several messages, none cut off.
            match msg {
                OutMessage::Text { body } if body.chars().count() > MAX_BODY => {
                    for body in split_body(&body, MAX_BODY) {
                        self.push_send(&names, OutMessage::Text { body }, fallback.clone(), policy);
                    }
                }
                msg => self.push_send(&names, msg, fallback.clone(), policy),
            }
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
        // Plain texts are split later (see `split_body`); bodies with options are clipped.
        let full = body.trim().to_owned();
        let body = clip(&full, MAX_BODY);
        let footer = match &s.footer {
            Some(f) => Some(render(f)?),
            None => None,
        };
        let (msg, choices) = match &s.options {
            Options::None => (OutMessage::Text { body: full }, Vec::new()),
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
                            button: self.say("Choose", "Kies"),
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
}
