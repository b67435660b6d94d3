//! Catch-all regex triggers that take other skills' words: `add (?P<items>.+)` also
//! matches chores' "add chore", and only wins or loses by which file sorts first.
//! Pure: reads compiled triggers only; compiles nothing, changes nothing.
//!
//! Issue 12 found "add a chore", "put the car back" and "add oma to the family" on the
//! shopping list. Between triggers of different priority the higher one always wins, and
//! a keyword that an EARLIER regex takes is already a `shadowed-trigger`. What is left is
//! a keyword of another flow that comes first only by file order, of the same priority
//! as a regex with a capture that also takes it: rename a file and it goes to the list.

use crate::diag::Diagnostic;
use crate::flow::{Action, Flow, Matcher, RoutedTrigger};
use crate::model::FlowFile;

use super::SourceFile;
use super::ctx::{routing_order, trigger_pos};

/// Warns (`greedy-trigger`) for each regex trigger with captures and no `when` that
/// matches a keyword of an earlier flow of the same priority, unless an earlier
/// trigger of its own flow takes that keyword first (a guard that asks or routes it).
pub(super) fn check_greedy(
    flows: &[Flow],
    triggers: &[RoutedTrigger],
    parsed: &[(&SourceFile, FlowFile)],
    diags: &mut Vec<Diagnostic>,
) {
    let order = routing_order(triggers);
    for (ri, r) in order.iter().enumerate() {
        let Matcher::Regex(re) = &r.matcher else { continue };
        // A trigger that starts with a question (a guard asking "add it anyway?") never
        // acts wrongly on what it takes.
        let asks_first = flows[r.flow]
            .steps
            .get(r.start)
            .is_some_and(|s| matches!(s.action, Action::Ask(_)));
        if r.when.is_some() || re.captures_len() <= 1 || asks_first {
            continue;
        }
        let own_earlier: Vec<&RoutedTrigger> = order[..ri].iter().filter(|t| t.flow == r.flow).copied().collect();
        let mut taken: Vec<(String, usize)> = Vec::new();
        for k in order[..ri]
            .iter()
            .filter(|k| k.flow != r.flow && k.priority == r.priority)
        {
            let Matcher::Keywords(words) = &k.matcher else { continue };
            for w in words {
                let guarded = own_earlier.iter().any(|g| match &g.matcher {
                    Matcher::Regex(gre) => gre.is_match(w),
                    Matcher::Keywords(gk) => gk.contains(w),
                    _ => false,
                });
                if re.is_match(w) && !guarded {
                    taken.push((w.clone(), k.flow));
                }
            }
        }
        taken.sort();
        if taken.is_empty() {
            continue;
        }
        let words: Vec<String> = taken
            .iter()
            .take(5)
            .map(|(w, f)| format!("`{w}` (flow `{}`)", flows[*f].id))
            .collect();
        let (file, def) = &parsed[r.flow];
        let pos = trigger_pos(&def.triggers[r.index]).unwrap_or(def.id.pos);
        diags.push(
            Diagnostic::warning(
                "greedy-trigger",
                &file.path,
                pos,
                format!(
                    "trigger #{} also matches {}: at the same priority, those reach their flow only because its file sorts first",
                    r.index,
                    words.join(", "),
                ),
            )
            .within(Some(&flows[r.flow].id), None)
            .hint(
                "keep other skills' words out of the capture: put a trigger before it in this flow that takes them (and asks), or give the flows different priorities",
            ),
        );
    }
}
