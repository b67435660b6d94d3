//! What each step kind does: one `exec` per step, returning whether the flow goes
//! on, jumps, waits or ends.
//!
//! The work of a kind lives in its room (asking, sending, actions); this file only
//! dispatches and records the trace. It does not move frames itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::data::{DataChange, ListItem, Record};
use crate::event::{Effect, Frame, Return, TimerFired, TimerSpec, Trace, Values};
use crate::flow::{Action, Target, TimerStartSpec};
use crate::parse::{ListedItem, item_key, parse_datetime, parse_duration, parse_item_list};
use crate::roster;
use crate::tmpl::roots;
use minijinja::value::Value;

use super::ask::Prefill;
use super::context::record_json;
use super::context::to_value;
use super::{Flowing, Run, StepError, ask_timer_id};

impl<'a> Run<'a> {
    pub(super) fn exec(&mut self, fi: usize, si: usize) -> Result<Flowing, StepError> {
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
                    literal: None,
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
                let parsed = parse_item_list(&text);
                let mut added = Vec::new();
                // Already there and no quantity typed: the same wish twice, nothing changes.
                let mut already = Vec::new();
                // Already there with a quantity typed ("add 2 milk"): the quantity goes up.
                let mut more = Vec::new();
                for ListedItem { item: p, counted } in parsed.items {
                    let key = item_key(&p.name);
                    let existing = self.data.list(list).iter().find(|i| i.key == key).cloned();
                    let item = match existing {
                        Some(i) if !counted => {
                            already.push(serde_json::json!({ "name": i.name, "qty": i.qty }));
                            continue;
                        }
                        Some(mut i) => {
                            i.qty = i.qty.saturating_add(p.qty).min(999);
                            more.push(serde_json::json!({ "name": i.name, "qty": i.qty, "added": p.qty }));
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
                self.set_var("more", serde_json::Value::Array(more));
                self.set_var("too_long", serde_json::json!(parsed.too_long));
                self.set_var("over_limit", serde_json::json!(parsed.over_limit));
                Ok(Flowing::Next)
            }
            Action::ListRemove { list, items } => {
                let text = self.render(items)?;
                let mut removed = Vec::new();
                let mut missing = Vec::new();
                for ListedItem { item: p, counted } in parse_item_list(&text).items {
                    let key = item_key(&p.name);
                    match self.data.list(list).iter().find(|i| i.key == key).cloned() {
                        // "remove 1 bread" of 2 × bread: one goes, one stays.
                        Some(mut i) if counted && p.qty < i.qty => {
                            removed.push(serde_json::Value::String(format!("{} × {}", p.qty, i.name)));
                            i.qty -= p.qty;
                            self.change(DataChange::ListPut {
                                list: list.clone(),
                                item: i,
                            });
                        }
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
                match &t.each {
                    None => {
                        let ctx = self.context(roots::ALL, &[]);
                        self.start_timer(t, &ctx)?;
                    }
                    Some(each) => {
                        let ctx = self.context(roots::ALL, &[]);
                        let items = match fs.templates.eval(each, &ctx)? {
                            serde_json::Value::Array(items) => items,
                            serde_json::Value::Null => Vec::new(),
                            other => {
                                return Err(StepError::new(format!("timer `each` must give a list, not {other}")));
                            }
                        };
                        for item in items {
                            let ctx = self.context(roots::ALL, &[("item", to_value(item))]);
                            self.start_timer(t, &ctx)?;
                        }
                    }
                }
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

    /// Starts one timer of a `timer_start` step, its templates rendered in `ctx`.
    fn start_timer(&mut self, t: &TimerStartSpec, ctx: &Value) -> Result<(), StepError> {
        let fs = self.fs;
        let id = fs.templates.render(&t.id, ctx)?;
        let member = match &t.member {
            Some(m) => {
                let name = fs.templates.render(m, ctx)?;
                roster::find(self.roster(), name.trim())
                    .cloned()
                    .ok_or_else(|| StepError::new(format!("timer for unknown member `{}`", name.trim())))?
            }
            None => self.member.clone(),
        };
        let fire_at = if let Some(at) = &t.at {
            let text = fs.templates.render(at, ctx)?;
            match DateTime::parse_from_rfc3339(text.trim()) {
                Ok(dt) => dt.with_timezone(&Utc),
                Err(_) => parse_datetime(&text, self.now, member.timezone)
                    .map_err(|e| StepError::new(format!("timer `at`: {e}")))?,
            }
        } else if let Some(after) = &t.after {
            let text = fs.templates.render(after, ctx)?;
            self.now + parse_duration(&text).map_err(|e| StepError::new(format!("timer `after`: {e}")))?
        } else {
            return Err(StepError::new("timer has neither `at` nor `after`"));
        };
        // Not urgent: a nudge waits until the member's quiet hours are over.
        let fire_at = match fs.household.quiet_hours_of(&member.name) {
            Some(q) if !t.urgent => {
                let moved = q.after(fire_at, member.timezone);
                if moved != fire_at {
                    self.trace.push(Trace::QuietHours {
                        member: member.name.clone(),
                        until: moved.with_timezone(&member.timezone).format("%a %H:%M").to_string(),
                    });
                }
                moved
            }
            _ => fire_at,
        };
        let mut data = Values::new();
        for (k, v) in &t.data {
            data.insert(k.clone(), serde_json::Value::String(fs.templates.render(v, ctx)?));
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
        Ok(())
    }
}
