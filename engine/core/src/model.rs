//! The YAML model: what admins write in `flows/*.yaml` and `household.yaml`.
//!
//! These types mirror the files one to one and carry source positions (`Sp<T>`) where a
//! later semantic check may need to point at them. They are deliberately "loose" (many
//! `Option`s instead of enums) so that a typo or a missing key becomes a precise
//! diagnostic from the checker instead of an opaque serde error. The checker
//! (`crate::check`) turns them into the compiled, validated `crate::flow` types.
//!
//! The same types generate the JSON Schema in `schema/` (editor support), so every
//! field's doc comment is also the hover text an admin sees.

use std::borrow::Cow;
use std::collections::BTreeMap;

use indexmap::IndexMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A line and column in a source file, 1-based. `0` means "unknown".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

/// A value together with where it was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Where it was written (the start of the YAML node).
    pub pos: Pos,
}

impl<T> Sp<T> {
    /// A value with no known position (used for built-in defaults).
    pub fn unplaced(value: T) -> Self {
        Sp {
            value,
            pos: Pos::default(),
        }
    }
}

impl<T> std::ops::Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde-saphyr recognises its own `Spanned` and fills in the location; we copy
        // it into our own type so that the rest of the core does not depend on it.
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let loc = s.referenced;
        Ok(Sp {
            value: s.value,
            pos: Pos {
                line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
                col: u32::try_from(loc.column()).unwrap_or(u32::MAX),
            },
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// Text shown to a member: one string, or one string per language code (`en`, `nl`, `de`).
///
/// The member's language is chosen, then the household's, then the first one written.
#[derive(Clone, Debug, PartialEq)]
pub enum Text {
    /// The same text for every language.
    One(String),
    /// Language code → text, in the order written (the first is the fallback), each
    /// with its own position for diagnostics.
    PerLanguage(IndexMap<String, Sp<String>>),
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A minijinja template, or a map of language code to template (e.g. `en:`, `nl:`).",
            "anyOf": [
                { "type": "string" },
                { "type": "object", "additionalProperties": { "type": "string" } }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text, or a map of language code to text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text::One(v))
            }
            // Numbers and booleans are accepted as text ("send: 42") rather than rejected.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text::One(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text::One(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text::One(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text::One(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
                let m = IndexMap::<String, Sp<String>>::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Text::PerLanguage(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// Implements `Deserialize` for a struct that may also be written as a single string
/// (the string fills the named field), keeping serde-saphyr's positions for nested values.
macro_rules! string_or_struct {
    ($ty:ident, $shadow:ident, $field:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty {
                            $field: Some(Sp::unplaced(v.to_owned().into())),
                            ..Default::default()
                        })
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        let s = $shadow::deserialize(de::value::MapAccessDeserializer::new(map))?;
                        Ok(s.into())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// A list that may be written as one bare value: `keywords: list` or `keywords: [list, shopping]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OneOrMany(pub Vec<String>);

impl JsonSchema for OneOrMany {
    fn schema_name() -> Cow<'static, str> {
        "OneOrMany".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<ScalarString>()? {
                    out.push(s.0);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar read as a string (so `keywords: [yes, 1]` works without quoting).
struct ScalarString(String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).and_then(|t| match t {
            Text::One(s) => Ok(ScalarString(s)),
            Text::PerLanguage(_) => Err(de::Error::custom("expected a string, found a map")),
        })
    }
}

// ---------------------------------------------------------------------------------------
// household.yaml
// ---------------------------------------------------------------------------------------

/// `household.yaml`: who lives here, where, and what Alfred may send proactively.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdFile {
    /// The household itself.
    pub household: HouseholdInfo,
    /// Family members. Only members can talk to Alfred.
    #[serde(default)]
    pub members: Vec<MemberDef>,
    /// WhatsApp message templates approved by Meta, needed for proactive messages
    /// outside the 24-hour window. Sends of templates are checked against these.
    #[serde(default)]
    pub templates: Vec<TemplateDef>,
    /// Named lists (e.g. `shopping`). Each item remembers who added it and when.
    #[serde(default)]
    pub lists: Vec<Sp<String>>,
    /// Named record collections (e.g. `chores`) and their fields.
    #[serde(default)]
    pub collections: BTreeMap<String, CollectionDef>,
    /// Words that cancel whatever Alfred is asking, in any flow. Default: `cancel`, `stop`.
    pub cancel_words: Option<Sp<OneOrMany>>,
    /// What Alfred says after a cancel.
    pub cancel_reply: Option<Sp<Text>>,
}

/// Name, time zone and language of the household.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdInfo {
    /// Display name, e.g. "The Jansens".
    pub name: String,
    /// IANA time zone, e.g. `Europe/Amsterdam`.
    pub timezone: Sp<String>,
    /// Default language code, e.g. `en`.
    #[serde(default = "default_language")]
    pub language: String,
    /// When Alfred does not start talking, in each member's own zone: a span like
    /// `"22:00-07:00"` (the default), or `off`. Timers that are not `urgent` wait until it ends.
    pub quiet_hours: Option<Sp<String>>,
}

fn default_language() -> String {
    "en".to_owned()
}

/// A member's role: what they may do.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May change the household and everyone's data.
    Admin,
    /// A grown-up member.
    Adult,
    /// A child: may only act on their own things where flows say so.
    Child,
}

impl Role {
    /// The lowercase name used in templates and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Adult => "adult",
            Role::Child => "child",
        }
    }
}

/// One family member.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberDef {
    /// The name Alfred uses (unique in the household).
    pub name: Sp<String>,
    /// Phone number in E.164, e.g. `+31612345678`.
    pub phone: Option<Sp<String>>,
    /// WhatsApp business-scoped user id (`CC.<digits>`), for members without a known phone.
    pub user_id: Option<Sp<String>>,
    /// Role; default `adult`.
    #[serde(default = "default_role")]
    pub role: Role,
    /// IANA time zone, when it differs from the household's.
    pub timezone: Option<Sp<String>>,
    /// Language code, when it differs from the household's.
    pub language: Option<String>,
    /// This member's quiet hours (`"23:00-06:30"`, or `off`), when they differ from the household's.
    pub quiet_hours: Option<Sp<String>>,
}

fn default_role() -> Role {
    Role::Adult
}

/// An approved WhatsApp template.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDef {
    /// Template name as approved by Meta.
    pub name: Sp<String>,
    /// Language code as approved, e.g. `en_US`.
    pub language: String,
    /// Category (`utility`, `marketing`, `authentication`); informational.
    pub category: Option<String>,
    /// Body parameters in order, with their types.
    #[serde(default)]
    pub parameters: Vec<TemplateParamDef>,
}

/// One template body parameter.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateParamDef {
    /// Parameter name (for named-parameter templates and for readability).
    pub name: String,
    /// Type; default `text`.
    #[serde(rename = "type", default)]
    pub kind: TemplateParamType,
}

/// The type of a template parameter.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TemplateParamType {
    /// Free text (at most 1024 characters, no newlines or tabs, at most 4 spaces in a row).
    #[default]
    Text,
    /// A number.
    Number,
    /// A date/time (sent as text in the household's format).
    DateTime,
}

/// A record collection's shape.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionDef {
    /// Field names that records in this collection may have.
    #[serde(default)]
    pub fields: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Flow files
// ---------------------------------------------------------------------------------------

/// One flow: triggers that start it and the steps it runs.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// Unique id of the flow, e.g. `groceries`.
    pub id: Sp<String>,
    /// What this flow does, in one line; `help` lists it.
    pub description: Option<Sp<Text>>,
    /// Default priority of this flow's triggers (higher wins). Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Whether this flow may run while another flow waits for an answer; afterwards the
    /// waiting question is asked again. Default false.
    #[serde(default)]
    pub interruptible: bool,
    /// Idle expiry of a conversation in this flow (e.g. `30m`); default `1h`.
    pub expires_after: Option<Sp<String>>,
    /// Hide from the generated help.
    #[serde(default)]
    pub hidden: bool,
    /// What happens to a free-form send without a `fallback` when the recipient's
    /// 24-hour window is closed: `defer` (send when they next write) or `drop`.
    /// Proactive sends (from schedules and timers) need this or a `fallback`.
    pub outside_window: Option<Sp<WindowPolicy>>,
    /// What starts the flow.
    #[serde(default)]
    pub triggers: Vec<TriggerDef>,
    /// The steps, run in order unless `next` says otherwise.
    pub steps: Sp<Vec<StepDef>>,
}

/// A message kind that a trigger can match.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Plain text.
    Text,
    /// A tap on an interactive reply button, list row, or template quick-reply.
    Reply,
    /// A photo.
    Image,
    /// A voice note or audio file.
    Audio,
    /// A video.
    Video,
    /// A document (PDF, …).
    Document,
    /// A sticker.
    Sticker,
    /// A shared location.
    Location,
    /// A shared contact card.
    Contacts,
    /// A reaction to a message.
    Reaction,
    /// Something WhatsApp could not deliver as content (unsupported or unknown type).
    Unsupported,
}

impl MessageKind {
    /// The snake_case name used in files and templates.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Reply => "reply",
            MessageKind::Image => "image",
            MessageKind::Audio => "audio",
            MessageKind::Video => "video",
            MessageKind::Document => "document",
            MessageKind::Sticker => "sticker",
            MessageKind::Location => "location",
            MessageKind::Contacts => "contacts",
            MessageKind::Reaction => "reaction",
            MessageKind::Unsupported => "unsupported",
        }
    }
}

/// Who a schedule runs for.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Once per member (each in their own conversation).
    #[default]
    EachMember,
    /// Once per admin.
    Admins,
    /// Once per adult or admin.
    Adults,
}

/// What the scheduler does with slots that passed while no scheduler was running.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Fire the most recent missed slot once, if it is less than `catch_up_window` late.
    #[default]
    Once,
    /// Never fire a missed slot: only slots seen on time (within a minute) fire.
    Skip,
}

/// What the scheduler does when a slot comes due while the previous slot of the same
/// schedule is still running (not every member's event of it is committed yet).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Drop the new slot (it is recorded as skipped).
    #[default]
    Skip,
    /// Run the new slot after the running one has finished.
    Queue,
}

/// What a trigger matches. Exactly one of `keywords`, `regex`, `reply`, `kind`,
/// `schedule` or `fallback` must be given.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    /// Whole-message keywords, matched ignoring case, accents and punctuation.
    pub keywords: Option<Sp<OneOrMany>>,
    /// A regular expression (case-insensitive) over the trimmed text; named groups
    /// become `captures.<name>`.
    pub regex: Option<Sp<String>>,
    /// Interactive reply ids (button or list row) or template quick-reply payloads.
    pub reply: Option<Sp<OneOrMany>>,
    /// A message kind (image, audio, location, …).
    pub kind: Option<Sp<MessageKind>>,
    /// A cron schedule (5 fields) in an IANA time zone.
    pub schedule: Option<ScheduleDef>,
    /// Matches any text that no other trigger matched.
    pub fallback: Option<Sp<bool>>,
    /// Priority; higher is tried first. Default: the flow's priority.
    pub priority: Option<i32>,
    /// Step to start at; default the first step.
    pub start: Option<Sp<String>>,
    /// An extra condition (minijinja expression) that must hold.
    pub when: Option<Sp<String>>,
    /// Roles allowed to use this trigger; default everyone.
    pub roles: Option<Vec<Role>>,
}

/// A cron schedule.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDef {
    /// Cron expression: minute hour day-of-month month day-of-week (seconds optional first).
    pub cron: Sp<String>,
    /// IANA time zone, or `member` for each member's own zone; default the household's.
    pub timezone: Option<Sp<String>>,
    /// Who it runs for; default each member.
    #[serde(rename = "for", default)]
    pub audience: Audience,
    /// Slots missed during downtime: `once` (default, if less than `catch_up_window`
    /// late) or `skip`.
    pub catch_up: Option<Sp<CatchUp>>,
    /// How late a missed slot may still fire under `catch_up: once`; default `1h`.
    pub catch_up_window: Option<Sp<String>>,
    /// A slot due while the previous one still runs: `skip` (default) or `queue`.
    pub overlap: Option<Sp<Overlap>>,
}

/// One step. Exactly one action key (`send`, `ask`, `set`, `switch`, `call`, `goto`,
/// `end`, a list/record/timer action) may be given; a step with only `next` is a jump.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// Step id, unique in the flow. Default `step<N>` (1-based position).
    pub id: Option<Sp<String>>,
    /// Send a message.
    pub send: Option<Sp<SendDef>>,
    /// Ask a question and collect the answer into a slot.
    pub ask: Option<Sp<AskDef>>,
    /// Set variables: name → minijinja expression, evaluated in the order written
    /// (a later value may use an earlier one).
    pub set: Option<Sp<IndexMap<String, Sp<String>>>>,
    /// Branch on a value.
    pub switch: Option<Sp<SwitchDef>>,
    /// Run another flow, then continue here with `next`.
    pub call: Option<Sp<String>>,
    /// Continue in another flow (no return).
    pub goto: Option<Sp<String>>,
    /// End the flow (and the conversation, unless it returns to a caller).
    pub end: Option<Sp<bool>>,
    /// Add items to a list; items are parsed from text like "milk, eggs and 2 bread".
    pub list_add: Option<Sp<ListItemsDef>>,
    /// Remove items from a list (same parsing).
    pub list_remove: Option<Sp<ListItemsDef>>,
    /// Remove every item from a list.
    pub list_clear: Option<Sp<String>>,
    /// Create a record.
    pub record_create: Option<Sp<RecordWriteDef>>,
    /// Update records selected by `id` or `where`.
    pub record_update: Option<Sp<RecordWriteDef>>,
    /// Delete records selected by `id` or `where`.
    pub record_delete: Option<Sp<RecordSelectDef>>,
    /// Query records into a variable.
    pub record_query: Option<Sp<RecordSelectDef>>,
    /// Start (or restart) a durable timer.
    pub timer_start: Option<Sp<TimerStartDef>>,
    /// Cancel a timer by id.
    pub timer_cancel: Option<Sp<String>>,
    /// Add a household member, or change one (admins' flows; the roster then lives in the
    /// household data and takes precedence over household.yaml).
    pub member_set: Option<Sp<MemberSetDef>>,
    /// Remove a household member.
    pub member_remove: Option<Sp<MemberRemoveDef>>,
    /// Where to go next: a step id, `end`, or a list of `{if, then}` with a final `{else}`.
    pub next: Option<Sp<NextDef>>,
}

/// `next:` — a step id, or conditional branches.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(untagged)]
pub enum NextDef {
    /// Go to this step (or `end`).
    Step(String),
    /// The first branch whose `if` holds; a final `else` is required.
    Branches(Vec<BranchDef>),
}

impl<'de> Deserialize<'de> for NextDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NextDef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step id, or a list of `- if: … then: …` with a final `- else: …`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NextDef, E> {
                Ok(NextDef::Step(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NextDef, A::Error> {
                Vec::<BranchDef>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(NextDef::Branches)
            }
        }
        d.deserialize_any(V)
    }
}

/// One conditional branch of `next`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchDef {
    /// Condition (minijinja expression).
    #[serde(rename = "if")]
    pub cond: Option<Sp<String>>,
    /// Step to go to when the condition holds.
    pub then: Option<Sp<String>>,
    /// Step to go to when no condition above held.
    #[serde(rename = "else")]
    pub otherwise: Option<Sp<String>>,
}

/// `switch:` — go to the step of the first case equal to the value.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchDef {
    /// The value to compare (minijinja expression).
    pub on: Sp<String>,
    /// Value → step id.
    pub cases: BTreeMap<String, Sp<String>>,
    /// Step when no case matched (required).
    pub default: Option<Sp<String>>,
}

/// A reply button.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonDef {
    /// Reply id (what a tap sends back); default the title.
    pub id: Option<Sp<String>>,
    /// Title on the button (at most 20 characters).
    pub title: Sp<Text>,
}

/// An interactive list message.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListMenuDef {
    /// Label of the button that opens the list (at most 20 characters).
    pub button: Sp<Text>,
    /// Sections (at most 10 rows in total).
    pub sections: Sp<Vec<SectionDef>>,
}

/// One section of a list message.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionDef {
    /// Section title (at most 24 characters; required with more than one section).
    pub title: Option<Sp<Text>>,
    /// Rows.
    pub rows: Vec<RowDef>,
}

/// One row of a list message.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowDef {
    /// Reply id; default the title.
    pub id: Option<Sp<String>>,
    /// Row title (at most 24 characters).
    pub title: Sp<Text>,
    /// Row description (at most 72 characters).
    pub description: Option<Sp<Text>>,
}

/// Buttons (or list rows) generated from data: one per item of `each`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsFromDef {
    /// Expression giving a list, e.g. `vars.matches`.
    pub each: Sp<String>,
    /// Template for the reply id; `item` is the element.
    pub id: Sp<String>,
    /// Template for the title; `item` is the element.
    pub title: Sp<String>,
}

/// A template send: an approved WhatsApp template with parameters.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSendDef {
    /// Template name (declared in household.yaml).
    pub name: Sp<String>,
    /// Parameter values (templates), in the declared order.
    #[serde(default)]
    pub params: Sp<Vec<Sp<String>>>,
}

/// `send:` — a message. Written as a plain string for text.
#[derive(Clone, Debug, Default, JsonSchema)]
pub struct SendDef {
    /// Body text (at most 4096 characters; 1024 with buttons).
    pub text: Option<Sp<Text>>,
    /// Up to 3 reply buttons.
    pub buttons: Option<Sp<Vec<ButtonDef>>>,
    /// Reply buttons generated from data.
    pub buttons_from: Option<OptionsFromDef>,
    /// An interactive list.
    pub list: Option<ListMenuDef>,
    /// An approved template.
    pub template: Option<TemplateSendDef>,
    /// The approved template sent instead when the recipient's 24-hour window is closed.
    pub fallback: Option<TemplateSendDef>,
    /// Outside the window without a `fallback`: `defer` or `drop` (overrides the flow's).
    pub outside_window: Option<Sp<WindowPolicy>>,
    /// Footer under the body (at most 60 characters).
    pub footer: Option<Sp<Text>>,
    /// Recipient: default the current member; a member name (template), or
    /// `others`, `admins`, `adults`, `everyone`.
    pub to: Option<Sp<String>>,
    /// Recipients computed from data: an expression giving a list of member names (or
    /// maps with a `name`). Instead of `to`.
    pub to_members: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendShadow {
    text: Option<Sp<Text>>,
    buttons: Option<Sp<Vec<ButtonDef>>>,
    buttons_from: Option<OptionsFromDef>,
    list: Option<ListMenuDef>,
    template: Option<TemplateSendDef>,
    fallback: Option<TemplateSendDef>,
    outside_window: Option<Sp<WindowPolicy>>,
    footer: Option<Sp<Text>>,
    to: Option<Sp<String>>,
    to_members: Option<Sp<String>>,
}

impl From<SendShadow> for SendDef {
    fn from(s: SendShadow) -> Self {
        SendDef {
            text: s.text,
            buttons: s.buttons,
            buttons_from: s.buttons_from,
            list: s.list,
            template: s.template,
            fallback: s.fallback,
            outside_window: s.outside_window,
            footer: s.footer,
            to: s.to,
            to_members: s.to_members,
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::One(s)
    }
}

string_or_struct!(
    SendDef,
    SendShadow,
    text,
    "a text, or a map with `text`, `buttons`, `list`, `template`, `fallback`, `outside_window`, `to`"
);

/// How an `ask` answer is validated. Give at most one.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateDef {
    /// One of these values (matched ignoring case and accents).
    pub choice: Option<Sp<OneOrMany>>,
    /// A regular expression the answer must match (named groups are kept in `slots`).
    pub regex: Option<Sp<String>>,
    /// A number, optionally within bounds.
    pub number: Option<NumberRange>,
    /// A date/time such as "tomorrow 18:00" or "in 20 minutes", in the member's time zone
    /// (or `zone_of`'s).
    pub datetime: Option<bool>,
    /// With `datetime`: a template naming the member whose time zone the answer is read
    /// in, e.g. `"{{ slots.target }}"` so "remind Ben at 8" is 08:00 Ben's time. Default:
    /// the member answering. The slot keeps that zone's offset.
    pub zone_of: Option<Sp<String>>,
    /// A duration such as "20m" or "2 hours".
    pub duration: Option<bool>,
    /// The name of a household member.
    pub member: Option<bool>,
    /// Yes or no (yes, y, ja, ok, sure / no, n, nee, nein).
    pub yes_no: Option<bool>,
    /// One or more members taking turns ("Ben", "Ben and Tom", "everyone"): a list of names.
    pub members: Option<bool>,
    /// How often something repeats ("every monday", "every 2 weeks", "on the 1st"), or
    /// "no"/"once"/"none": the rule in canonical form, or empty text.
    pub recurrence: Option<bool>,
    /// A phone number with its country code ("+31 6 1234 5678"); the slot gets it in
    /// E.164 ("+31612345678").
    pub phone: Option<bool>,
    /// An IANA time zone ("Europe/Amsterdam", any case, or a city such as "New York");
    /// the slot gets the IANA name.
    pub timezone: Option<bool>,
}

/// Bounds for a number answer.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberRange {
    /// Smallest accepted value.
    pub min: Option<f64>,
    /// Largest accepted value.
    pub max: Option<f64>,
}

/// `ask:` — a question whose answer fills `slots.<slot>`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskDef {
    /// Slot name that receives the answer.
    pub slot: Sp<String>,
    /// The question.
    pub prompt: Sp<Text>,
    /// Up to 3 reply buttons; without `validate`, the answer must be one of them.
    pub buttons: Option<Sp<Vec<ButtonDef>>>,
    /// Reply buttons generated from data.
    pub buttons_from: Option<OptionsFromDef>,
    /// An interactive list to pick from; without `validate`, the answer must be a row.
    pub list: Option<ListMenuDef>,
    /// How to validate the answer.
    pub validate: Option<Sp<ValidateDef>>,
    /// Said when the answer is not valid, before asking again. Default: a hint from the validator.
    pub reprompt: Option<Sp<Text>>,
    /// How many answers are tried before giving up; default 3.
    pub max_attempts: Option<Sp<u32>>,
    /// Step after the last failed attempt; default: say so and end.
    pub on_fail: Option<Sp<String>>,
    /// Idle timeout (e.g. `10m`) after which `on_timeout` runs.
    pub timeout: Option<Sp<String>>,
    /// Step to run when the timeout passes (required with `timeout`).
    pub on_timeout: Option<Sp<String>>,
    /// Template giving an answer that may already be known (e.g. `"{{ captures.when }}"`).
    /// If it renders to text that passes `validate`, the slot is filled and the question
    /// is not asked; otherwise the question is asked as usual.
    pub prefill: Option<Sp<String>>,
    /// When a schedule or timer asks and the member's 24-hour window is closed:
    /// `defer` (ask when they next write) or `drop`; default the flow's.
    pub outside_window: Option<Sp<WindowPolicy>>,
}

/// Items for `list_add` / `list_remove`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListItemsDef {
    /// List name (declared in household.yaml).
    pub list: Sp<String>,
    /// Template giving the items text, e.g. `"{{ captures.items }}"`.
    pub items: Sp<String>,
}

/// Create or update records.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordWriteDef {
    /// Collection name.
    pub collection: Sp<String>,
    /// Record id (template), for updates.
    pub id: Option<Sp<String>>,
    /// Condition per record (expression with `record`), for updates.
    #[serde(rename = "where")]
    pub filter: Option<Sp<String>>,
    /// Field → minijinja expression.
    #[serde(default)]
    pub fields: BTreeMap<String, Sp<String>>,
    /// Variable that receives the created/updated record(s).
    #[serde(rename = "as")]
    pub into: Option<String>,
}

/// Select records (delete or query).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSelectDef {
    /// Collection name.
    pub collection: Sp<String>,
    /// Record id (template).
    pub id: Option<Sp<String>>,
    /// Condition per record (expression with `record`).
    #[serde(rename = "where")]
    pub filter: Option<Sp<String>>,
    /// Variable that receives the selected records (a list).
    #[serde(rename = "as")]
    pub into: Option<String>,
}

/// Start a durable timer that later runs a flow step for a member.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimerStartDef {
    /// Timer id (template); starting a timer with an existing id replaces it.
    pub id: Sp<String>,
    /// When: a date/time (template giving RFC 3339, or text like "tomorrow 18:00").
    pub at: Option<Sp<String>>,
    /// Or after a duration (template, e.g. `20m`).
    pub after: Option<Sp<String>>,
    /// Flow to run when it fires; default this flow.
    pub flow: Option<Sp<String>>,
    /// Step to start at; default the flow's first step.
    pub step: Option<Sp<String>>,
    /// Member it fires for (template giving a name); default the current member.
    #[serde(rename = "for")]
    pub member: Option<Sp<String>>,
    /// Values (templates) passed to the fired flow as `vars`.
    #[serde(default)]
    pub data: BTreeMap<String, Sp<String>>,
    /// An expression giving a list: one timer per element, with `item` in the templates
    /// (e.g. the chores a removed member leaves behind, each reminded to its new assignee).
    pub each: Option<Sp<String>>,
    /// `true`: fire at its time even in the member's quiet hours (a reminder the member set
    /// for a time, a due time). `false`: a nudge or heads-up that waits until quiet hours end.
    /// Required with `at:` (`alfred check` warns without it); default `false`.
    pub urgent: Option<Sp<bool>>,
}

/// `member_set:` — add a member, or change the given fields of an existing one.
///
/// Every value is a template; one that renders empty counts as not given. A change that
/// would make the roster invalid (a duplicate name or phone, no admin left, a bad phone,
/// time zone, role or language) is refused: the reason goes into `vars.error` and the
/// flow continues at `on_error` (or the reason is sent and the flow ends).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberSetDef {
    /// The member's name (template); an existing member (any case) is changed, else added.
    pub name: Sp<String>,
    /// Phone number with country code (template); required for a new member.
    pub phone: Option<Sp<String>>,
    /// `admin`, `adult` or `child` (template); a new member defaults to `adult`.
    pub role: Option<Sp<String>>,
    /// IANA time zone (template); a new member defaults to the household's.
    pub timezone: Option<Sp<String>>,
    /// Language code (template); a new member defaults to the household's.
    pub language: Option<Sp<String>>,
    /// Step to continue at when the change is refused (`vars.error` says why).
    pub on_error: Option<Sp<String>>,
    /// Variable that receives the member as saved (`name`, `role`, `timezone`, `language`,
    /// `phone`) and `added` (true for a new member).
    #[serde(rename = "as")]
    pub into: Option<String>,
}

/// `member_remove:` — remove a member. Removing yourself or the last admin is refused.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRemoveDef {
    /// The member's name (template, any case).
    pub name: Sp<String>,
    /// Step to continue at when the removal is refused (`vars.error` says why).
    pub on_error: Option<Sp<String>>,
    /// Variable that receives the removed member.
    #[serde(rename = "as")]
    pub into: Option<String>,
}

/// What to do with a free-form message that has no template fallback when the window
/// is closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowPolicy {
    /// Keep it and send it as soon as the member writes again (which reopens the window).
    #[default]
    Defer,
    /// Do not send it at all.
    Drop,
}

impl WindowPolicy {
    /// Whether this is the default (keeps serialized outbound messages unchanged).
    pub fn is_default(&self) -> bool {
        *self == WindowPolicy::default()
    }
}
