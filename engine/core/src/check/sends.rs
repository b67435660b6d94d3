//! Outgoing messages: text, buttons, lists, recipients and templates, within
//! WhatsApp's limits (the `MAX_*` consts below).
//! Pure: no I/O, no clock; does not decide when a message goes out.

use std::collections::HashSet;

use crate::diag::did_you_mean;
use crate::flow::{Household, Options, Recipient, SendSpec, Text};
use crate::model::{ButtonDef, ListMenuDef, OptionsFromDef, Pos, SendDef, Sp, TemplateSendDef};
use crate::tmpl::Tpl;

use super::ctx::FlowCtx;

/// WhatsApp limits (Cloud API docs).
pub(super) const MAX_BODY: usize = 4096;
pub(super) const MAX_BODY_WITH_BUTTONS: usize = 1024;
pub(super) const MAX_BUTTONS: usize = 3;
pub(super) const MAX_BUTTON_TITLE: usize = 20;
pub(super) const MAX_ROWS: usize = 10;
pub(super) const MAX_ROW_TITLE: usize = 24;
pub(super) const MAX_ROW_DESCRIPTION: usize = 72;
pub(super) const MAX_SECTION_TITLE: usize = 24;
pub(super) const MAX_FOOTER: usize = 60;
pub(super) const MAX_LIST_BUTTON: usize = 20;

pub(super) fn compile_buttons(cx: &mut FlowCtx<'_>, b: &Sp<Vec<ButtonDef>>) -> Vec<(String, Text)> {
    if b.value.is_empty() || b.value.len() > MAX_BUTTONS {
        cx.err(
            "whatsapp-limit",
            b.pos,
            format!("{} buttons; WhatsApp allows 1 to {MAX_BUTTONS}", b.value.len()),
        )
        .hint = Some("use a `list` for more options".to_owned());
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for btn in &b.value {
        let Some(title) = cx.text(&btn.title) else { continue };
        cx.limit(&title, btn.title.pos, MAX_BUTTON_TITLE, "button title");
        let id = btn
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_else(|| first_literal(cx, &title, btn.title.pos));
        if !seen.insert(id.clone()) {
            cx.err(
                "duplicate-button",
                btn.id.as_ref().map_or(btn.title.pos, |i| i.pos),
                format!("button id `{id}` is used twice"),
            );
        }
        out.push((id, title));
    }
    out
}

/// The default reply id of an option: its (first-language) title. A title that is a
/// template has no stable id, so one must be written.
pub(super) fn first_literal(cx: &mut FlowCtx<'_>, t: &Text, pos: Pos) -> String {
    match &t.variants[0].1 {
        Tpl::Lit(s) => s.clone(),
        Tpl::Jinja(n) => {
            cx.err("button-id", pos, "an option whose title is a template needs an `id`")
                .hint = Some("the id is what a tap sends back; give it a fixed `id:`".to_owned());
            n.clone()
        }
    }
}

pub(super) fn compile_options_from(cx: &mut FlowCtx<'_>, o: &OptionsFromDef) -> Option<Options> {
    let each = cx.expr(&o.each)?;
    let saved = cx.extra;
    cx.extra = &["item"];
    let id = cx.tpl(&o.id);
    let title = cx.tpl(&o.title);
    cx.extra = saved;
    Some(Options::ButtonsFrom {
        each,
        id: id?,
        title: title?,
    })
}

pub(super) fn compile_list(cx: &mut FlowCtx<'_>, l: &ListMenuDef) -> Option<Options> {
    let button = cx.text(&l.button)?;
    cx.limit(&button, l.button.pos, MAX_LIST_BUTTON, "list button label");
    let rows: usize = l.sections.value.iter().map(|s| s.rows.len()).sum();
    if rows == 0 || rows > MAX_ROWS {
        cx.err(
            "whatsapp-limit",
            l.sections.pos,
            format!("{rows} list rows; WhatsApp allows 1 to {MAX_ROWS} in total"),
        )
        .hint = Some("split the choice into two questions".to_owned());
    }
    if l.sections.value.len() > 1 && l.sections.value.iter().any(|s| s.title.is_none()) {
        cx.err(
            "whatsapp-limit",
            l.sections.pos,
            "with more than one section, every section needs a title",
        );
    }
    let mut seen = HashSet::new();
    let mut sections = Vec::new();
    for s in &l.sections.value {
        let title = s.title.as_ref().and_then(|t| {
            let tx = cx.text(t)?;
            cx.limit(&tx, t.pos, MAX_SECTION_TITLE, "section title");
            Some(tx)
        });
        let mut out = Vec::new();
        for r in &s.rows {
            let Some(rt) = cx.text(&r.title) else { continue };
            cx.limit(&rt, r.title.pos, MAX_ROW_TITLE, "row title");
            let desc = r.description.as_ref().and_then(|d| {
                let tx = cx.text(d)?;
                cx.limit(&tx, d.pos, MAX_ROW_DESCRIPTION, "row description");
                Some(tx)
            });
            let id =
                r.id.as_ref()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| first_literal(cx, &rt, r.title.pos));
            if !seen.insert(id.clone()) {
                cx.err(
                    "duplicate-button",
                    r.id.as_ref().map_or(r.title.pos, |i| i.pos),
                    format!("row id `{id}` is used twice"),
                );
            }
            out.push((id, rt, desc));
        }
        sections.push((title, out));
    }
    Some(Options::List { button, sections })
}

pub(super) fn compile_recipient(cx: &mut FlowCtx<'_>, to: Option<&Sp<String>>, household: &Household) -> Recipient {
    let Some(to) = to else { return Recipient::Current };
    match to.value.as_str() {
        "others" => Recipient::Others,
        "admins" => Recipient::Admins,
        "adults" => Recipient::Adults,
        "everyone" => Recipient::Everyone,
        "me" => Recipient::Current,
        name if !name.contains("{{") => {
            if household.member(name).is_none() {
                let hint = did_you_mean(name, household.members.iter().map(|m| m.name.as_str())).map_or_else(
                    || "use a member name, `others`, `admins`, `adults` or `everyone`".to_owned(),
                    |s| format!("did you mean `{s}`?"),
                );
                cx.err("unknown-member", to.pos, format!("unknown member `{name}`"))
                    .hint = Some(hint);
            }
            Recipient::Named(Tpl::Lit(name.to_owned()))
        }
        _ => cx.tpl(to).map_or(Recipient::Current, Recipient::Named),
    }
}

/// A template by name with its parameters: the name must be declared in household.yaml
/// and the parameter count must match.
pub(super) fn compile_template(cx: &mut FlowCtx<'_>, t: &TemplateSendDef, household: &Household) -> (String, Vec<Tpl>) {
    match household.templates.get(&t.name.value) {
        None => {
            let hint = did_you_mean(&t.name.value, household.templates.keys().map(String::as_str)).map_or_else(
                || "declare approved templates under `templates:` in household.yaml".to_owned(),
                |s| format!("did you mean `{s}`?"),
            );
            cx.err(
                "unknown-template",
                t.name.pos,
                format!("unknown template `{}`", t.name.value),
            )
            .hint = Some(hint);
        }
        Some(info) if info.params.len() != t.params.value.len() => {
            cx.err(
                "template-params",
                t.params.pos.max(t.name.pos),
                format!(
                    "template `{}` takes {} parameter(s), {} given",
                    t.name.value,
                    info.params.len(),
                    t.params.value.len()
                ),
            )
            .hint = Some("parameters are positional, in the order declared in household.yaml".to_owned());
        }
        Some(_) => {}
    }
    let params = t.params.value.iter().filter_map(|p| cx.tpl(p)).collect();
    (t.name.value.clone(), params)
}

pub(super) fn compile_send(cx: &mut FlowCtx<'_>, s: &SendDef, pos: Pos, household: &Household) -> Option<SendSpec> {
    let to = match &s.to_members {
        Some(list) => {
            if s.to.is_some() {
                cx.err("send", list.pos, "use only one of `to` and `to_members`");
            }
            cx.expr(list).map_or(Recipient::Current, Recipient::Members)
        }
        None => compile_recipient(cx, s.to.as_ref(), household),
    };
    let outside_window = s.outside_window.as_ref().map(|p| p.value);
    if let Some(t) = &s.template {
        if s.text.is_some() || s.buttons.is_some() || s.list.is_some() || s.buttons_from.is_some() {
            cx.err("send", pos, "a template send cannot also have text, buttons or a list")
                .hint = Some("the template's own body is sent; pass values as `params`".to_owned());
        }
        if let Some(f) = &s.fallback {
            // Templates cross a closed window themselves, so a fallback would never be used.
            cx.warn(
                "fallback",
                f.name.pos,
                "a template send needs no `fallback`; it is never used",
            )
            .hint = Some("templates may be sent outside the 24-hour window; remove `fallback`".to_owned());
        }
        return Some(SendSpec {
            text: None,
            options: Options::None,
            footer: None,
            template: Some(compile_template(cx, t, household)),
            fallback: None,
            outside_window,
            to,
        });
    }
    let fallback = s.fallback.as_ref().map(|f| compile_template(cx, f, household));
    let text = match &s.text {
        Some(t) => cx.text(t),
        None => {
            cx.err("send", pos, "a send needs `text` (or a `template`)").hint =
                Some("e.g. `send: Hello {{ member.name }}`".to_owned());
            None
        }
    };
    let options = compile_options(cx, s.buttons.as_ref(), s.buttons_from.as_ref(), s.list.as_ref(), pos)?;
    if let (Some(t), Some(tp)) = (&text, &s.text) {
        let max = if matches!(options, Options::Buttons(_) | Options::ButtonsFrom { .. }) {
            MAX_BODY_WITH_BUTTONS
        } else {
            MAX_BODY
        };
        let p = if tp.pos.line == 0 { pos } else { tp.pos };
        cx.limit(t, p, max, "message body");
    }
    let footer = s.footer.as_ref().and_then(|f| {
        if matches!(options, Options::None) {
            cx.warn(
                "send",
                f.pos,
                "a footer only shows under buttons or a list; it is dropped here",
            );
        }
        let t = cx.text(f)?;
        cx.limit(&t, f.pos, MAX_FOOTER, "footer");
        Some(t)
    });
    Some(SendSpec {
        text,
        options,
        footer,
        template: None,
        fallback,
        outside_window,
        to,
    })
}

pub(super) fn compile_options(
    cx: &mut FlowCtx<'_>,
    buttons: Option<&Sp<Vec<ButtonDef>>>,
    from: Option<&OptionsFromDef>,
    list: Option<&ListMenuDef>,
    pos: Pos,
) -> Option<Options> {
    let n = usize::from(buttons.is_some()) + usize::from(from.is_some()) + usize::from(list.is_some());
    if n > 1 {
        cx.err("send", pos, "use only one of `buttons`, `buttons_from` or `list`");
        return None;
    }
    Some(if let Some(b) = buttons {
        Options::Buttons(compile_buttons(cx, b))
    } else if let Some(f) = from {
        compile_options_from(cx, f)?
    } else if let Some(l) = list {
        compile_list(cx, l)?
    } else {
        Options::None
    })
}
