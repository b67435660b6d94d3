//! The scheduler role inside the running service, on both backends: a timer that came
//! due while Alfred was down fires once, right after the start, and its reminder reaches
//! the fake Graph API. (The scheduler's own tests, with a virtual clock, cover schedules,
//! DST, catch-up and several schedulers at once.)

use alfred::cli::serve::Roles;
use alfred::edges::store::EventCommit;
use alfred_core::data::{DataChange, Record};
use alfred_core::event::{Effect, TimerFired, TimerSpec};
use alfred_fake_graph as fake_graph;
use chrono::{TimeDelta, TimeZone, Utc};

use super::pipeline::{Backend, Running, VirtualClock, eventually};

const REMINDER: &str =
    "⏰ Reminder: \"Take out the trash\" is due now. Say \"done Take out the trash\" when it's done.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_overdue_timer_fires_once_after_start() {
    overdue_timer_scenario(Backend::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_overdue_timer_fires_once_after_start() {
    overdue_timer_scenario(Backend::scale_out()).await;
}

async fn overdue_timer_scenario(backend: Backend) {
    let fake = fake_graph::start().await;
    let mut service = backend.build(&fake).await;
    // A Saturday afternoon: no weekday briefing or Sunday summary is in its catch-up hour,
    // so the timer is the only thing due, whatever the wall clock says.
    let now = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
    service.clock = VirtualClock::at(now).clock();
    // Written before the start, as a previous run of Alfred would have: an open chore
    // whose reminder was due an hour ago, while Alfred was down.
    let due = now - TimeDelta::hours(1);
    let fields =
        serde_json::json!({ "title": "Take out the trash", "assignee": "Ben", "done": false, "due": due.to_rfc3339() });
    let chore = Record {
        id: "1".to_owned(),
        fields: serde_json::from_value(fields).unwrap(),
        created_by: "Anna".to_owned(),
        created_at: now - TimeDelta::days(1),
        updated_at: now - TimeDelta::days(1),
    };
    let data = serde_json::json!({ "chore_id": "1", "title": "Take out the trash" });
    let timer = TimerSpec {
        id: "chore-1".to_owned(),
        member: "Ben".to_owned(),
        fire_at: due,
        fired: TimerFired {
            id: "chore-1".to_owned(),
            flow: "chores".to_owned(),
            step: "remind".to_owned(),
            data: serde_json::from_value(data).unwrap(),
            wait: None,
        },
    };
    let commit = EventCommit {
        fired: None,
        inbound_wamid: None,
        member: "Anna".to_owned(),
        state: Default::default(),
        effects: vec![
            Effect::Data(DataChange::RecordPut {
                collection: "chores".to_owned(),
                record: chore,
            }),
            Effect::StartTimer(timer),
        ],
        now: now - TimeDelta::days(1),
        ..Default::default()
    };
    service.store.commit_event(&commit).unwrap();
    // Ben wrote two hours ago, so his 24-hour window is open and the reminder goes as text.
    let wrote = EventCommit {
        inbound_wamid: Some("wamid.ben-earlier".to_owned()),
        member: "Ben".to_owned(),
        now: now - TimeDelta::hours(2),
        ..Default::default()
    };
    service.store.commit_event(&wrote).unwrap();

    // Only the sender and the scheduler: the timer is the only way anything is sent.
    let roles = Roles {
        webhook: false,
        worker: false,
        sender: true,
        scheduler: true,
    };
    let svc = Running::start(service, roles).await;
    // The first scheduler tick runs at start.
    let texts = || -> Vec<(String, String)> {
        fake.requests()
            .into_iter()
            .filter_map(|r| {
                let body = r.body.get("text")?.get("body")?.as_str()?.to_owned();
                Some((r.body["to"].as_str().unwrap_or_default().to_owned(), body))
            })
            .collect()
    };
    eventually("the reminder", || !texts().is_empty()).await;
    assert_eq!(texts(), [("+31612345002".to_owned(), REMINDER.to_owned())]);
    // Fired means consumed: the row is gone, so no later tick or restart can fire it. The
    // reminder armed the chore's nudge for three hours later, which is all that waits.
    let pending: Vec<String> = svc
        .service
        .store
        .pending_timers()
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(pending, ["chore-nudge-1"]);
    svc.stop().await;
}
