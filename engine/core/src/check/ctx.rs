//! The per-flow compile context: where the checker is (file, flow, step) for
//! diagnostics, templates/expressions compiled with the variables they read, and the
//! small shared facts every compile room reads (the flow index, timer targets).
//! Pure: no I/O, no clock; compiles no steps itself.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use crate::diag::Diagnostic;
use crate::flow::Text;
use crate::model::{self, Pos, Sp, TriggerDef};
use crate::tmpl::{Expr, Templates, Tpl};

use super::languages::{WrittenText, has_words};

/// A template or expression use, kept for the variable check after the flow compiled.
pub(super) struct VarUse {
    pub(super) vars: HashSet<String>,
    pub(super) pos: Pos,
    pub(super) step: Option<String>,
    /// Extra roots valid here (`item` in buttons_from, `record` in where).
    pub(super) extra: &'static [&'static str],
}

/// Per-flow compile context: where we are, for diagnostics.
pub(super) struct FlowCtx<'a> {
    pub(super) file: &'a str,
    pub(super) flow: Option<String>,
    pub(super) step: Option<String>,
    pub(super) templates: &'a mut Templates,
    pub(super) diags: &'a mut Vec<Diagnostic>,
    pub(super) uses: Vec<VarUse>,
    pub(super) extra: &'static [&'static str],
    /// Every text compiled, with its languages, for the `missing-language` check.
    pub(super) texts: Vec<WrittenText>,
}

impl<'a> FlowCtx<'a> {
    pub(super) fn new(
        file: &'a str,
        flow: Option<String>,
        templates: &'a mut Templates,
        diags: &'a mut Vec<Diagnostic>,
    ) -> Self {
        FlowCtx {
            file,
            flow,
            step: None,
            templates,
            diags,
            uses: Vec::new(),
            extra: &[],
            texts: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, d: Diagnostic) {
        let d = d.within(self.flow.as_deref(), self.step.as_deref());
        self.diags.push(d);
    }

    pub(super) fn err(&mut self, code: &'static str, pos: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::error(code, self.file, pos, msg));
        self.diags.last_mut().expect("just pushed")
    }

    pub(super) fn warn(&mut self, code: &'static str, pos: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::warning(code, self.file, pos, msg));
        self.diags.last_mut().expect("just pushed")
    }

    pub(super) fn tpl(&mut self, src: &Sp<String>) -> Option<Tpl> {
        self.tpl_str(&src.value, src.pos)
    }

    pub(super) fn tpl_str(&mut self, src: &str, pos: Pos) -> Option<Tpl> {
        match self.templates.add(src) {
            Ok(t) => {
                self.check_literal_rules(src, pos);
                self.check_filters(src, false, pos);
                let vars = self.templates.variables_of_tpl(&t);
                if !vars.is_empty() {
                    self.uses.push(VarUse {
                        vars,
                        pos,
                        step: self.step.clone(),
                        extra: self.extra,
                    });
                }
                Some(t)
            }
            Err(e) => {
                let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
                self.err("template", pos, format!("template syntax error: {}{detail}", e.kind()))
                    .hint = Some(format!(
                    "template line {}; text is minijinja, e.g. `Hi {{{{ member.name }}}}`",
                    e.line().unwrap_or(1)
                ));
                None
            }
        }
    }

    /// A filter that does not exist fails every render of the template, so it is an error
    /// now rather than "something went wrong" when a member reaches that step.
    fn check_filters(&mut self, src: &str, expr: bool, pos: Pos) {
        for name in self.templates.unknown_filters(src, expr) {
            self.err(if expr { "expression" } else { "template" }, pos, format!("unknown filter `{name}`"))
                .hint = Some(
                "minijinja's built-in filters and Alfred's (join_and, datefmt, plural, next_due, add_days, split_time); \
                 see docs/flows.md, Filters"
                    .to_owned(),
            );
        }
    }

    /// A repeat rule written as a literal in `next_due('…')` is known when the flows load,
    /// so a typo ("every mondya") is reported now instead of failing when a chore is done.
    pub(super) fn check_literal_rules(&mut self, src: &str, pos: Pos) {
        static LITERAL_RULE: std::sync::LazyLock<Regex> =
            std::sync::LazyLock::new(|| Regex::new(r#"next_due\(\s*(?:'([^']*)'|"([^"]*)")"#).expect("static regex"));
        for c in LITERAL_RULE.captures_iter(src) {
            let rule = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
            if !matches!(crate::recur::parse_answer(rule), Some(crate::recur::Answer::Repeats(_))) {
                self.err(
                    "recurrence",
                    pos,
                    format!("`next_due` cannot read the repeat rule `{rule}`"),
                )
                .hint =
                    Some("for example 'daily', 'every monday', 'every 2 weeks', 'monthly', 'on the 1st'".to_owned());
            }
        }
    }

    pub(super) fn expr(&mut self, src: &Sp<String>) -> Option<Expr> {
        match self.templates.add_expr(&src.value) {
            Ok(e) => {
                self.check_literal_rules(&src.value, src.pos);
                self.check_filters(&src.value, true, src.pos);
                let vars = self.templates.variables_of_expr(&e);
                if !vars.is_empty() {
                    self.uses.push(VarUse {
                        vars,
                        pos: src.pos,
                        step: self.step.clone(),
                        extra: self.extra,
                    });
                }
                Some(e)
            }
            Err(e) => {
                let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
                self.err(
                    "expression",
                    src.pos,
                    format!("expression syntax error: {}{detail}", e.kind()),
                )
                .hint = Some("expressions are minijinja without braces, e.g. `slots.count > 2`".to_owned());
                None
            }
        }
    }

    pub(super) fn text(&mut self, t: &Sp<model::Text>) -> Option<Text> {
        // A plain string without words ("{{ vars.summary }}", "👍") reads the same in every language.
        let languages = match &t.value {
            model::Text::One(s) => has_words(s).then_some(None),
            model::Text::PerLanguage(m) => Some(Some(m.keys().cloned().collect())),
        };
        if let Some(languages) = languages {
            self.texts.push(WrittenText {
                pos: t.pos,
                step: self.step.clone(),
                languages,
            });
        }
        let variants = match &t.value {
            model::Text::One(s) => vec![(String::new(), self.tpl_str(s, t.pos)?)],
            model::Text::PerLanguage(m) => {
                if m.is_empty() {
                    self.err("text", t.pos, "empty text map").hint = Some("write `en: …`".to_owned());
                    return None;
                }
                let mut v = Vec::new();
                for (lang, s) in m {
                    let pos = if s.pos.line == 0 { t.pos } else { s.pos };
                    v.push((lang.clone(), self.tpl_str(s, pos)?));
                }
                v
            }
        };
        Some(Text { variants })
    }

    pub(super) fn limit(&mut self, t: &Text, pos: Pos, max: usize, what: &str) {
        if let Some(n) = lit_len(t) {
            if n > max {
                self.err(
                    "whatsapp-limit",
                    pos,
                    format!("{what} is {n} characters; WhatsApp allows at most {max}"),
                )
                .hint = Some("shorten it".to_owned());
            } else if n == 0 {
                self.err("whatsapp-limit", pos, format!("{what} is empty")).hint =
                    Some("WhatsApp rejects empty texts".to_owned());
            }
        }
    }
}

pub(super) fn lit_len(t: &Text) -> Option<usize> {
    // Only literal texts have a length we can know before run time.
    t.variants
        .iter()
        .filter_map(|(_, tpl)| match tpl {
            Tpl::Lit(s) => Some(s.chars().count()),
            Tpl::Jinja(_) => None,
        })
        .max()
}

/// Phase-1 facts about every flow, so references across flows resolve.
pub(super) struct FlowIndex<'a> {
    pub(super) ids: HashMap<&'a str, usize>,
    pub(super) steps: Vec<Vec<String>>,
}

/// What timers of any flow hand to one flow.
#[derive(Clone, Default)]
pub(super) struct TimerTargets {
    /// Keys of `data:` (they arrive as `vars`).
    pub(super) vars: HashSet<String>,
    /// Steps timers start at (entries for the reachability check).
    pub(super) steps: HashSet<String>,
    /// Whether some timer starts the flow at its first step.
    pub(super) first: bool,
}

/// Triggers in the order the engine tries them: higher priority first, file order within
/// one priority (a stable sort). The shadowing and greedy checks reason about "earlier".
pub(super) fn routing_order(triggers: &[crate::flow::RoutedTrigger]) -> Vec<&crate::flow::RoutedTrigger> {
    let mut order: Vec<&crate::flow::RoutedTrigger> = triggers.iter().collect();
    order.sort_by_key(|t| std::cmp::Reverse(t.priority));
    order
}

pub(super) fn trigger_pos(t: &TriggerDef) -> Option<Pos> {
    t.keywords
        .as_ref()
        .map(|k| k.pos)
        .or(t.regex.as_ref().map(|r| r.pos))
        .or(t.reply.as_ref().map(|r| r.pos))
        .or(t.kind.as_ref().map(|k| k.pos))
        .or(t.schedule.as_ref().map(|s| s.cron.pos))
        .or(t.fallback.as_ref().map(|f| f.pos))
        .or(t.start.as_ref().map(|s| s.pos))
}

pub(super) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
