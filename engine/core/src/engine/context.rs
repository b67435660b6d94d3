//! The template context: what `message`, `member`, `members`, `slots`, `vars`,
//! `lists`, `records`, `now`, `household`, `flows`, `event` and the rest are while a
//! template or expression runs, built only for the roots a template reads, and
//! cached per data version.
//!
//! Read-only: it never changes data or state.

use std::collections::BTreeMap;

use minijinja::Value;
use serde::Serialize;

use crate::data::{HouseholdData, Record};
use crate::event::Values;
use crate::flow::{FlowSet, Member, Statics};
use crate::model::Role;
use crate::tmpl::{Expr, Tpl, roots};

use super::{Run, StepError};

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
        .flat_map(|l| [Role::Admin, Role::Adult, Role::Child].map(|r| ((l.to_owned(), r), flows_value(fs, l, r))))
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
/// language, for the member's role: a flow whose every message trigger is for other
/// roles is left out, and a description may read `member.role` (nothing else), so a
/// child's help shows no admin commands.
fn flows_value(fs: &FlowSet, language: &str, role: Role) -> Value {
    let ctx = Value::from_pairs([(
        "member",
        to_value(serde_json::json!({ "role": role.as_str(), "language": language })),
    )]);
    let allowed = |fi: usize| {
        let mine: Vec<_> = fs.triggers.iter().filter(|t| t.flow == fi).collect();
        mine.is_empty() || mine.iter().any(|t| t.roles.is_empty() || t.roles.contains(&role))
    };
    let v: Vec<serde_json::Value> = fs
        .flows
        .iter()
        .enumerate()
        .filter(|(fi, f)| !f.hidden && allowed(*fi))
        .map(|(_, f)| f)
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
pub(super) fn to_value<T: Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

impl<'a> Run<'a> {
    /// The template context. `lists`/`records` are converted once per data version.
    pub(super) fn context(&mut self, mask: u32, extra: &[(&str, Value)]) -> Value {
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
                .get(&(self.member.language.clone(), self.member.role))
                .cloned()
                .unwrap_or_else(|| flows_value(fs, &self.member.language, self.member.role));
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
        // Times show in the zone of whoever reads them (`datefmt`).
        let reader = self.reader_zone.unwrap_or(self.member.timezone);
        pairs.push((crate::tmpl::READER_ZONE, Value::from(reader.name())));
        let language = self.reader_language.as_deref().unwrap_or(&self.member.language);
        pairs.push((crate::tmpl::READER_LANGUAGE, Value::from(language)));
        pairs.extend(extra.iter().cloned());
        Value::from_pairs(pairs)
    }

    pub(super) fn mask_tpl(&self, t: &Tpl) -> u32 {
        self.fs.templates.mask_of_tpl(t)
    }

    pub(super) fn mask_expr(&self, e: &Expr) -> u32 {
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
    pub(super) fn render(&mut self, t: &Tpl) -> Result<String, StepError> {
        if let Tpl::Lit(s) = t {
            return Ok(s.clone());
        }
        self.with_context(self.mask_tpl(t), |run, ctx| Ok(run.fs.templates.render(t, ctx)?))
    }

    /// Evaluates an expression with just the context it reads.
    pub(super) fn eval(&mut self, e: &Expr) -> Result<serde_json::Value, StepError> {
        self.with_context(self.mask_expr(e), |run, ctx| Ok(run.fs.templates.eval(e, ctx)?))
    }

    /// Evaluates a condition with just the context it reads.
    pub(super) fn truthy(&mut self, e: &Expr) -> Result<bool, StepError> {
        self.with_context(self.mask_expr(e), |run, ctx| Ok(run.fs.templates.truthy(e, ctx)?))
    }
}

pub(super) fn record_json(r: &Record, member: &Member) -> serde_json::Value {
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
