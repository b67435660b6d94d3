//! Routing a message to a trigger: the keyword passes (exact, without polite
//! fillers, with a typo), regexes, buttons and the fallback, then role and `when`.
//!
//! Only chooses; starting the chosen flow belongs to [`super::conversation`].

use std::collections::BTreeMap;

use crate::event::{InboundMessage, Miss, Trace};
use crate::flow::{Matcher, RoutedTrigger};
use crate::model::MessageKind;
use crate::parse::{strip_fillers, typo_match};

use super::Run;

/// Which triggers a message may start.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Routing {
    /// Nothing waits: every trigger, the fallback last.
    Idle,
    /// A question waits: interruptible flows only, exact keywords only.
    Interrupting,
    /// A question just gave up on this message: every trigger but the fallback.
    NotFallback,
    /// A question waits and this message may be another command: every trigger of a
    /// flow with a priority of 0 or more (not the greetings and thanks below them), no
    /// typos, no fallback. See `Run::command_instead`.
    Command,
}

/// How loosely a routing pass compares keywords (see [`Run::route`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeywordPass {
    /// The normalised text equals a keyword (and every other matcher is tried).
    Exact,
    /// The text without polite words at its edges ([`strip_fillers`]) equals a keyword.
    Fillers,
    /// The text is a keyword with a typo in a word ([`typo_match`]).
    Typo,
}

fn captures_of(re: &regex::Regex, text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(c) = re.captures(text) {
        for name in re.capture_names().flatten() {
            if let Some(v) = c.name(name) {
                // "done dishes!" means "dishes": trailing punctuation is tone, not data.
                let v = v.as_str().trim().trim_end_matches(['.', '!', '?', ',', ';']).trim_end();
                out.insert(name.to_owned(), v.to_owned());
            }
        }
    }
    out
}

fn describe_match(t: &RoutedTrigger, m: &InboundMessage) -> String {
    match &t.matcher {
        Matcher::Keywords(_) => "keyword".to_owned(),
        Matcher::Regex(re) => format!("regex `{}`", re.as_str()),
        Matcher::Reply(_) => format!("reply id `{}`", m.reply_id.as_deref().unwrap_or_default()),
        Matcher::Kind(k) => format!("message kind `{}`", k.as_str()),
        Matcher::Fallback => "fallback".to_owned(),
    }
}

/// Whether a trigger may start a flow in this kind of routing at all, before its
/// matcher is tried: while interrupting, only interruptible triggers of other flows;
/// for a command instead of an answer, no greeting or thanks (priority below 0). Both
/// the first pass and the search for a more specific regex ask this.
fn takes_part(t: &RoutedTrigger, routing: Routing, exclude: Option<&str>) -> bool {
    match routing {
        Routing::Interrupting => t.interruptible && exclude != Some(&*t.flow_id),
        Routing::Command => t.priority >= 0,
        _ => true,
    }
}

impl<'a> Run<'a> {
    /// Finds the first trigger (in priority order) that matches the message.
    /// While `Interrupting`, only interruptible flows other than `exclude` qualify.
    pub(super) fn route(
        &mut self,
        m: &InboundMessage,
        normalized: &str,
        routing: Routing,
        exclude: Option<&str>,
    ) -> Option<(&'a RoutedTrigger, BTreeMap<String, String>)> {
        let interrupting = routing == Routing::Interrupting;
        let fs = self.fs;
        let text = m.text.as_deref().map(str::trim).unwrap_or_default();
        let kind = m.kind();
        let regex_hits: Option<Vec<usize>> = match (&fs.regex_set, kind) {
            (Some(set), MessageKind::Text) if !fs.regex_triggers.is_empty() => {
                Some(set.matches(text).into_iter().collect())
            }
            _ => None,
        };
        let mut considered = Vec::new();
        let mut fallback: Option<&RoutedTrigger> = None;
        let stripped = strip_fillers(normalized);
        // Exact matches (of any matcher) first; only then keywords without polite words,
        // then keywords with a typo, so a looser match never beats a stricter one.
        // While a question waits, typos stay answers: they could be anything.
        let strict = interrupting || routing == Routing::Command;
        let passes: &[KeywordPass] = if strict {
            &[KeywordPass::Exact, KeywordPass::Fillers]
        } else {
            &[KeywordPass::Exact, KeywordPass::Fillers, KeywordPass::Typo]
        };
        for &pass in passes {
            if pass == KeywordPass::Fillers && stripped.is_none() {
                continue;
            }
            let mut regex_pos = 0usize;
            for t in &fs.triggers {
                let is_regex = matches!(t.matcher, Matcher::Regex(_));
                let this_regex = regex_pos;
                if is_regex {
                    regex_pos += 1;
                }
                if !takes_part(t, routing, exclude) {
                    continue;
                }
                if pass != KeywordPass::Exact
                    && (kind != MessageKind::Text || !matches!(t.matcher, Matcher::Keywords(_)))
                {
                    continue;
                }
                let mut loose_reason = None;
                let hit: Result<BTreeMap<String, String>, Miss> = match &t.matcher {
                    Matcher::Keywords(k) => {
                        let found = match pass {
                            _ if kind != MessageKind::Text => None,
                            KeywordPass::Exact => k.contains(normalized).then(String::new),
                            KeywordPass::Fillers => stripped
                                .as_ref()
                                .filter(|s| k.contains(*s))
                                .map(|s| format!("keyword `{s}`, ignoring polite words")),
                            // The smallest, so the trace does not depend on set order.
                            KeywordPass::Typo => k
                                .iter()
                                .filter(|kw| {
                                    typo_match(normalized, kw) || stripped.as_ref().is_some_and(|s| typo_match(s, kw))
                                })
                                .min()
                                .map(|kw| format!("keyword `{kw}` matched with a typo")),
                        };
                        match found {
                            None if kind != MessageKind::Text => Err(Miss::Kind),
                            None => Err(Miss::Keyword),
                            Some(reason) => {
                                loose_reason = Some(reason).filter(|r| !r.is_empty());
                                Ok(BTreeMap::new())
                            }
                        }
                    }
                    Matcher::Regex(re) => {
                        if kind != MessageKind::Text {
                            Err(Miss::Kind)
                        } else {
                            let matched = match &regex_hits {
                                Some(hits) => hits.binary_search(&this_regex).is_ok(),
                                None => re.is_match(text),
                            };
                            if matched {
                                Ok(captures_of(re, text))
                            } else {
                                Err(Miss::Regex)
                            }
                        }
                    }
                    Matcher::Reply(ids) => match &m.reply_id {
                        Some(id) if ids.contains(id) => Ok(BTreeMap::new()),
                        _ => Err(Miss::ReplyId),
                    },
                    Matcher::Kind(k) => {
                        if *k == kind {
                            Ok(BTreeMap::new())
                        } else {
                            Err(Miss::Kind)
                        }
                    }
                    Matcher::Fallback => {
                        if kind == MessageKind::Text && fallback.is_none() && routing == Routing::Idle {
                            fallback = Some(t);
                        }
                        Err(Miss::Fallback)
                    }
                };
                let hit = hit.and_then(|caps| self.allowed(t, caps));
                match hit {
                    Ok(caps) => {
                        let (t, caps, more_specific) = match t.matcher {
                            Matcher::Regex(_) => {
                                self.most_specific(t, caps, this_regex, text, &regex_hits, routing, exclude)
                            }
                            _ => (t, caps, None),
                        };
                        let reason = loose_reason.unwrap_or_else(|| describe_match(t, m));
                        let reason = match more_specific {
                            Some(over) => format!("{reason}; more specific than {over}"),
                            None => reason,
                        };
                        self.trace.push(Trace::Routed {
                            flow: Some(t.flow_id.clone()),
                            trigger: Some(t.index),
                            reason,
                            considered,
                        });
                        return Some((t, caps));
                    }
                    // The looser passes retry the same triggers: each is listed once.
                    Err(miss) if pass == KeywordPass::Exact => considered.push((t.flow_id.clone(), t.index, miss)),
                    Err(_) => {}
                }
            }
        }
        if let Some(t) = fallback
            && let Ok(caps) = self.allowed(t, BTreeMap::new())
        {
            self.trace.push(Trace::Routed {
                flow: Some(t.flow_id.clone()),
                trigger: Some(t.index),
                reason: "fallback: no other trigger matched".to_owned(),
                considered,
            });
            return Some((t, caps));
        }
        if routing == Routing::Idle {
            self.trace.push(Trace::Routed {
                flow: None,
                trigger: None,
                reason: format!("nothing matches this {} message", kind.as_str()),
                considered,
            });
        }
        None
    }

    /// Among regex triggers of the same priority and of other flows that all match, the one whose captures
    /// take the least of the message: it understood more of it as its own words. So
    /// "delete the reminder about the dentist" goes to the reminders' "delete the reminder
    /// about <what>", not to the shopping list's "delete <items>", whichever file sorts first.
    /// Ties keep the earlier trigger. Returns the winner and, if it is not `first`, whom it beat.
    #[allow(clippy::too_many_arguments)]
    fn most_specific(
        &mut self,
        first: &'a RoutedTrigger,
        caps: BTreeMap<String, String>,
        first_regex: usize,
        text: &str,
        regex_hits: &Option<Vec<usize>>,
        routing: Routing,
        exclude: Option<&str>,
    ) -> (&'a RoutedTrigger, BTreeMap<String, String>, Option<String>) {
        let taken = |c: &BTreeMap<String, String>| c.values().map(|v| v.chars().count()).sum::<usize>();
        let fs = self.fs;
        let mut best = (first, taken(&caps), caps);
        let mut regex_pos = 0usize;
        for t in &fs.triggers {
            let Matcher::Regex(re) = &t.matcher else { continue };
            let pos = regex_pos;
            regex_pos += 1;
            // Within one flow the author's order stands (a guard before a catch-all).
            if pos <= first_regex || t.priority != first.priority || t.flow == first.flow {
                continue;
            }
            if !takes_part(t, routing, exclude) {
                continue;
            }
            let matched = match regex_hits {
                Some(hits) => hits.binary_search(&pos).is_ok(),
                None => re.is_match(text),
            };
            if !matched {
                continue;
            }
            if let Ok(c) = self.allowed(t, captures_of(re, text)) {
                let n = taken(&c);
                if n < best.1 {
                    best = (t, n, c);
                }
            }
        }
        let (t, _, caps) = best;
        let beaten = (!std::ptr::eq(t, first)).then(|| format!("flow `{}` trigger #{}", first.flow_id, first.index));
        (t, caps, beaten)
    }

    /// Role and `when` checks, after the matcher hit.
    fn allowed(&mut self, t: &RoutedTrigger, caps: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Miss> {
        if !t.roles.is_empty() && !t.roles.contains(&self.member.role) {
            return Err(Miss::Role);
        }
        if let Some(w) = &t.when {
            let saved = std::mem::replace(&mut self.captures, caps);
            let ok = self.truthy(w).unwrap_or(false);
            let caps = std::mem::replace(&mut self.captures, saved);
            return if ok { Ok(caps) } else { Err(Miss::Condition) };
        }
        Ok(caps)
    }
}
