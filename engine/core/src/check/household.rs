//! household.yaml → the compiled `Household`: time zone, members and their rules,
//! templates, lists, collections and cancel words.
//! Pure: no I/O, no clock; knows nothing of flows or steps.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono_tz::Tz;

use crate::diag::Diagnostic;
use crate::flow::{Household, Member, TemplateInfo, Text};
use crate::model::{HouseholdFile, Pos};
use crate::parse::normalize;
use crate::roster;
use crate::tmpl::{Templates, Tpl};

use super::SourceFile;
use super::ctx::FlowCtx;
use super::languages::check_languages;

pub(super) fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// A quiet-hours span from household.yaml; an error (and the default) when unreadable.
fn quiet_hours(
    q: &crate::model::Sp<String>,
    path: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<crate::quiet::QuietHours> {
    crate::quiet::parse(&q.value).unwrap_or_else(|e| {
        diags.push(
            Diagnostic::error("quiet-hours", path, q.pos, e.to_string())
                .hint("quiet hours are local times in each member's zone, like `22:00-07:00`"),
        );
        Some(crate::quiet::QuietHours::default())
    })
}

pub(super) fn compile_household(
    file: &SourceFile,
    h: &HouseholdFile,
    templates: &mut Templates,
    diags: &mut Vec<Diagnostic>,
) -> Household {
    let path = file.path.as_str();
    let tz = parse_tz(&h.household.timezone).unwrap_or_else(|| {
        diags.push(
            Diagnostic::error(
                "timezone",
                path,
                h.household.timezone.pos,
                format!("unknown time zone `{}`", h.household.timezone.value),
            )
            .hint("use an IANA name such as `Europe/Amsterdam` or `America/New_York`"),
        );
        chrono_tz::UTC
    });
    let lang = h.household.language.clone();
    let mut members = Vec::new();
    let mut member_quiet_hours = BTreeMap::new();
    let mut seen_names: HashMap<String, Pos> = HashMap::new();
    let mut seen_phones: HashSet<String> = HashSet::new();
    for m in &h.members {
        let key = m.name.value.to_lowercase();
        if m.name.value.trim().is_empty() {
            diags.push(Diagnostic::error(
                "member-name",
                path,
                m.name.pos,
                "member name is empty",
            ));
        }
        if let Some(first) = seen_names.insert(key, m.name.pos) {
            diags.push(
                Diagnostic::error(
                    "duplicate-member",
                    path,
                    m.name.pos,
                    format!("member `{}` is listed twice", m.name.value),
                )
                .hint(format!("first listed at line {}", first.line)),
            );
        }
        if m.phone.is_none() && m.user_id.is_none() {
            diags.push(
                Diagnostic::error(
                    "member-address",
                    path,
                    m.name.pos,
                    format!("member `{}` has no phone or user_id", m.name.value),
                )
                .hint("add `phone: \"+31612345678\"` (E.164) or the WhatsApp `user_id`"),
            );
        }
        if let Some(p) = &m.phone {
            let digits = p.value.strip_prefix('+').unwrap_or("");
            if !roster::is_e164(&p.value) {
                diags.push(
                    Diagnostic::error(
                        "phone",
                        path,
                        p.pos,
                        format!("`{}` is not an E.164 phone number", p.value),
                    )
                    .hint("write it as + country code and number, no spaces: \"+31612345678\""),
                );
            } else if !seen_phones.insert(digits.to_owned()) {
                diags.push(Diagnostic::error(
                    "duplicate-phone",
                    path,
                    p.pos,
                    "two members share this phone number",
                ));
            }
        }
        if let Some(u) = &m.user_id
            && !roster::is_user_id(&u.value)
        {
            diags.push(
                Diagnostic::error(
                    "user-id",
                    path,
                    u.pos,
                    format!("`{}` is not a WhatsApp user id", u.value),
                )
                .hint("business-scoped user ids look like `US.13491208655302741918`"),
            );
        }
        let member_tz = match &m.timezone {
            Some(t) => parse_tz(t).unwrap_or_else(|| {
                diags.push(
                    Diagnostic::error("timezone", path, t.pos, format!("unknown time zone `{}`", t.value))
                        .hint("use an IANA name such as `Europe/Amsterdam`"),
                );
                tz
            }),
            None => tz,
        };
        if let Some(q) = &m.quiet_hours {
            member_quiet_hours.insert(m.name.value.clone(), quiet_hours(q, path, diags));
        }
        members.push(Member {
            name: m.name.value.clone(),
            phone: m.phone.as_ref().map(|p| p.value.clone()),
            user_id: m.user_id.as_ref().map(|u| u.value.clone()),
            role: m.role,
            timezone: member_tz,
            language: m.language.clone().unwrap_or_else(|| lang.clone()),
        });
    }
    if members.is_empty() {
        diags.push(
            Diagnostic::warning(
                "no-members",
                path,
                Pos::default(),
                "the household has no members; nobody can talk to Alfred",
            )
            .hint("add `members:` with a name, phone and role"),
        );
    }
    let mut tmpl_infos = BTreeMap::new();
    for t in &h.templates {
        let info = TemplateInfo {
            name: t.name.value.clone(),
            language: t.language.clone(),
            params: t.parameters.iter().map(|p| p.kind).collect(),
        };
        if tmpl_infos.insert(t.name.value.clone(), info).is_some() {
            diags.push(Diagnostic::error(
                "duplicate-template",
                path,
                t.name.pos,
                format!("template `{}` is declared twice", t.name.value),
            ));
        }
    }
    let mut lists = HashSet::new();
    for l in &h.lists {
        if !lists.insert(l.value.clone()) {
            diags.push(Diagnostic::error(
                "duplicate-list",
                path,
                l.pos,
                format!("list `{}` is declared twice", l.value),
            ));
        }
    }
    let collections = h
        .collections
        .iter()
        .map(|(k, v)| (k.clone(), v.fields.clone()))
        .collect();
    let cancel_words: HashSet<String> = match &h.cancel_words {
        Some(w) => w
            .value
            .0
            .iter()
            .map(|s| normalize(s))
            .filter(|s| !s.is_empty())
            .collect(),
        None => ["cancel", "stop"].iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut fc = FlowCtx::new(path, None, templates, diags);
    let cancel_reply = h
        .cancel_reply
        .as_ref()
        .and_then(|t| fc.text(t))
        .unwrap_or_else(|| Text {
            variants: vec![
                ("en".to_owned(), Tpl::Lit("OK, cancelled.".to_owned())),
                ("nl".to_owned(), Tpl::Lit("Oké, geannuleerd.".to_owned())),
            ],
        });
    check_languages(&mut fc);
    let quiet = match &h.household.quiet_hours {
        Some(q) => quiet_hours(q, path, diags),
        None => Some(crate::quiet::QuietHours::default()),
    };
    Household {
        quiet_hours: quiet,
        member_quiet_hours,
        name: h.household.name.clone(),
        timezone: tz,
        language: lang,
        members,
        templates: tmpl_infos,
        lists,
        collections,
        cancel_words,
        cancel_reply,
    }
}
