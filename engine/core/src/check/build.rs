//! The last step: compiled parts → the `FlowSet` the engine runs, and the check of a
//! roster stored over chat against household.yaml's rules and the flows.
//! Pure: no I/O, no clock; reports no problem of the YAML itself.

use regex::RegexSetBuilder;

use crate::diag::{Diagnostic, did_you_mean};
use crate::flow::{Action, Flow, FlowSet, Household, Matcher, Member, Recipient, RoutedTrigger};
use crate::model::Pos;
use crate::roster;
use crate::tmpl::{Templates, Tpl};

pub(super) fn build_set(
    household: Household,
    (flows, mut triggers): (Vec<Flow>, Vec<RoutedTrigger>),
    templates: Templates,
    version: String,
) -> FlowSet {
    // Stable sort: equal priorities keep load order (file path, then trigger order).
    triggers.sort_by_key(|t| std::cmp::Reverse(t.priority));
    let mut patterns = Vec::new();
    let mut regex_triggers = Vec::new();
    for (i, t) in triggers.iter().enumerate() {
        if let Matcher::Regex(re) = &t.matcher {
            patterns.push(format!("(?i:{})", re.as_str()));
            regex_triggers.push(i);
        }
    }
    let regex_set = RegexSetBuilder::new(&patterns).size_limit(1 << 24).build().ok();
    let flow_index = flows.iter().enumerate().map(|(i, f)| (f.id.clone(), i)).collect();
    FlowSet {
        household,
        flows,
        flow_index,
        triggers,
        regex_set,
        regex_triggers,
        templates,
        version,
        statics: Default::default(),
    }
}

/// Checks a roster stored by admins over chat (it replaces household.yaml's members at
/// run time) with household.yaml's member rules, and every flow's literal `to: <name>`
/// against it. `alfred check --database` reports these.
pub fn check_stored_members(flows: &FlowSet, members: &[Member]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Err(e) = roster::validate(members) {
        out.push(
            Diagnostic::error(
                "stored-members",
                "database",
                Pos::default(),
                format!("stored members: {e}"),
            )
            .hint("an admin can fix it over chat (flows/admin.yaml)"),
        );
    }
    // Editing household.yaml's members no longer changes anything: say so where it differs.
    for m in &flows.household.members {
        if roster::find(members, &m.name).is_none() {
            out.push(
                Diagnostic::warning(
                    "stored-members",
                    "household.yaml",
                    Pos::default(),
                    format!(
                        "member `{}` of household.yaml is not a member: the stored roster is in effect",
                        m.name
                    ),
                )
                .hint("admins changed the members over chat; add them back the same way"),
            );
        }
    }
    for flow in &flows.flows {
        for step in &flow.steps {
            let send = match &step.action {
                Action::Send(s) => s,
                Action::Ask(a) => &a.prompt,
                _ => continue,
            };
            if let Recipient::Named(Tpl::Lit(name)) = &send.to
                && roster::find(members, name).is_none()
            {
                let hint = did_you_mean(name, members.iter().map(|m| m.name.as_str())).map_or_else(
                    || "the member was removed over chat; change the flow or add them back".to_owned(),
                    |s| format!("did you mean `{s}`?"),
                );
                out.push(
                    Diagnostic::error(
                        "unknown-member",
                        &flow.file,
                        Pos::default(),
                        format!("`to: {name}`: no stored member is called `{name}`"),
                    )
                    .hint(hint)
                    .within(Some(&flow.id), Some(&step.id)),
                );
            }
        }
    }
    out
}
