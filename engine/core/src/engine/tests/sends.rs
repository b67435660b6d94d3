//! Sends: recipients, templates, lists, languages, `to_members`.

use crate::check::{SourceFile, load};
use crate::data::HouseholdData;
use crate::event::{InboundMessage, OutMessage};
use crate::sim::{Produced, Simulator};

use super::*;

#[test]
fn recipients_templates_and_lists() {
    let fs = flows(&[r#"
id: r
triggers:
  - { keywords: [tell], start: tell }
  - { keywords: [tpl], start: tpl }
  - { keywords: [menu], start: menu }
steps:
  - id: tell
    send: { to: others, text: "{{ member.name }} says hi" }
  - send: { to: admins, text: for admins }
    next: end
  - id: tpl
    send: { template: { name: nudge, params: ["{{ member.name }}", dishes] }, to: Ben }
    next: end
  - id: menu
    ask:
      slot: pick
      prompt: Pick
      list:
        button: Options
        sections:
          - title: A
            rows: [{ id: a1, title: First, description: one }]
          - title: B
            rows: [{ id: b1, title: Second }]
  - send: "picked {{ slots.pick }}"
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Ben", "tell"),
        ["Anna: Ben says hi", "Kid: Ben says hi", "Anna: for admins"]
    );
    let out = sim.send("Anna", InboundMessage::text("tpl"));
    match &out[..] {
        [Produced::Message(o)] => {
            assert_eq!(o.to, "Ben");
            assert_eq!(
                o.message,
                OutMessage::Template {
                    name: "nudge".into(),
                    language: "en_US".into(),
                    params: vec!["Anna".into(), "dishes".into()]
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let out = sim.send("Anna", InboundMessage::text("menu"));
    let Produced::Message(o) = &out[0] else {
        panic!("{out:?}")
    };
    let ids: Vec<&str> = o.message.choices().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1"]);
    assert_eq!(
        texts(&sim.send("Anna", InboundMessage::reply("b1", "Second"))),
        ["Anna: picked b1"]
    );
}

#[test]
fn each_recipient_reads_their_own_language_and_template_params_are_made_safe() {
    let fs = flows(&[r#"
id: tell
triggers: [{ keywords: [tell] }, { keywords: [tpl], start: tpl }]
steps:
  - send: { to: everyone, text: { en: "{{ member.name }} is home", nl: "{{ member.name }} is thuis" } }
    next: end
  - id: tpl
    send: { template: { name: nudge, params: ["a\nb\t c      d", x] } }
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    assert_eq!(
        say(&mut sim, "Ben", "tell"),
        ["Anna: Ben is home", "Ben: Ben is home", "Kid: Ben is thuis"]
    );
    let out = sim.send("Anna", InboundMessage::text("tpl"));
    let Produced::Message(o) = &out[0] else {
        panic!("{out:?}")
    };
    assert!(
        matches!(&o.message, OutMessage::Template { params, .. } if params[0] == "a b c d"),
        "{:?}",
        o.message
    );
}

#[test]
fn to_members_sends_to_each_member_of_a_computed_list() {
    let fs = flows(&[r#"
id: n
outside_window: drop
triggers:
  - { keywords: [tell], start: tell }
  - { keywords: [maps], start: maps }
  - { keywords: [nobody], start: nobody }
  - { keywords: [bad], start: bad }
  - { keywords: [stranger], start: stranger }
steps:
  - id: tell
    send:
      to_members: "['ben', 'Kid', 'Ben', member.name] | reject('eq', member.name) | list"
      text: { en: "{{ member.name }} says hi", nl: "{{ member.name }} zegt hoi" }
    next: end
  - id: maps
    send: { to_members: "members | selectattr('role', 'eq', 'admin') | list", text: admins only }
    next: end
  - id: nobody
    send: { to_members: "[]", text: nobody }
  - send: done
    next: end
  - id: bad
    send: { to_members: "'Ben'", text: not a list }
    next: end
  - id: stranger
    send: { to_members: "['Zed']", text: who }
"#]);
    let mut sim = Simulator::new(&fs, t0(), HouseholdData::default());
    // Duplicates go once, in list order, each in their own language.
    assert_eq!(
        say(&mut sim, "Anna", "tell"),
        ["Ben: Anna says hi", "Kid: Anna zegt hoi"]
    );
    assert_eq!(say(&mut sim, "Ben", "maps"), ["Anna: admins only"]);
    assert_eq!(say(&mut sim, "Ben", "nobody"), ["Ben: done"]);
    assert!(trace_lines(&sim).iter().any(|l| l.contains("had no recipient")));
    let out = say(&mut sim, "Ben", "bad");
    assert!(
        out[0].starts_with("ERROR") && out[0].contains("list of member names"),
        "{out:?}"
    );
    // A name that is no member (say one an admin removed after it was stored) is skipped
    // with a trace line; it does not fail the run.
    assert!(say(&mut sim, "Ben", "stranger").is_empty());
    let trace = trace_lines(&sim);
    assert!(
        trace
            .iter()
            .any(|l| l.contains("`Zed` is not a member (any more), skipped")),
        "{trace:?}"
    );
    assert!(trace.iter().any(|l| l.contains("had no recipient")), "{trace:?}");
}

#[test]
fn to_members_needs_a_window_policy_and_excludes_to() {
    let household = SourceFile {
        path: "household.yaml".into(),
        text: HOUSEHOLD.into(),
    };
    let flow = SourceFile {
        path: "f.yaml".into(),
        text:
            "id: x\ntriggers: [{ keywords: [x] }]\nsteps:\n  - send: { to: Ben, to_members: \"['Anna']\", text: hi }\n"
                .into(),
    };
    let checked = load(Some(&household), &[flow]);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.code == "proactive-send" && d.message.contains("`to_members`")),
        "a send to other members must say what happens outside their window: {:?}",
        checked.diagnostics
    );
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.render(None).contains("only one of `to` and `to_members`")),
        "{:?}",
        checked.diagnostics
    );
}
