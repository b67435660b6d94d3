//! The two deliberate crate swaps of the design card, each guarded by a test that
//! fails if the defect of the crate we did not pick comes back.
//!
//! (a) serde-saphyr instead of serde_yaml: serde_yaml reports duplicate keys without a
//!     location, and loses precise positions for unknown fields; we need file:line:col.
//! (b) croner instead of cron: cron rejects 5-field expressions, and skips a whole day
//!     when a slot falls into the spring-forward gap.

use alfred_core::schedule::CronSchedule;
use chrono::{DateTime, TimeZone as _, Utc};

use crate::support::{check_flow, errors};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn duplicate_key_has_exact_location() {
    let flow = "\
id: dup
steps:
  - id: greet
    send: Hello
    next: end
  - id: bye
    send:
      text: Bye
      to: Ben
      text: Later
";
    let checked = check_flow(flow);
    let errs = errors(&checked);
    assert_eq!(errs.len(), 1, "{:?}", checked.diagnostics);
    let d = errs[0];
    assert_eq!(d.code, "yaml");
    assert!(
        d.message.contains("duplicate") && d.message.contains("text"),
        "{}",
        d.message
    );
    // The second `text`, not the first (line 8) and not "unknown" (0).
    assert_eq!((d.pos.line, d.pos.col), (10, 7), "{d:?}");
    let r = d.render(Some(flow));
    assert!(r.contains("flow.yaml:10:7"), "{r}");
    assert!(r.contains("10 |       text: Later\n"), "{r}");
    assert!(r.contains("   |       ^^^^\n"), "caret under the key:\n{r}");
}

#[test]
fn duplicate_top_level_key_has_exact_location() {
    let checked = check_flow("id: a\nsteps:\n  - send: hi\nid: b\n");
    let d = errors(&checked)[0];
    assert!(d.message.contains("duplicate"), "{}", d.message);
    assert_eq!((d.pos.line, d.pos.col), (4, 1));
}

#[test]
fn unknown_field_has_location_and_message() {
    let flow = "id: typo\nsteps:\n  - id: hello\n    sendd: Hello there\n";
    let checked = check_flow(flow);
    let d = errors(&checked)[0];
    assert_eq!(d.code, "yaml");
    assert!(
        d.message.starts_with("unknown field `sendd`, expected one of"),
        "{}",
        d.message
    );
    assert!(d.message.contains("send"), "lists the valid keys: {}", d.message);
    assert_eq!((d.pos.line, d.pos.col), (4, 5));
    assert!(d.hint.as_deref().is_some_and(|h| h.contains("spelling")), "{d:?}");
    // Deep inside nested maps too.
    let flow =
        "id: typo\nsteps:\n  - ask:\n      slot: a\n      prompt: hi\n      validate: { yes_no: true, yesno: true }\n";
    let d = errors(&check_flow(flow))[0].clone();
    assert!(d.message.contains("unknown field `yesno`"), "{}", d.message);
    assert_eq!((d.pos.line, d.pos.col), (6, 33));
}

#[test]
fn five_field_cron_parses() {
    for expr in ["30 2 * * *", "0 7 * * 1-5", "*/15 * * * *", "0 9 * * MON", "0 0 1 * *"] {
        let s = CronSchedule::parse(expr, "Europe/Amsterdam").unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(s.expression(), expr);
        assert!(s.next_after(utc("2026-01-01T00:00:00Z")).is_some(), "{expr}");
    }
    // Seconds are optional in front.
    assert!(CronSchedule::parse("0 30 2 * * *", "Europe/Amsterdam").is_ok());
}

#[test]
fn spring_forward_gap_fires_the_same_day() {
    // 2026-03-29: Amsterdam jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    let s = CronSchedule::parse("30 2 * * *", "Europe/Amsterdam").unwrap();
    let day_before = s.next_after(utc("2026-03-27T12:00:00Z")).unwrap();
    assert_eq!(day_before, utc("2026-03-28T01:30:00Z"), "02:30 CET");
    let gap_day = s.next_after(day_before).unwrap();
    // Not skipped to the 30th (cron's defect): the first real instant after the gap.
    assert_eq!(gap_day, utc("2026-03-29T01:00:00Z"), "03:00 CEST on the 29th");
    assert_eq!(
        gap_day.with_timezone(&chrono_tz::Europe::Amsterdam).to_rfc3339(),
        "2026-03-29T03:00:00+02:00"
    );
    let day_after = s.next_after(gap_day).unwrap();
    assert_eq!(day_after, utc("2026-03-30T00:30:00Z"), "02:30 CEST");
    assert_eq!(
        s.slots_between(utc("2026-03-27T12:00:00Z"), utc("2026-03-30T12:00:00Z"), 10),
        vec![day_before, gap_day, day_after],
        "exactly one slot per day"
    );
}

#[test]
fn fall_back_repeat_fires_once() {
    // 2026-10-25: 02:00–03:00 happens twice (CEST, then CET); 02:30 fires on the first pass only.
    let s = CronSchedule::parse("30 2 * * *", "Europe/Amsterdam").unwrap();
    let slots = s.slots_between(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10);
    let first_pass = chrono_tz::Europe::Amsterdam
        .with_ymd_and_hms(2026, 10, 25, 2, 30, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(first_pass, utc("2026-10-25T00:30:00Z"));
    assert_eq!(slots, vec![first_pass, utc("2026-10-26T01:30:00Z")]);
}

#[test]
fn cron_errors_are_explained() {
    let e = CronSchedule::parse("0 25 * * *", "Europe/Amsterdam").unwrap_err();
    assert!(e.to_string().contains("hour"), "{e}");
    let e = CronSchedule::parse("0 7 * * *", "Mars/Olympus").unwrap_err();
    assert!(e.to_string().contains("Mars/Olympus"), "{e}");
}
