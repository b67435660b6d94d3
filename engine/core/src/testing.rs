//! Conversation tests (`alfred test`): YAML cases that play a conversation on a
//! virtual clock and check every message Alfred sends, the household data and the
//! conversation state.
//!
//! Every message Alfred sends must be matched by a `bot:` expectation, in order: a
//! message nobody expected fails the case. That keeps tests honest: a flow that starts
//! saying something extra breaks its tests.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::check::{SourceFile, parse_yaml};
use crate::data::{DataChange, HouseholdData, ListItem, Record};
use crate::diag::Diagnostic;
use crate::event::{InboundMessage, OutMessage, Outbound};
use crate::flow::FlowSet;
use crate::model::{MessageKind, OneOrMany, Sp};
use crate::parse::{item_key, parse_duration, parse_items, resolve_local};
use crate::sim::{Produced, Simulator};

/// A test file: `tests:` with cases.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The cases.
    pub tests: Vec<TestCase>,
}

/// One conversation test.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Name shown in the results.
    pub name: Sp<String>,
    /// Start time, e.g. `2026-03-02 08:00 Europe/Amsterdam` (default: Monday 2026-01-05 09:00 in the household's zone).
    pub at: Option<String>,
    /// Default member for `user:` and `tap:` (default: the first member).
    #[serde(rename = "as")]
    pub member: Option<String>,
    /// Household data before the conversation.
    #[serde(default)]
    pub data: DataFixture,
    /// Start with every member's 24-hour window closed (nobody wrote in the last day);
    /// default: every member has just written.
    #[serde(default)]
    pub window_closed: bool,
    /// The conversation.
    pub steps: Vec<Sp<TestStep>>,
}

/// Data fixtures: list items (as typed, e.g. "2 bread") and records.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataFixture {
    /// List name → items.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// Collection name → records (field → value).
    #[serde(default)]
    pub records: BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>>,
}

/// One step of a conversation test. Give exactly one of the actions or checks.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestStep {
    /// The member types this text.
    pub user: Option<String>,
    /// Who acts in this step (default: the case's member).
    #[serde(rename = "as")]
    pub member: Option<String>,
    /// Tap a button or list row (by title or id) of the last message to this member.
    pub tap: Option<String>,
    /// Send a non-text message, e.g. `{kind: image}`.
    pub message: Option<MessageFixture>,
    /// Expect the next message Alfred sent.
    pub bot: Option<BotExpect>,
    /// Expect that Alfred sent nothing more.
    pub no_bot: Option<bool>,
    /// Expect a flow error whose text contains this.
    pub error: Option<String>,
    /// Expect list contents exactly, as "name" or "2 name".
    pub list: Option<BTreeMap<String, Vec<String>>>,
    /// Expect the members in effect (after changes over chat), in order, each as
    /// "Name (role, Time/Zone)".
    pub members: Option<Vec<String>>,
    /// Expect records: each expected record's fields must equal the actual one's, in order.
    pub records: Option<BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>>>,
    /// Move the virtual clock forward (e.g. `2h`), firing due timers and schedules.
    pub advance: Option<String>,
    /// Move the virtual clock to a time (e.g. `2026-03-03 07:00`), firing what is due.
    pub at: Option<String>,
    /// Expect the member's conversation state.
    pub state: Option<StateExpect>,
    /// Expect pending timer ids (exactly).
    pub timers: Option<Vec<String>>,
    /// Expect that the trace of the last event contains this text.
    pub trace: Option<String>,
}

/// A non-text message in a test.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageFixture {
    /// Kind (image, audio, location, …).
    pub kind: MessageKind,
    /// Caption or text.
    pub text: Option<String>,
    /// Reply id (for `kind: reply`, e.g. a template quick-reply payload).
    pub reply_id: Option<String>,
}

/// What the next bot message must be. A plain string means exact text.
#[derive(Clone, Debug, Default, JsonSchema)]
pub struct BotExpect {
    /// Exact body.
    pub text: Option<String>,
    /// Body contains all of these.
    pub contains: Option<OneOrMany>,
    /// Body matches this regex.
    pub regex: Option<String>,
    /// Button (or list row) titles, exactly and in order.
    pub buttons: Option<Vec<String>>,
    /// Recipient (default: the acting member).
    pub to: Option<String>,
    /// A template send with this name.
    pub template: Option<String>,
    /// The template's parameters.
    pub params: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BotExpectShadow {
    text: Option<String>,
    contains: Option<OneOrMany>,
    regex: Option<String>,
    buttons: Option<Vec<String>>,
    to: Option<String>,
    template: Option<String>,
    params: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for BotExpect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BotExpect;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the exact text, or a map with text/contains/regex/buttons/to/template/params")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BotExpect, E> {
                Ok(BotExpect {
                    text: Some(v.to_owned()),
                    ..Default::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<BotExpect, A::Error> {
                let s = BotExpectShadow::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(BotExpect {
                    text: s.text,
                    contains: s.contains,
                    regex: s.regex,
                    buttons: s.buttons,
                    to: s.to,
                    template: s.template,
                    params: s.params,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Expected conversation state.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateExpect {
    /// Active flow (or absent for idle).
    pub flow: Option<String>,
    /// Current step.
    pub step: Option<String>,
    /// Expect no active flow.
    pub idle: Option<bool>,
}

/// The result of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    /// Test file path.
    pub file: String,
    /// Case name.
    pub name: String,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// Parses a test file.
#[allow(clippy::result_large_err)] // a cold path, see `check::parse_yaml`
pub fn parse_test_file(file: &SourceFile) -> Result<TestFile, Diagnostic> {
    parse_yaml::<TestFile>(file)
}

/// Runs every case of a parsed test file.
pub fn run_file(flows: &FlowSet, path: &str, file: &TestFile) -> Vec<CaseResult> {
    file.tests
        .iter()
        .map(|case| CaseResult {
            file: path.to_owned(),
            name: case.name.value.clone(),
            failure: run_case(flows, case).err(),
        })
        .collect()
}

/// Parses a test time: RFC 3339, or `YYYY-MM-DD HH:MM[:SS] [Zone/Name]` (default zone `tz`).
pub fn parse_test_time(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Ok(dt.with_timezone(&Utc));
    }
    let (when, zone) = match text.rsplit_once(' ') {
        Some((w, z)) if z.contains('/') || z == "UTC" => {
            (w, z.parse::<Tz>().map_err(|_| format!("unknown time zone `{z}`"))?)
        }
        _ => (text, tz),
    };
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(when, f).ok())
    .ok_or_else(|| format!("`{text}` is not a time; write e.g. `2026-03-02 08:00 Europe/Amsterdam`"))?;
    Ok(resolve_local(naive, zone))
}

fn fixture_data(flows: &FlowSet, f: &DataFixture, now: DateTime<Utc>, by: &str) -> HouseholdData {
    let mut data = HouseholdData::default();
    for (list, items) in &f.lists {
        data.lists.entry(list.clone()).or_default();
        for text in items {
            for p in parse_items(text) {
                let key = item_key(&p.name);
                let qty = data.list(list).iter().find(|i| i.key == key).map_or(0, |i| i.qty) + p.qty;
                data.apply(&DataChange::ListPut {
                    list: list.clone(),
                    item: ListItem {
                        key,
                        name: p.name,
                        qty,
                        added_by: by.to_owned(),
                        added_at: now,
                    },
                });
            }
        }
    }
    for (coll, recs) in &f.records {
        for fields in recs {
            let mut fields = fields.clone();
            let id = match fields.remove("id") {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => data.next_record_id(coll),
            };
            let created_by = match fields.remove("created_by") {
                Some(serde_json::Value::String(s)) => s,
                _ => by.to_owned(),
            };
            let record = Record {
                id,
                fields,
                created_by,
                created_at: now,
                updated_at: now,
            };
            data.apply(&DataChange::RecordPut {
                collection: coll.clone(),
                record,
            });
        }
    }
    let _ = flows;
    data
}

fn describe(p: &Produced) -> String {
    match p {
        Produced::Error(e) => format!("(flow error) {e}"),
        Produced::Message(o) => describe_out(o),
    }
}

fn describe_out(o: &Outbound) -> String {
    let mut s = format!("to {}: {}", o.to, o.message.body());
    let choices = o.message.choices();
    if !choices.is_empty() {
        let titles: Vec<&str> = choices.iter().map(|c| c.title.as_str()).collect();
        let _ = write!(s, " [{}]", titles.join(" | "));
    }
    s
}

/// Plays one case; `Err` holds a readable explanation of the first failure.
pub fn run_case(flows: &FlowSet, case: &TestCase) -> Result<(), String> {
    let tz = flows.household.timezone;
    let start = match &case.at {
        Some(a) => parse_test_time(a, tz)?,
        None => tz
            .with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
            .single()
            .map(|d| d.with_timezone(&Utc))
            .ok_or("bad default start")?,
    };
    let default_member = match &case.member {
        Some(m) => flows
            .household
            .member(m)
            .map(|m| m.name.clone())
            .ok_or_else(|| format!("unknown member `{m}` in `as:`"))?,
        None => flows
            .household
            .members
            .first()
            .map(|m| m.name.clone())
            .ok_or("the household has no members")?,
    };
    let data = fixture_data(flows, &case.data, start, &default_member);
    let mut sim = Simulator::new(flows, start, data);
    if case.window_closed {
        sim.close_windows();
    }
    let mut pending: VecDeque<Produced> = VecDeque::new();
    // Last message with options per member, for `tap:`.
    let mut last_options: BTreeMap<String, OutMessage> = BTreeMap::new();

    for (n, step) in case.steps.iter().enumerate() {
        let at = |msg: String| format!("step {} (line {}): {msg}", n + 1, step.pos.line);
        let s = &step.value;
        let actor = match &s.member {
            // Members added over chat earlier in the test can act too, and removed ones
            // still can try (Alfred then ignores them).
            Some(m) => crate::roster::find(crate::roster::effective(&flows.household, &sim.data), m)
                .or_else(|| flows.household.member(m))
                .map(|m| m.name.clone())
                .ok_or_else(|| at(format!("unknown member `{m}`")))?,
            None => default_member.clone(),
        };
        let given = [
            s.user.is_some(),
            s.tap.is_some(),
            s.message.is_some(),
            s.bot.is_some(),
            s.no_bot.is_some(),
            s.error.is_some(),
            s.list.is_some(),
            s.members.is_some(),
            s.records.is_some(),
            s.advance.is_some(),
            s.at.is_some(),
            s.state.is_some(),
            s.timers.is_some(),
            s.trace.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given > 1 {
            return Err(at(format!(
                "a step does one thing; this one has {given} (split it into several steps)"
            )));
        }
        let is_input =
            s.user.is_some() || s.tap.is_some() || s.message.is_some() || s.advance.is_some() || s.at.is_some();
        if is_input && !pending.is_empty() {
            let list: Vec<String> = pending.iter().map(|p| format!("  {}", describe(p))).collect();
            return Err(at(format!(
                "Alfred sent messages that no `bot:` expected:\n{}",
                list.join("\n")
            )));
        }
        let produced = if let Some(text) = &s.user {
            Some(sim.send(&actor, InboundMessage::text(text.clone())))
        } else if let Some(tap) = &s.tap {
            let msg = last_options
                .get(&actor)
                .ok_or_else(|| at(format!("`tap: {tap}`, but {actor} was offered no buttons")))?;
            let choice = msg
                .choices()
                .into_iter()
                .find(|c| c.title.eq_ignore_ascii_case(tap) || c.id == *tap)
                .cloned()
                .ok_or_else(|| {
                    let titles: Vec<String> = msg.choices().iter().map(|c| c.title.clone()).collect();
                    at(format!("no option `{tap}`; offered: {}", titles.join(", ")))
                })?;
            Some(sim.send(&actor, InboundMessage::reply(choice.id, choice.title)))
        } else if let Some(m) = &s.message {
            let msg = InboundMessage {
                kind: Some(m.kind),
                text: m.text.clone(),
                reply_id: m.reply_id.clone(),
                reply_title: None,
                ..Default::default()
            };
            Some(sim.send(&actor, msg))
        } else if let Some(d) = &s.advance {
            let d = parse_duration(d).map_err(|e| at(format!("bad `advance`: {e}")))?;
            let to = sim.now + d;
            Some(sim.advance_to(to))
        } else if let Some(t) = &s.at {
            let to = parse_test_time(t, tz).map_err(&at)?;
            if to < sim.now {
                return Err(at(format!(
                    "`at: {t}` is before the virtual clock ({})",
                    sim.now.with_timezone(&tz)
                )));
            }
            Some(sim.advance_to(to))
        } else {
            None
        };
        if let Some(produced) = produced {
            for p in &produced {
                if let Produced::Message(o) = p
                    && !o.message.choices().is_empty()
                {
                    last_options.insert(o.to.clone(), o.message.clone());
                }
            }
            pending.extend(produced);
            continue;
        }
        if let Some(expect) = &s.bot {
            let got = pending.pop_front().ok_or_else(|| {
                at(format!(
                    "expected a message from Alfred, got none\n  expected: {}",
                    expect_text(expect)
                ))
            })?;
            check_bot(expect, &got, &actor).map_err(&at)?;
        } else if s.no_bot == Some(true) {
            if let Some(p) = pending.front() {
                return Err(at(format!("expected no more messages, got: {}", describe(p))));
            }
        } else if let Some(e) = &s.error {
            match pending.pop_front() {
                Some(Produced::Error(msg)) if msg.contains(e.as_str()) => {}
                other => {
                    return Err(at(format!(
                        "expected a flow error containing `{e}`, got {}",
                        other.map_or("nothing".to_owned(), |p| describe(&p))
                    )));
                }
            }
        } else if let Some(lists) = &s.list {
            for (name, expected) in lists {
                let actual: Vec<String> = sim
                    .data
                    .list(name)
                    .iter()
                    .map(|i| {
                        if i.qty == 1 {
                            i.name.clone()
                        } else {
                            format!("{} {}", i.qty, i.name)
                        }
                    })
                    .collect();
                if &actual != expected {
                    return Err(at(format!("list `{name}` differs\n{}", diff_lines(expected, &actual))));
                }
            }
        } else if let Some(expected) = &s.members {
            let actual: Vec<String> = crate::roster::effective(&flows.household, &sim.data)
                .iter()
                .map(|m| format!("{} ({}, {})", m.name, m.role.as_str(), m.timezone.name()))
                .collect();
            if &actual != expected {
                return Err(at(format!("the members differ\n{}", diff_lines(expected, &actual))));
            }
        } else if let Some(recs) = &s.records {
            for (coll, expected) in recs {
                let actual = sim.data.collection(coll);
                if actual.len() != expected.len() {
                    return Err(at(format!(
                        "collection `{coll}` has {} record(s), expected {}\n  actual: {}",
                        actual.len(),
                        expected.len(),
                        serde_json::to_string(&actual.iter().map(|r| &r.fields).collect::<Vec<_>>())
                            .unwrap_or_default()
                    )));
                }
                for (i, (exp, act)) in expected.iter().zip(actual).enumerate() {
                    for (k, v) in exp {
                        let got = match k.as_str() {
                            "id" => Some(serde_json::Value::String(act.id.clone())),
                            "created_by" => Some(serde_json::Value::String(act.created_by.clone())),
                            _ => act.fields.get(k).cloned(),
                        };
                        if got.as_ref() != Some(v) {
                            return Err(at(format!(
                                "record #{} of `{coll}`: field `{k}` is {}, expected {v}",
                                i + 1,
                                got.map_or("missing".to_owned(), |g| g.to_string())
                            )));
                        }
                    }
                }
            }
        } else if let Some(st) = &s.state {
            let state = sim.states.get(&actor).cloned().unwrap_or_default();
            let top = state.frames.last();
            if st.idle == Some(true) && top.is_some() {
                return Err(at(format!(
                    "expected no active flow, but `{}` is at `{}`",
                    top.map_or("", |f| &f.flow),
                    top.map_or("", |f| &f.step)
                )));
            }
            if let Some(f) = &st.flow
                && top.map(|t| &t.flow) != Some(f)
            {
                return Err(at(format!(
                    "expected flow `{f}`, actual {}",
                    top.map_or("idle".to_owned(), |t| format!("`{}`", t.flow))
                )));
            }
            if let Some(stp) = &st.step
                && top.map(|t| &t.step) != Some(stp)
            {
                return Err(at(format!(
                    "expected step `{stp}`, actual {}",
                    top.map_or("idle".to_owned(), |t| format!("`{}`", t.step))
                )));
            }
        } else if let Some(expected) = &s.timers {
            let mut actual: Vec<String> = sim.timers.keys().cloned().collect();
            let mut exp = expected.clone();
            actual.sort();
            exp.sort();
            if actual != exp {
                return Err(at(format!("pending timers differ\n{}", diff_lines(&exp, &actual))));
            }
        } else if let Some(needle) = &s.trace {
            let lines: Vec<String> = sim.last_trace.iter().map(|(m, t)| format!("{m}: {t}")).collect();
            if !lines.iter().any(|l| l.contains(needle.as_str())) {
                return Err(at(format!(
                    "trace does not mention `{needle}`; trace:\n  {}",
                    lines.join("\n  ")
                )));
            }
        } else {
            return Err(at("step has nothing to do: give one of user, tap, message, bot, no_bot, error, list, records, advance, at, state, timers, trace".to_owned()));
        }
    }
    if let Some(p) = pending.front() {
        let list: Vec<String> = pending.iter().map(|p| format!("  {}", describe(p))).collect();
        let _ = p;
        return Err(format!(
            "after the last step, Alfred sent messages that no `bot:` expected:\n{}",
            list.join("\n")
        ));
    }
    Ok(())
}

fn expect_text(e: &BotExpect) -> String {
    if let Some(t) = &e.text {
        return format!("{t:?}");
    }
    if let Some(c) = &e.contains {
        return format!("contains {:?}", c.0);
    }
    if let Some(r) = &e.regex {
        return format!("matches /{r}/");
    }
    if let Some(t) = &e.template {
        return format!("template {t}");
    }
    "a message".to_owned()
}

fn check_bot(e: &BotExpect, got: &Produced, actor: &str) -> Result<(), String> {
    let o = match got {
        Produced::Message(o) => o,
        Produced::Error(err) => return Err(format!("expected a message, but the flow failed: {err}")),
    };
    let to = e.to.as_deref().unwrap_or(actor);
    if !o.to.eq_ignore_ascii_case(to) {
        return Err(format!("expected a message to {to}, got {}", describe_out(o)));
    }
    if let Some(name) = &e.template {
        match &o.message {
            OutMessage::Template { name: n, params, .. } => {
                if n != name {
                    return Err(format!("expected template `{name}`, got template `{n}`"));
                }
                if let Some(ps) = &e.params
                    && ps != params
                {
                    return Err(format!("template parameters differ\n{}", diff_lines(ps, params)));
                }
            }
            _ => return Err(format!("expected template `{name}`, got {}", describe_out(o))),
        }
        return Ok(());
    }
    let body = o.message.body();
    if let Some(t) = &e.text
        && &body != t
    {
        return Err(format!(
            "message text differs\n{}",
            diff_lines(&lines(t), &lines(&body))
        ));
    }
    if let Some(c) = &e.contains {
        for needle in &c.0 {
            if !body.contains(needle.as_str()) {
                return Err(format!("message does not contain {needle:?}\n  actual: {body:?}"));
            }
        }
    }
    if let Some(r) = &e.regex {
        let re = Regex::new(r).map_err(|err| format!("bad regex in test: {err}"))?;
        if !re.is_match(&body) {
            return Err(format!("message does not match /{r}/\n  actual: {body:?}"));
        }
    }
    if let Some(bs) = &e.buttons {
        let titles: Vec<String> = o.message.choices().iter().map(|c| c.title.clone()).collect();
        if &titles != bs {
            return Err(format!("buttons differ\n{}", diff_lines(bs, &titles)));
        }
    } else if !o.message.choices().is_empty() && e.text.is_some() {
        // Exact expectations must mention buttons too, so changes to options are noticed.
        let titles: Vec<String> = o.message.choices().iter().map(|c| c.title.clone()).collect();
        return Err(format!(
            "message has options [{}]; add `buttons:` to the expectation",
            titles.join(", ")
        ));
    }
    Ok(())
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_owned).collect()
}

/// A line diff (longest common subsequence): `-` expected only, `+` actual only,
/// unchanged lines indented. Inputs are small (a message, a list), so O(n·m) is fine.
pub fn diff_lines(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            let _ = writeln!(out, "    {}", expected[i]);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "  + {}", actual[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "  - {}", expected[i]);
            i += 1;
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::diff_lines;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn an_inserted_line_shows_as_one_addition() {
        assert_eq!(
            diff_lines(&v(&["a", "b", "c"]), &v(&["a", "x", "b", "c"])),
            "    a\n  + x\n    b\n    c"
        );
        assert_eq!(diff_lines(&v(&["a", "b"]), &v(&["a", "c"])), "    a\n  + c\n  - b");
    }
}
