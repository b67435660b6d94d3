//! Scheduler tests on a virtual clock, each on a SQLite file and on a fresh Postgres
//! database (the store's `TestDb`). The clock is a shared cell the test moves; every
//! tick is awaited, so nothing depends on real time passing.

use std::collections::BTreeMap;
use std::sync::Mutex;

use alfred_core::check::{SourceFile, load};
use alfred_core::event::{Effect, InboundMessage, OutMessage, TimerFired, TimerSpec};
use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use super::*;
use crate::edges::queue::AnyQueue;
use crate::edges::queue::sql::{SqlQueue, SqlQueueConfig};
use crate::edges::store::schema::{outbox, timers};
use crate::edges::store::tests::TestDb;
use crate::edges::store::{EventCommit, Fired};

const HOUSEHOLD: &str = r#"
household:
  name: Test
  timezone: Europe/Amsterdam
members:
  - name: Anna
    phone: "+31612345001"
    role: admin
  - name: Ben
    phone: "+31612345002"
  - name: Cleo
    phone: "+12125550100"
    timezone: America/New_York
"#;

const FLOWS: &[(&str, &str)] = &[
    (
        "briefing.yaml",
        r#"
id: briefing
# The window rule is not what these tests are about.
outside_window: defer
triggers:
  - schedule: { cron: "0 7 * * *", timezone: member }
steps:
  - send: "Good morning"
"#,
    ),
    (
        "night.yaml",
        r#"
id: night
# The window rule is not what these tests are about.
outside_window: defer
triggers:
  - schedule: { cron: "30 2 * * *", for: admins }
steps:
  - send: "Night check"
"#,
    ),
    (
        "late_skip.yaml",
        r#"
id: late_skip
# The window rule is not what these tests are about.
outside_window: defer
triggers:
  - schedule: { cron: "0 9 * * *", for: admins, catch_up: skip }
steps:
  - send: "Nine (skip)"
"#,
    ),
    (
        "late_once.yaml",
        r#"
id: late_once
# The window rule is not what these tests are about.
outside_window: defer
triggers:
  - schedule: { cron: "0 9 * * *", for: admins, catch_up: once }
steps:
  - send: "Nine (once)"
"#,
    ),
    (
        "queued.yaml",
        r#"
id: queued
# The window rule is not what these tests are about.
outside_window: defer
triggers:
  - schedule: { cron: "0 8 * * *", for: admins, overlap: queue }
steps:
  - send: "Eight (queued)"
"#,
    ),
    (
        "remind.yaml",
        r#"
id: remind
# The window rule is not what these tests are about.
outside_window: defer
triggers:
  - keywords: [remind me]
  - keywords: [forget it]
    start: forget
steps:
  - timer_start: { id: "call-{{ member.name }}", after: 1h, step: ring }
  - send: "OK"
    next: end
  - id: forget
    timer_cancel: "call-{{ member.name }}"
  - send: "Forgotten"
    next: end
  - id: ring
    send: "Time to call grandma"
"#,
    ),
];

fn flows() -> Arc<FlowSet> {
    let household = SourceFile {
        path: "household.yaml".to_owned(),
        text: HOUSEHOLD.to_owned(),
    };
    let files: Vec<SourceFile> = FLOWS
        .iter()
        .map(|(path, text)| SourceFile {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect();
    let checked = load(Some(&household), &files);
    let errors: Vec<String> = checked.diagnostics.iter().map(|d| format!("{d:?}")).collect();
    Arc::new(checked.flows.unwrap_or_else(|| panic!("test flows check: {errors:#?}")))
}

/// The virtual clock the schedulers read.
#[derive(Clone)]
struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    fn new(at: DateTime<Utc>) -> Self {
        Clock(Arc::new(Mutex::new(at)))
    }
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn scheduler(store: &Store, flows: &Arc<FlowSet>, clock: &Clock, owner: &str) -> Scheduler<AnyQueue> {
    let c = clock.clone();
    Scheduler {
        store: store.clone(),
        queue: AnyQueue::from(SqlQueue::new(store.clone(), SqlQueueConfig::default())),
        flows: flows.clone(),
        outbox_stream: "test-outbox".to_owned(),
        owner: owner.to_owned(),
        clock: Arc::new(move || c.now()),
        config: SchedulerConfig::default(),
    }
}

/// An instant from local wall-clock text in `tz` (must exist and be unambiguous).
fn local(tz: Tz, text: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
    tz.from_local_datetime(&naive).single().unwrap().to_utc()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

const AMS: Tz = chrono_tz::Europe::Amsterdam;
const NY: Tz = chrono_tz::America::New_York;

/// Every outbox row as (member, text, created_at), in id order.
fn messages(store: &Store) -> Vec<(String, String, DateTime<Utc>)> {
    let mut conn = store.conn().unwrap();
    let rows: Vec<(String, String, chrono::NaiveDateTime)> = outbox::table
        .order(outbox::id)
        .select((outbox::member, outbox::message, outbox::created_at))
        .load(&mut *conn)
        .unwrap();
    rows.into_iter()
        .map(|(member, json, at)| {
            let msg: OutMessage = serde_json::from_str(&json).unwrap();
            (member, msg.body().to_owned(), at.and_utc())
        })
        .collect()
}

fn messages_with(store: &Store, text: &str) -> Vec<(String, DateTime<Utc>)> {
    messages(store)
        .into_iter()
        .filter(|(_, body, _)| body == text)
        .map(|(m, _, at)| (m, at))
        .collect()
}

/// A member's text message through the same path the worker uses.
fn say(store: &Store, flows: &FlowSet, member: &str, text: &str, wamid: &str, now: DateTime<Utc>) {
    let event = Event {
        member: member.to_owned(),
        kind: EventKind::Message(InboundMessage::text(text)),
    };
    let run = run_event(store, flows, event, Some(wamid.to_owned()), now).unwrap();
    assert!(matches!(run.outcome, CommitOutcome::Committed { .. }), "{run:?}");
}

fn timer_ids(store: &Store) -> Vec<String> {
    store.pending_timers().unwrap().into_iter().map(|t| t.id).collect()
}

macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = super::TestDb::sqlite();
                db.store().migrate().expect("migrate");
                super::$name(db.store()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = super::TestDb::postgres();
                db.store().migrate().expect("migrate");
                super::$name(db.store()).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Schedules

on_both_backends!(two_schedulers_send_one_briefing_per_member_per_day);
/// Two schedulers on one database tick at the same virtual instants (concurrently)
/// through a week: every member gets exactly one briefing per local day, at 07:00 in
/// their own zone, and the admin one night check per day.
async fn two_schedulers_send_one_briefing_per_member_per_day(store: &Store) {
    let flows = flows();
    let start = local(AMS, "2026-06-01 00:00");
    let clock = Clock::new(start);
    let (a, b) = (
        scheduler(store, &flows, &clock, "sched-a"),
        scheduler(store, &flows, &clock, "sched-b"),
    );
    let mut now = start;
    while now < start + TimeDelta::days(7) {
        now += TimeDelta::minutes(15);
        clock.set(now);
        let (ta, tb) = tokio::join!(a.tick(), b.tick());
        let (ta, tb) = (ta.unwrap(), tb.unwrap());
        // Whoever claimed a slot ran it; the other never ran any of its events twice.
        assert_eq!(ta.timers_gone + tb.timers_gone, 0);
    }
    let mut per_day: BTreeMap<(String, NaiveDate), Vec<String>> = BTreeMap::new();
    for (member, at) in messages_with(store, "Good morning") {
        let tz = if member == "Cleo" { NY } else { AMS };
        let local = at.with_timezone(&tz);
        per_day
            .entry((member, local.date_naive()))
            .or_default()
            .push(local.format("%H:%M").to_string());
    }
    let days: Vec<NaiveDate> = (1..=7).map(|d| NaiveDate::from_ymd_opt(2026, 6, d).unwrap()).collect();
    let mut want = BTreeMap::new();
    for member in ["Anna", "Ben", "Cleo"] {
        for day in &days {
            want.insert((member.to_owned(), *day), vec!["07:00".to_owned()]);
        }
    }
    // Cleo's (New York) 7 June briefing is at 13:00 in Amsterdam on 7 June, inside the week.
    assert_eq!(per_day, want);
    let nights = messages_with(store, "Night check");
    assert_eq!(nights.len(), 7, "{nights:?}");
    assert!(nights.iter().all(|(m, _)| m == "Anna"));
}

/// (UTC window start, end, expected (member, text, UTC instant) in it).
type DstCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str, &'static str)>,
);

on_both_backends!(dst_days_fire_once_at_local_time);
/// Spring forward and fall back in Amsterdam and New York: the 07:00 briefing arrives
/// once, at 07:00 local time, and 02:30 Amsterdam fires at 03:00 on the spring-forward
/// day and once (on the first pass) on the fall-back day.
async fn dst_days_fire_once_at_local_time(store: &Store) {
    let flows = flows();
    let clock = Clock::new(utc("2026-03-07T00:00:00Z"));
    let sched = scheduler(store, &flows, &clock, "sched");
    // (UTC window to tick through in 5-minute steps, expected (member, text, instant)).
    let cases: [DstCase; 4] = [
        (
            "2026-03-08T00:00:00Z",
            "2026-03-09T00:00:00Z",
            // New York springs forward at 02:00 EST: 07:00 EDT is 11:00Z.
            vec![
                ("Anna", "Night check", "2026-03-08T01:30:00Z"),
                ("Anna", "Good morning", "2026-03-08T06:00:00Z"),
                ("Ben", "Good morning", "2026-03-08T06:00:00Z"),
                ("Cleo", "Good morning", "2026-03-08T11:00:00Z"),
            ],
        ),
        (
            "2026-03-28T23:00:00Z",
            "2026-03-29T23:00:00Z",
            // Amsterdam springs forward: 02:30 does not exist, fires at 03:00 CEST (01:00Z).
            vec![
                ("Anna", "Night check", "2026-03-29T01:00:00Z"),
                ("Anna", "Good morning", "2026-03-29T05:00:00Z"),
                ("Ben", "Good morning", "2026-03-29T05:00:00Z"),
                ("Cleo", "Good morning", "2026-03-29T11:00:00Z"),
            ],
        ),
        (
            "2026-10-24T22:00:00Z",
            "2026-10-25T23:00:00Z",
            // Amsterdam falls back: 02:30 happens twice, fires on the first pass (CEST).
            vec![
                ("Anna", "Night check", "2026-10-25T00:30:00Z"),
                ("Anna", "Good morning", "2026-10-25T06:00:00Z"),
                ("Ben", "Good morning", "2026-10-25T06:00:00Z"),
                ("Cleo", "Good morning", "2026-10-25T11:00:00Z"),
            ],
        ),
        (
            "2026-11-01T00:00:00Z",
            "2026-11-01T22:00:00Z",
            // New York falls back: 07:00 EST is 12:00Z.
            vec![
                ("Anna", "Night check", "2026-11-01T01:30:00Z"),
                ("Anna", "Good morning", "2026-11-01T06:00:00Z"),
                ("Ben", "Good morning", "2026-11-01T06:00:00Z"),
                ("Cleo", "Good morning", "2026-11-01T12:00:00Z"),
            ],
        ),
    ];
    for (from, to, want) in cases {
        let (from, to) = (utc(from), utc(to));
        let mut now = from;
        while now < to {
            now += TimeDelta::minutes(5);
            clock.set(now);
            sched.tick().await.unwrap();
        }
        let mut got: Vec<(String, String, DateTime<Utc>)> = messages(store)
            .into_iter()
            .filter(|(_, body, at)| *at > from && *at <= to && ["Good morning", "Night check"].contains(&body.as_str()))
            .collect();
        got.sort_by(|x, y| (x.2, &x.0).cmp(&(y.2, &y.0)));
        let want: Vec<(String, String, DateTime<Utc>)> = want
            .into_iter()
            .map(|(m, t, at)| (m.to_owned(), t.to_owned(), utc(at)))
            .collect();
        assert_eq!(got, want, "window {from} .. {to}");
    }
}

on_both_backends!(downtime_skip_and_once);
/// A scheduler down across a 09:00 slot. 59 or 2 minutes late, `once` fires it (at
/// once) and `skip` does not; 61 minutes late (past the default 1h window), neither
/// does. Skipped slots are recorded, and nothing fires twice.
async fn downtime_skip_and_once(store: &Store) {
    let flows = flows();
    let clock = Clock::new(local(AMS, "2026-06-01 08:00"));
    let sched = scheduler(store, &flows, &clock, "sched");
    // (up at, down until) per day: 59 minutes late, on time, 2 minutes late, 61 minutes late.
    let days = [
        ("2026-06-01 08:00", "2026-06-01 09:59"),
        ("2026-06-02 08:00", "2026-06-02 09:00"),
        ("2026-06-03 08:00", "2026-06-03 09:02"),
        ("2026-06-04 08:00", "2026-06-04 10:01"),
    ];
    for (up, back) in days {
        clock.set(local(AMS, up));
        sched.tick().await.unwrap();
        clock.set(local(AMS, back));
        sched.tick().await.unwrap();
        clock.set(local(AMS, back) + TimeDelta::minutes(30));
        sched.tick().await.unwrap();
    }
    let at = |text: &str| ("Anna".to_owned(), local(AMS, text));
    let once = [at("2026-06-01 09:59"), at("2026-06-02 09:00"), at("2026-06-03 09:02")];
    assert_eq!(messages_with(store, "Nine (once)"), once);
    assert_eq!(messages_with(store, "Nine (skip)"), [at("2026-06-02 09:00")]);
    let history = |key: &str| -> Vec<String> {
        let h = store.schedule_slot_history(key).unwrap();
        h.into_iter()
            .map(|(slot, status)| format!("{} {status}", slot.with_timezone(&AMS).format("%d %H:%M")))
            .collect()
    };
    let want = ["01 09:00 done", "02 09:00 done", "03 09:00 done", "04 09:00 skipped"];
    assert_eq!(history("late_once#0"), want);
    // Before its first on-time slot the `skip` schedule had no cursor: a missed slot
    // then leaves no row, and fires no more than a recorded one.
    assert_eq!(
        history("late_skip#0"),
        ["02 09:00 done", "03 09:00 skipped", "04 09:00 skipped"]
    );
}

on_both_backends!(overlap_skip_and_queue);
/// A slot whose fan-out is still running (another scheduler holds its lease): the next
/// slot of an `overlap: skip` schedule is skipped; the running one is taken over and
/// finished once its lease expires, without repeating members already run.
async fn overlap_skip_and_queue(store: &Store) {
    let flows = flows();
    let first = local(AMS, "2026-06-01 07:00");
    // A scheduler claimed the 1 June Amsterdam briefing, ran it for Anna, and hung.
    let lease_end = first + TimeDelta::days(1) + TimeDelta::minutes(30);
    assert!(
        store
            .claim_schedule_slot("briefing#0@Europe/Amsterdam", first, "hung", first, Some(lease_end))
            .unwrap()
    );
    let anna = Event {
        member: "Anna".to_owned(),
        kind: EventKind::Schedule {
            flow: "briefing".to_owned(),
            trigger: 0,
            slot: first,
        },
    };
    run_event(store, &flows, anna.clone(), None, first).unwrap();
    // Running it again for Anna is a duplicate: the run marker is in her transaction.
    assert_eq!(
        run_event(store, &flows, anna, None, first).unwrap().outcome,
        CommitOutcome::Duplicate
    );
    let clock = Clock::new(local(AMS, "2026-06-02 07:00"));
    let sched = scheduler(store, &flows, &clock, "sched");
    let tick = sched.tick().await.unwrap();
    assert_eq!(tick.slots_skipped, 1, "{tick:?}");
    let key = "briefing#0@Europe/Amsterdam";
    let history = store.schedule_slot_history(key).unwrap();
    assert_eq!(
        history,
        [
            (first, "running".to_owned()),
            (first + TimeDelta::days(1), "skipped".to_owned())
        ]
    );
    // After the lease expires the slot is taken over: Ben gets his (late) briefing, Anna
    // not a second one.
    clock.set(lease_end + TimeDelta::minutes(1));
    sched.tick().await.unwrap();
    let got: Vec<String> = messages_with(store, "Good morning")
        .into_iter()
        .filter(|(m, _)| m != "Cleo")
        .map(|(m, _)| m)
        .collect();
    assert_eq!(got, ["Anna", "Ben"]);
    assert_eq!(store.schedule_slot_history(key).unwrap()[0].1, "done");

    // `overlap: queue`: the next slot waits for the running one, then runs after it.
    let eight = local(AMS, "2026-06-05 08:00");
    let lease_end = eight + TimeDelta::days(1) + TimeDelta::minutes(30);
    assert!(
        store
            .claim_schedule_slot("queued#0", eight, "hung", eight, Some(lease_end))
            .unwrap()
    );
    clock.set(eight + TimeDelta::days(1));
    sched.tick().await.unwrap();
    assert!(messages_with(store, "Eight (queued)").is_empty());
    let running: Vec<DateTime<Utc>> = store
        .running_schedule_slots("queued#0")
        .unwrap()
        .into_iter()
        .map(|r| r.slot)
        .collect();
    assert_eq!(running, [eight, eight + TimeDelta::days(1)]);
    clock.set(lease_end + TimeDelta::minutes(1));
    sched.tick().await.unwrap();
    let queued = messages_with(store, "Eight (queued)");
    assert_eq!(queued.len(), 2, "both slots ran, oldest first: {queued:?}");
    let history = store.schedule_slot_history("queued#0").unwrap();
    assert_eq!(
        history,
        [
            (eight, "done".to_owned()),
            (eight + TimeDelta::days(1), "done".to_owned())
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Timers

on_both_backends!(pending_timer_fires_once_after_restart);
/// "Remind me" starts a timer; the scheduler is dropped before it is due and a new one
/// starts after it is overdue: it fires once, at once; more ticks and schedulers fire
/// nothing more. A cancelled timer never fires.
async fn pending_timer_fires_once_after_restart(store: &Store) {
    let flows = flows();
    let t0 = local(AMS, "2026-06-01 10:00");
    say(store, &flows, "Anna", "remind me", "wamid.1", t0);
    assert_eq!(timer_ids(store), ["call-Anna"]);
    let clock = Clock::new(t0 + TimeDelta::minutes(30));
    let first = scheduler(store, &flows, &clock, "sched-1");
    assert_eq!(first.tick().await.unwrap().timers_fired, 0);
    drop(first);
    // Down until 13:00; the timer was due at 11:00.
    clock.set(local(AMS, "2026-06-01 13:00"));
    let second = scheduler(store, &flows, &clock, "sched-2");
    let third = scheduler(store, &flows, &clock, "sched-3");
    let (t2, t3) = tokio::join!(second.tick(), third.tick());
    assert_eq!(t2.unwrap().timers_fired + t3.unwrap().timers_fired, 1);
    assert_eq!(second.tick().await.unwrap().timers_fired, 0);
    let rings = messages_with(store, "Time to call grandma");
    assert_eq!(rings, [("Anna".to_owned(), local(AMS, "2026-06-01 13:00"))]);
    assert!(timer_ids(store).is_empty());

    // Ben starts one and cancels it: it never fires.
    say(
        store,
        &flows,
        "Ben",
        "remind me",
        "wamid.2",
        local(AMS, "2026-06-01 14:00"),
    );
    say(
        store,
        &flows,
        "Ben",
        "forget it",
        "wamid.3",
        local(AMS, "2026-06-01 14:10"),
    );
    clock.set(local(AMS, "2026-06-01 16:00"));
    assert_eq!(second.tick().await.unwrap().timers_fired, 0);
    assert_eq!(messages_with(store, "Time to call grandma").len(), 1);
}

on_both_backends!(leased_timer_of_a_dead_scheduler_fires_after_the_lease);
/// A scheduler leased a timer and died before committing: nobody fires it while the
/// lease holds; after it expires, it fires once. Cancelling a leased timer before the
/// commit wins: the firing is a no-op.
async fn leased_timer_of_a_dead_scheduler_fires_after_the_lease(store: &Store) {
    let flows = flows();
    let t0 = local(AMS, "2026-06-01 10:00");
    say(store, &flows, "Anna", "remind me", "wamid.1", t0);
    let due = t0 + TimeDelta::hours(1);
    let leased = store.claim_due_timers("dead", due, TimeDelta::minutes(1), 10).unwrap();
    assert_eq!(leased.len(), 1);
    let clock = Clock::new(due + TimeDelta::seconds(30));
    let sched = scheduler(store, &flows, &clock, "sched");
    assert_eq!(sched.tick().await.unwrap().timers_fired, 0);
    clock.set(due + TimeDelta::minutes(2));
    assert_eq!(sched.tick().await.unwrap().timers_fired, 1);
    assert_eq!(messages_with(store, "Time to call grandma").len(), 1);

    // Ben's timer is leased, then cancelled before the (late) commit of its firing.
    say(store, &flows, "Ben", "remind me", "wamid.2", t0);
    let leased = store.claim_due_timers("slow", due, TimeDelta::minutes(1), 10).unwrap();
    assert_eq!(leased.len(), 1);
    say(store, &flows, "Ben", "forget it", "wamid.3", due);
    let event = Event {
        member: "Ben".to_owned(),
        kind: EventKind::Timer(leased[0].fired.clone()),
    };
    let run = run_event(store, &flows, event, None, due).unwrap();
    assert_eq!(run.outcome, CommitOutcome::Duplicate);
    assert_eq!(messages_with(store, "Time to call grandma").len(), 1);
}

on_both_backends!(stale_timer_is_ignored_and_the_trace_says_so);
/// An ask timeout for a question the conversation has left fires (and is consumed) but
/// does nothing, and the engine's trace says why.
async fn stale_timer_is_ignored_and_the_trace_says_so(store: &Store) {
    let flows = flows();
    let t0 = local(AMS, "2026-06-01 10:00");
    let spec = TimerSpec {
        id: "ask-timeout:Anna".to_owned(),
        member: "Anna".to_owned(),
        fire_at: t0 + TimeDelta::minutes(10),
        fired: TimerFired {
            id: "ask-timeout:Anna".to_owned(),
            flow: "remind".to_owned(),
            step: "ring".to_owned(),
            data: Default::default(),
            wait: Some(7),
        },
    };
    let commit = EventCommit {
        fired: None,
        inbound_wamid: None,
        member: "Anna".to_owned(),
        state: Default::default(),
        effects: vec![Effect::StartTimer(spec)],
        now: t0,
        ..Default::default()
    };
    store.commit_event(&commit).unwrap();
    let clock = Clock::new(t0 + TimeDelta::minutes(10));
    let tick = scheduler(store, &flows, &clock, "sched").tick().await.unwrap();
    assert_eq!(tick.timers_fired, 1);
    let reasons: Vec<String> = tick.traces.iter().map(ToString::to_string).collect();
    assert_eq!(
        reasons,
        ["ignored: ask timeout for a question that was already answered or left"]
    );
    assert!(messages(store).is_empty());
    assert!(timer_ids(store).is_empty());
}

on_both_backends!(fired_marker_makes_a_second_commit_a_duplicate);
/// The `fired` hook of `commit_event`: a schedule run marker or a consumed timer makes
/// a second commit of the same firing a duplicate that writes nothing.
async fn fired_marker_makes_a_second_commit_a_duplicate(store: &Store) {
    let now = local(AMS, "2026-06-01 07:00");
    let commit = EventCommit {
        fired: Some(Fired::Schedule {
            schedule: "briefing#0".to_owned(),
            slot: now,
        }),
        inbound_wamid: None,
        member: "Anna".to_owned(),
        state: Default::default(),
        effects: Vec::new(),
        now,
        ..Default::default()
    };
    assert!(matches!(
        store.commit_event(&commit).unwrap(),
        CommitOutcome::Committed { .. }
    ));
    assert_eq!(store.commit_event(&commit).unwrap(), CommitOutcome::Duplicate);
    // A timer without a lease (not claimed by a scheduler) cannot be consumed.
    let timer = EventCommit {
        fired: Some(Fired::Timer { id: "t1".to_owned() }),
        ..commit
    };
    assert_eq!(store.commit_event(&timer).unwrap(), CommitOutcome::Duplicate);
    let mut conn = store.conn().unwrap();
    let n: i64 = timers::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(n, 0);
}

/// The role loop on tokio's paused clock: it ticks on its interval and stops on
/// shutdown (the virtual wall clock is moved by the test, not by real time).
#[tokio::test(start_paused = true)]
async fn run_loop_ticks_and_stops_on_shutdown() {
    let db = TestDb::sqlite();
    db.store().migrate().unwrap();
    let flows = flows();
    let clock = Clock::new(local(AMS, "2026-06-01 06:59"));
    let sched = Arc::new(scheduler(db.store(), &flows, &clock, "sched"));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = {
        let (sched, stop) = (sched.clone(), stop.clone());
        tokio::spawn(async move {
            sched
                .run(async move { stop.cancelled().await }, &Default::default())
                .await
        })
    };
    clock.set(local(AMS, "2026-06-01 07:00"));
    // Each loop iteration is one tick; waiting on the outbox row is waiting on a tick.
    let mut waited = 0;
    while messages_with(db.store(), "Good morning").len() < 2 {
        tokio::time::sleep(SchedulerConfig::default().tick).await;
        waited += 1;
        assert!(waited < 100, "the loop never ticked");
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(messages_with(db.store(), "Good morning").len(), 2);
}
