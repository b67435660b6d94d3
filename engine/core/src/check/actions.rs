//! One step's action (set, list and record changes, members, timers, ...) and the
//! record selections and fields they use.
//! Pure: no I/O, no clock; sends and asks are compiled in `sends` and `asks`.

use std::collections::{BTreeMap, HashSet};

use crate::diag::did_you_mean;
use crate::flow::{Action, Household, MemberRemoveSpec, MemberSetSpec, Select, Target, TimerStartSpec};
use crate::model::{MemberSetDef, Pos, Sp, StepDef};
use crate::parse::parse_duration;
use crate::roster;

use super::asks::compile_ask;
use super::ctx::FlowCtx;
use super::ctx::FlowIndex;
use super::sends::compile_send;

#[allow(clippy::too_many_arguments)]
pub(super) fn compile_action(
    cx: &mut FlowCtx<'_>,
    s: &StepDef,
    pos: Pos,
    household: &Household,
    index: &FlowIndex<'_>,
    resolve: &dyn Fn(&mut FlowCtx<'_>, &Sp<String>) -> Option<Target>,
    slots: &mut HashSet<String>,
    vars: &mut HashSet<String>,
) -> Action {
    let present: Vec<&str> = [
        ("send", s.send.is_some()),
        ("ask", s.ask.is_some()),
        ("set", s.set.is_some()),
        ("switch", s.switch.is_some()),
        ("call", s.call.is_some()),
        ("goto", s.goto.is_some()),
        ("end", s.end.is_some()),
        ("list_add", s.list_add.is_some()),
        ("list_remove", s.list_remove.is_some()),
        ("list_clear", s.list_clear.is_some()),
        ("record_create", s.record_create.is_some()),
        ("record_update", s.record_update.is_some()),
        ("record_delete", s.record_delete.is_some()),
        ("record_query", s.record_query.is_some()),
        ("timer_start", s.timer_start.is_some()),
        ("timer_cancel", s.timer_cancel.is_some()),
        ("member_set", s.member_set.is_some()),
        ("member_remove", s.member_remove.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, p)| p.then_some(n))
    .collect();
    if present.len() > 1 {
        cx.err(
            "step-actions",
            pos,
            format!("a step does one thing, this one has {}", present.join(" and ")),
        )
        .hint = Some("split it into several steps".to_owned());
        return Action::Nothing;
    }
    if present.is_empty() && s.next.is_none() {
        cx.warn("empty-step", pos, "step does nothing").hint = Some("give it an action or a `next`".to_owned());
    }
    let list_known = |cx: &mut FlowCtx<'_>, l: &Sp<String>| {
        if !household.lists.contains(&l.value) {
            let hint = match did_you_mean(&l.value, household.lists.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "declare it under `lists:` in household.yaml".to_owned(),
            };
            cx.err("unknown-list", l.pos, format!("unknown list `{}`", l.value))
                .hint = Some(hint);
        }
    };
    let collection_known = |cx: &mut FlowCtx<'_>, c: &Sp<String>| -> bool {
        if household.collections.contains_key(&c.value) {
            return true;
        }
        let hint = match did_you_mean(&c.value, household.collections.keys().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "declare it under `collections:` in household.yaml".to_owned(),
        };
        cx.err("unknown-collection", c.pos, format!("unknown collection `{}`", c.value))
            .hint = Some(hint);
        false
    };
    let flow_ref = |cx: &mut FlowCtx<'_>, f: &Sp<String>| -> Option<usize> {
        match index.ids.get(f.value.as_str()) {
            Some(&i) => Some(i),
            None => {
                let hint = match did_you_mean(&f.value, index.ids.keys().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "no flow has this id".to_owned(),
                };
                cx.err("unknown-flow", f.pos, format!("unknown flow `{}`", f.value))
                    .hint = Some(hint);
                None
            }
        }
    };
    if let Some(send) = &s.send {
        // `send: "text"` (the short form) has no position of its own: use the step's.
        let mut def = send.value.clone();
        if let Some(t) = def.text.as_mut().filter(|t| t.pos.line == 0) {
            t.pos = send.pos;
        }
        return compile_send(cx, &def, send.pos, household).map_or(Action::Nothing, Action::Send);
    }
    if let Some(ask) = &s.ask {
        slots.insert(ask.slot.value.clone());
        // A regex validator's named groups become slots too.
        if let Some(re) = ask.validate.as_ref().and_then(|v| v.value.regex.as_ref())
            && let Ok(re) = regex::Regex::new(&re.value)
        {
            slots.extend(re.capture_names().flatten().map(str::to_owned));
        }
        return compile_ask(cx, &ask.value, ask.pos, household, resolve)
            .map_or(Action::Nothing, |a| Action::Ask(Box::new(a)));
    }
    if let Some(set) = &s.set {
        let mut out = Vec::new();
        for (k, v) in &set.value {
            vars.insert(k.clone());
            if let Some(e) = cx.expr(v) {
                out.push((k.clone(), e));
            }
        }
        return Action::Set(out);
    }
    if let Some(sw) = &s.switch {
        let on = cx.expr(&sw.on);
        let mut cases = Vec::new();
        for (k, t) in &sw.cases {
            if let Some(t) = resolve(cx, t) {
                cases.push((k.clone(), t));
            }
        }
        let default = match &sw.default {
            Some(d) => resolve(cx, d).unwrap_or(Target::End),
            None => {
                cx.err(
                    "no-way-forward",
                    sw.pos,
                    "`switch` has no `default`: when no case matches, the flow cannot go on",
                )
                .hint = Some("add `default: <step>` (or `default: end`)".to_owned());
                Target::End
            }
        };
        return on.map_or(Action::Nothing, |on| Action::Switch { on, cases, default });
    }
    if let Some(c) = &s.call {
        return flow_ref(cx, c).map_or(Action::Nothing, Action::Call);
    }
    if let Some(g) = &s.goto {
        return flow_ref(cx, g).map_or(Action::Nothing, Action::Goto);
    }
    if let Some(e) = &s.end {
        if !e.value {
            cx.err("step", e.pos, "`end: false` does nothing").hint =
                Some("remove it; a step without `end` continues with `next`".to_owned());
        }
        return Action::End;
    }
    if let Some(l) = &s.list_add {
        list_known(cx, &l.list);
        vars.extend(["added", "already", "more", "too_long", "over_limit"].map(str::to_owned));
        return cx.tpl(&l.items).map_or(Action::Nothing, |items| Action::ListAdd {
            list: l.list.value.clone(),
            items,
        });
    }
    if let Some(l) = &s.list_remove {
        list_known(cx, &l.list);
        vars.extend(["removed".to_owned(), "missing".to_owned()]);
        return cx.tpl(&l.items).map_or(Action::Nothing, |items| Action::ListRemove {
            list: l.list.value.clone(),
            items,
        });
    }
    if let Some(l) = &s.list_clear {
        list_known(cx, l);
        vars.insert("cleared".to_owned());
        return Action::ListClear(l.value.clone());
    }
    if let Some(w) = &s.record_create {
        collection_known(cx, &w.collection);
        check_fields(cx, household, &w.collection.value, &w.fields);
        if w.id.is_some() || w.filter.is_some() {
            cx.err("record", w.pos, "`record_create` takes no `id` or `where`").hint =
                Some("ids are assigned automatically".to_owned());
        }
        let fields = compile_fields(cx, &w.fields);
        if let Some(v) = &w.into {
            vars.insert(v.clone());
        }
        return Action::RecordCreate {
            collection: w.collection.value.clone(),
            fields,
            into: w.into.clone(),
        };
    }
    if let Some(w) = &s.record_update {
        collection_known(cx, &w.collection);
        require_selection(cx, w.id.is_some() || w.filter.is_some(), w.pos, "record_update");
        check_fields(cx, household, &w.collection.value, &w.fields);
        if let Some(v) = &w.into {
            vars.insert(v.clone());
        }
        let select = compile_select(
            cx,
            &w.collection,
            w.id.as_ref(),
            w.filter.as_ref(),
            w.into.clone(),
            w.pos,
        );
        // Update expressions may read the record being updated (`record.n + 1`).
        let saved = cx.extra;
        cx.extra = &["record"];
        let fields = compile_fields(cx, &w.fields);
        cx.extra = saved;
        return Action::RecordUpdate { select, fields };
    }
    if let Some(d) = &s.record_delete {
        collection_known(cx, &d.collection);
        require_selection(cx, d.id.is_some() || d.filter.is_some(), d.pos, "record_delete");
        if let Some(v) = &d.into {
            vars.insert(v.clone());
        }
        return Action::RecordDelete(compile_select(
            cx,
            &d.collection,
            d.id.as_ref(),
            d.filter.as_ref(),
            d.into.clone(),
            d.pos,
        ));
    }
    if let Some(q) = &s.record_query {
        collection_known(cx, &q.collection);
        match &q.into {
            Some(v) => {
                vars.insert(v.clone());
            }
            None => {
                cx.err("record", q.pos, "`record_query` needs `as: <variable>`").hint =
                    Some("the records land in `vars.<variable>`".to_owned());
            }
        }
        let mut sel = compile_select(
            cx,
            &q.collection,
            q.id.as_ref(),
            q.filter.as_ref(),
            q.into.clone(),
            q.pos,
        );
        if q.id.is_none() && q.filter.is_none() {
            sel.filter = None; // all records
        }
        return Action::RecordQuery(sel);
    }
    if let Some(t) = &s.timer_start {
        let flow = match &t.flow {
            Some(f) => flow_ref(cx, f),
            None => index.ids.get(cx.flow.as_deref().unwrap_or_default()).copied(),
        };
        let step = match (flow, &t.step) {
            (Some(fi), Some(st)) => match index.steps[fi].iter().position(|x| *x == st.value) {
                Some(i) => Some(i),
                None => {
                    let hint = did_you_mean(&st.value, index.steps[fi].iter().map(String::as_str)).map_or_else(
                        || format!("steps: {}", index.steps[fi].join(", ")),
                        |s| format!("did you mean `{s}`?"),
                    );
                    cx.err(
                        "unknown-step",
                        st.pos,
                        format!("unknown step `{}` in the timer's flow", st.value),
                    )
                    .hint = Some(hint);
                    None
                }
            },
            (Some(_), None) => Some(0),
            _ => None,
        };
        if t.at.is_some() == t.after.is_some() {
            cx.err("timer", t.pos, "`timer_start` needs exactly one of `at` or `after`");
        }
        // With `each`, the templates below read `item`: one element of the list.
        let each = t.each.as_ref().and_then(|e| cx.expr(e));
        let saved_extra = cx.extra;
        if t.each.is_some() {
            cx.extra = &["item"];
        }
        let id = cx.tpl(&t.id);
        let at = t.at.as_ref().and_then(|a| cx.tpl(a));
        let after = t.after.as_ref().and_then(|a| {
            if !a.value.contains("{{")
                && let Err(e) = parse_duration(&a.value)
            {
                cx.err("duration", a.pos, format!("invalid duration: {e}"));
            }
            cx.tpl(a)
        });
        // A time someone chose (`at`) would silently move to the morning if it fell in quiet
        // hours: the author says which it is.
        if let Some(a) = &t.at
            && t.urgent.is_none()
        {
            cx.warn(
                "timer-urgency",
                a.pos,
                "a timer `at` a time says whether it is `urgent` (fires in quiet hours) or not (waits for the morning)",
            )
            .hint = Some(
                "add `urgent: true` for a time the member chose (a reminder), `urgent: false` for a nudge".to_owned(),
            );
        }
        let urgent = t.urgent.as_ref().is_some_and(|u| u.value);
        let member = t.member.as_ref().and_then(|m| cx.tpl(m));
        let data = t
            .data
            .iter()
            .filter_map(|(k, v)| cx.tpl(v).map(|t| (k.clone(), t)))
            .collect();
        cx.extra = saved_extra;
        return match (flow, step, id) {
            (Some(flow), Some(step), Some(id)) if each.is_some() == t.each.is_some() => {
                Action::TimerStart(Box::new(TimerStartSpec {
                    id,
                    at,
                    after,
                    flow,
                    step,
                    member,
                    data,
                    urgent,
                    each,
                }))
            }
            _ => Action::Nothing,
        };
    }
    if let Some(t) = &s.timer_cancel {
        return cx.tpl(t).map_or(Action::Nothing, Action::TimerCancel);
    }
    if let Some(m) = &s.member_set {
        return compile_member_set(cx, &m.value, resolve, vars);
    }
    if let Some(m) = &s.member_remove {
        vars.insert("error".to_owned());
        if let Some(v) = &m.into {
            vars.insert(v.clone());
        }
        let on_error = m.on_error.as_ref().and_then(|t| resolve(cx, t));
        return cx.tpl(&m.name).map_or(Action::Nothing, |name| {
            Action::MemberRemove(Box::new(MemberRemoveSpec {
                name,
                on_error,
                into: m.into.clone(),
            }))
        });
    }
    Action::Nothing
}

/// `member_set`: literal values are checked now with the rules the runtime applies.
pub(super) fn compile_member_set(
    cx: &mut FlowCtx<'_>,
    m: &MemberSetDef,
    resolve: &dyn Fn(&mut FlowCtx<'_>, &Sp<String>) -> Option<Target>,
    vars: &mut HashSet<String>,
) -> Action {
    fn literal(v: &Option<Sp<String>>) -> Option<&Sp<String>> {
        v.as_ref()
            .filter(|v| !v.value.contains("{{") && !v.value.contains("{%"))
    }
    if let Some(p) = literal(&m.phone)
        && let Err(e) = roster::normalize_phone(&p.value)
    {
        cx.err("phone", p.pos, e.to_string());
    }
    if let Some(r) = literal(&m.role)
        && let Err(e) = roster::parse_role(&r.value)
    {
        cx.err("role", r.pos, e.to_string());
    }
    if let Some(t) = literal(&m.timezone)
        && let Err(e) = roster::parse_timezone(&t.value)
    {
        cx.err("timezone", t.pos, e.to_string());
    }
    if let Some(l) = literal(&m.language)
        && !roster::is_language(l.value.trim())
    {
        cx.err(
            "language",
            l.pos,
            format!("`{}` is not a language code like `en` or `nl`", l.value),
        );
    }
    vars.insert("error".to_owned());
    if let Some(v) = &m.into {
        vars.insert(v.clone());
    }
    let opt = |cx: &mut FlowCtx<'_>, v: &Option<Sp<String>>| v.as_ref().and_then(|v| cx.tpl(v));
    let phone = opt(cx, &m.phone);
    let role = opt(cx, &m.role);
    let timezone = opt(cx, &m.timezone);
    let language = opt(cx, &m.language);
    let on_error = m.on_error.as_ref().and_then(|t| resolve(cx, t));
    cx.tpl(&m.name).map_or(Action::Nothing, |name| {
        Action::MemberSet(Box::new(MemberSetSpec {
            name,
            phone,
            role,
            timezone,
            language,
            on_error,
            into: m.into.clone(),
        }))
    })
}

pub(super) fn check_fields(
    cx: &mut FlowCtx<'_>,
    household: &Household,
    collection: &str,
    fields: &BTreeMap<String, Sp<String>>,
) {
    let Some(known) = household.collections.get(collection) else {
        return;
    };
    for (k, v) in fields {
        if !known.contains(k) {
            let hint = did_you_mean(k, known.iter().map(String::as_str)).map_or_else(
                || format!("fields of `{collection}`: {}", known.join(", ")),
                |s| format!("did you mean `{s}`?"),
            );
            cx.err(
                "unknown-field",
                v.pos,
                format!("collection `{collection}` has no field `{k}`"),
            )
            .hint = Some(hint);
        }
    }
}

pub(super) fn compile_fields(
    cx: &mut FlowCtx<'_>,
    fields: &BTreeMap<String, Sp<String>>,
) -> Vec<(String, crate::tmpl::Expr)> {
    fields
        .iter()
        .filter_map(|(k, v)| cx.expr(v).map(|e| (k.clone(), e)))
        .collect()
}

/// Updating or deleting every record by accident is too easy: ask for `where: "true"`.
pub(super) fn require_selection(cx: &mut FlowCtx<'_>, selected: bool, pos: Pos, what: &str) {
    if !selected {
        cx.err("record", pos, format!("`{what}` needs `id` or `where`")).hint =
            Some("to change every record, say so: `where: \"true\"`".to_owned());
    }
}

pub(super) fn compile_select(
    cx: &mut FlowCtx<'_>,
    collection: &Sp<String>,
    id: Option<&Sp<String>>,
    filter: Option<&Sp<String>>,
    into: Option<String>,
    pos: Pos,
) -> Select {
    if id.is_some() && filter.is_some() {
        cx.err("record", pos, "give `id` or `where`, not both");
    }
    let id_t = id.and_then(|i| cx.tpl(i));
    let saved = cx.extra;
    cx.extra = &["record"];
    let filter_e = filter.and_then(|f| cx.expr(f));
    cx.extra = saved;
    Select {
        collection: collection.value.clone(),
        id: id_t,
        filter: filter_e,
        into,
    }
}
