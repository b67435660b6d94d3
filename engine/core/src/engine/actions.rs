//! Changes a flow makes: household lists and records, roster changes over chat
//! (`member_set`, `member_remove`), selections and flow variables.
//!
//! Changes go to the run's copy of the data only; the edges store them from the
//! effects. Nothing here sends a message.

use crate::data::{DataChange, Record};
use crate::event::Effect;
use crate::flow::{Member, MemberRemoveSpec, MemberSetSpec, Select, Target, Text};
use crate::roster::{self, RosterError};
use crate::tmpl::Tpl;

use super::context::{record_json, to_value};
use super::{Flowing, Run, StepError};

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

impl<'a> Run<'a> {
    /// The members in effect now, including changes made earlier in this run.
    pub(super) fn roster(&self) -> &[Member] {
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
    pub(super) fn member_set(
        &mut self,
        m: &MemberSetSpec,
    ) -> Result<Result<serde_json::Value, RosterError>, StepError> {
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
    pub(super) fn member_remove(
        &mut self,
        m: &MemberRemoveSpec,
    ) -> Result<Result<serde_json::Value, RosterError>, StepError> {
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
    pub(super) fn member_result(
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
                // In the member's language: the flow says it to them.
                let reason = self.say(e.to_string(), e.in_dutch());
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

    pub(super) fn select(&mut self, s: &Select) -> Result<Vec<Record>, StepError> {
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

    pub(super) fn set_var(&mut self, name: &str, v: serde_json::Value) {
        if let Some(top) = self.state.frames.last_mut() {
            top.vars.insert(name.to_owned(), v);
        }
    }

    pub(super) fn change(&mut self, c: DataChange) {
        self.data.to_mut().apply(&c);
        self.data_value = None;
        self.roster_value = None;
        self.effects.push(Effect::Data(c));
    }
}
