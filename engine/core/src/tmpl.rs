//! Templates and expressions (minijinja, strict undefined).
//!
//! Every template and expression in a flow set is compiled once, at load, into one
//! environment; the engine only renders. Text a member typed only ever reaches a
//! template as a *value* in the context, never as template source, so "{{ 7*7 }}" typed
//! on WhatsApp stays "{{ 7*7 }}".

use std::collections::HashSet;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

/// A compiled text template. Text without template syntax is kept literal, so that the
/// common case ("OK, cancelled.") costs nothing to "render".
#[derive(Clone, Debug, PartialEq)]
pub enum Tpl {
    /// No template syntax: used as is.
    Lit(String),
    /// Name of the compiled template in the environment.
    Jinja(String),
}

/// A compiled expression (a condition or a value).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    name: String,
}

/// Bits for the context roots a template reads, so the engine builds only those
/// (building the whole context for every render dominated the engine's cost).
pub mod roots {
    /// `message`
    pub const MESSAGE: u32 = 1 << 0;
    /// `captures`
    pub const CAPTURES: u32 = 1 << 1;
    /// `member`
    pub const MEMBER: u32 = 1 << 2;
    /// `members`
    pub const MEMBERS: u32 = 1 << 3;
    /// `slots`
    pub const SLOTS: u32 = 1 << 4;
    /// `vars`
    pub const VARS: u32 = 1 << 5;
    /// `lists`
    pub const LISTS: u32 = 1 << 6;
    /// `records`
    pub const RECORDS: u32 = 1 << 7;
    /// `now`
    pub const NOW: u32 = 1 << 8;
    /// `today`
    pub const TODAY: u32 = 1 << 9;
    /// `household`
    pub const HOUSEHOLD: u32 = 1 << 10;
    /// `flow`
    pub const FLOW: u32 = 1 << 11;
    /// `flows`
    pub const FLOWS: u32 = 1 << 12;
    /// `event`
    pub const EVENT: u32 = 1 << 13;
    /// Every root.
    pub const ALL: u32 = u32::MAX;

    /// The bit of a root name (0 for names the engine does not provide, such as
    /// minijinja's functions or extras like `item` that are passed explicitly).
    pub fn bit(name: &str) -> u32 {
        match name {
            "message" => MESSAGE,
            "captures" => CAPTURES,
            "member" => MEMBER,
            "members" => MEMBERS,
            "slots" => SLOTS,
            "vars" => VARS,
            "lists" => LISTS,
            "records" => RECORDS,
            "now" => NOW,
            "today" => TODAY,
            "household" => HOUSEHOLD,
            "flow" => FLOW,
            "flows" => FLOWS,
            "event" => EVENT,
            _ => 0,
        }
    }
}

/// Work budget per render: bounds template loops so a flow can never hang the engine.
const FUEL: u64 = 200_000;

/// The set of compiled templates of one flow set.
pub struct Templates {
    env: Environment<'static>,
    next: usize,
    /// Template name → the roots it reads.
    masks: std::collections::HashMap<String, u32>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("count", &self.next).finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

fn has_syntax(src: &str) -> bool {
    src.contains("{{") || src.contains("{%") || src.contains("{#")
}

impl Templates {
    /// An empty environment with Alfred's filters.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(64);
        env.add_filter("join_and", join_and);
        env.add_filter("datefmt", datefmt);
        env.add_filter("plural", plural);
        env.add_filter("next_due", next_due);
        env.add_filter("add_days", add_days);
        env.add_filter("split_time", split_time);
        env.add_filter("rule_text", rule_text);
        Templates {
            env,
            next: 0,
            masks: std::collections::HashMap::new(),
        }
    }

    /// Compiles a text template.
    pub fn add(&mut self, src: &str) -> Result<Tpl, Error> {
        if !has_syntax(src) {
            return Ok(Tpl::Lit(src.to_owned()));
        }
        let name = format!("t{}", self.next);
        self.next += 1;
        self.env.add_template_owned(name.clone(), src.to_owned())?;
        self.remember_mask(&name);
        Ok(Tpl::Jinja(name))
    }

    /// Compiles an expression. It is stored as a template that renders the value as
    /// JSON, so `eval` gives back typed values (numbers, lists, maps).
    pub fn add_expr(&mut self, src: &str) -> Result<Expr, Error> {
        // Reject block/comment delimiters: an expression must stay one expression.
        if has_syntax(src) || src.contains("}}") || src.contains("%}") {
            return Err(Error::new(
                ErrorKind::SyntaxError,
                "an expression is written without {{ }} (e.g. `vars.count > 2`)",
            ));
        }
        if src.trim().is_empty() {
            return Err(Error::new(ErrorKind::SyntaxError, "empty expression"));
        }
        let name = format!("e{}", self.next);
        self.next += 1;
        self.env
            .add_template_owned(name.clone(), format!("{{{{ ({src}) | tojson }}}}"))?;
        self.remember_mask(&name);
        Ok(Expr { name })
    }

    /// Records which roots a template reads. minijinja's own analysis misses some
    /// uses (e.g. inside slices: `now[11:13]`), so every root named as a word in the
    /// source counts too: a superset only costs a little speed, a subset would fail.
    fn remember_mask(&mut self, name: &str) {
        let Ok(t) = self.env.get_template(name) else {
            self.masks.insert(name.to_owned(), roots::ALL);
            return;
        };
        let mut mask = t.undeclared_variables(false).iter().fold(0, |m, v| m | roots::bit(v));
        for word in t.source().split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            mask |= roots::bit(word);
        }
        self.masks.insert(name.to_owned(), mask);
    }

    /// The context roots a template reads (none for literal text).
    pub fn mask_of_tpl(&self, t: &Tpl) -> u32 {
        match t {
            Tpl::Lit(_) => 0,
            Tpl::Jinja(name) => self.masks.get(name).copied().unwrap_or(roots::ALL),
        }
    }

    /// The context roots an expression reads.
    pub fn mask_of_expr(&self, e: &Expr) -> u32 {
        self.masks.get(&e.name).copied().unwrap_or(roots::ALL)
    }

    /// Renders a template.
    pub fn render(&self, t: &Tpl, ctx: &Value) -> Result<String, Error> {
        match t {
            Tpl::Lit(s) => Ok(s.clone()),
            Tpl::Jinja(name) => self.env.get_template(name)?.render(ctx),
        }
    }

    /// Evaluates an expression to a JSON value.
    pub fn eval(&self, e: &Expr, ctx: &Value) -> Result<serde_json::Value, Error> {
        let json = self.env.get_template(&e.name)?.render(ctx)?;
        serde_json::from_str(&json).map_err(|err| Error::new(ErrorKind::InvalidOperation, err.to_string()))
    }

    /// Evaluates a condition with Jinja truthiness.
    pub fn truthy(&self, e: &Expr, ctx: &Value) -> Result<bool, Error> {
        Ok(json_truthy(&self.eval(e, ctx)?))
    }

    /// Variables a template reads (dotted paths, e.g. `slots.item`), for the checker.
    pub fn variables_of_tpl(&self, t: &Tpl) -> HashSet<String> {
        match t {
            Tpl::Lit(_) => HashSet::new(),
            Tpl::Jinja(name) => self
                .env
                .get_template(name)
                .map(|t| t.undeclared_variables(true))
                .unwrap_or_default(),
        }
    }

    /// Variables an expression reads.
    pub fn variables_of_expr(&self, e: &Expr) -> HashSet<String> {
        self.env
            .get_template(&e.name)
            .map(|t| t.undeclared_variables(true))
            .unwrap_or_default()
    }

    /// Filters a template (`expr: false`) or expression names that do not exist.
    /// minijinja only looks a filter up when it renders, so `{{ x | truncate(20) }}`
    /// compiles and then fails every time that step runs (found playing the family:
    /// "Which reminder?" could never be asked). The checker reports these instead.
    pub fn unknown_filters(&self, src: &str, expr: bool) -> Vec<String> {
        let mut unknown = Vec::new();
        for name in filter_names(src, expr) {
            let probe = format!("{{{{ none | {name} }}}}");
            let missing = self
                .env
                .render_str(&probe, ())
                .is_err_and(|e| e.kind() == ErrorKind::UnknownFilter);
            if missing && !unknown.contains(&name) {
                unknown.push(name);
            }
        }
        unknown
    }
}

/// The names written after a filter bar `|` in a template's tags (or a whole
/// expression), outside string literals. A superset is fine: each is looked up.
fn filter_names(src: &str, expr: bool) -> Vec<String> {
    let chars: Vec<char> = src.chars().collect();
    let mut names = Vec::new();
    let mut in_tag = expr;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if !expr && quote.is_none() {
            if c == '{' && matches!(next, Some('{' | '%')) {
                in_tag = true;
                i += 2;
                continue;
            }
            if matches!(c, '}' | '%') && next == Some('}') {
                in_tag = false;
                i += 2;
                continue;
            }
        }
        if !in_tag {
            i += 1;
            continue;
        }
        match quote {
            Some(_) if c == '\\' => {
                i += 2;
                continue;
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '|' && next != Some('|') && (i == 0 || chars[i - 1] != '|') => {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let start = j;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                if j > start {
                    names.push(chars[start..j].iter().collect());
                }
                i = j;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    names
}

/// Jinja truthiness of a JSON value.
pub fn json_truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
    }
}

/// `["a","b","c"] | join_and` → "a, b and c"; `join_and("en")`-style word override.
fn join_and(items: Vec<Value>, word: Option<String>) -> String {
    let word = word.unwrap_or_else(|| "and".to_owned());
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    match parts.len() {
        0 => String::new(),
        1 => parts[0].clone(),
        n => format!("{} {word} {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

/// The context key holding the time zone of whoever reads what is rendered (the member
/// a message goes to, else the member the conversation is with). The engine sets it;
/// `datefmt` reads it.
pub const READER_ZONE: &str = "_reader_zone";

/// The context key holding the language of whoever reads what is rendered, so `datefmt`
/// names days and months in it ("zo 18:00" for a Dutch reader, "Sun 18:00" otherwise).
pub const READER_LANGUAGE: &str = "_reader_language";

/// Day and month names of one language: short days Mon..Sun, long days, short months
/// Jan..Dec, long months.
struct Names {
    short_days: [&'static str; 7],
    days: [&'static str; 7],
    short_months: [&'static str; 12],
    months: [&'static str; 12],
}

/// Day and month names for a language other than English, which chrono writes itself.
fn names_of(language: &str) -> Option<Names> {
    match language.split(['-', '_']).next().unwrap_or_default() {
        "nl" => Some(Names {
            short_days: ["ma", "di", "wo", "do", "vr", "za", "zo"],
            days: crate::recur::DUTCH_WEEKDAYS,
            short_months: [
                "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
            ],
            months: [
                "januari",
                "februari",
                "maart",
                "april",
                "mei",
                "juni",
                "juli",
                "augustus",
                "september",
                "oktober",
                "november",
                "december",
            ],
        }),
        _ => None,
    }
}

/// `fmt` with its day and month names (`%a %A %b %h %B`) written out in `language`.
fn localized_format(fmt: &str, dt: &chrono::DateTime<chrono::FixedOffset>, language: &str) -> String {
    use chrono::Datelike as _;
    let Some(Names {
        short_days,
        days,
        short_months,
        months,
    }) = names_of(language)
    else {
        return fmt.to_owned();
    };
    let day = dt.weekday().num_days_from_monday() as usize;
    let month = dt.month0() as usize;
    let mut out = String::with_capacity(fmt.len());
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('a') => out.push_str(short_days[day]),
            Some('A') => out.push_str(days[day]),
            Some('b' | 'h') => out.push_str(short_months[month]),
            Some('B') => out.push_str(months[month]),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `"2026-03-01T18:00:00+01:00" | datefmt("%a %H:%M")` → "Sun 18:00", shown in the reader's
/// time zone ([`READER_ZONE`]): a time stored in Ben's New York zone reads as 14:00 to Anna
/// in Amsterdam and as 08:00 to Ben. `datefmt(fmt, "America/New_York")` shows it in that
/// zone instead. Without a reader (rendering outside a conversation) the offset written in
/// the value is kept. Day and month names are in the reader's language ([`READER_LANGUAGE`]).
fn datefmt(
    state: &minijinja::State<'_, '_>,
    value: String,
    fmt: Option<String>,
    zone: Option<String>,
) -> Result<String, Error> {
    let fmt = fmt.unwrap_or_else(|| "%a %d %b %H:%M".to_owned());
    let dt = chrono::DateTime::parse_from_rfc3339(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("not a date/time: {e}")))?;
    let zone = match zone {
        Some(z) => Some(
            z.trim()
                .parse::<chrono_tz::Tz>()
                .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("unknown time zone `{z}`")))?,
        ),
        None => state
            .lookup(READER_ZONE)
            .and_then(|v| v.as_str().and_then(|z| z.parse::<chrono_tz::Tz>().ok())),
    };
    let dt = match zone {
        Some(tz) => dt.with_timezone(&tz).fixed_offset(),
        None => dt,
    };
    let fmt = match state.lookup(READER_LANGUAGE) {
        Some(l) => localized_format(&fmt, &dt, l.as_str().unwrap_or_default()),
        None => fmt,
    };
    let mut out = String::new();
    // chrono panics via Display on an invalid format string; write! reports it instead.
    use std::fmt::Write as _;
    write!(
        out,
        "{}",
        dt.format_with_items(chrono::format::StrftimeItems::new(&fmt))
    )
    .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("bad date format `{fmt}`")))?;
    Ok(out)
}

/// `"call grandma at 7pm" | split_time(now)` → `["call grandma", "at 7pm"]`: a time said
/// after what it is about, split off with the date/time parser
/// ([`crate::parse::split_trailing_time`]); `[text, ""]` when the text ends in no time.
fn split_time(state: &minijinja::State<'_, '_>, value: String, now: String) -> Result<Value, Error> {
    let now = chrono::DateTime::parse_from_rfc3339(&now)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("not a date/time: {e}")))?
        .with_timezone(&chrono::Utc);
    let zone = state
        .lookup(READER_ZONE)
        .and_then(|v| v.as_str().and_then(|z| z.parse::<chrono_tz::Tz>().ok()))
        .unwrap_or(chrono_tz::UTC);
    let (what, when) = crate::parse::split_trailing_time(&value, now, zone).unwrap_or((value, String::new()));
    Ok(Value::from(vec![what, when]))
}

/// `"every monday" | rule_text` → the repeat rule in the reader's language ([`READER_LANGUAGE`]):
/// "elke maandag" for a Dutch reader. Text that is not a rule is kept as it is.
fn rule_text(state: &minijinja::State<'_, '_>, value: String) -> String {
    let language = state.lookup(READER_LANGUAGE);
    let language = language.as_ref().and_then(|l| l.as_str()).unwrap_or("en");
    crate::recur::parse_rule(&value).map_or(value, |r| r.said_in(language))
}

/// `due | next_due("every monday", "Europe/Amsterdam")` → the next occurrence after `due`
/// (see [`crate::recur`]); with a third argument, the first one after that time as well;
/// a fourth is the series' local time of day ("02:30"), kept across DST gaps.
fn next_due(
    value: String,
    rule: String,
    tz: String,
    after: Option<String>,
    at: Option<String>,
) -> Result<String, Error> {
    crate::recur::next_due_at(&value, &rule, &tz, after.as_deref(), at.as_deref())
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// `now | add_days(-7)` → the same wall-clock time n days away, in the offset written in the
/// value (for cut-offs such as "this week"; use `next_due` for anything DST-sensitive).
fn add_days(value: String, days: i64) -> Result<String, Error> {
    let dt = chrono::DateTime::parse_from_rfc3339(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("not a date/time: {e}")))?;
    chrono::Duration::try_days(days)
        .and_then(|d| dt.checked_add_signed(d))
        .map(|d| d.to_rfc3339())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("{days} days from {value} is out of range"),
            )
        })
}

/// `n | plural("item", "items")` → "1 item" / "3 items".
fn plural(n: i64, one: String, many: Option<String>) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {}", many.unwrap_or_else(|| format!("{one}s")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn user_text_is_data_not_code() {
        let mut t = Templates::new();
        let tpl = t.add("You said: {{ message.text }}").unwrap();
        let out = t
            .render(&tpl, &context! { message => context! { text => "{{ 7*7 }}" } })
            .unwrap();
        assert_eq!(out, "You said: {{ 7*7 }}");
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let mut t = Templates::new();
        let tpl = t.add("Hi {{ nmae }}").unwrap();
        let err = t.render(&tpl, &context! { name => "Anna" }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
    }

    #[test]
    fn expressions_keep_types() {
        let mut t = Templates::new();
        let e = t.add_expr("vars.n + 1").unwrap();
        let v = t.eval(&e, &context! { vars => context! { n => 2 } }).unwrap();
        assert_eq!(v, serde_json::json!(3));
        let c = t.add_expr("vars.n > 5").unwrap();
        assert!(!t.truthy(&c, &context! { vars => context! { n => 2 } }).unwrap());
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let mut t = Templates::new();
        let tpl = t
            .add("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")
            .unwrap();
        let err = t.render(&tpl, &context! {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfFuel);
    }

    #[test]
    fn filters() {
        let mut t = Templates::new();
        let tpl = t.add("{{ ['a','b','c'] | join_and }} / {{ 3 | plural('item') }} / {{ '2026-03-01T18:05:00+01:00' | datefmt('%H:%M') }}").unwrap();
        assert_eq!(t.render(&tpl, &context! {}).unwrap(), "a, b and c / 3 items / 18:05");
    }

    #[test]
    fn date_filters() {
        let mut t = Templates::new();
        let tpl = t
            .add("{{ '2026-01-31T18:00:00+01:00' | next_due('on the 31st', 'Europe/Amsterdam') }} / {{ '2026-01-05T18:00:00+01:00' | next_due('every monday', 'Europe/Amsterdam', '2026-01-20T09:00:00+01:00') }} / {{ '2026-03-01T18:05:00+01:00' | add_days(-7) }}")
            .unwrap();
        assert_eq!(
            t.render(&tpl, &context! {}).unwrap(),
            "2026-02-28T18:00:00+01:00 / 2026-01-26T18:00:00+01:00 / 2026-02-22T18:05:00+01:00"
        );
        let bad = t.add("{{ now | next_due('once', 'Europe/Amsterdam') }}").unwrap();
        let err = t
            .render(&bad, &context! { now => "2026-01-05T09:00:00+01:00" })
            .unwrap_err();
        assert!(err.to_string().contains("does not repeat"), "{err}");
    }
}
#[cfg(test)]
mod language_tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn datefmt_names_days_and_months_in_the_readers_language() {
        let mut t = Templates::new();
        let tpl = t
            .add("{{ '2026-03-01T18:05:00+01:00' | datefmt('%a %d %b %H:%M, %A %e %B, 100%%') }}")
            .unwrap();
        let nl = context! { _reader_language => "nl", _reader_zone => "Europe/Amsterdam" };
        assert_eq!(t.render(&tpl, &nl).unwrap(), "zo 01 mrt 18:05, zondag  1 maart, 100%");
        let rule = t
            .add("{{ 'every monday' | rule_text }} / {{ 'whenever' | rule_text }}")
            .unwrap();
        assert_eq!(t.render(&rule, &nl).unwrap(), "elke maandag / whenever");
        let en = context! { _reader_language => "en", _reader_zone => "Europe/Amsterdam" };
        assert_eq!(t.render(&rule, &en).unwrap(), "every monday / whenever");
        assert_eq!(t.render(&tpl, &en).unwrap(), "Sun 01 Mar 18:05, Sunday  1 March, 100%");
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn unknown_filters_are_found_before_a_render_fails() {
        let mut t = Templates::new();
        let src = "{{ item.text | truncate(20) }} {{ 'a | b' | upper }} | plain | text {{ x | join_and }}";
        assert!(t.add(src).is_ok(), "minijinja compiles it; only rendering would fail");
        assert_eq!(t.unknown_filters(src, false), vec!["truncate".to_owned()]);
        assert_eq!(
            t.unknown_filters("vars.a | lenght > 2 or vars.b | length", true),
            vec!["lenght".to_owned()]
        );
        assert!(
            t.unknown_filters("{% if a or b %}{{ c | default('x|y') | lower }}{% endif %}", false)
                .is_empty()
        );
    }

    #[test]
    fn masks_name_the_roots_read() {
        let mut t = Templates::new();
        let e = t.add_expr("now >= '22'").unwrap();
        assert_eq!(t.mask_of_expr(&e), roots::NOW);
        // minijinja's analysis misses reads inside slices; the word scan catches them.
        let e = t.add_expr("now[11:13] | int >= 22").unwrap();
        assert_eq!(t.mask_of_expr(&e), roots::NOW);
        let x = t
            .add("Good night {{ member.name }}{{ ', late' if vars.late else '' }}")
            .unwrap();
        assert_eq!(t.mask_of_tpl(&x), roots::MEMBER | roots::VARS);
    }
}
