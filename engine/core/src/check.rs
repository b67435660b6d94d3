//! The checker: YAML sources → a validated `FlowSet`, or diagnostics.
//!
//! One pass reports every problem it can find (never just the first): syntax errors
//! per file, then semantic checks over everything that parsed. A flow set with any
//! error is not built, so the engine only ever sees flows whose references resolve.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::Duration;
use chrono_tz::Tz;
use regex::{Regex, RegexBuilder, RegexSetBuilder};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Severity, did_you_mean, sort};
use crate::flow::{
    Action, AskSpec, Flow, FlowSet, Household, Matcher, Member, MemberRemoveSpec, MemberSetSpec, Next, Options,
    Recipient, RoutedTrigger, ScheduleSpec, Select, SendSpec, Step, Target, TemplateInfo, Text, TimerStartSpec,
    Validator,
};
use crate::model::{
    self, AskDef, BranchDef, ButtonDef, CatchUp, FlowFile, HouseholdFile, ListMenuDef, MemberSetDef, NextDef,
    OptionsFromDef, Pos, ScheduleDef, SendDef, Sp, StepDef, TemplateSendDef, TriggerDef,
};
use crate::parse::{normalize, parse_duration, strip_fillers};
use crate::roster;
use crate::schedule::{CronSchedule, ON_TIME, SlotPolicy};
use crate::tmpl::{Expr, Templates, Tpl};

/// One file handed to the checker.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path as shown in diagnostics (relative to the flows directory is nicest).
    pub path: String,
    /// Full text.
    pub text: String,
}

/// The result of checking: the flow set if there were no errors, and all diagnostics.
#[derive(Debug)]
pub struct Checked {
    /// The usable flow set, if no error was found.
    pub flows: Option<FlowSet>,
    /// Every problem, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// Largest accepted file: far above any real flow, small enough to parse instantly.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Steps one `handle` may run without waiting (the loop guard).
pub const MAX_STEPS_PER_EVENT: usize = 100;
/// WhatsApp limits (Cloud API docs).
const MAX_BODY: usize = 4096;
const MAX_BODY_WITH_BUTTONS: usize = 1024;
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_ROWS: usize = 10;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_SECTION_TITLE: usize = 24;
const MAX_FOOTER: usize = 60;
const MAX_LIST_BUTTON: usize = 20;

/// Roots a template may read; anything else is surely undefined.
/// minijinja's global functions are defined too (but not worth listing in hints).
const GLOBAL_FUNCTIONS: &[&str] = &["range", "dict", "namespace", "lipsum", "debug", "cycler", "joiner"];

const CONTEXT_ROOTS: &[&str] = &[
    "message",
    "captures",
    "member",
    "members",
    "slots",
    "vars",
    "lists",
    "records",
    "now",
    "today",
    "household",
    "flow",
    "flows",
    "event",
];

/// Parse options that bound the work hostile YAML can cause (alias bombs, deep
/// nesting, huge documents) and reject duplicate keys.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 64;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_events = 500_000;
    budget.max_nodes = 250_000;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES;
    let mut opts = serde_saphyr::Options::default();
    opts.budget = Some(budget);
    opts.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // YAML 1.2 booleans only: `choice: [yes, no]` and `send: Yes` stay text.
    opts.strict_booleans = true;
    opts.with_snippet = false;
    opts
}

/// Parses one YAML document into `T`, turning failures into a diagnostic.
// Diagnostics are the cold path; boxing them would only add noise at every call site.
#[allow(clippy::result_large_err)]
pub fn parse_yaml<T: DeserializeOwned>(file: &SourceFile) -> Result<T, Diagnostic> {
    if file.text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            "file-too-large",
            &file.path,
            Pos::default(),
            format!("file is {} bytes; the limit is {MAX_FILE_BYTES}", file.text.len()),
        )
        .hint("split it into several flow files"));
    }
    if file.text.trim().is_empty() {
        return Err(Diagnostic::error(
            "empty-file",
            &file.path,
            Pos::default(),
            "file is empty",
        ));
    }
    serde_saphyr::from_str_with_options::<T>(&file.text, yaml_options()).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos {
                line: u32::try_from(l.line()).unwrap_or(0),
                col: u32::try_from(l.column()).unwrap_or(0),
            })
            .unwrap_or_default();
        let (message, hint) = describe_yaml_error(&e.without_snippet().to_string());
        let mut d = Diagnostic::error("yaml", &file.path, pos, message);
        d.hint = hint;
        d
    })
}

/// serde-saphyr's messages end with " at line L column C"; we show the place ourselves.
/// Adds a hint for the common mistakes.
fn describe_yaml_error(raw: &str) -> (String, Option<String>) {
    let msg = match raw.find(" at line ") {
        Some(i) => raw[..i].to_owned(),
        None => raw.to_owned(),
    };
    // Advice about the YAML library's options is not something an admin can act on.
    let msg = match msg.find(", set DuplicateKeyPolicy") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    };
    let msg = msg.trim().to_owned();
    let hint = if msg.contains("Documents") {
        Some("a file holds one YAML document: remove the `---` separator and put each flow in its own file".to_owned())
    } else if msg.contains("unknown field") {
        Some("check the spelling; docs/flows.md lists every key".to_owned())
    } else if msg.contains("duplicate") {
        Some("each key may appear once per map; remove or rename one".to_owned())
    } else if msg.contains("budget") || msg.contains("alias") || msg.contains("depth") {
        Some("the file is nested too deeply or uses too many aliases".to_owned())
    } else if msg.contains("missing field") {
        Some("add the required key".to_owned())
    } else if msg.starts_with("invalid") || msg.contains("expected") {
        Some("the value has the wrong type here; docs/flows.md shows what each key takes".to_owned())
    } else {
        None
    };
    (msg, hint)
}

/// Checks a set of source files (one `household.yaml` and any number of flow files)
/// and builds the flow set when there is no error.
pub fn load(household: Option<&SourceFile>, flow_files: &[SourceFile]) -> Checked {
    let household_src = household;
    let mut diags = Vec::new();
    let mut sorted: Vec<&SourceFile> = flow_files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    let house_def = match household {
        None => {
            diags.push(
                Diagnostic::error(
                    "no-household",
                    "household.yaml",
                    Pos::default(),
                    "no household.yaml found",
                )
                .hint("create household.yaml with `household:` (name, timezone) and `members:`"),
            );
            None
        }
        Some(f) => match parse_yaml::<HouseholdFile>(f) {
            Ok(h) => Some((f, h)),
            Err(d) => {
                diags.push(d);
                None
            }
        },
    };

    let mut parsed: Vec<(&SourceFile, FlowFile)> = Vec::new();
    for f in &sorted {
        match parse_yaml::<FlowFile>(f) {
            Ok(flow) => parsed.push((f, flow)),
            Err(d) => diags.push(d),
        }
    }

    let mut templates = Templates::new();
    let household = house_def.map(|(f, h)| compile_household(f, &h, &mut templates, &mut diags));

    let flows = household
        .as_ref()
        .map(|h| compile_flows(h, &parsed, &mut templates, &mut diags));

    sort(&mut diags);
    let has_errors = diags.iter().any(|d| d.severity == Severity::Error);
    let flow_set = match (household, flows) {
        (Some(household), Some(compiled)) if !has_errors => {
            let mut hasher = Sha256::new();
            if let Some(h) = household_src {
                hasher.update(h.text.as_bytes());
            }
            for f in &sorted {
                hasher.update(f.path.as_bytes());
                hasher.update([0]);
                hasher.update(f.text.as_bytes());
            }
            let version = hex::encode(&hasher.finalize()[..8]);
            Some(build_set(household, compiled, templates, version))
        }
        _ => None,
    };
    Checked {
        flows: flow_set,
        diagnostics: diags,
    }
}

fn lit_len(t: &Text) -> Option<usize> {
    // Only literal texts have a length we can know before run time.
    t.variants
        .iter()
        .filter_map(|(_, tpl)| match tpl {
            Tpl::Lit(s) => Some(s.chars().count()),
            Tpl::Jinja(_) => None,
        })
        .max()
}

fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

fn compile_household(
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
        .unwrap_or_else(|| Text::literal("OK, cancelled."));
    Household {
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

/// A template or expression use, kept for the variable check after the flow compiled.
struct VarUse {
    vars: HashSet<String>,
    pos: Pos,
    step: Option<String>,
    /// Extra roots valid here (`item` in buttons_from, `record` in where).
    extra: &'static [&'static str],
}

/// Per-flow compile context: where we are, for diagnostics.
struct FlowCtx<'a> {
    file: &'a str,
    flow: Option<String>,
    step: Option<String>,
    templates: &'a mut Templates,
    diags: &'a mut Vec<Diagnostic>,
    uses: Vec<VarUse>,
    extra: &'static [&'static str],
}

impl<'a> FlowCtx<'a> {
    fn new(file: &'a str, flow: Option<String>, templates: &'a mut Templates, diags: &'a mut Vec<Diagnostic>) -> Self {
        FlowCtx {
            file,
            flow,
            step: None,
            templates,
            diags,
            uses: Vec::new(),
            extra: &[],
        }
    }

    fn push(&mut self, d: Diagnostic) {
        let d = d.within(self.flow.as_deref(), self.step.as_deref());
        self.diags.push(d);
    }

    fn err(&mut self, code: &'static str, pos: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::error(code, self.file, pos, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn warn(&mut self, code: &'static str, pos: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::warning(code, self.file, pos, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn tpl(&mut self, src: &Sp<String>) -> Option<Tpl> {
        self.tpl_str(&src.value, src.pos)
    }

    fn tpl_str(&mut self, src: &str, pos: Pos) -> Option<Tpl> {
        match self.templates.add(src) {
            Ok(t) => {
                self.check_literal_rules(src, pos);
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

    /// A repeat rule written as a literal in `next_due('…')` is known when the flows load,
    /// so a typo ("every mondya") is reported now instead of failing when a chore is done.
    fn check_literal_rules(&mut self, src: &str, pos: Pos) {
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

    fn expr(&mut self, src: &Sp<String>) -> Option<Expr> {
        match self.templates.add_expr(&src.value) {
            Ok(e) => {
                self.check_literal_rules(&src.value, src.pos);
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

    fn text(&mut self, t: &Sp<model::Text>) -> Option<Text> {
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

    fn limit(&mut self, t: &Text, pos: Pos, max: usize, what: &str) {
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

/// Phase-1 facts about every flow, so references across flows resolve.
struct FlowIndex<'a> {
    ids: HashMap<&'a str, usize>,
    steps: Vec<Vec<String>>,
}

fn step_ids(steps: &[StepDef]) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.id.as_ref()
                .map(|id| id.value.clone())
                .unwrap_or_else(|| format!("step{}", i + 1))
        })
        .collect()
}

fn compile_flows(
    household: &Household,
    parsed: &[(&SourceFile, FlowFile)],
    templates: &mut Templates,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<Flow>, Vec<RoutedTrigger>) {
    let mut index = FlowIndex {
        ids: HashMap::new(),
        steps: Vec::new(),
    };
    let mut first_at: HashMap<&str, &str> = HashMap::new();
    for (i, (f, flow)) in parsed.iter().enumerate() {
        let id = flow.id.value.as_str();
        if let Some(prev) = first_at.insert(id, f.path.as_str()) {
            diags.push(
                Diagnostic::error(
                    "duplicate-flow",
                    &f.path,
                    flow.id.pos,
                    format!("flow id `{id}` is already used"),
                )
                .within(Some(id), None)
                .hint(format!("first used in {prev}; flow ids must be unique")),
            );
        } else {
            index.ids.insert(id, i);
        }
        if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
            diags.push(
                Diagnostic::error("flow-id", &f.path, flow.id.pos, "flow id must be one word").hint("e.g. `groceries`"),
            );
        }
        index.steps.push(step_ids(&flow.steps.value));
    }
    // Variables that timers hand to a flow (as `vars`), from any flow.
    // What timers (from any flow) hand to each flow: variables, and steps they start at.
    let mut timer_in: HashMap<String, TimerTargets> = HashMap::new();
    for (_, flow) in parsed {
        for s in flow.steps.value.iter() {
            if let Some(t) = &s.timer_start {
                let target = t.flow.as_ref().map_or(flow.id.value.clone(), |f| f.value.clone());
                let entry = timer_in.entry(target).or_default();
                entry.vars.extend(t.data.keys().cloned());
                entry.steps.extend(t.step.as_ref().map(|st| st.value.clone()));
                entry.first |= t.step.is_none();
            }
        }
    }
    let mut flows = Vec::new();
    let mut triggers = Vec::new();
    for (i, (f, def)) in parsed.iter().enumerate() {
        let from_timers = timer_in.get(&def.id.value).cloned().unwrap_or_default();
        let (flow, trig) = compile_flow(i, f, def, household, &index, &from_timers, templates, diags);
        flows.push(flow);
        triggers.extend(trig);
    }
    check_shadowing(&flows, &triggers, parsed, diags);
    (flows, triggers)
}

/// What timers of any flow hand to one flow.
#[derive(Clone, Default)]
struct TimerTargets {
    /// Keys of `data:` (they arrive as `vars`).
    vars: HashSet<String>,
    /// Steps timers start at (entries for the reachability check).
    steps: HashSet<String>,
    /// Whether some timer starts the flow at its first step.
    first: bool,
}

#[allow(clippy::too_many_arguments)]
fn compile_flow(
    flow_no: usize,
    file: &SourceFile,
    def: &FlowFile,
    household: &Household,
    index: &FlowIndex<'_>,
    timer_in: &TimerTargets,
    templates: &mut Templates,
    diags: &mut Vec<Diagnostic>,
) -> (Flow, Vec<RoutedTrigger>) {
    let id = def.id.value.clone();
    let mut cx = FlowCtx::new(&file.path, Some(id.clone()), templates, diags);
    let ids = &index.steps[flow_no];
    let mut step_index = HashMap::new();
    for (i, (sid, s)) in ids.iter().zip(def.steps.value.iter()).enumerate() {
        let pos = s.id.as_ref().map_or(def.steps.pos, |p| p.pos);
        if sid == "end" {
            cx.err("step-id", pos, "`end` is reserved").hint =
                Some("`next: end` ends the flow; pick another id".to_owned());
        }
        if step_index.insert(sid.clone(), i).is_some() {
            cx.err(
                "duplicate-step",
                pos,
                format!("step id `{sid}` is used twice in this flow"),
            )
            .hint = Some("step ids must be unique within a flow".to_owned());
        }
    }
    if def.steps.value.is_empty() {
        cx.err("no-steps", def.steps.pos, "flow has no steps").hint =
            Some("add at least one step, e.g. `- send: Hello`".to_owned());
    }
    let expires_after = match &def.expires_after {
        Some(d) => match parse_duration(&d.value) {
            Ok(d) => d,
            Err(e) => {
                cx.err("duration", d.pos, format!("invalid `expires_after`: {e}"));
                Duration::hours(1)
            }
        },
        None => Duration::hours(1),
    };
    let resolve = |cx: &mut FlowCtx<'_>, target: &Sp<String>| -> Option<Target> {
        if target.value == "end" {
            return Some(Target::End);
        }
        match step_index.get(&target.value) {
            Some(&i) => Some(Target::Step(i)),
            None => {
                let hint = match did_you_mean(&target.value, ids.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("steps in this flow: {}", ids.join(", ")),
                };
                cx.err("unknown-step", target.pos, format!("unknown step `{}`", target.value))
                    .hint = Some(hint);
                None
            }
        }
    };

    // Triggers.
    let mut routed = Vec::new();
    let mut schedules = Vec::new();
    let mut capture_names: HashSet<String> = HashSet::new();
    for (ti, t) in def.triggers.iter().enumerate() {
        let start = match &t.start {
            Some(s) => resolve(&mut cx, s).and_then(|target| match target {
                Target::Step(i) => Some(i),
                Target::End => {
                    cx.err("trigger", s.pos, "a trigger cannot start at `end`").hint =
                        Some("name the step the flow should start at".to_owned());
                    None
                }
            }),
            None => Some(0),
        };
        let when = t.when.as_ref().and_then(|w| cx.expr(w));
        let pos = trigger_pos(t).unwrap_or(def.id.pos);
        let kinds = [
            t.keywords.is_some(),
            t.regex.is_some(),
            t.reply.is_some(),
            t.kind.is_some(),
            t.schedule.is_some(),
            t.fallback.as_ref().is_some_and(|f| f.value),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if let Some(f) = t.fallback.as_ref().filter(|f| !f.value) {
            cx.err("trigger", f.pos, "`fallback: false` is not a trigger").hint =
                Some("remove the trigger, or write `fallback: true`".to_owned());
            continue;
        }
        if kinds != 1 {
            cx.err("trigger", pos, format!("trigger #{ti} must have exactly one of keywords, regex, reply, kind, schedule, fallback (has {kinds})"));
            continue;
        }
        let matcher = if let Some(k) = &t.keywords {
            let mut set: HashSet<String> = HashSet::new();
            for w in &k.value.0 {
                let n = normalize(w);
                if n.is_empty() {
                    cx.warn(
                        "keyword",
                        k.pos,
                        format!("keyword `{w}` has no letters or digits and never matches"),
                    )
                    .hint = Some("keywords are matched ignoring punctuation and emoji".to_owned());
                } else if household.cancel_words.contains(&n)
                    || strip_fillers(&n).is_some_and(|s| household.cancel_words.contains(&s))
                {
                    cx.warn(
                        "keyword",
                        k.pos,
                        format!("keyword `{w}` is a cancel word and never reaches this flow"),
                    )
                    .hint = Some("cancel words (household.yaml `cancel_words`) are handled first".to_owned());
                } else {
                    set.insert(n);
                }
            }
            if set.is_empty() {
                cx.err("trigger", k.pos, "no usable keywords").hint =
                    Some("keywords need letters or digits".to_owned());
                continue;
            }
            Matcher::Keywords(set)
        } else if let Some(r) = &t.regex {
            match RegexBuilder::new(&r.value)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
            {
                Ok(re) => {
                    capture_names.extend(re.capture_names().flatten().map(str::to_owned));
                    Matcher::Regex(re)
                }
                Err(e) => {
                    cx.err(
                        "regex",
                        r.pos,
                        format!("regex does not compile: {}", one_line(&e.to_string())),
                    )
                    .hint = Some("Rust regex syntax; named groups are `(?P<name>…)`".to_owned());
                    continue;
                }
            }
        } else if let Some(r) = &t.reply {
            Matcher::Reply(r.value.0.iter().cloned().collect())
        } else if let Some(k) = &t.kind {
            Matcher::Kind(k.value)
        } else if let Some(s) = &t.schedule {
            // `member` zones are resolved per member by the scheduler; the expression is
            // checked here in the household's zone (its syntax does not depend on a zone).
            let member_zone = s.timezone.as_ref().is_some_and(|t| t.value.trim() == "member");
            let tz_name = match &s.timezone {
                Some(t) if !member_zone => t.value.clone(),
                _ => household.timezone.name().to_owned(),
            };
            let policy = schedule_policy(&mut cx, s);
            if t.priority.is_some() {
                cx.warn("schedule", s.cron.pos, "`priority` has no effect on a schedule trigger")
                    .hint = Some("schedules are not routed; remove `priority`".to_owned());
            }
            match CronSchedule::parse(&s.cron.value, &tz_name) {
                Ok(cron) => {
                    if let Some(st) = start {
                        schedules.push((
                            ti,
                            ScheduleSpec {
                                cron,
                                audience: s.audience,
                                start: st,
                                when: when.clone(),
                                roles: t.roles.clone().unwrap_or_default(),
                                member_zone,
                                policy,
                                overlap: s.overlap.as_ref().map(|o| o.value).unwrap_or_default(),
                            },
                        ));
                    }
                }
                Err(e) => {
                    let p = match &e {
                        crate::schedule::ScheduleError::TimeZone(_) => {
                            s.timezone.as_ref().map_or(s.cron.pos, |t| t.pos)
                        }
                        _ => s.cron.pos,
                    };
                    cx.err("schedule", p, e.to_string());
                }
            }
            continue;
        } else {
            Matcher::Fallback
        };
        if let Some(start) = start {
            routed.push(RoutedTrigger {
                flow: flow_no,
                flow_id: Arc::from(id.as_str()),
                index: ti,
                priority: t.priority.unwrap_or(def.priority),
                matcher,
                start,
                when,
                roles: t.roles.clone().unwrap_or_default(),
                interruptible: def.interruptible,
            });
        }
    }

    // Steps.
    let mut steps = Vec::new();
    let mut slots: HashSet<String> = HashSet::new();
    let mut vars: HashSet<String> = timer_in.vars.clone();
    for (i, s) in def.steps.value.iter().enumerate() {
        let sid = ids[i].clone();
        cx.step = Some(sid.clone());
        let pos = s.id.as_ref().map_or(def.steps.pos, |p| p.pos);
        let fallthrough = if i + 1 < ids.len() {
            Target::Step(i + 1)
        } else {
            Target::End
        };
        let action = compile_action(&mut cx, s, pos, household, index, &resolve, &mut slots, &mut vars);
        let next = match &s.next {
            None => Next::To(if matches!(action, Action::End | Action::Goto(_)) {
                Target::End
            } else {
                fallthrough
            }),
            Some(n) => match &n.value {
                NextDef::Step(t) => Next::To(
                    resolve(
                        &mut cx,
                        &Sp {
                            value: t.clone(),
                            pos: n.pos,
                        },
                    )
                    .unwrap_or(Target::End),
                ),
                NextDef::Branches(bs) => compile_branches(&mut cx, bs, n.pos, &resolve),
            },
        };
        if s.next.is_some() && matches!(action, Action::End | Action::Goto(_) | Action::Switch { .. }) {
            cx.warn("unused-next", pos, "`next` is ignored after `end`, `goto` or `switch`");
        }
        steps.push(Step { id: sid, action, next });
    }
    cx.step = None;

    // The description is a template too (rendered by `help`): compile it before the
    // variable check so its variables are checked like every other template's.
    let description = def.description.as_ref().and_then(|d| {
        let t = cx.text(d)?;
        // `help` shows descriptions outside any conversation, so there is nothing to fill in.
        if t.variants.iter().any(|(_, tpl)| matches!(tpl, Tpl::Jinja(_))) {
            cx.err("description", d.pos, "a description cannot use template syntax")
                .hint = Some("it is shown by `help`, outside any conversation; write plain text".to_owned());
        }
        Some(t)
    });

    // Variable check: roots that can never exist, and slots/vars/captures never set.
    let uses = std::mem::take(&mut cx.uses);
    for u in uses {
        let mut names: Vec<&String> = u.vars.iter().collect();
        names.sort();
        for v in names {
            let mut parts = v.split('.');
            let root = parts.next().unwrap_or_default();
            let field = parts.next();
            cx.step = u.step.clone();
            if !CONTEXT_ROOTS.contains(&root) && !GLOBAL_FUNCTIONS.contains(&root) && !u.extra.contains(&root) {
                let mut roots: Vec<&str> = CONTEXT_ROOTS.to_vec();
                roots.extend(u.extra);
                let hint = match did_you_mean(root, roots.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("available: {}", roots.join(", ")),
                };
                cx.err("undefined", u.pos, format!("`{root}` is undefined here")).hint = Some(hint);
            } else if let Some(field) = field {
                let (known, what) = match root {
                    "slots" => (&slots, "no `ask` in this flow collects slot"),
                    "vars" => (&vars, "nothing in this flow sets variable"),
                    "captures" => (&capture_names, "no regex trigger of this flow has a group named"),
                    _ => continue,
                };
                if !known.contains(field) {
                    let hint = did_you_mean(field, known.iter().map(String::as_str)).map_or_else(
                        || "it is undefined unless another flow provides it".to_owned(),
                        |s| format!("did you mean `{s}`?"),
                    );
                    cx.warn("maybe-undefined", u.pos, format!("{what} `{field}`")).hint = Some(hint);
                }
            }
        }
    }
    cx.step = None;

    let flow = Flow {
        id: id.clone(),
        file: file.path.clone(),
        description,
        interruptible: def.interruptible,
        hidden: def.hidden,
        outside_window: def.outside_window.as_ref().map(|p| p.value),
        expires_after,
        steps,
        step_index,
        schedules,
        version: hex::encode(&Sha256::digest(file.text.as_bytes())[..8]),
    };
    check_graph(&mut cx, &flow, def, &routed, &timer_in.steps);
    check_proactive(&mut cx, &flow, def, timer_in);
    (flow, routed)
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The longest `catch_up_window` accepted: a briefing a day late is no longer news,
/// and the scheduler's look-back is bounded.
const MAX_CATCH_UP_WINDOW: Duration = Duration::days(1);

/// A schedule's catch-up policy; a bad window is reported and the default used.
fn schedule_policy(cx: &mut FlowCtx<'_>, s: &ScheduleDef) -> SlotPolicy {
    let catch_up = s.catch_up.as_ref().map(|c| c.value).unwrap_or_default();
    let mut policy = SlotPolicy {
        catch_up,
        ..SlotPolicy::default()
    };
    let Some(w) = &s.catch_up_window else {
        return policy;
    };
    if catch_up == CatchUp::Skip {
        cx.warn(
            "schedule",
            w.pos,
            "`catch_up_window` has no effect with `catch_up: skip`",
        )
        .hint = Some("remove it, or use `catch_up: once`".to_owned());
        return policy;
    }
    match parse_duration(&w.value) {
        Ok(d) if d >= ON_TIME && d <= MAX_CATCH_UP_WINDOW => policy.window = d,
        Ok(_) => {
            cx.err(
                "schedule",
                w.pos,
                format!("`catch_up_window` \"{}\" must be between 1m and 1d", w.value),
            )
            .hint = Some("e.g. `catch_up_window: 30m`; use `catch_up: skip` to never fire late".to_owned());
        }
        Err(e) => {
            cx.err("schedule", w.pos, format!("invalid `catch_up_window`: {e}"))
                .hint = Some("a duration such as `30m` or `2h`".to_owned());
        }
    }
    policy
}

fn trigger_pos(t: &TriggerDef) -> Option<Pos> {
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

fn compile_branches(
    cx: &mut FlowCtx<'_>,
    bs: &[BranchDef],
    pos: Pos,
    resolve: &dyn Fn(&mut FlowCtx<'_>, &Sp<String>) -> Option<Target>,
) -> Next {
    let mut branches = Vec::new();
    let mut otherwise = None;
    for (i, b) in bs.iter().enumerate() {
        match (&b.cond, &b.then, &b.otherwise) {
            (Some(c), Some(t), None) => {
                if otherwise.is_some() {
                    cx.err("branch", c.pos, "a branch after `else` is never taken").hint =
                        Some("put `else` last".to_owned());
                }
                if let (Some(e), Some(t)) = (cx.expr(c), resolve(cx, t)) {
                    branches.push((e, t));
                }
            }
            (None, None, Some(e)) => {
                otherwise = resolve(cx, e);
                if i + 1 != bs.len() {
                    cx.err("branch", e.pos, "`else` must be the last branch");
                }
            }
            _ => {
                cx.err(
                    "branch",
                    pos,
                    format!("branch #{i} must be `if:` with `then:`, or a lone `else:`"),
                );
            }
        }
    }
    let has_else = bs.iter().any(|b| b.otherwise.is_some());
    if !has_else {
        cx.err(
            "no-way-forward",
            pos,
            "conditional `next` has no `else`: when no condition holds, the flow cannot go on",
        )
        .hint = Some("add `- else: <step>` (or `- else: end`)".to_owned());
    }
    Next::Branches(branches, otherwise.unwrap_or(Target::End))
}

#[allow(clippy::too_many_arguments)]
fn compile_action(
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
        vars.extend(["added".to_owned(), "already".to_owned()]);
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
        let member = t.member.as_ref().and_then(|m| cx.tpl(m));
        let data = t
            .data
            .iter()
            .filter_map(|(k, v)| cx.tpl(v).map(|t| (k.clone(), t)))
            .collect();
        return match (flow, step, id) {
            (Some(flow), Some(step), Some(id)) => Action::TimerStart(Box::new(TimerStartSpec {
                id,
                at,
                after,
                flow,
                step,
                member,
                data,
            })),
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
fn compile_member_set(
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

fn check_fields(cx: &mut FlowCtx<'_>, household: &Household, collection: &str, fields: &BTreeMap<String, Sp<String>>) {
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

fn compile_fields(cx: &mut FlowCtx<'_>, fields: &BTreeMap<String, Sp<String>>) -> Vec<(String, crate::tmpl::Expr)> {
    fields
        .iter()
        .filter_map(|(k, v)| cx.expr(v).map(|e| (k.clone(), e)))
        .collect()
}

/// Updating or deleting every record by accident is too easy: ask for `where: "true"`.
fn require_selection(cx: &mut FlowCtx<'_>, selected: bool, pos: Pos, what: &str) {
    if !selected {
        cx.err("record", pos, format!("`{what}` needs `id` or `where`")).hint =
            Some("to change every record, say so: `where: \"true\"`".to_owned());
    }
}

fn compile_select(
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

fn compile_buttons(cx: &mut FlowCtx<'_>, b: &Sp<Vec<ButtonDef>>) -> Vec<(String, Text)> {
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
fn first_literal(cx: &mut FlowCtx<'_>, t: &Text, pos: Pos) -> String {
    match &t.variants[0].1 {
        Tpl::Lit(s) => s.clone(),
        Tpl::Jinja(n) => {
            cx.err("button-id", pos, "an option whose title is a template needs an `id`")
                .hint = Some("the id is what a tap sends back; give it a fixed `id:`".to_owned());
            n.clone()
        }
    }
}

fn compile_options_from(cx: &mut FlowCtx<'_>, o: &OptionsFromDef) -> Option<Options> {
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

fn compile_list(cx: &mut FlowCtx<'_>, l: &ListMenuDef) -> Option<Options> {
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

fn compile_recipient(cx: &mut FlowCtx<'_>, to: Option<&Sp<String>>, household: &Household) -> Recipient {
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
fn compile_template(cx: &mut FlowCtx<'_>, t: &TemplateSendDef, household: &Household) -> (String, Vec<Tpl>) {
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

fn compile_send(cx: &mut FlowCtx<'_>, s: &SendDef, pos: Pos, household: &Household) -> Option<SendSpec> {
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

fn compile_options(
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

fn compile_ask(
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

fn compile_validator(cx: &mut FlowCtx<'_>, v: &Sp<model::ValidateDef>) -> Option<Validator> {
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
        Validator::DateTime
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

/// Reachability, dead ends and loops that never wait.
fn check_graph(
    cx: &mut FlowCtx<'_>,
    flow: &Flow,
    def: &FlowFile,
    routed: &[RoutedTrigger],
    timer_steps: &HashSet<String>,
) {
    let n = flow.steps.len();
    if n == 0 {
        return;
    }
    let edges: Vec<Vec<usize>> = flow.steps.iter().map(successors).collect();
    // Entries: the first step (calls, gotos, timers and triggers without `start` use it)
    // and every trigger start.
    let mut entries: Vec<usize> = vec![0];
    entries.extend(routed.iter().map(|t| t.start));
    entries.extend(flow.schedules.iter().map(|(_, s)| s.start));
    // Steps that timers (from any flow) start at are entries too.
    entries.extend(timer_steps.iter().filter_map(|st| flow.step_index.get(st).copied()));
    let mut seen = vec![false; n];
    let mut stack = entries;
    while let Some(i) = stack.pop() {
        if i < n && !seen[i] {
            seen[i] = true;
            stack.extend(edges[i].iter().copied());
        }
    }
    for (i, reached) in seen.iter().enumerate() {
        if !reached {
            let pos = def.steps.value[i].id.as_ref().map_or(def.steps.pos, |p| p.pos);
            cx.step = Some(flow.steps[i].id.clone());
            cx.warn("unreachable", pos, format!("step `{}` can never run", flow.steps[i].id))
                .hint = Some("no `next`, branch, trigger `start` or timer leads here".to_owned());
        }
    }
    // A cycle without an `ask` runs until the loop guard stops it.
    let waits: Vec<bool> = flow.steps.iter().map(|s| matches!(s.action, Action::Ask(_))).collect();
    if let Some(i) = find_cycle_without_wait(&edges, &waits) {
        let pos = def.steps.value[i].id.as_ref().map_or(def.steps.pos, |p| p.pos);
        cx.step = Some(flow.steps[i].id.clone());
        cx.warn(
            "loop-without-wait",
            pos,
            format!("steps loop back to `{}` without asking anything", flow.steps[i].id),
        )
        .hint = Some(format!(
            "the engine stops a flow after {MAX_STEPS_PER_EVENT} steps without waiting; add an `ask` or an exit"
        ));
    }
    cx.step = None;
}

/// Sends that a schedule or timer reaches before the member answers anything go out
/// when the member's 24-hour window may well be closed: a free-form one needs a
/// template `fallback` or an explicit `outside_window` policy (on the send or the
/// flow), so that what happens then is a decision, not an accident. An error, because
/// without one the message silently waits (or never arrives) exactly when it matters.
fn check_proactive(cx: &mut FlowCtx<'_>, flow: &Flow, def: &FlowFile, timer_in: &TimerTargets) {
    let n = flow.steps.len();
    if flow.outside_window.is_some() || n == 0 {
        return;
    }
    // `to_members` writes to other members, whose windows are often closed: the same
    // decision is needed wherever such a send is.
    for (i, step) in flow.steps.iter().enumerate() {
        if let Action::Send(s) = &step.action
            && matches!(s.to, Recipient::Members(_))
            && s.template.is_none()
            && s.fallback.is_none()
            && s.outside_window.is_none()
        {
            let sd = &def.steps.value[i];
            let pos = sd.send.as_ref().map(|p| p.pos).unwrap_or(def.steps.pos);
            cx.step = Some(step.id.clone());
            cx.err(
                "proactive-send",
                pos,
                "this message goes to other members (`to_members`), but it says nothing about a closed 24-hour window",
            )
            .hint = Some(
                "add `fallback:` with an approved template, or `outside_window: defer` or `drop` (on the send or the flow)"
                    .to_owned(),
            );
        }
    }
    cx.step = None;
    let mut stack: Vec<usize> = flow.schedules.iter().map(|(_, s)| s.start).collect();
    stack.extend(timer_in.steps.iter().filter_map(|st| flow.step_index.get(st).copied()));
    if timer_in.first {
        stack.push(0);
    }
    let mut seen = vec![false; n];
    while let Some(i) = stack.pop() {
        if i >= n || seen[i] {
            continue;
        }
        seen[i] = true;
        let step = &flow.steps[i];
        let send = match &step.action {
            Action::Send(s) => Some(s),
            Action::Ask(a) => Some(&a.prompt),
            _ => None,
        };
        if let Some(s) = send
            && s.template.is_none()
            && s.fallback.is_none()
            && s.outside_window.is_none()
        {
            let sd = &def.steps.value[i];
            let pos = sd
                .send
                .as_ref()
                .map(|p| p.pos)
                .or(sd.id.as_ref().map(|p| p.pos))
                .unwrap_or(def.steps.pos);
            cx.step = Some(step.id.clone());
            let what = if matches!(step.action, Action::Ask(_)) {
                "question"
            } else {
                "message"
            };
            cx.err(
                "proactive-send",
                pos,
                format!("a schedule or timer reaches this {what}, but it says nothing about a closed 24-hour window"),
            )
            .hint = Some(
                "add `fallback:` with an approved template, or `outside_window: defer` or `drop` (on the send or the flow)"
                    .to_owned(),
            );
        }
        // After a question the member has written, so the window is open again.
        if !matches!(step.action, Action::Ask(_)) {
            stack.extend(successors(step));
        }
    }
    cx.step = None;
}

fn successors(s: &Step) -> Vec<usize> {
    let mut out = Vec::new();
    let mut push = |t: &Target| {
        if let Target::Step(i) = t {
            out.push(*i);
        }
    };
    match &s.action {
        Action::Switch { cases, default, .. } => {
            cases.iter().for_each(|(_, t)| push(t));
            push(default);
            return out;
        }
        Action::End | Action::Goto(_) => return out,
        Action::Ask(a) => {
            if let Some(t) = &a.on_fail {
                push(t);
            }
            if let Some((_, t)) = &a.timeout {
                push(t);
            }
        }
        Action::MemberSet(m) => {
            if let Some(t) = &m.on_error {
                push(t);
            }
        }
        Action::MemberRemove(m) => {
            if let Some(t) = &m.on_error {
                push(t);
            }
        }
        _ => {}
    }
    match &s.next {
        Next::To(t) => push(t),
        Next::Branches(bs, e) => {
            bs.iter().for_each(|(_, t)| push(t));
            push(e);
        }
    }
    out
}

/// Finds a node on a cycle made only of non-waiting steps (iterative DFS, so hostile
/// flows with thousands of steps cannot overflow the stack).
fn find_cycle_without_wait(edges: &[Vec<usize>], waits: &[bool]) -> Option<usize> {
    let n = edges.len();
    let mut color = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    for root in 0..n {
        if color[root] != 0 || waits[root] {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&succ) = edges[node].get(*next) {
                *next += 1;
                if waits[succ] {
                    continue;
                }
                match color[succ] {
                    0 => {
                        color[succ] = 1;
                        stack.push((succ, 0));
                    }
                    1 => return Some(succ),
                    _ => {}
                }
            } else {
                color[node] = 2;
                stack.pop();
            }
        }
    }
    None
}

/// Reports triggers that an earlier (higher or equal priority) trigger always wins over.
fn check_shadowing(
    flows: &[Flow],
    triggers: &[RoutedTrigger],
    parsed: &[(&SourceFile, FlowFile)],
    diags: &mut Vec<Diagnostic>,
) {
    let mut order: Vec<&RoutedTrigger> = triggers.iter().collect();
    order.sort_by_key(|t| std::cmp::Reverse(t.priority));
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

fn build_set(
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
