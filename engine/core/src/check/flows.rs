//! Flow files → compiled flows: the cross-flow index, one flow's triggers, steps,
//! schedules and timers, and the variable check over what its templates read.
//! Pure: no I/O, no clock; what one step does is compiled in `actions`/`sends`/`asks`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Duration;
use regex::RegexBuilder;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, did_you_mean};
use crate::flow::{Action, Flow, Household, Matcher, Next, RoutedTrigger, ScheduleSpec, Step, Target};
use crate::model::{BranchDef, CatchUp, FlowFile, NextDef, Pos, ScheduleDef, Sp, StepDef};
use crate::parse::{normalize, parse_duration, strip_fillers};
use crate::schedule::{CronSchedule, ON_TIME, SlotPolicy};
use crate::tmpl::{Templates, Tpl};

use super::SourceFile;
use super::actions::compile_action;
use super::ctx::{FlowCtx, FlowIndex, TimerTargets, one_line, trigger_pos};
use super::graph::{check_graph, check_proactive};
use super::greedy::check_greedy;
use super::languages::check_languages;
use super::shadowing::check_shadowing;

/// Roots a template may read; anything else is surely undefined.
/// minijinja's global functions are defined too (but not worth listing in hints).
pub(super) const GLOBAL_FUNCTIONS: &[&str] = &["range", "dict", "namespace", "lipsum", "debug", "cycler", "joiner"];

pub(super) const CONTEXT_ROOTS: &[&str] = &[
    "message",
    "captures",
    "member",
    "members",
    "slots",
    "vars",
    "lists",
    "records",
    "now",
    "today",
    "household",
    "flow",
    "flows",
    "event",
];

pub(super) fn step_ids(steps: &[StepDef]) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.id.as_ref()
                .map(|id| id.value.clone())
                .unwrap_or_else(|| format!("step{}", i + 1))
        })
        .collect()
}

pub(super) fn compile_flows(
    household: &Household,
    parsed: &[(&SourceFile, FlowFile)],
    templates: &mut Templates,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<Flow>, Vec<RoutedTrigger>) {
    let mut index = FlowIndex {
        ids: HashMap::new(),
        steps: Vec::new(),
    };
    let mut first_at: HashMap<&str, &str> = HashMap::new();
    for (i, (f, flow)) in parsed.iter().enumerate() {
        let id = flow.id.value.as_str();
        if let Some(prev) = first_at.insert(id, f.path.as_str()) {
            diags.push(
                Diagnostic::error(
                    "duplicate-flow",
                    &f.path,
                    flow.id.pos,
                    format!("flow id `{id}` is already used"),
                )
                .within(Some(id), None)
                .hint(format!("first used in {prev}; flow ids must be unique")),
            );
        } else {
            index.ids.insert(id, i);
        }
        if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
            diags.push(
                Diagnostic::error("flow-id", &f.path, flow.id.pos, "flow id must be one word").hint("e.g. `groceries`"),
            );
        }
        index.steps.push(step_ids(&flow.steps.value));
    }
    // Variables that timers hand to a flow (as `vars`), from any flow.
    // What timers (from any flow) hand to each flow: variables, and steps they start at.
    let mut timer_in: HashMap<String, TimerTargets> = HashMap::new();
    for (_, flow) in parsed {
        for s in flow.steps.value.iter() {
            if let Some(t) = &s.timer_start {
                let target = t.flow.as_ref().map_or(flow.id.value.clone(), |f| f.value.clone());
                let entry = timer_in.entry(target).or_default();
                entry.vars.extend(t.data.keys().cloned());
                entry.steps.extend(t.step.as_ref().map(|st| st.value.clone()));
                entry.first |= t.step.is_none();
            }
        }
    }
    let mut flows = Vec::new();
    let mut triggers = Vec::new();
    for (i, (f, def)) in parsed.iter().enumerate() {
        let from_timers = timer_in.get(&def.id.value).cloned().unwrap_or_default();
        let (flow, trig) = compile_flow(i, f, def, household, &index, &from_timers, templates, diags);
        flows.push(flow);
        triggers.extend(trig);
    }
    check_shadowing(&flows, &triggers, parsed, diags);
    check_greedy(&flows, &triggers, parsed, diags);
    (flows, triggers)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn compile_flow(
    flow_no: usize,
    file: &SourceFile,
    def: &FlowFile,
    household: &Household,
    index: &FlowIndex<'_>,
    timer_in: &TimerTargets,
    templates: &mut Templates,
    diags: &mut Vec<Diagnostic>,
) -> (Flow, Vec<RoutedTrigger>) {
    let id = def.id.value.clone();
    let mut cx = FlowCtx::new(&file.path, Some(id.clone()), templates, diags);
    let ids = &index.steps[flow_no];
    let mut step_index = HashMap::new();
    for (i, (sid, s)) in ids.iter().zip(def.steps.value.iter()).enumerate() {
        let pos = s.id.as_ref().map_or(def.steps.pos, |p| p.pos);
        if sid == "end" {
            cx.err("step-id", pos, "`end` is reserved").hint =
                Some("`next: end` ends the flow; pick another id".to_owned());
        }
        if step_index.insert(sid.clone(), i).is_some() {
            cx.err(
                "duplicate-step",
                pos,
                format!("step id `{sid}` is used twice in this flow"),
            )
            .hint = Some("step ids must be unique within a flow".to_owned());
        }
    }
    if def.steps.value.is_empty() {
        cx.err("no-steps", def.steps.pos, "flow has no steps").hint =
            Some("add at least one step, e.g. `- send: Hello`".to_owned());
    }
    let expires_after = match &def.expires_after {
        Some(d) => match parse_duration(&d.value) {
            Ok(d) => d,
            Err(e) => {
                cx.err("duration", d.pos, format!("invalid `expires_after`: {e}"));
                Duration::hours(1)
            }
        },
        None => Duration::hours(1),
    };
    let resolve = |cx: &mut FlowCtx<'_>, target: &Sp<String>| -> Option<Target> {
        if target.value == "end" {
            return Some(Target::End);
        }
        match step_index.get(&target.value) {
            Some(&i) => Some(Target::Step(i)),
            None => {
                let hint = match did_you_mean(&target.value, ids.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("steps in this flow: {}", ids.join(", ")),
                };
                cx.err("unknown-step", target.pos, format!("unknown step `{}`", target.value))
                    .hint = Some(hint);
                None
            }
        }
    };

    // Triggers.
    let mut routed = Vec::new();
    let mut schedules = Vec::new();
    let mut capture_names: HashSet<String> = HashSet::new();
    for (ti, t) in def.triggers.iter().enumerate() {
        let start = match &t.start {
            Some(s) => resolve(&mut cx, s).and_then(|target| match target {
                Target::Step(i) => Some(i),
                Target::End => {
                    cx.err("trigger", s.pos, "a trigger cannot start at `end`").hint =
                        Some("name the step the flow should start at".to_owned());
                    None
                }
            }),
            None => Some(0),
        };
        let when = t.when.as_ref().and_then(|w| cx.expr(w));
        let pos = trigger_pos(t).unwrap_or(def.id.pos);
        let kinds = [
            t.keywords.is_some(),
            t.regex.is_some(),
            t.reply.is_some(),
            t.kind.is_some(),
            t.schedule.is_some(),
            t.fallback.as_ref().is_some_and(|f| f.value),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if let Some(f) = t.fallback.as_ref().filter(|f| !f.value) {
            cx.err("trigger", f.pos, "`fallback: false` is not a trigger").hint =
                Some("remove the trigger, or write `fallback: true`".to_owned());
            continue;
        }
        if kinds != 1 {
            cx.err("trigger", pos, format!("trigger #{ti} must have exactly one of keywords, regex, reply, kind, schedule, fallback (has {kinds})"));
            continue;
        }
        let matcher = if let Some(k) = &t.keywords {
            let mut set: HashSet<String> = HashSet::new();
            for w in &k.value.0 {
                let n = normalize(w);
                if n.is_empty() {
                    cx.warn(
                        "keyword",
                        k.pos,
                        format!("keyword `{w}` has no letters or digits and never matches"),
                    )
                    .hint = Some("keywords are matched ignoring punctuation and emoji".to_owned());
                } else if household.cancel_words.contains(&n)
                    || strip_fillers(&n).is_some_and(|s| household.cancel_words.contains(&s))
                {
                    cx.warn(
                        "keyword",
                        k.pos,
                        format!("keyword `{w}` is a cancel word and never reaches this flow"),
                    )
                    .hint = Some("cancel words (household.yaml `cancel_words`) are handled first".to_owned());
                } else {
                    set.insert(n);
                }
            }
            if set.is_empty() {
                cx.err("trigger", k.pos, "no usable keywords").hint =
                    Some("keywords need letters or digits".to_owned());
                continue;
            }
            Matcher::Keywords(set)
        } else if let Some(r) = &t.regex {
            match RegexBuilder::new(&r.value)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
            {
                Ok(re) => {
                    capture_names.extend(re.capture_names().flatten().map(str::to_owned));
                    Matcher::Regex(re)
                }
                Err(e) => {
                    cx.err(
                        "regex",
                        r.pos,
                        format!("regex does not compile: {}", one_line(&e.to_string())),
                    )
                    .hint = Some("Rust regex syntax; named groups are `(?P<name>…)`".to_owned());
                    continue;
                }
            }
        } else if let Some(r) = &t.reply {
            Matcher::Reply(r.value.0.iter().cloned().collect())
        } else if let Some(k) = &t.kind {
            Matcher::Kind(k.value)
        } else if let Some(s) = &t.schedule {
            // `member` zones are resolved per member by the scheduler; the expression is
            // checked here in the household's zone (its syntax does not depend on a zone).
            let member_zone = s.timezone.as_ref().is_some_and(|t| t.value.trim() == "member");
            let tz_name = match &s.timezone {
                Some(t) if !member_zone => t.value.clone(),
                _ => household.timezone.name().to_owned(),
            };
            let policy = schedule_policy(&mut cx, s);
            if t.priority.is_some() {
                cx.warn("schedule", s.cron.pos, "`priority` has no effect on a schedule trigger")
                    .hint = Some("schedules are not routed; remove `priority`".to_owned());
            }
            match CronSchedule::parse(&s.cron.value, &tz_name) {
                Ok(cron) => {
                    if let Some(st) = start {
                        schedules.push((
                            ti,
                            ScheduleSpec {
                                cron,
                                audience: s.audience,
                                start: st,
                                when: when.clone(),
                                roles: t.roles.clone().unwrap_or_default(),
                                member_zone,
                                policy,
                                overlap: s.overlap.as_ref().map(|o| o.value).unwrap_or_default(),
                            },
                        ));
                    }
                }
                Err(e) => {
                    let p = match &e {
                        crate::schedule::ScheduleError::TimeZone(_) => {
                            s.timezone.as_ref().map_or(s.cron.pos, |t| t.pos)
                        }
                        _ => s.cron.pos,
                    };
                    cx.err("schedule", p, e.to_string());
                }
            }
            continue;
        } else {
            Matcher::Fallback
        };
        if let Some(start) = start {
            routed.push(RoutedTrigger {
                flow: flow_no,
                flow_id: Arc::from(id.as_str()),
                index: ti,
                priority: t.priority.unwrap_or(def.priority),
                matcher,
                start,
                when,
                roles: t.roles.clone().unwrap_or_default(),
                interruptible: def.interruptible,
            });
        }
    }

    // Steps.
    let mut steps = Vec::new();
    let mut slots: HashSet<String> = HashSet::new();
    let mut vars: HashSet<String> = timer_in.vars.clone();
    for (i, s) in def.steps.value.iter().enumerate() {
        let sid = ids[i].clone();
        cx.step = Some(sid.clone());
        let pos = s.id.as_ref().map_or(def.steps.pos, |p| p.pos);
        let fallthrough = if i + 1 < ids.len() {
            Target::Step(i + 1)
        } else {
            Target::End
        };
        let action = compile_action(&mut cx, s, pos, household, index, &resolve, &mut slots, &mut vars);
        let next = match &s.next {
            None => Next::To(if matches!(action, Action::End | Action::Goto(_)) {
                Target::End
            } else {
                fallthrough
            }),
            Some(n) => match &n.value {
                NextDef::Step(t) => Next::To(
                    resolve(
                        &mut cx,
                        &Sp {
                            value: t.clone(),
                            pos: n.pos,
                        },
                    )
                    .unwrap_or(Target::End),
                ),
                NextDef::Branches(bs) => compile_branches(&mut cx, bs, n.pos, &resolve),
            },
        };
        if s.next.is_some() && matches!(action, Action::End | Action::Goto(_) | Action::Switch { .. }) {
            cx.warn("unused-next", pos, "`next` is ignored after `end`, `goto` or `switch`");
        }
        steps.push(Step { id: sid, action, next });
    }
    cx.step = None;

    // The description is a template too (rendered by `help`): compile it before the
    // variable check so its variables are checked like every other template's.
    let description = def.description.as_ref().and_then(|d| {
        let t = cx.text(d)?;
        // `help` shows descriptions outside any conversation, so there is nothing to fill
        // in but who reads it: `member.role` (so children are not shown admin commands).
        let only_member = |tpl: &Tpl| {
            cx.templates
                .variables_of_tpl(tpl)
                .iter()
                .all(|v| v == "member.role" || v == "member.language")
        };
        if t
            .variants
            .iter()
            .any(|(_, tpl)| matches!(tpl, Tpl::Jinja(_)) && !only_member(tpl))
        {
            cx.err("description", d.pos, "a description can only read `member.role`")
                .hint = Some(
                "it is shown by `help`, outside any conversation; write plain text, or `{% if member.role == 'admin' %}…{% endif %}`"
                    .to_owned(),
            );
        }
        Some(t)
    });

    check_languages(&mut cx);

    // Variable check: roots that can never exist, and slots/vars/captures never set.
    let uses = std::mem::take(&mut cx.uses);
    for u in uses {
        let mut names: Vec<&String> = u.vars.iter().collect();
        names.sort();
        for v in names {
            let mut parts = v.split('.');
            let root = parts.next().unwrap_or_default();
            let field = parts.next();
            cx.step = u.step.clone();
            if !CONTEXT_ROOTS.contains(&root) && !GLOBAL_FUNCTIONS.contains(&root) && !u.extra.contains(&root) {
                let mut roots: Vec<&str> = CONTEXT_ROOTS.to_vec();
                roots.extend(u.extra);
                let hint = match did_you_mean(root, roots.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("available: {}", roots.join(", ")),
                };
                cx.err("undefined", u.pos, format!("`{root}` is undefined here")).hint = Some(hint);
            } else if let Some(field) = field {
                let (known, what) = match root {
                    "slots" => (&slots, "no `ask` in this flow collects slot"),
                    "vars" => (&vars, "nothing in this flow sets variable"),
                    "captures" => (&capture_names, "no regex trigger of this flow has a group named"),
                    _ => continue,
                };
                if !known.contains(field) {
                    let hint = did_you_mean(field, known.iter().map(String::as_str)).map_or_else(
                        || "it is undefined unless another flow provides it".to_owned(),
                        |s| format!("did you mean `{s}`?"),
                    );
                    cx.warn("maybe-undefined", u.pos, format!("{what} `{field}`")).hint = Some(hint);
                }
            }
        }
    }
    cx.step = None;

    let flow = Flow {
        id: id.clone(),
        file: file.path.clone(),
        description,
        interruptible: def.interruptible,
        hidden: def.hidden,
        outside_window: def.outside_window.as_ref().map(|p| p.value),
        expires_after,
        steps,
        step_index,
        schedules,
        version: hex::encode(&Sha256::digest(file.text.as_bytes())[..8]),
    };
    check_graph(&mut cx, &flow, def, &routed, &timer_in.steps);
    check_proactive(&mut cx, &flow, def, timer_in);
    (flow, routed)
}

/// The longest `catch_up_window` accepted: a briefing a day late is no longer news,
/// and the scheduler's look-back is bounded.
pub(super) const MAX_CATCH_UP_WINDOW: Duration = Duration::days(1);

/// A schedule's catch-up policy; a bad window is reported and the default used.
pub(super) fn schedule_policy(cx: &mut FlowCtx<'_>, s: &ScheduleDef) -> SlotPolicy {
    let catch_up = s.catch_up.as_ref().map(|c| c.value).unwrap_or_default();
    let mut policy = SlotPolicy {
        catch_up,
        ..SlotPolicy::default()
    };
    let Some(w) = &s.catch_up_window else {
        return policy;
    };
    if catch_up == CatchUp::Skip {
        cx.warn(
            "schedule",
            w.pos,
            "`catch_up_window` has no effect with `catch_up: skip`",
        )
        .hint = Some("remove it, or use `catch_up: once`".to_owned());
        return policy;
    }
    match parse_duration(&w.value) {
        Ok(d) if d >= ON_TIME && d <= MAX_CATCH_UP_WINDOW => policy.window = d,
        Ok(_) => {
            cx.err(
                "schedule",
                w.pos,
                format!("`catch_up_window` \"{}\" must be between 1m and 1d", w.value),
            )
            .hint = Some("e.g. `catch_up_window: 30m`; use `catch_up: skip` to never fire late".to_owned());
        }
        Err(e) => {
            cx.err("schedule", w.pos, format!("invalid `catch_up_window`: {e}"))
                .hint = Some("a duration such as `30m` or `2h`".to_owned());
        }
    }
    policy
}

pub(super) fn compile_branches(
    cx: &mut FlowCtx<'_>,
    bs: &[BranchDef],
    pos: Pos,
    resolve: &dyn Fn(&mut FlowCtx<'_>, &Sp<String>) -> Option<Target>,
) -> Next {
    let mut branches = Vec::new();
    let mut otherwise = None;
    for (i, b) in bs.iter().enumerate() {
        match (&b.cond, &b.then, &b.otherwise) {
            (Some(c), Some(t), None) => {
                if otherwise.is_some() {
                    cx.err("branch", c.pos, "a branch after `else` is never taken").hint =
                        Some("put `else` last".to_owned());
                }
                if let (Some(e), Some(t)) = (cx.expr(c), resolve(cx, t)) {
                    branches.push((e, t));
                }
            }
            (None, None, Some(e)) => {
                otherwise = resolve(cx, e);
                if i + 1 != bs.len() {
                    cx.err("branch", e.pos, "`else` must be the last branch");
                }
            }
            _ => {
                cx.err(
                    "branch",
                    pos,
                    format!("branch #{i} must be `if:` with `then:`, or a lone `else:`"),
                );
            }
        }
    }
    let has_else = bs.iter().any(|b| b.otherwise.is_some());
    if !has_else {
        cx.err(
            "no-way-forward",
            pos,
            "conditional `next` has no `else`: when no condition holds, the flow cannot go on",
        )
        .hint = Some("add `- else: <step>` (or `- else: end`)".to_owned());
    }
    Next::Branches(branches, otherwise.unwrap_or(Target::End))
}
