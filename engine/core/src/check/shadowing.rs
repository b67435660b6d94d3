//! Triggers that an earlier (higher or equal priority) trigger always wins over.
//! Pure: reads compiled triggers only; compiles nothing, changes nothing.

use crate::diag::Diagnostic;
use crate::flow::{Flow, Matcher, RoutedTrigger};
use crate::model::FlowFile;

use super::SourceFile;
use super::ctx::{routing_order, trigger_pos};

/// Reports triggers that an earlier (higher or equal priority) trigger always wins over.
pub(super) fn check_shadowing(
    flows: &[Flow],
    triggers: &[RoutedTrigger],
    parsed: &[(&SourceFile, FlowFile)],
    diags: &mut Vec<Diagnostic>,
) {
    let order = routing_order(triggers);
    for (bi, b) in order.iter().enumerate() {
        let earlier = &order[..bi];
        let unconditional = |a: &&&RoutedTrigger| {
            a.when.is_none()
                && (a.roles.is_empty() || b.roles.iter().all(|r| a.roles.contains(r)) && !b.roles.is_empty())
        };
        let by: Option<(&RoutedTrigger, String)> = match &b.matcher {
            Matcher::Keywords(ks) => {
                let mut shadowed: Vec<(String, &RoutedTrigger)> = Vec::new();
                for k in ks {
                    if let Some(a) = earlier.iter().filter(unconditional).find(|a| match &a.matcher {
                        Matcher::Keywords(ak) => ak.contains(k),
                        Matcher::Regex(re) => re.is_match(k),
                        _ => false,
                    }) {
                        shadowed.push((k.clone(), a));
                    }
                }
                shadowed.sort_by(|x, y| x.0.cmp(&y.0));
                shadowed.first().map(|(_, a)| {
                    let words: Vec<String> = shadowed.iter().map(|(k, _)| format!("`{k}`")).collect();
                    (
                        &**a,
                        format!("keyword(s) {} always go to the earlier trigger", words.join(", ")),
                    )
                })
            }
            Matcher::Regex(re) => earlier.iter().filter(unconditional).find_map(|a| match &a.matcher {
                Matcher::Regex(ar) if ar.as_str() == re.as_str() => Some((&**a, "the same regex".to_owned())),
                _ => None,
            }),
            Matcher::Reply(ids) => earlier.iter().filter(unconditional).find_map(|a| match &a.matcher {
                Matcher::Reply(aids) if ids.iter().any(|i| aids.contains(i)) => {
                    Some((&**a, "the same reply id".to_owned()))
                }
                _ => None,
            }),
            Matcher::Kind(k) => earlier.iter().filter(unconditional).find_map(|a| match &a.matcher {
                Matcher::Kind(ak) if ak == k => Some((&**a, format!("the same kind `{}`", k.as_str()))),
                _ => None,
            }),
            Matcher::Fallback => earlier.iter().filter(unconditional).find_map(|a| match &a.matcher {
                Matcher::Fallback => Some((&**a, "another fallback".to_owned())),
                _ => None,
            }),
        };
        if let Some((a, why)) = by {
            let (file, def) = &parsed[b.flow];
            let pos = trigger_pos(&def.triggers[b.index]).unwrap_or(def.id.pos);
            diags.push(
                Diagnostic::warning(
                    "shadowed-trigger",
                    &file.path,
                    pos,
                    format!(
                        "trigger #{} is shadowed: {why} (flow `{}`, trigger #{})",
                        b.index, flows[a.flow].id, a.index
                    ),
                )
                .within(Some(&flows[b.flow].id), None)
                .hint("give this trigger a higher `priority`, or remove the overlap"),
            );
        }
    }
}
