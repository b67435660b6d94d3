//! The conversation's frame stack: starting a flow, running its steps until one
//! waits, jumping, returning to the caller and failing a step (roll back, say sorry).
//!
//! It does not know what a step does (that is [`super::steps`]).

use std::borrow::Cow;

use crate::check::MAX_STEPS_PER_EVENT;
use crate::event::{Effect, Frame, Return, Trace, Values};
use crate::flow::{Action, Next, Target};

use super::texts::sorry;
use super::{Flowing, Run, StepError, ask_timer_id};

impl<'a> Run<'a> {
    pub(super) fn clear_frames(&mut self) {
        let had_timeout = self.state.frames.iter().any(|f| f.waiting);
        self.state.frames.clear();
        if had_timeout {
            self.effects.push(Effect::CancelTimer {
                id: ask_timer_id(&self.member.name),
            });
        }
    }

    pub(super) fn start_flow(&mut self, fi: usize, step: usize, returns: Return, vars: Values) {
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
            literal: None,
        });
        self.run_steps();
    }

    /// Position of the top frame: (flow index, step index).
    pub(super) fn top(&self) -> Option<(usize, usize)> {
        let f = self.state.frames.last()?;
        let fi = *self.fs.flow_index.get(&f.flow)?;
        let si = *self.fs.flows[fi].step_index.get(&f.step)?;
        Some((fi, si))
    }

    /// Runs steps of the top frame until it waits or the conversation is idle.
    pub(super) fn run_steps(&mut self) {
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
                let _ = self.send_text(&sorry());
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
    pub(super) fn go(&mut self, fi: usize, t: Target) {
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
    pub(super) fn end_frame(&mut self) {
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
                // This message's captures belonged to the command that just ended; the
                // question asked again reads the ones its own flow started with
                // ("put the kids to bed at 8" after "add Tom to the dishes chore").
                self.captures.clear();
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
    pub(super) fn fail(&mut self, step: &str, e: StepError) {
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
        let _ = self.send_text(&sorry());
    }

    pub(super) fn next_target(&mut self, next: &Next) -> Result<Target, StepError> {
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
}
