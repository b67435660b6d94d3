//! A tap on a button of a question that has passed (answered, cancelled, expired):
//! never silence. The member hears that the question has passed, and what to say to
//! start it again: a keyword of the trigger that leads to the question the button
//! belonged to, when Alfred can tell, else "help".
//!
//! Issue 12: `add milk` / `clear` / `2` / `1` got no reply at all, the trace only said
//! that nothing matches. It only answers; it starts nothing (an old "Yes, clear it" must
//! not clear today's list).

use crate::event::{InboundMessage, Trace};
use crate::flow::{Action, Matcher, Options};

use super::Run;
use super::texts::both;

impl<'a> Run<'a> {
    /// Answers a tap that nothing takes.
    pub(super) fn stale_tap(&mut self, m: &InboundMessage) {
        let Some(id) = m.reply_id.as_deref() else { return };
        let title = m.reply_title.as_deref().unwrap_or_default().trim().to_owned();
        let again = self.restart_keyword(id);
        self.trace.push(Trace::Ignored {
            reason: format!(
                "tap on `{id}` of a question that has passed; offered {}",
                again.as_deref().unwrap_or("help")
            ),
        });
        let shown = if title.is_empty() {
            String::new()
        } else {
            format!(" (\"{title}\")")
        };
        let (en, nl) = match &again {
            Some(k) => (
                format!("That question has passed{shown}, so I did nothing. Say \"{k}\" to start it again."),
                format!("Die vraag is voorbij{shown}, dus ik heb niets gedaan. Zeg \"{k}\" om opnieuw te beginnen."),
            ),
            None => (
                format!("That question has passed{shown}, so I did nothing. Say \"help\" to see what I can do."),
                format!("Die vraag is voorbij{shown}, dus ik heb niets gedaan. Zeg \"hulp\" om te zien wat ik kan."),
            ),
        };
        let text = both(en, nl);
        if let Err(e) = self.send_text(&text) {
            self.fail("stale tap", e);
        }
    }

    /// The shortest keyword of the trigger that starts closest before the question
    /// offering button `id` (flows are written top-down: a trigger starts its part).
    fn restart_keyword(&self, id: &str) -> Option<String> {
        let fs = self.fs;
        for (fi, flow) in fs.flows.iter().enumerate() {
            for (si, step) in flow.steps.iter().enumerate() {
                let Action::Ask(ask) = &step.action else { continue };
                let Options::Buttons(bs) = &ask.prompt.options else {
                    continue;
                };
                if !bs.iter().any(|(b, _)| b == id) {
                    continue;
                }
                // The part of the flow the question is in starts at the nearest trigger
                // start before it; only a keyword there can be offered to say again.
                let here = self.part_start(fi, si)?;
                return fs
                    .triggers
                    .iter()
                    .filter(|t| t.flow == fi && t.start == here)
                    .filter(|t| t.roles.is_empty() || t.roles.contains(&self.member.role))
                    .filter_map(|t| match &t.matcher {
                        Matcher::Keywords(k) => k.iter().min_by_key(|w| (w.len(), w.as_str())).cloned(),
                        _ => None,
                    })
                    .min_by_key(|w| (w.len(), w.clone()));
            }
        }
        None
    }
}
