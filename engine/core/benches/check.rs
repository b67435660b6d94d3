//! Checker throughput: `alfred_core::check::load` over 1,000 generated flow files.
//!
//! Every flow file is generated in memory (a few triggers and 5–10 steps each, in four
//! shapes that together use every kind of trigger and most step actions: send with
//! templates, ask with buttons / a list / validation and timeouts, set, branches,
//! switch, call, goto, list and record actions, timers, template sends, several
//! languages). One iteration is one `load` of the whole set: parse, check, compile
//! templates and regexes, build the routing table. No file I/O is measured.
//!
//! Run: `cargo bench -p alfred-core --bench check`.
//!
//! To time the real CLI on the same files, set `ALFRED_BENCH_DUMP_DIR=<dir>`: the bench
//! then also writes `household.yaml` and the 1,000 flow files there (before measuring)
//! for `alfred check <dir>`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;

use alfred_core::check::{SourceFile, load};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// The household both benches use (4 members, a list, a collection, a template).
const HOUSEHOLD: &str = include_str!("household.yaml");

/// Keywords, a regex with two named groups and reply ids; an ask with buttons and a
/// timeout, branches, `set`, a list add. 9 steps.
fn shape_ask(i: usize) -> String {
    let prio = (i % 7) as i32 - 3;
    format!(
        r#"id: f{i:04}
outside_window: defer
description: "Flow {i}: say \"kw{i:04}\" or \"rx{i:04} milk\""
priority: {prio}
expires_after: 30m
triggers:
  - keywords: [kw{i:04}, kw{i:04} please, start {i:04}]
    start: greet
  - regex: '^rx{i:04}\s+(?P<item>.+?)(?:\s+for\s+(?P<who>\w+))?$'
    start: add
  - reply: [r{i:04}_yes, r{i:04}_no]
    start: ack
steps:
  - id: greet
    send: "Hi {{{{ member.name }}}}, flow {i} here. The list has {{{{ lists.shopping | length | plural('item') }}}}."
  - id: pick
    ask:
      slot: choice
      prompt: "Pick one, {{{{ member.name }}}}:"
      buttons:
        - {{ id: a{i:04}, title: Option A }}
        - {{ id: b{i:04}, title: Option B }}
      timeout: 10m
      on_timeout: late
    next:
      - if: slots.choice == 'a{i:04}'
        then: chose_a
      - else: chose_b
  - id: chose_a
    set: {{ picked: "'A'", count: "lists.shopping | length" }}
    next: report
  - id: chose_b
    set: {{ picked: "'B'", count: "0" }}
  - id: report
    send: "You picked {{{{ vars.picked }}}} ({{{{ vars.count }}}} items)."
    next: end
  - id: add
    list_add: {{ list: shopping, items: "{{{{ captures.item }}}}" }}
  - send: "Added {{{{ vars.added | length }}}} for {{{{ captures.who if captures.who is defined else member.name }}}}."
    next: end
  - id: ack
    send: "Got {{{{ message.reply_id }}}}, {{{{ member.name }}}}."
    next: end
  - id: late
    send: "Too late, {{{{ member.name }}}}."
"#
    )
}

/// Keywords, a regex, a schedule; record query/create, switch, a timer, a template
/// send. 8 steps.
fn shape_records(i: usize) -> String {
    let minute = i % 60;
    format!(
        r#"id: f{i:04}
description: "Flow {i}: chores (\"chores{i:04}\")"
triggers:
  - keywords: [chores{i:04}, klusjes {i:04}]
  - regex: '^remind{i:04}\s+(?P<what>.+?)\s+in\s+(?P<mins>\d+)\s*m(?:in(?:utes)?)?$'
    start: remind
  - schedule: {{ cron: "{minute} 8 * * 1-5", for: adults }}
    start: morning
steps:
  - id: query
    record_query: {{ collection: chores, where: "not record.done", as: open }}
  - switch:
      on: "vars.open | length"
      cases: {{ "0": none }}
      default: some
  - id: none
    send: "No open chores, {{{{ member.name }}}}."
    next: end
  - id: some
    send: "{{% for c in vars.open %}}• {{{{ c.title }}}} ({{{{ c.assignee }}}})\n{{% endfor %}}"
    next: end
  - id: remind
    timer_start: {{ id: "t{i:04}-{{{{ member.name }}}}", after: "{{{{ captures.mins }}}}m", step: fire, data: {{ what: "{{{{ captures.what }}}}" }} }}
  - send: "OK {{{{ member.name }}}}, I'll remind you about {{{{ captures.what }}}}."
    next: end
  - id: fire
    send: "Reminder: {{{{ vars.what }}}}"
    next: end
  - id: morning
    record_create: {{ collection: chores, fields: {{ title: "'dishes {i}'", assignee: "member.name", done: "false" }}, as: created }}
  - send: {{ template: {{ name: chore_reminder, params: ["{{{{ vars.created.title }}}}"] }} }}
    next: end
"#
    )
}

/// Role-restricted keywords, a regex with a `when`; an ask with a list menu, an ask
/// with number validation and `on_fail`, `call`, list clear, `set`. 10 steps.
fn shape_menu(i: usize, n: usize) -> String {
    let callee = (i * 7 + 1) % n;
    format!(
        r#"id: f{i:04}
description: "Flow {i}: menu (\"menu{i:04}\")"
priority: 2
triggers:
  - keywords: [menu{i:04}]
    roles: [admin, adult]
  - keywords: [kids{i:04}]
    roles: [child]
    start: kids
  - regex: '^qty{i:04}\s+(?P<n>\d+)$'
    when: "captures.n | int < 100"
    start: qty
steps:
  - id: menu
    ask:
      slot: pick
      prompt: "What now, {{{{ member.name }}}}?"
      list:
        button: Options
        sections:
          - title: Lists
            rows:
              - {{ id: show{i:04}, title: Show the list, description: "{{{{ lists.shopping | length }}}} items" }}
              - {{ id: clear{i:04}, title: Clear the list }}
          - title: Other
            rows:
              - {{ id: more{i:04}, title: Something else }}
    next:
      - if: slots.pick == 'show{i:04}'
        then: show
      - if: slots.pick == 'clear{i:04}'
        then: clear
      - else: more
  - id: show
    send: "{{% for it in lists.shopping %}}{{{{ it.name }}}}{{% if not loop.last %}}, {{% endif %}}{{% endfor %}}"
    next: end
  - id: clear
    list_clear: shopping
  - send: "Cleared {{{{ vars.cleared }}}} items."
    next: end
  - id: more
    call: f{callee:04}
    next: end
  - id: kids
    ask:
      slot: age
      prompt: "How old are you, {{{{ member.name }}}}?"
      validate: {{ number: {{ min: 3, max: 17 }} }}
      reprompt: "A number from 3 to 17, please."
      max_attempts: 2
      on_fail: gave_up
  - send: "{{{{ slots.age }}}} years, nice!"
    next: end
  - id: gave_up
    send: Never mind.
    next: end
  - id: qty
    set: {{ n: "captures.n | int", double: "(captures.n | int) * 2" }}
  - send: "{{{{ vars.n }}}} doubled is {{{{ vars.double }}}}."
    next: end
"#
    )
}

/// Keywords, a regex, reply ids; a yes/no ask with per-language texts, record update
/// and delete, timer cancel, `goto`, a reply-id branch. 9 steps.
fn shape_lang(i: usize, n: usize) -> String {
    let target = (i * 13 + 3) % n;
    format!(
        r#"id: f{i:04}
description:
  en: "Flow {i}: done (\"done{i:04}\")"
  nl: "Flow {i}: klaar (\"klaar{i:04}\")"
priority: 1
triggers:
  - keywords: [done{i:04}, klaar{i:04}]
  - regex: '^stoptimer{i:04}$'
    start: stop
  - reply: [y{i:04}, n{i:04}]
    start: confirm
steps:
  - ask:
      slot: sure
      prompt:
        en: "Mark your chores done, {{{{ member.name }}}}?"
        nl: "Je klusjes afvinken, {{{{ member.name }}}}?"
      validate: {{ yes_no: true }}
    next:
      - if: slots.sure
        then: mark
      - else: nope
  - id: mark
    record_update: {{ collection: chores, where: "record.assignee == member.name", fields: {{ done: "true" }}, as: updated }}
  - send:
      text:
        en: "Marked {{{{ vars.updated | length }}}} chore(s) done."
        nl: "{{{{ vars.updated | length }}}} klusje(s) afgevinkt."
    next: end
  - id: nope
    goto: f{target:04}
  - id: stop
    timer_cancel: "t{i:04}-{{{{ member.name }}}}"
  - send: "Timer cancelled, {{{{ member.name }}}}."
    next: end
  - id: confirm
    next:
      - if: message.reply_id == 'y{i:04}'
        then: purge
      - else: end
  - id: purge
    record_delete: {{ collection: chores, where: "record.done", as: deleted }}
  - send: "Deleted {{{{ vars.deleted | length }}}} done chore(s)."
    next: end
"#
    )
}

/// `n` flow files plus the household, in memory.
fn generate(n: usize) -> (SourceFile, Vec<SourceFile>) {
    let household = SourceFile {
        path: "household.yaml".to_owned(),
        text: HOUSEHOLD.to_owned(),
    };
    let files = (0..n)
        .map(|i| SourceFile {
            path: format!("f{i:04}.yaml"),
            text: match i % 4 {
                0 => shape_ask(i),
                1 => shape_records(i),
                2 => shape_menu(i, n),
                _ => shape_lang(i, n),
            },
        })
        .collect();
    (household, files)
}

/// Writes the files for `alfred check <dir>` (outside any measurement).
fn dump(dir: &Path, household: &SourceFile, files: &[SourceFile]) {
    std::fs::create_dir_all(dir).expect("create dump dir");
    for f in std::iter::once(household).chain(files) {
        std::fs::write(dir.join(&f.path), &f.text).expect("write flow file");
    }
    eprintln!("wrote {} files to {}", files.len() + 1, dir.display());
}

fn bench_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for n in [250, 1_000] {
        let (household, files) = generate(n);
        let checked = load(Some(&household), &files);
        assert!(
            checked.errors() == 0 && checked.flows.is_some(),
            "generated flows have errors: {:#?}",
            checked.diagnostics
        );
        if n == 1_000 {
            let warnings = checked.diagnostics.len();
            let bytes: usize = files.iter().map(|f| f.text.len()).sum();
            eprintln!("check bench: {n} flow files, {bytes} bytes, {warnings} warning(s)");
            if let Some(dir) = std::env::var_os("ALFRED_BENCH_DUMP_DIR") {
                dump(Path::new(&dir), &household, &files);
            }
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("load_{n}_files"), |b| {
            b.iter(|| load(Some(black_box(&household)), black_box(&files)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
