//! Proactive starts: a cron schedule's slot or a durable timer firing.
//!
//! Decides whether the flow may start (who it is for, what waits) and starts it;
//! it does not route messages nor send anything itself.

use chrono::{DateTime, Utc};

use crate::event::{Return, TimerFired, Trace, Values};

use super::Run;
use super::context::to_value;

impl<'a> Run<'a> {
    pub(super) fn on_schedule(&mut self, flow_id: &str, trigger: usize, slot: DateTime<Utc>) {
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

    pub(super) fn on_timer(&mut self, t: &TimerFired) {
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
}
