//! Checks over one compiled flow's step graph: reachability, dead ends, loops that
//! never wait, and proactive sends that need a window policy.
//! Pure: reads compiled flows only; compiles nothing, changes nothing.

use std::collections::HashSet;

use crate::flow::{Action, Flow, Next, Recipient, RoutedTrigger, Step, Target};
use crate::model::FlowFile;

use super::MAX_STEPS_PER_EVENT;
use super::ctx::FlowCtx;
use super::ctx::TimerTargets;

/// Reachability, dead ends and loops that never wait.
pub(super) fn check_graph(
    cx: &mut FlowCtx<'_>,
    flow: &Flow,
    def: &FlowFile,
    routed: &[RoutedTrigger],
    timer_steps: &HashSet<String>,
) {
    let n = flow.steps.len();
    if n == 0 {
        return;
    }
    let edges: Vec<Vec<usize>> = flow.steps.iter().map(successors).collect();
    // Entries: the first step (calls, gotos, timers and triggers without `start` use it)
    // and every trigger start.
    let mut entries: Vec<usize> = vec![0];
    entries.extend(routed.iter().map(|t| t.start));
    entries.extend(flow.schedules.iter().map(|(_, s)| s.start));
    // Steps that timers (from any flow) start at are entries too.
    entries.extend(timer_steps.iter().filter_map(|st| flow.step_index.get(st).copied()));
    let mut seen = vec![false; n];
    let mut stack = entries;
    while let Some(i) = stack.pop() {
        if i < n && !seen[i] {
            seen[i] = true;
            stack.extend(edges[i].iter().copied());
        }
    }
    for (i, reached) in seen.iter().enumerate() {
        if !reached {
            let pos = def.steps.value[i].id.as_ref().map_or(def.steps.pos, |p| p.pos);
            cx.step = Some(flow.steps[i].id.clone());
            cx.warn("unreachable", pos, format!("step `{}` can never run", flow.steps[i].id))
                .hint = Some("no `next`, branch, trigger `start` or timer leads here".to_owned());
        }
    }
    // A cycle without an `ask` runs until the loop guard stops it.
    let waits: Vec<bool> = flow.steps.iter().map(|s| matches!(s.action, Action::Ask(_))).collect();
    if let Some(i) = find_cycle_without_wait(&edges, &waits) {
        let pos = def.steps.value[i].id.as_ref().map_or(def.steps.pos, |p| p.pos);
        cx.step = Some(flow.steps[i].id.clone());
        cx.warn(
            "loop-without-wait",
            pos,
            format!("steps loop back to `{}` without asking anything", flow.steps[i].id),
        )
        .hint = Some(format!(
            "the engine stops a flow after {MAX_STEPS_PER_EVENT} steps without waiting; add an `ask` or an exit"
        ));
    }
    cx.step = None;
}

/// Sends that a schedule or timer reaches before the member answers anything go out
/// when the member's 24-hour window may well be closed: a free-form one needs a
/// template `fallback` or an explicit `outside_window` policy (on the send or the
/// flow), so that what happens then is a decision, not an accident. An error, because
/// without one the message silently waits (or never arrives) exactly when it matters.
pub(super) fn check_proactive(cx: &mut FlowCtx<'_>, flow: &Flow, def: &FlowFile, timer_in: &TimerTargets) {
    let n = flow.steps.len();
    if flow.outside_window.is_some() || n == 0 {
        return;
    }
    // `to_members` writes to other members, whose windows are often closed: the same
    // decision is needed wherever such a send is.
    for (i, step) in flow.steps.iter().enumerate() {
        if let Action::Send(s) = &step.action
            && matches!(s.to, Recipient::Members(_))
            && s.template.is_none()
            && s.fallback.is_none()
            && s.outside_window.is_none()
        {
            let sd = &def.steps.value[i];
            let pos = sd.send.as_ref().map(|p| p.pos).unwrap_or(def.steps.pos);
            cx.step = Some(step.id.clone());
            cx.err(
                "proactive-send",
                pos,
                "this message goes to other members (`to_members`), but it says nothing about a closed 24-hour window",
            )
            .hint = Some(
                "add `fallback:` with an approved template, or `outside_window: defer` or `drop` (on the send or the flow)"
                    .to_owned(),
            );
        }
    }
    cx.step = None;
    let mut stack: Vec<usize> = flow.schedules.iter().map(|(_, s)| s.start).collect();
    stack.extend(timer_in.steps.iter().filter_map(|st| flow.step_index.get(st).copied()));
    if timer_in.first {
        stack.push(0);
    }
    let mut seen = vec![false; n];
    while let Some(i) = stack.pop() {
        if i >= n || seen[i] {
            continue;
        }
        seen[i] = true;
        let step = &flow.steps[i];
        let send = match &step.action {
            Action::Send(s) => Some(s),
            Action::Ask(a) => Some(&a.prompt),
            _ => None,
        };
        if let Some(s) = send
            && s.template.is_none()
            && s.fallback.is_none()
            && s.outside_window.is_none()
        {
            let sd = &def.steps.value[i];
            let pos = sd
                .send
                .as_ref()
                .map(|p| p.pos)
                .or(sd.id.as_ref().map(|p| p.pos))
                .unwrap_or(def.steps.pos);
            cx.step = Some(step.id.clone());
            let what = if matches!(step.action, Action::Ask(_)) {
                "question"
            } else {
                "message"
            };
            cx.err(
                "proactive-send",
                pos,
                format!("a schedule or timer reaches this {what}, but it says nothing about a closed 24-hour window"),
            )
            .hint = Some(
                "add `fallback:` with an approved template, or `outside_window: defer` or `drop` (on the send or the flow)"
                    .to_owned(),
            );
        }
        // After a question the member has written, so the window is open again.
        if !matches!(step.action, Action::Ask(_)) {
            stack.extend(successors(step));
        }
    }
    cx.step = None;
}

pub(super) fn successors(s: &Step) -> Vec<usize> {
    let mut out = Vec::new();
    let mut push = |t: &Target| {
        if let Target::Step(i) = t {
            out.push(*i);
        }
    };
    match &s.action {
        Action::Switch { cases, default, .. } => {
            cases.iter().for_each(|(_, t)| push(t));
            push(default);
            return out;
        }
        Action::End | Action::Goto(_) => return out,
        Action::Ask(a) => {
            if let Some(t) = &a.on_fail {
                push(t);
            }
            if let Some((_, t)) = &a.timeout {
                push(t);
            }
        }
        Action::MemberSet(m) => {
            if let Some(t) = &m.on_error {
                push(t);
            }
        }
        Action::MemberRemove(m) => {
            if let Some(t) = &m.on_error {
                push(t);
            }
        }
        _ => {}
    }
    match &s.next {
        Next::To(t) => push(t),
        Next::Branches(bs, e) => {
            bs.iter().for_each(|(_, t)| push(t));
            push(e);
        }
    }
    out
}

/// Finds a node on a cycle made only of non-waiting steps (iterative DFS, so hostile
/// flows with thousands of steps cannot overflow the stack).
pub(super) fn find_cycle_without_wait(edges: &[Vec<usize>], waits: &[bool]) -> Option<usize> {
    let n = edges.len();
    let mut color = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    for root in 0..n {
        if color[root] != 0 || waits[root] {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&succ) = edges[node].get(*next) {
                *next += 1;
                if waits[succ] {
                    continue;
                }
                match color[succ] {
                    0 => {
                        color[succ] = 1;
                        stack.push((succ, 0));
                    }
                    1 => return Some(succ),
                    _ => {}
                }
            } else {
                color[node] = 2;
                stack.pop();
            }
        }
    }
    None
}
