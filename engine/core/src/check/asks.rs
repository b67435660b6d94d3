//! Questions: `ask` steps, their answer options and validators.
//! Pure: no I/O, no clock; the message text itself is compiled in `sends`.

use regex::RegexBuilder;

use crate::flow::{AskSpec, Household, Options, Target, Validator};
use crate::model::{self, AskDef, Pos, SendDef, Sp};
use crate::parse::{normalize, parse_duration};
use crate::tmpl::Tpl;

use super::ctx::{FlowCtx, one_line};
use super::sends::compile_send;

pub(super) fn compile_ask(
    cx: &mut FlowCtx<'_>,
    a: &AskDef,
    pos: Pos,
    household: &Household,
    resolve: &dyn Fn(&mut FlowCtx<'_>, &Sp<String>) -> Option<Target>,
) -> Option<AskSpec> {
    let send = SendDef {
        text: Some(a.prompt.clone()),
        buttons: a.buttons.clone(),
        buttons_from: a.buttons_from.clone(),
        list: a.list.clone(),
        outside_window: a.outside_window.clone(),
        ..Default::default()
    };
    let prompt = compile_send(cx, &send, pos, household);
    let validator = match &a.validate {
        None => match prompt.as_ref().map(|p| &p.options) {
            Some(Options::Buttons(b)) => Validator::Choice(
                b.iter()
                    .flat_map(|(id, t)| {
                        let mut v = vec![(normalize(id), id.clone())];
                        // A typed title counts in any language the title is written in.
                        for (_, tpl) in &t.variants {
                            if let Tpl::Lit(title) = tpl {
                                v.push((normalize(title), id.clone()));
                            }
                        }
                        v
                    })
                    .collect(),
            ),
            Some(Options::List { sections, .. }) => Validator::Choice(
                sections
                    .iter()
                    .flat_map(|(_, rows)| rows.iter())
                    .flat_map(|(id, t, _)| {
                        let mut v = vec![(normalize(id), id.clone())];
                        // A typed title counts in any language the title is written in.
                        for (_, tpl) in &t.variants {
                            if let Tpl::Lit(title) = tpl {
                                v.push((normalize(title), id.clone()));
                            }
                        }
                        v
                    })
                    .collect(),
            ),
            _ => Validator::Any,
        },
        Some(v) => compile_validator(cx, v)?,
    };
    let reprompt = a.reprompt.as_ref().and_then(|r| cx.text(r));
    let max_attempts = a.max_attempts.as_ref().map_or(3, |m| {
        if m.value == 0 {
            cx.err("ask", m.pos, "`max_attempts` must be at least 1");
        }
        m.value.max(1)
    });
    let on_fail = a.on_fail.as_ref().and_then(|f| resolve(cx, f));
    let timeout = match (&a.timeout, &a.on_timeout) {
        (Some(t), Some(o)) => match parse_duration(&t.value) {
            Ok(d) => resolve(cx, o).map(|target| (d, target)),
            Err(e) => {
                cx.err("duration", t.pos, format!("invalid `timeout`: {e}"));
                None
            }
        },
        (Some(t), None) => {
            cx.err("ask", t.pos, "`timeout` needs `on_timeout: <step>`");
            None
        }
        (None, Some(o)) => {
            cx.err("ask", o.pos, "`on_timeout` needs `timeout: <duration>`");
            None
        }
        (None, None) => None,
    };
    let prefill = a.prefill.as_ref().and_then(|p| {
        if a.buttons_from.is_some() && a.validate.is_none() {
            // Generated options exist only once the question is sent, so there is
            // nothing to check a prefilled answer against.
            cx.err("ask", p.pos, "`prefill` with `buttons_from` needs a `validate` rule")
                .hint = Some("add e.g. `validate: { regex: '…' }`, or drop `prefill`".to_owned());
            return None;
        }
        cx.tpl(p)
    });
    Some(AskSpec {
        slot: a.slot.value.clone(),
        prompt: prompt?,
        validator,
        reprompt,
        max_attempts,
        on_fail,
        timeout,
        prefill,
    })
}

pub(super) fn compile_validator(cx: &mut FlowCtx<'_>, v: &Sp<model::ValidateDef>) -> Option<Validator> {
    let d = &v.value;
    let n = [
        d.choice.is_some(),
        d.regex.is_some(),
        d.number.is_some(),
        d.datetime == Some(true),
        d.duration == Some(true),
        d.member == Some(true),
        d.yes_no == Some(true),
        d.members == Some(true),
        d.recurrence == Some(true),
        d.phone == Some(true),
        d.timezone == Some(true),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if n != 1 {
        cx.err(
            "validate",
            v.pos,
            format!("`validate` needs exactly one rule, found {n}"),
        )
        .hint = Some(
            "one of choice, regex, number, datetime, duration, member, members, yes_no, recurrence, phone, timezone"
                .to_owned(),
        );
        return None;
    }
    if let Some(z) = &d.zone_of
        && d.datetime != Some(true)
    {
        cx.err("validate", z.pos, "`zone_of` only applies to `datetime`").hint =
            Some("remove `zone_of`, or validate with `datetime: true`".to_owned());
    }
    Some(if let Some(c) = &d.choice {
        Validator::Choice(c.value.0.iter().map(|x| (normalize(x), x.clone())).collect())
    } else if let Some(r) = &d.regex {
        match RegexBuilder::new(&r.value)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => Validator::Regex(re),
            Err(e) => {
                cx.err(
                    "regex",
                    r.pos,
                    format!("regex does not compile: {}", one_line(&e.to_string())),
                );
                return None;
            }
        }
    } else if let Some(num) = &d.number {
        if let (Some(a), Some(b)) = (num.min, num.max)
            && a > b
        {
            cx.err("validate", v.pos, format!("number range is empty: min {a} > max {b}"));
        }
        Validator::Number(num.min, num.max)
    } else if d.datetime == Some(true) {
        Validator::DateTime(d.zone_of.as_ref().and_then(|z| cx.tpl(z)))
    } else if d.duration == Some(true) {
        Validator::Duration
    } else if d.member == Some(true) {
        Validator::Member
    } else if d.members == Some(true) {
        Validator::Members
    } else if d.recurrence == Some(true) {
        Validator::Recurrence
    } else if d.phone == Some(true) {
        Validator::Phone
    } else if d.timezone == Some(true) {
        Validator::Timezone
    } else {
        Validator::YesNo
    })
}
