//! Engine throughput: messages routed through `alfred_core::handle` per second.
//!
//! A realistic household (4 members, a `shopping` list with items, a `chores`
//! collection) and 24 flows, all generated in memory: keyword, regex (named captures),
//! reply and fallback triggers with priorities, and steps that send templates with
//! `{{ member.name }}`, captures and `lists`, ask with buttons, `set` and branch.
//!
//! A mixed stream of messages (keywords, regex hits, button replies, misses that end in
//! the fallback) is handled one by one; every call matches a trigger (or answers a
//! pending question), runs at least one step and renders at least one template. The
//! states the messages arrive in are prepared before measuring, so the measured loop
//! is `handle` only: no I/O, no parsing, no checking.
//!
//! Run: `cargo bench -p alfred-core --bench engine`.

#![allow(missing_docs)]

use std::hint::black_box;

use alfred_core::check::{SourceFile, load};
use alfred_core::data::{HouseholdData, ListItem};
use alfred_core::event::{ConversationState, Effect, Event, EventKind, InboundMessage, Trace};
use alfred_core::flow::FlowSet;
use alfred_core::handle;
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The household both benches use (4 members, a list, a collection, a template).
const HOUSEHOLD: &str = include_str!("household.yaml");

/// The demo shopping flow, as shipped in `flows/groceries.yaml`.
const GROCERIES: &str = r#"
id: groceries
description: "Shopping list: \"add milk, eggs and 2 bread\", \"list\", \"remove milk\", \"clear list\""
priority: 10
triggers:
  - regex: '^(?:add|put|buy)\s+(?P<items>.+?)(?:\s+(?:to|on)\s+(?:the\s+)?(?:shopping\s+)?list)?$'
    start: add
  - keywords: [list, shopping, shopping list, groceries, what do we need]
    start: show
  - regex: '^(?:remove|got|bought|delete)\s+(?P<items>.+)$'
    start: remove
  - keywords: [clear, clear list, clear the list, empty list]
    start: check_clear
steps:
  - id: add
    list_add: { list: shopping, items: "{{ captures.items }}" }
  - send: >-
      {% if vars.added %}Added {% for i in vars.added %}{% if i.qty > 1 %}{{ i.qty }} × {% endif %}{{ i.name }}{{ ', ' if loop.revindex > 2 else (' and ' if loop.revindex == 2) }}{% endfor %}.{% endif %}
      {%- if vars.already %} {{ vars.already | map(attribute='name') | join_and }} {{ 'was' if vars.already | length == 1 else 'were' }} already on the list.{% endif %}
      The list has {{ lists.shopping | length | plural('item') }}.
    next: end
  - id: show
    next:
      - if: lists.shopping | length == 0
        then: empty
      - else: show_items
  - id: show_items
    send: |-
      Shopping list ({{ lists.shopping | length }}):
      {% for i in lists.shopping %}• {% if i.qty > 1 %}{{ i.qty }} × {% endif %}{{ i.name }}
      {% endfor %}
    next: end
  - id: empty
    send: The shopping list is empty.
    next: end
  - id: remove
    list_remove: { list: shopping, items: "{{ captures.items }}" }
  - send: >-
      {% if vars.removed %}Removed {{ vars.removed | join_and }}.{% endif %}
      {%- if vars.missing %} {{ vars.missing | join_and }} {{ 'was' if vars.missing | length == 1 else 'were' }} not on the list.{% endif %}
    next: end
  - id: check_clear
    next:
      - if: lists.shopping | length == 0
        then: empty
      - else: confirm_clear
  - id: confirm_clear
    ask:
      slot: sure
      prompt: "Clear all {{ lists.shopping | length | plural('item') }} from the shopping list?"
      buttons:
        - { id: clear_yes, title: "Yes, clear it" }
        - { id: clear_no, title: "No, keep it" }
      timeout: 10m
      on_timeout: clear_timeout
    next:
      - if: slots.sure == 'clear_yes'
        then: do_clear
      - else: kept
  - id: do_clear
    list_clear: shopping
  - send: "Cleared the shopping list ({{ vars.cleared | plural('item') }})."
    next: end
  - id: kept
    send: OK, I kept the list.
    next: end
  - id: clear_timeout
    send: I didn't clear the list.
"#;

/// The demo help flow, as shipped in `flows/help.yaml`.
const HELP: &str = r#"
id: help
description: "Help: \"help\" shows this list"
priority: 100
interruptible: true
hidden: true
triggers:
  - keywords: [help, hulp, hilfe, what can you do]
steps:
  - send:
      text:
        en: |-
          Here is what I can do:
          {% for f in flows %}• {{ f.description }}
          {% endfor %}Say "cancel" to stop anything.
        nl: |-
          Dit kan ik:
          {% for f in flows %}• {{ f.description }}
          {% endfor %}Zeg "stop" om iets af te breken.
"#;

/// The other flows: (file name, source).
const FLOWS: &[(&str, &str)] = &[
    (
        "greet.yaml",
        r#"
id: greet
description: "Greetings: \"hi\""
priority: 5
triggers:
  - keywords: [hi, hello, hey, hallo, good morning, goedemorgen]
steps:
  - send:
      text:
        en: "Hi {{ member.name }}! Say \"help\" to see what I can do."
        nl: "Hoi {{ member.name }}! Zeg \"hulp\" voor wat ik kan."
"#,
    ),
    (
        "thanks.yaml",
        r#"
id: thanks
description: "Manners: \"thanks\""
triggers:
  - keywords: [thanks, thank you, thx, bedankt, dank je, danke]
steps:
  - send: "You're welcome, {{ member.name }}."
"#,
    ),
    (
        "whoami.yaml",
        r#"
id: whoami
description: "\"who am i\" tells you how I know you"
triggers:
  - keywords: [who am i, whoami]
steps:
  - send: "You are {{ member.name }} ({{ member.role }}, {{ member.timezone }}, language {{ member.language }})."
"#,
    ),
    (
        "family.yaml",
        r#"
id: family
description: "\"family\" lists who is in the household"
triggers:
  - keywords: [family, members, who lives here]
steps:
  - send: "{{ household.name }}: {% for m in members %}{{ m.name }}{% if not loop.last %}, {% endif %}{% endfor %}."
"#,
    ),
    (
        "today.yaml",
        r#"
id: today
description: "\"today\" tells the date"
triggers:
  - keywords: [today, date, what day is it]
steps:
  - send: "Today is {{ today }}, {{ member.name }}. It is {{ now | datefmt('%H:%M') }}."
"#,
    ),
    (
        "goodnight.yaml",
        r#"
id: goodnight
description: "\"good night\""
triggers:
  - keywords: [good night, goodnight, night night, welterusten]
steps:
  - set:
      late: "now[11:13] | int >= 22"
  - send: "Good night {{ member.name }}{{ ', it is late' if vars.late else '' }}. Sleep well!"
"#,
    ),
    (
        "dinner.yaml",
        r#"
id: dinner
description: "Dinner vote: \"dinner\""
priority: 3
triggers:
  - keywords: [dinner, what's for dinner, eten, avondeten]
steps:
  - id: ask_dish
    ask:
      slot: dish
      prompt: "What would you like for dinner, {{ member.name }}?"
      buttons:
        - { id: pasta, title: Pasta }
        - { id: pizza, title: Pizza }
        - { id: soup, title: Soup }
      timeout: 30m
      on_timeout: too_late
    next:
      - if: slots.dish == 'pizza'
        then: pizza
      - else: noted
  - id: pizza
    set:
      note: "'pizza again'"
    next: noted
  - id: noted
    send: "Noted, {{ member.name }}: {{ slots.dish }}{{ ' (' ~ vars.note ~ ')' if vars.note is defined else '' }}. The shopping list has {{ lists.shopping | length | plural('item') }}."
    next: end
  - id: too_late
    send: Dinner vote closed.
"#,
    ),
    (
        "mood.yaml",
        r#"
id: mood
description: "\"mood\" asks how you feel"
triggers:
  - keywords: [mood, how am i]
steps:
  - ask:
      slot: feeling
      prompt: "How do you feel, {{ member.name }}?"
      buttons:
        - { id: happy, title: Happy }
        - { id: meh, title: Meh }
        - { id: sad, title: Sad }
    next:
      - if: slots.feeling == 'sad'
        then: cheer
      - else: fine
  - id: cheer
    send: "Sorry to hear that, {{ member.name }}. Someone will check on you."
    next: end
  - id: fine
    send: "Good to know, {{ member.name }}."
"#,
    ),
    (
        "chores.yaml",
        r#"
id: chores
description: "\"chores\" lists open chores"
triggers:
  - keywords: [chores, my chores, klusjes]
steps:
  - record_query: { collection: chores, where: "not record.done", as: open }
  - send: "{% if vars.open %}Open chores: {% for c in vars.open %}{{ c.title }} ({{ c.assignee }}){% if not loop.last %}, {% endif %}{% endfor %}{% else %}No open chores, {{ member.name }}!{% endif %}"
"#,
    ),
    (
        "chore_done.yaml",
        r#"
id: chore_done
description: "Tap \"Done\" on a chore reminder"
triggers:
  - reply: [chore_done, chore_later]
steps:
  - next:
      - if: message.reply_id == 'chore_done'
        then: done
      - else: later
  - id: done
    send: "Thanks {{ member.name }}, marked as done."
    next: end
  - id: later
    send: "OK {{ member.name }}, I'll ask again later."
"#,
    ),
    (
        "party.yaml",
        r#"
id: party
description: "Party RSVP buttons"
hidden: true
triggers:
  - reply: [party_yes, party_no]
steps:
  - set:
      going: "message.reply_id == 'party_yes'"
  - send:
      text: "{{ member.name }} {{ 'is coming' if vars.going else 'can not come' }} to the party."
      to: others
"#,
    ),
    (
        "lights.yaml",
        r#"
id: lights
description: "\"turn on the kitchen lights\""
priority: 2
triggers:
  - regex: '^(?:turn|switch)\s+(?P<state>on|off)\s+(?:the\s+)?(?P<room>\w+)\s+lights?$'
steps:
  - send: "OK {{ member.name }}, {{ captures.room }} lights {{ captures.state }}."
"#,
    ),
    (
        "heating.yaml",
        r#"
id: heating
description: "\"set the heating to 20\""
priority: 2
triggers:
  - regex: '^set\s+(?:the\s+)?(?:heating|thermostat)\s+to\s+(?P<deg>\d{1,2}(?:[.,]\d)?)'
steps:
  - set:
      deg: "captures.deg | replace(',', '.') | float"
    next:
      - if: vars.deg > 23
        then: too_warm
      - else: ok
  - id: too_warm
    send: "{{ vars.deg }}° is warm, {{ member.name }}. Set it anyway."
    next: end
  - id: ok
    send: "Heating set to {{ vars.deg }}°."
"#,
    ),
    (
        "remind.yaml",
        r#"
id: remind
outside_window: defer
description: "\"remind me to call grandma in 20 minutes\""
priority: 4
triggers:
  - regex: '^remind\s+me\s+to\s+(?P<what>.+?)\s+in\s+(?P<after>\d+\s*(?:minutes|minute|min|m|hours|hour|h))$'
steps:
  - timer_start:
      id: "remind-{{ member.name }}"
      after: "{{ captures.after }}"
      step: fire
      data:
        what: "{{ captures.what }}"
  - send: "OK {{ member.name }}, I'll remind you to {{ captures.what }} in {{ captures.after }}."
    next: end
  - id: fire
    send: "Reminder: {{ vars.what }}"
"#,
    ),
    (
        "vote.yaml",
        r#"
id: vote
description: "\"vote yes\" / \"vote no\""
triggers:
  - regex: '^vote\s+(?P<choice>yes|no|ja|nee)$'
steps:
  - set:
      yes: "captures.choice in ['yes', 'ja']"
  - send: "{{ member.name }} voted {{ 'yes' if vars.yes else 'no' }}."
"#,
    ),
    (
        "birthday.yaml",
        r#"
id: birthday
description: "\"when is Ben's birthday\""
triggers:
  - regex: '^when\s+is\s+(?P<name>\w+)(?:''s)?\s+birthday\??$'
steps:
  - send: "I don't know {{ captures.name | title }}'s birthday yet, {{ member.name }}."
"#,
    ),
    (
        "pickup.yaml",
        r#"
id: pickup
description: "\"can someone pick me up at 17:30\""
triggers:
  - regex: '^(?:can\s+someone|who\s+can)\s+pick\s+me\s+up(?:\s+at\s+(?P<time>\d{1,2}[:.]\d{2}))?\??$'
steps:
  - send:
      text: "{{ member.name }} needs a ride{{ ' at ' ~ captures.time if captures.time is defined else '' }}. Who can go?"
      to: others
"#,
    ),
    (
        "bedtime.yaml",
        r#"
id: bedtime
description: "\"bedtime\" (children)"
triggers:
  - keywords: [bedtime, slapen]
    roles: [child]
  - keywords: [bedtime, slapen]
    start: adults
    priority: -1
steps:
  - send: "Time to brush your teeth, {{ member.name }}!"
    next: end
  - id: adults
    send: "Bedtime is for the kids, {{ member.name }}."
"#,
    ),
    (
        "status.yaml",
        r#"
id: status
description: "\"status\" (admins)"
triggers:
  - keywords: [status]
    when: "member.role == 'admin'"
steps:
  - send: "{{ flows | length }} flows; shopping list: {{ lists.shopping | length }}; chores: {{ records.chores | length }}."
"#,
    ),
    (
        "fallback.yaml",
        r#"
id: fallback
description: "Anything else"
hidden: true
priority: -100
triggers:
  - fallback: true
steps:
  - send:
      text:
        en: "Sorry {{ member.name }}, I didn't understand \"{{ message.text }}\". Say \"help\" for what I can do."
        nl: "Sorry {{ member.name }}, ik begreep \"{{ message.text }}\" niet. Zeg \"hulp\" voor wat ik kan."
"#,
    ),
    (
        "weekly.yaml",
        r#"
id: weekly
description: "Weekly chores reminder (scheduled)"
hidden: true
triggers:
  - schedule: { cron: "0 9 * * 6", for: adults }
steps:
  - send:
      template: { name: chore_reminder, params: ["{{ records.chores | length }} chores"] }
"#,
    ),
];

/// The flow sources, in memory.
fn flow_sources() -> (SourceFile, Vec<SourceFile>) {
    let household = SourceFile {
        path: "household.yaml".to_owned(),
        text: HOUSEHOLD.to_owned(),
    };
    let mut files = vec![
        SourceFile {
            path: "groceries.yaml".to_owned(),
            text: GROCERIES.to_owned(),
        },
        SourceFile {
            path: "help.yaml".to_owned(),
            text: HELP.to_owned(),
        },
    ];
    files.extend(FLOWS.iter().map(|(path, text)| SourceFile {
        path: (*path).to_owned(),
        text: (*text).to_owned(),
    }));
    (household, files)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 17, 30, 0)
        .single()
        .expect("valid time")
}

/// A shopping list of 8 items and a few chores.
fn household_data() -> HouseholdData {
    let added_at = now() - Duration::hours(5);
    let mut data = HouseholdData::default();
    let items = [
        ("milk", 2),
        ("eggs", 1),
        ("bread", 2),
        ("apples", 6),
        ("coffee", 1),
        ("cheese", 1),
        ("tomatoes", 4),
        ("rice", 1),
    ];
    data.lists.insert(
        "shopping".to_owned(),
        items
            .iter()
            .enumerate()
            .map(|(i, (name, qty))| ListItem {
                key: alfred_core::parse::item_key(name),
                name: (*name).to_owned(),
                qty: *qty,
                added_by: ["Anna", "Ben", "Tom", "Lisa"][i % 4].to_owned(),
                added_at,
            })
            .collect(),
    );
    let chores = [
        ("dishes", "Ben", false),
        ("laundry", "Anna", true),
        ("trash", "Tom", false),
    ];
    data.records.insert(
        "chores".to_owned(),
        chores
            .iter()
            .enumerate()
            .map(|(i, (title, who, done))| alfred_core::data::Record {
                id: (i + 1).to_string(),
                fields: [
                    ("title".to_owned(), serde_json::json!(title)),
                    ("assignee".to_owned(), serde_json::json!(who)),
                    ("done".to_owned(), serde_json::json!(done)),
                ]
                .into_iter()
                .collect(),
                created_by: "Anna".to_owned(),
                created_at: added_at,
                updated_at: added_at,
            })
            .collect(),
    );
    data
}

/// What kind of message a case is, for the per-kind benchmarks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keyword,
    Regex,
    Button,
    Fallback,
}

/// One message of the stream, with the conversation state it arrives in.
struct Case {
    kind: Kind,
    state: ConversationState,
    event: Event,
}

fn text(member: &str, body: &str) -> Event {
    Event {
        member: member.to_owned(),
        kind: EventKind::Message(InboundMessage::text(body)),
    }
}

fn tap(member: &str, id: &str, title: &str) -> Event {
    Event {
        member: member.to_owned(),
        kind: EventKind::Message(InboundMessage::reply(id, title)),
    }
}

/// The state a member is in after saying `body` (to answer a pending question).
fn waiting_after(fs: &FlowSet, data: &HouseholdData, member: &str, body: &str) -> ConversationState {
    let out = handle(fs, &ConversationState::default(), &text(member, body), data, now());
    assert!(out.state.is_waiting(), "`{body}` should leave {member} waiting");
    out.state
}

/// The mixed stream: 7 keyword messages, 7 regex hits, 4 button taps, 4 misses.
fn stream(fs: &FlowSet, data: &HouseholdData) -> Vec<Case> {
    use Kind::{Button, Fallback, Keyword, Regex};
    let idle = ConversationState::default;
    let dinner = waiting_after(fs, data, "Ben", "dinner");
    let mood = waiting_after(fs, data, "Tom", "mood");
    vec![
        (Keyword, idle(), text("Anna", "Hi!")),
        (Regex, idle(), text("Ben", "add milk, eggs and 2 bread")),
        (Keyword, idle(), text("Tom", "shopping list")),
        (Fallback, idle(), text("Lisa", "what's the weather like tomorrow?")),
        (Regex, idle(), text("Anna", "turn on the kitchen lights")),
        (Button, idle(), tap("Ben", "chore_done", "Done")),
        (Keyword, idle(), text("Tom", "thanks")),
        (Regex, idle(), text("Lisa", "set the heating to 21,5")),
        (Button, dinner, tap("Ben", "pizza", "Pizza")),
        (Keyword, idle(), text("Anna", "family")),
        (Fallback, idle(), text("Ben", "lol")),
        (Regex, idle(), text("Tom", "remind me to feed the cat in 20 minutes")),
        (Keyword, idle(), text("Lisa", "good night")),
        (Button, idle(), tap("Anna", "party_yes", "Yes!")),
        (Regex, idle(), text("Ben", "remove apples and rice")),
        (Fallback, idle(), text("Tom", "can you order pizza")),
        (Keyword, idle(), text("Anna", "chores")),
        (Regex, idle(), text("Lisa", "vote yes")),
        (Button, mood, tap("Tom", "happy", "Happy")),
        (Keyword, idle(), text("Ben", "today")),
        (Regex, idle(), text("Anna", "when is Ben's birthday?")),
        (Fallback, idle(), text("Lisa", "ok")),
    ]
    .into_iter()
    .map(|(kind, state, event)| Case { kind, state, event })
    .collect()
}

/// Every case must do real work: match, run a step, send a rendered message.
fn assert_realistic(fs: &FlowSet, data: &HouseholdData, cases: &[Case]) {
    for c in cases {
        let out = handle(fs, &c.state, &c.event, data, now());
        let failed = out.effects.iter().any(|e| matches!(e, Effect::Error { .. }));
        let sent = out.effects.iter().any(|e| matches!(e, Effect::Send(_)));
        let stepped = out.trace.iter().any(|t| matches!(t, Trace::Step { .. }));
        let fell_back = out
            .trace
            .iter()
            .any(|t| matches!(t, Trace::Routed { reason, .. } if reason.starts_with("fallback")));
        assert!(
            !failed && sent && stepped && fell_back == (c.kind == Kind::Fallback),
            "case {:?} did not run as intended: {:#?}",
            c.event,
            out
        );
    }
}

fn bench_engine(c: &mut Criterion) {
    let (household, files) = flow_sources();
    let checked = load(Some(&household), &files);
    assert_eq!(
        checked.errors(),
        0,
        "bench flows have errors: {:#?}",
        checked.diagnostics
    );
    for d in &checked.diagnostics {
        eprintln!("engine bench flows: warning in {}: {}", d.file, d.message);
    }
    let fs = checked.flows.expect("flow set");
    assert!(fs.flows.len() >= 20, "want at least 20 flows, have {}", fs.flows.len());
    let data = household_data();
    let cases = stream(&fs, &data);
    assert_realistic(&fs, &data, &cases);
    eprintln!(
        "engine bench: {} flows, {} message triggers, {} messages per stream",
        fs.flows.len(),
        fs.triggers.len(),
        cases.len()
    );
    let t = now();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(cases.len() as u64));
    group.bench_function("handle_mixed_stream", |b| {
        b.iter(|| {
            for case in &cases {
                black_box(handle(&fs, &case.state, black_box(&case.event), &data, t));
            }
        });
    });
    for (name, kind) in [
        ("handle_keyword", Kind::Keyword),
        ("handle_regex", Kind::Regex),
        ("handle_button", Kind::Button),
        ("handle_fallback", Kind::Fallback),
    ] {
        let subset: Vec<&Case> = cases.iter().filter(|c| c.kind == kind).collect();
        group.throughput(Throughput::Elements(subset.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for case in &subset {
                    black_box(handle(&fs, &case.state, black_box(&case.event), &data, t));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
