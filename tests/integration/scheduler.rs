//! The scheduler role inside the running service, on both backends: a timer that came
//! due while Alfred was down fires once, right after the start, and its reminder reaches
//! the fake Graph API. (The scheduler's own tests, with a virtual clock, cover schedules,
//! DST, catch-up and several schedulers at once.)

use std::sync::Arc;
use std::time::Duration;

use alfred::config::Config;
use alfred::fake_graph;
use alfred::serve::{Roles, Service};
use alfred::store::EventCommit;
use alfred_core::data::{DataChange, Record};
use alfred_core::event::{Effect, TimerFired, TimerSpec};
use chrono::{TimeDelta, Utc};

use crate::support::{pg_admin, pg_base, root, unique};

const REMINDER: &str =
    "⏰ Reminder: \"Take out the trash\" is due now. Say \"done Take out the trash\" when it's done.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_overdue_timer_fires_once_after_start() {
    let dir = std::env::temp_dir().join(format!("alfred-sched-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("alfred.db").to_string_lossy().into_owned();
    overdue_timer_scenario(db, None, None).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_overdue_timer_fires_once_after_start() {
    let name = format!("alfred_sched_{}", unique());
    pg_admin(&format!("CREATE DATABASE \"{name}\""));
    let redis = std::env::var("ALFRED_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("test-{name}");
    overdue_timer_scenario(
        format!("{}/{name}", pg_base()),
        Some(redis.clone()),
        Some(prefix.clone()),
    )
    .await;
    pg_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    if let Ok(client) = redis::Client::open(redis.as_str())
        && let Ok(mut c) = client.get_connection()
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut c)
            .unwrap_or_default();
        for k in keys {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut c);
        }
    }
}

async fn overdue_timer_scenario(database_url: String, redis_url: Option<String>, prefix: Option<String>) {
    let fake = fake_graph::start().await;
    let mut vars: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url),
        ("META_APP_SECRET", "secret".into()),
        ("VERIFY_TOKEN", "vt".into()),
        ("WHATSAPP_TOKEN", fake_graph::TOKEN.into()),
        ("WHATSAPP_PHONE_ID", "106540352242922".into()),
        ("WHATSAPP_API_BASE", fake.base_url()),
        ("ALFRED_FLOWS", root().join("flows").to_string_lossy().into_owned()),
    ];
    if let Some(r) = redis_url {
        vars.push(("REDIS_URL", r));
    }
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let mut service = Service::build(config).await.expect("service starts");
    if let Some(p) = prefix {
        service.streams = alfred::queue::StreamNames::with_prefix(&p);
    }
    // Written before the start, as a previous run of Alfred would have: an open chore
    // whose reminder was due an hour ago, while Alfred was down.
    let now = Utc::now();
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

    let service = Arc::new(service);
    let roles = Roles {
        webhook: false,
        worker: false,
        sender: true,
        scheduler: true,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let svc = service.clone();
    let running = tokio::spawn(async move {
        svc.run(None, roles, async move {
            let _ = stop_rx.await;
        })
        .await
    });
    // Bounded wait for the send; the first scheduler tick runs at start.
    let texts = || -> Vec<(String, String)> {
        fake.requests()
            .into_iter()
            .filter_map(|r| {
                let body = r.body.get("text")?.get("body")?.as_str()?.to_owned();
                Some((r.body["to"].as_str().unwrap_or_default().to_owned(), body))
            })
            .collect()
    };
    for _ in 0..200 {
        if !texts().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(texts(), [("+31612345002".to_owned(), REMINDER.to_owned())]);
    // Fired means consumed: the row is gone, so no later tick or restart can fire it. The
    // reminder armed the chore's nudge for three hours later, which is all that waits.
    let pending: Vec<String> = service
        .store
        .pending_timers()
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(pending, ["chore-nudge-1"]);
    let _ = stop_tx.send(());
    running.await.unwrap().unwrap();
}
