//! The compiled, validated flow set the engine runs.
//!
//! Produced only by `crate::check::load`, so every reference in here is known to
//! resolve: step targets are indices, templates are compiled, regexes are built. The
//! engine can therefore index without checks that could fail at run time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::Duration;
use chrono_tz::Tz;
use regex::{Regex, RegexSet};

pub use crate::member::Member;
use crate::model::{Audience, MessageKind, Role, TemplateParamType};
use crate::schedule::CronSchedule;
use crate::tmpl::{Expr, Templates, Tpl};
use crate::window::WindowPolicy;

/// A validated flow set plus its household: everything `handle` needs besides state.
#[derive(Debug)]
pub struct FlowSet {
    /// The household (members, templates, lists, collections).
    pub household: Household,
    /// Flows in load order (sorted by file path).
    pub flows: Vec<Flow>,
    /// Flow id → index in `flows`.
    pub flow_index: HashMap<String, usize>,
    /// Every message trigger, sorted by priority (highest first), then load order.
    pub triggers: Vec<RoutedTrigger>,
    /// All regex triggers at once, indexed like `regex_triggers` (None if the combined
    /// set exceeded its size limit; the engine then tries each regex in turn).
    pub regex_set: Option<RegexSet>,
    /// Index into `triggers` for each pattern in `regex_set`.
    pub regex_triggers: Vec<usize>,
    /// Compiled templates and expressions.
    pub templates: Templates,
    /// Hash of every source file: changes whenever any flow changes.
    pub version: String,
    /// Template values that never change for this flow set (members, household,
    /// generated help per language), built on first use by the engine.
    pub statics: std::sync::OnceLock<Statics>,
}

/// Template context values computed once per flow set instead of once per render.
#[derive(Debug, Default)]
pub struct Statics {
    /// `members`.
    pub members: minijinja::Value,
    /// `household`.
    pub household: minijinja::Value,
    /// `member` per member name.
    pub member_views: HashMap<String, minijinja::Value>,
    /// `flows` (visible flows and descriptions) per language and role.
    pub flows_by_language: HashMap<(String, Role), minijinja::Value>,
}

impl FlowSet {
    /// A flow by id.
    pub fn flow(&self, id: &str) -> Option<&Flow> {
        self.flow_index.get(id).map(|&i| &self.flows[i])
    }

    /// Members of `roster` a schedule trigger runs for (see `crate::roster::effective`).
    pub fn schedule_audience<'m>(&self, audience: Audience, roster: &'m [Member]) -> Vec<&'m Member> {
        roster
            .iter()
            .filter(|m| match audience {
                Audience::EachMember => true,
                Audience::Admins => m.role == Role::Admin,
                Audience::Adults => m.role != Role::Child,
            })
            .collect()
    }

    /// What one schedule trigger runs for the members in `roster`: one group, or with
    /// `timezone: member` one group per zone among its audience (sorted by zone name),
    /// each with its own slots.
    pub fn schedule_groups<'m>(&self, spec: &ScheduleSpec, roster: &'m [Member]) -> Vec<ScheduleGroup<'m>> {
        let members = self.schedule_audience(spec.audience, roster);
        if !spec.member_zone {
            return vec![ScheduleGroup {
                zone: None,
                cron: spec.cron.clone(),
                members,
            }];
        }
        let mut zones: BTreeMap<&str, Vec<&Member>> = BTreeMap::new();
        for m in members {
            zones.entry(m.timezone.name()).or_default().push(m);
        }
        zones
            .into_iter()
            .filter_map(|(zone, members)| {
                // The expression parsed in the household's zone and every member zone is
                // valid, so this only fails if that invariant breaks; then the group is dropped.
                let cron = CronSchedule::parse(spec.cron.expression(), zone).ok()?;
                Some(ScheduleGroup {
                    zone: Some(cron.timezone()),
                    cron,
                    members,
                })
            })
            .collect()
    }

    /// Every schedule trigger: (flow index, trigger index in the flow, schedule).
    pub fn schedules(&self) -> impl Iterator<Item = (usize, usize, &ScheduleSpec)> {
        self.flows
            .iter()
            .enumerate()
            .flat_map(|(fi, f)| f.schedules.iter().map(move |(ti, s)| (fi, *ti, s)))
    }
}

/// Household settings, compiled.
#[derive(Debug)]
pub struct Household {
    /// Display name.
    pub name: String,
    /// Time zone.
    pub timezone: Tz,
    /// Default language.
    pub language: String,
    /// Members in file order.
    pub members: Vec<Member>,
    /// Approved templates by name.
    pub templates: BTreeMap<String, TemplateInfo>,
    /// Declared list names.
    pub lists: HashSet<String>,
    /// Declared collections and their fields.
    pub collections: BTreeMap<String, Vec<String>>,
    /// Normalised cancel words.
    pub cancel_words: HashSet<String>,
    /// Reply after a cancel.
    pub cancel_reply: Text,
    /// The household's quiet hours (`None`: off).
    pub quiet_hours: Option<crate::quiet::QuietHours>,
    /// Members whose quiet hours differ from the household's, by name (`None`: off).
    pub member_quiet_hours: BTreeMap<String, Option<crate::quiet::QuietHours>>,
}

impl Household {
    /// The quiet hours of the member named `name`: their own, else the household's.
    pub fn quiet_hours_of(&self, name: &str) -> Option<crate::quiet::QuietHours> {
        match self.member_quiet_hours.get(name) {
            Some(own) => *own,
            None => self.quiet_hours,
        }
    }

    /// A member of `household.yaml` by name (case-insensitive). At run time use
    /// `crate::roster::effective`: an admin may have changed the members since.
    pub fn member(&self, name: &str) -> Option<&Member> {
        crate::member::find(&self.members, name)
    }

    /// A member of `household.yaml` by phone number (digits only compared) or WhatsApp
    /// user id. At run time use `crate::roster::find_by_address` on the effective roster.
    pub fn member_by_address(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<&Member> {
        crate::member::find_by_address(&self.members, wa_id, user_id)
    }
}

/// An approved template.
#[derive(Debug, Clone)]
pub struct TemplateInfo {
    /// Name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Parameter types in order.
    pub params: Vec<TemplateParamType>,
}

/// A text in one or more languages.
#[derive(Debug, Clone)]
pub struct Text {
    /// (language, template); the first is the default.
    pub variants: Vec<(String, Tpl)>,
}

impl Text {
    /// A literal text in any language.
    pub fn literal(s: &str) -> Self {
        Text {
            variants: vec![(String::new(), Tpl::Lit(s.to_owned()))],
        }
    }

    /// The template for a language, falling back to `fallback`, then the first.
    pub fn pick(&self, lang: &str, fallback: &str) -> &Tpl {
        self.variants
            .iter()
            .find(|(l, _)| l == lang)
            .or_else(|| self.variants.iter().find(|(l, _)| l == fallback))
            .map_or(&self.variants[0].1, |(_, t)| t)
    }
}

/// A message trigger in routing order.
#[derive(Debug)]
pub struct RoutedTrigger {
    /// Flow index.
    pub flow: usize,
    /// Flow id (shared, for traces).
    pub flow_id: Arc<str>,
    /// Index in the flow's `triggers`.
    pub index: usize,
    /// Effective priority.
    pub priority: i32,
    /// What it matches.
    pub matcher: Matcher,
    /// Step index to start at.
    pub start: usize,
    /// Extra condition.
    pub when: Option<Expr>,
    /// Allowed roles (empty = all).
    pub roles: Vec<Role>,
    /// Whether the flow may interrupt a waiting one.
    pub interruptible: bool,
}

/// What a trigger matches.
#[derive(Debug)]
pub enum Matcher {
    /// Normalised whole-message keywords.
    Keywords(HashSet<String>),
    /// Regex over the trimmed text (position in `FlowSet::regex_set` kept for captures).
    Regex(Regex),
    /// Reply ids / quick-reply payloads.
    Reply(HashSet<String>),
    /// A message kind.
    Kind(MessageKind),
    /// Any text nothing else matched.
    Fallback,
}

/// The members one schedule trigger runs for in one zone, with its slots there.
#[derive(Debug, Clone)]
pub struct ScheduleGroup<'a> {
    /// The member zone for `timezone: member`; `None` for a schedule with one zone.
    pub zone: Option<Tz>,
    /// The schedule in that zone.
    pub cron: CronSchedule,
    /// Members in the audience (and zone); role and `when` are checked by the engine.
    pub members: Vec<&'a Member>,
}

/// A schedule trigger.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// The cron schedule with its zone.
    pub cron: CronSchedule,
    /// Who it runs for.
    pub audience: Audience,
    /// Step index to start at.
    pub start: usize,
    /// Per-member condition (e.g. an opt-in); false skips that member.
    pub when: Option<Expr>,
    /// Roles the schedule runs for (empty = all in the audience).
    pub roles: Vec<Role>,
    /// `timezone: member`: slots are wall-clock times in each member's own zone, so the
    /// scheduler evaluates `cron`'s expression once per zone of the audience.
    pub member_zone: bool,
    /// Catch-up after downtime.
    pub policy: crate::schedule::SlotPolicy,
    /// A slot due while the previous one still runs.
    pub overlap: crate::model::Overlap,
}

/// One compiled flow.
#[derive(Debug)]
pub struct Flow {
    /// Id.
    pub id: String,
    /// Source file.
    pub file: String,
    /// One-line description.
    pub description: Option<Text>,
    /// May interrupt a waiting flow.
    pub interruptible: bool,
    /// Hidden from help.
    pub hidden: bool,
    /// Default policy for sends outside the 24-hour window, if the flow declares one.
    pub outside_window: Option<WindowPolicy>,
    /// Idle expiry.
    pub expires_after: Duration,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Step id → index.
    pub step_index: HashMap<String, usize>,
    /// Schedule triggers: (trigger index, spec).
    pub schedules: Vec<(usize, ScheduleSpec)>,
    /// Content hash of the file.
    pub version: String,
}

/// Where control goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A step index.
    Step(usize),
    /// End of the flow.
    End,
}

/// How a step continues.
#[derive(Debug)]
pub enum Next {
    /// Unconditionally.
    To(Target),
    /// First branch whose condition holds, else the last target.
    Branches(Vec<(Expr, Target)>, Target),
}

/// One compiled step.
#[derive(Debug)]
pub struct Step {
    /// Id.
    pub id: String,
    /// What it does.
    pub action: Action,
    /// Where it goes after.
    pub next: Next,
}

/// A recipient selector.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// The member of the conversation.
    Current,
    /// Every other member.
    Others,
    /// Every admin.
    Admins,
    /// Every adult and admin.
    Adults,
    /// Everyone.
    Everyone,
    /// A member named by a template.
    Named(Tpl),
    /// Every member in a list computed by an expression (`to_members`): names, or maps
    /// with a `name` (such as `members`). Duplicates are sent once.
    Members(Expr),
}

/// Reply options: fixed, or generated from data.
#[derive(Debug)]
pub enum Options {
    /// None.
    None,
    /// Fixed buttons: (id, title).
    Buttons(Vec<(String, Text)>),
    /// Buttons generated from an expression.
    ButtonsFrom {
        /// List expression.
        each: Expr,
        /// Id template (with `item`).
        id: Tpl,
        /// Title template (with `item`).
        title: Tpl,
    },
    /// A list menu.
    List {
        /// Button label.
        button: Text,
        /// Sections: (title, rows of (id, title, description)).
        sections: Vec<SectionSpec>,
    },
}

/// A list row: (id, title, description).
pub type RowSpec = (String, Text, Option<Text>);
/// A list section: (title, rows).
pub type SectionSpec = (Option<Text>, Vec<RowSpec>);

/// A message to send.
#[derive(Debug)]
pub struct SendSpec {
    /// Body.
    pub text: Option<Text>,
    /// Options.
    pub options: Options,
    /// Footer.
    pub footer: Option<Text>,
    /// Template to send instead of text.
    pub template: Option<(String, Vec<Tpl>)>,
    /// Template sent instead when the recipient's 24-hour window is closed.
    pub fallback: Option<(String, Vec<Tpl>)>,
    /// Policy without a fallback outside the window, if the send declares one
    /// (else the flow's applies).
    pub outside_window: Option<WindowPolicy>,
    /// Recipient(s).
    pub to: Recipient,
}

/// How an answer is validated.
#[derive(Debug)]
pub enum Validator {
    /// Anything non-empty.
    Any,
    /// One of these normalised values → canonical value.
    Choice(Vec<(String, String)>),
    /// Must match.
    Regex(Regex),
    /// A number within bounds.
    Number(Option<f64>, Option<f64>),
    /// A date/time, read in the zone of the member the template names (default: the one answering).
    DateTime(Option<Tpl>),
    /// A duration.
    Duration,
    /// A member name.
    Member,
    /// Yes or no.
    YesNo,
    /// One or more member names (a list).
    Members,
    /// A recurrence rule, or none.
    Recurrence,
    /// A phone number, normalised to E.164.
    Phone,
    /// An IANA time zone.
    Timezone,
}

/// A question.
#[derive(Debug)]
pub struct AskSpec {
    /// Slot name.
    pub slot: String,
    /// The question message.
    pub prompt: SendSpec,
    /// Validation.
    pub validator: Validator,
    /// Re-prompt text.
    pub reprompt: Option<Text>,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Step after giving up.
    pub on_fail: Option<Target>,
    /// Idle timeout and where it goes.
    pub timeout: Option<(Duration, Target)>,
    /// An answer that may already be known; asked only if it does not validate.
    pub prefill: Option<Tpl>,
}

/// Record selection.
#[derive(Debug)]
pub struct Select {
    /// Collection.
    pub collection: String,
    /// Id template.
    pub id: Option<Tpl>,
    /// Per-record condition.
    pub filter: Option<Expr>,
    /// Variable to store the result in.
    pub into: Option<String>,
}

/// What a step does.
#[derive(Debug)]
pub enum Action {
    /// Nothing (a jump).
    Nothing,
    /// Send.
    Send(SendSpec),
    /// Ask and wait.
    Ask(Box<AskSpec>),
    /// Set variables.
    Set(Vec<(String, Expr)>),
    /// Branch on a value.
    Switch {
        /// The value.
        on: Expr,
        /// (value, target).
        cases: Vec<(String, Target)>,
        /// When no case equals.
        default: Target,
    },
    /// Call a flow and come back.
    Call(usize),
    /// Continue in another flow.
    Goto(usize),
    /// End.
    End,
    /// Add parsed items.
    ListAdd {
        /// List.
        list: String,
        /// Items text.
        items: Tpl,
    },
    /// Remove parsed items.
    ListRemove {
        /// List.
        list: String,
        /// Items text.
        items: Tpl,
    },
    /// Clear a list.
    ListClear(String),
    /// Create a record.
    RecordCreate {
        /// Collection.
        collection: String,
        /// Field expressions.
        fields: Vec<(String, Expr)>,
        /// Variable for the new record.
        into: Option<String>,
    },
    /// Update records.
    RecordUpdate {
        /// Selection.
        select: Select,
        /// Field expressions.
        fields: Vec<(String, Expr)>,
    },
    /// Delete records.
    RecordDelete(Select),
    /// Query records.
    RecordQuery(Select),
    /// Start a timer.
    TimerStart(Box<TimerStartSpec>),
    /// Cancel a timer.
    TimerCancel(Tpl),
    /// Add or change a member.
    MemberSet(Box<MemberSetSpec>),
    /// Remove a member.
    MemberRemove(Box<MemberRemoveSpec>),
}

/// A member to add or change; `None` fields are left as they are (or defaulted).
#[derive(Debug)]
pub struct MemberSetSpec {
    /// Name template.
    pub name: Tpl,
    /// Phone template.
    pub phone: Option<Tpl>,
    /// Role template.
    pub role: Option<Tpl>,
    /// Time zone template.
    pub timezone: Option<Tpl>,
    /// Language template.
    pub language: Option<Tpl>,
    /// Where a refusal goes (else: say why and end).
    pub on_error: Option<Target>,
    /// Variable for the saved member.
    pub into: Option<String>,
}

/// A member to remove.
#[derive(Debug)]
pub struct MemberRemoveSpec {
    /// Name template.
    pub name: Tpl,
    /// Where a refusal goes (else: say why and end).
    pub on_error: Option<Target>,
    /// Variable for the removed member.
    pub into: Option<String>,
}

/// A timer to start.
#[derive(Debug)]
pub struct TimerStartSpec {
    /// Id template.
    pub id: Tpl,
    /// When: absolute (template) or after a duration (template).
    pub at: Option<Tpl>,
    /// Relative duration template.
    pub after: Option<Tpl>,
    /// Flow index to run.
    pub flow: usize,
    /// Step index to run.
    pub step: usize,
    /// Member template.
    pub member: Option<Tpl>,
    /// Values passed along.
    pub data: Vec<(String, Tpl)>,
    /// Fires in quiet hours too.
    pub urgent: bool,
    /// One timer per element of this list (`item` in the templates); none: one timer.
    pub each: Option<Expr>,
}
