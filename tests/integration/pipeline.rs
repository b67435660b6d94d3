//! The service's failure paths end to end, in process, on both backends (embedded SQLite
//! with the SQL queue, and a fresh Postgres database with Redis Streams): status
//! webhooks, a rate limit at WhatsApp, a worker that dies between commit and ack, and
//! several workers changing one list at the same moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use alfred::cli::serve::{Roles, Service};
use alfred::config::Config;
use alfred::edges::queue::{
    AnyQueue, Consumer, ConsumerConfig, Queue, RedisQueue, RedisQueueConfig, SqlQueue, SqlQueueConfig, StreamNames,
    WORKER_GROUP,
};
use alfred::edges::whatsapp::inbound;
use alfred::edges::whatsapp::signature::sign;
use alfred::roles::worker::Worker;
use alfred_fake_graph::{self as fake_graph, FakeGraph};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::service::repo;
use crate::support::{SECRET, http, pg_admin, pg_base, text_webhook, unique};

/// Where a test's service keeps its data; removed on drop.
pub(crate) enum Backend {
    Embedded { dir: std::path::PathBuf },
    ScaleOut { db: String, redis: String, prefix: String },
}

impl Backend {
    pub(crate) fn embedded() -> Backend {
        let dir = std::env::temp_dir().join(format!("alfred-pipe-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Backend::Embedded { dir }
    }

    pub(crate) fn scale_out() -> Backend {
        let db = format!("alfred_pipe_{}", unique());
        pg_admin(&format!("CREATE DATABASE \"{db}\""));
        let redis = std::env::var("ALFRED_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("test-{db}");
        Backend::ScaleOut { db, redis, prefix }
    }

    /// A service on this backend, sending to `fake`, not running yet.
    pub(crate) async fn build(&self, fake: &FakeGraph) -> Service {
        self.build_with(fake, &[]).await
    }

    /// [`Backend::build`] with more environment variables.
    pub(crate) async fn build_with(&self, fake: &FakeGraph, extra: &[(&'static str, &str)]) -> Service {
        let mut vars: Vec<(&str, String)> = extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        vars.extend([
            ("META_APP_SECRET", SECRET.into()),
            ("VERIFY_TOKEN", "vt".into()),
            ("WHATSAPP_TOKEN", fake_graph::TOKEN.into()),
            ("WHATSAPP_PHONE_ID", "106540352242922".into()),
            ("WHATSAPP_API_BASE", fake.base_url()),
            ("ALFRED_FLOWS", repo().join("flows").to_string_lossy().into_owned()),
            ("INSTANCE", "pipeline-test".into()),
        ]);
        match self {
            Backend::Embedded { dir } => vars.push(("DATABASE_URL", dir.join("alfred.db").to_string_lossy().into())),
            Backend::ScaleOut { db, redis, .. } => {
                vars.push(("DATABASE_URL", format!("{}/{db}", pg_base())));
                vars.push(("REDIS_URL", redis.clone()));
            }
        }
        let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
        let mut service = Service::build(config).await.expect("service starts");
        if let Backend::ScaleOut { prefix, .. } = self {
            service.streams = StreamNames::with_prefix(prefix);
        }
        service
    }
}

impl Backend {
    /// How many ingest entries the service's worker holds unacked: a fresh queue handle's
    /// first read for a consumer returns exactly that consumer's pending entries.
    async fn own_pending(&self, service: &Service) -> usize {
        self.own_pending_payloads(service).await.len()
    }

    /// The pending entries themselves (as text, for a failure message).
    async fn own_pending_payloads(&self, service: &Service) -> Vec<String> {
        self.fresh_queue(service)
            .read(
                &service.streams.ingest,
                WORKER_GROUP,
                &service.config.instance,
                100,
                Duration::ZERO,
            )
            .await
            .unwrap()
            .into_iter()
            .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
            .collect()
    }
}

impl Backend {
    /// A new handle on the service's queue, as another process would have: handles
    /// remember which consumers already re-read their pending entries.
    fn fresh_queue(&self, service: &Service) -> AnyQueue {
        match self {
            Backend::Embedded { .. } => SqlQueue::new(service.store.clone(), SqlQueueConfig::default()).into(),
            Backend::ScaleOut { redis, .. } => RedisQueue::new(RedisQueueConfig::new(redis.clone())).unwrap().into(),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        match self {
            Backend::Embedded { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Backend::ScaleOut { db, redis, prefix } => {
                pg_admin(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
                if let Ok(client) = redis::Client::open(redis.as_str())
                    && let Ok(mut c) = client.get_connection()
                {
                    for pattern in [format!("{prefix}*"), format!("{{{prefix}*")] {
                        let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut c).unwrap_or_default();
                        for k in keys {
                            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut c);
                        }
                    }
                }
            }
        }
    }
}

/// A clock the test sets by hand; every role of the service reads it. Tests whose
/// outcome depends on the time of day (schedules with catch-up fire for an hour after
/// their slot) run on one, so they pass at any hour.
pub(crate) struct VirtualClock(Arc<AtomicI64>);

impl VirtualClock {
    pub(crate) fn at(t: DateTime<Utc>) -> VirtualClock {
        VirtualClock(Arc::new(AtomicI64::new(t.timestamp_millis())))
    }
    pub(crate) fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_millis(), Ordering::SeqCst);
    }
    pub(crate) fn clock(&self) -> alfred::cli::serve::Clock {
        let millis = self.0.clone();
        Arc::new(move || DateTime::from_timestamp_millis(millis.load(Ordering::SeqCst)).expect("in range"))
    }
}

/// A running service on a random port.
pub(crate) struct Running {
    pub(crate) service: Arc<Service>,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), alfred::cli::serve::ServeError>>,
}

impl Running {
    pub(crate) async fn start(service: Service, roles: Roles) -> Running {
        let service = Arc::new(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let svc = service.clone();
        let task = tokio::spawn(async move {
            svc.run(Some(listener), roles, async move {
                let _ = stopped.await;
            })
            .await
        });
        Running {
            service,
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub(crate) async fn post(&self, body: &[u8]) -> u16 {
        let sig = sign(SECRET.as_bytes(), body);
        http(self.addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], body)
            .await
            .0
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }
}

/// Every message the fake Graph API accepted (not the failed attempts), in order, as
/// (recipient's digits, body text): a text's body or an interactive message's body text.
pub(crate) fn sends(fake: &FakeGraph) -> Vec<(String, String)> {
    fake.exchanges()
        .into_iter()
        .filter(|x| x.is_accepted_send())
        .map(|x| {
            let b = &x.request.body;
            let body = b["text"]["body"]
                .as_str()
                .or_else(|| b["interactive"]["body"]["text"].as_str())
                .unwrap_or_default();
            let to: String = b["to"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            (to, body.to_owned())
        })
        .collect()
}

/// The text bodies the fake Graph API accepted (not the failed attempts), in order.
pub(crate) fn accepted_texts(fake: &FakeGraph) -> Vec<String> {
    fake.exchanges()
        .into_iter()
        .filter(|x| x.is_accepted_send() && x.request.body.get("text").is_some())
        .map(|x| x.request.body["text"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls (bounded: 30 s) until `done` holds; the poll only paces the wait, the test then
/// asserts on the state itself.
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn status_webhook(wamid: &str, status: &str, error: Option<(i64, &str)>) -> Vec<u8> {
    let mut st = serde_json::json!({
        "id": wamid, "status": status, "timestamp": "1767600100", "recipient_id": "31612345001"
    });
    if let Some((code, title)) = error {
        st["errors"] = serde_json::json!([{ "code": code, "title": title }]);
    }
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "statuses": [st]
        } }] }]
    })
    .to_string()
    .into_bytes()
}

/// The outbox row the sender stored the fake's wamid on.
fn row_with_wamid(service: &Service, wamid: &str) -> Option<alfred::edges::store::OutboxRow> {
    (1..=50)
        .filter_map(|id| service.store.outbox_row(id).ok().flatten())
        .find(|row| row.wamid.as_deref() == Some(wamid))
}

/// That row's delivery state, as the status webhooks left it.
fn delivery_of(service: &Service, wamid: &str) -> Option<String> {
    row_with_wamid(service, wamid).and_then(|row| row.delivery.map(|d| d.as_str().to_owned()))
}

// ---------------------------------------------------------------------------------------

async fn status_updates_reach_the_outbound_message(backend: Backend) {
    let fake = fake_graph::start().await;
    let svc = Running::start(backend.build(&fake).await, Roles::ALL).await;
    assert_eq!(
        svc.post(&text_webhook("31612345001", "wamid.S1", "add bananas")).await,
        200
    );
    eventually("the reply", || accepted_texts(&fake).len() == 1).await;
    let wamid = fake
        .exchanges()
        .into_iter()
        .find(|x| x.is_accepted_send())
        .and_then(|x| x.wamid().map(str::to_owned))
        .expect("the fake answered with a wamid");
    eventually("the sender to store the wamid", || {
        row_with_wamid(&svc.service, &wamid).is_some()
    })
    .await;
    let row = row_with_wamid(&svc.service, &wamid).expect("row");
    assert_eq!(row.status, alfred::edges::store::OutboxStatus::Sent);
    assert_eq!(row.delivery, None, "no status webhook yet");

    assert_eq!(svc.post(&status_webhook(&wamid, "sent", None)).await, 200);
    eventually("sent", || delivery_of(&svc.service, &wamid).as_deref() == Some("sent")).await;
    assert_eq!(svc.post(&status_webhook(&wamid, "delivered", None)).await, 200);
    eventually("delivered", || {
        delivery_of(&svc.service, &wamid).as_deref() == Some("delivered")
    })
    .await;
    assert_eq!(svc.post(&status_webhook(&wamid, "read", None)).await, 200);
    eventually("read", || delivery_of(&svc.service, &wamid).as_deref() == Some("read")).await;
    // A late "delivered" after "read" does not move the state backwards.
    assert_eq!(svc.post(&status_webhook(&wamid, "delivered", None)).await, 200);
    assert_eq!(svc.post(&text_webhook("31612345001", "wamid.S2", "list")).await, 200);
    eventually("the second reply", || accepted_texts(&fake).len() == 2).await;
    assert_eq!(delivery_of(&svc.service, &wamid).as_deref(), Some("read"));
    svc.stop().await;
}

async fn a_stranger_gets_the_configured_reply_and_nothing_else(backend: Backend) {
    let fake = fake_graph::start().await;
    let service = backend
        .build_with(
            &fake,
            &[
                ("ALFRED_UNKNOWN_SENDERS", "reply"),
                ("ALFRED_UNKNOWN_SENDER_REPLY", "Private assistant."),
            ],
        )
        .await;
    let svc = Running::start(service, Roles::ALL).await;
    let body = text_webhook("15550001111", "wamid.U1", "list");
    assert_eq!(svc.post(&body).await, 200);
    assert_eq!(svc.post(&body).await, 200, "Meta redelivers");
    assert_eq!(svc.post(&text_webhook("31612345001", "wamid.U2", "list")).await, 200);
    eventually("two replies", || accepted_texts(&fake).len() >= 2).await;
    let sends: Vec<(String, String)> = fake
        .exchanges()
        .into_iter()
        .filter(|x| x.is_accepted_send())
        .map(|x| {
            let b = &x.request.body;
            (
                b["to"].as_str().unwrap_or_default().to_owned(),
                b["text"]["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sends.len(),
        2,
        "one reply to the stranger despite the redelivery: {sends:?}"
    );
    // Different senders may be answered in either order (several worker tasks).
    let stranger = ("+15550001111".to_owned(), "Private assistant.".to_owned());
    assert!(sends.contains(&stranger), "{sends:?}");
    assert!(sends.iter().any(|(to, _)| to == "+31612345001"), "{sends:?}");
    svc.stop().await;
}

async fn a_rate_limited_send_is_retried_and_delivered_once(backend: Backend) {
    let fake = fake_graph::start().await;
    let svc = Running::start(backend.build(&fake).await, Roles::ALL).await;
    // The read receipt goes first; the reply then meets WhatsApp's rate limit once.
    fake.fail_next_sends(
        1,
        429,
        fake_graph::error_body(
            130429,
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
    );
    assert_eq!(
        svc.post(&text_webhook("31612345001", "wamid.R1", "add bananas")).await,
        200
    );
    eventually("the retried reply", || accepted_texts(&fake).len() == 1).await;
    let attempts: Vec<u16> = fake
        .exchanges()
        .into_iter()
        .filter(|x| x.request.body.get("text").is_some())
        .map(|x| x.status)
        .collect();
    assert_eq!(attempts, [429, 200], "refused once, then accepted once");
    // Nothing more is sent later: the row is `sent`, not retried again.
    assert_eq!(svc.post(&text_webhook("31612345001", "wamid.R2", "list")).await, 200);
    eventually("the next reply", || accepted_texts(&fake).len() == 2).await;
    assert_eq!(
        accepted_texts(&fake),
        ["Added bananas. The list has 1 item.", "Shopping list (1):\n• bananas"]
    );
    svc.stop().await;
}

async fn a_worker_killed_between_commit_and_ack_causes_no_second_reply(backend: Backend) {
    let fake = fake_graph::start().await;
    let service = backend.build(&fake).await;
    // The webhook accepted the message (numbered, as the webhook does).
    let body = text_webhook("31612345001", "wamid.K1", "add bananas");
    let senders = alfred::roles::order::sender_counts(&inbound::parse(&body).unwrap().messages);
    service
        .queue
        .push_numbered(&service.streams.ingest, &body, &senders)
        .await
        .unwrap();
    // A worker process (same instance name as the service's) reads it, commits and
    // publishes the reply ... and dies before the ack.
    {
        let queue = backend.fresh_queue(&service);
        let worker = Worker {
            store: service.store.clone(),
            queue: queue.clone(),
            flows: service.flows.clone(),
            outbox_stream: service.streams.outbox.clone(),
            unknown_senders: service.config.unknown_senders,
            unknown_sender_reply: service.config.unknown_sender_reply.clone(),
            clock: Arc::new(chrono::Utc::now),
            counters: Arc::default(),
            hold_back: alfred::roles::order::HOLD_BACK,
            progress: Arc::default(),
        };
        let mut cfg = ConsumerConfig::new(
            service.streams.ingest.clone(),
            WORKER_GROUP,
            service.config.instance.clone(),
        );
        cfg.block = Duration::from_millis(100);
        let mut consumer = Consumer::new(queue, cfg);
        let batch = consumer.next_batch().await.unwrap();
        assert_eq!(batch.len(), 1);
        let out = worker.process(&batch[0]).await.unwrap();
        assert_eq!(out.handled, 1);
    }
    assert_eq!(backend.own_pending(&service).await, 1, "committed, not acked");

    // The restarted service gets the entry again: the wamid marker makes it a no-op.
    let svc = Running::start(service, Roles::ALL).await;
    assert_eq!(svc.post(&text_webhook("31612345001", "wamid.K2", "list")).await, 200);
    eventually("the replies", || {
        let n = accepted_texts(&fake).len();
        if n < 2 {
            use alfred::edges::store::schema::queue_jobs;
            use diesel::prelude::*;
            let mut c = svc.service.store.conn().unwrap();
            let rows: Vec<(i64, String, String, Option<String>, i32)> = queue_jobs::table
                .select((
                    queue_jobs::id,
                    queue_jobs::queue,
                    queue_jobs::status,
                    queue_jobs::locked_by,
                    queue_jobs::attempts,
                ))
                .load(&mut *c)
                .unwrap();
            eprintln!("not sent yet; queue_jobs (id, queue, status, locked_by, attempts): {rows:?}");
        }
        n >= 2
    })
    .await;
    assert_eq!(
        accepted_texts(&fake),
        ["Added bananas. The list has 1 item.", "Shopping list (1):\n• bananas"],
        "one reply per message: the redelivered one was not handled again"
    );
    let data = svc.service.store.load_data().unwrap();
    assert_eq!(data.list("shopping")[0].qty, 1, "bananas added once");
    // The replies do not wait for the redelivery (another worker task may answer "list"
    // first): wait, bounded, until a worker has handled it as a duplicate and acked it.
    let counters = svc.service.metrics.worker_counters();
    let mut acked = false;
    for _ in 0..600 {
        if counters.duplicates.load(std::sync::atomic::Ordering::Relaxed) >= 1
            && backend.own_pending(&svc.service).await == 0
        {
            acked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(acked, "the redelivered entry was handled as a duplicate and acked");
    let service = svc.service.clone();
    svc.stop().await;
    let left = backend.own_pending_payloads(&service).await;
    assert!(left.is_empty(), "the redelivered entry was acked: {left:?}");
}

async fn several_workers_lose_no_item_and_keep_each_members_order(backend: Backend) {
    let fake = fake_graph::start().await;
    let service = backend.build(&fake).await;
    let svc = Running::start(service, Roles::ALL).await;
    // Two more workers on the same queue and database, as `alfred worker` replicas.
    let mut extra = Vec::new();
    for i in 0..2 {
        let s = &svc.service;
        let worker = Arc::new(Worker {
            store: s.store.clone(),
            queue: s.queue.clone(),
            flows: s.flows.clone(),
            outbox_stream: s.streams.outbox.clone(),
            unknown_senders: s.config.unknown_senders,
            unknown_sender_reply: s.config.unknown_sender_reply.clone(),
            clock: Arc::new(chrono::Utc::now),
            counters: Arc::default(),
            hold_back: Duration::from_secs(30),
            progress: Arc::default(),
        });
        let mut cfg = ConsumerConfig::new(s.streams.ingest.clone(), WORKER_GROUP, format!("replica-{i}"));
        cfg.block = Duration::from_millis(100);
        let consumer = Consumer::new(s.queue.clone(), cfg);
        let (stop, stopped) = oneshot::channel::<()>();
        let w = worker.clone();
        extra.push((
            stop,
            tokio::spawn(async move {
                w.run(
                    consumer,
                    async move {
                        let _ = stopped.await;
                    },
                    &Default::default(),
                )
                .await;
            }),
        ));
    }
    // Anna and Ben each add five items at the same moment (five: within the pair-rate
    // burst, so the sender does not pace these replies out over half a minute).
    let mut posts = tokio::task::JoinSet::new();
    for (who, number) in [("a", "31612345001"), ("b", "31612345002")] {
        let addr = svc.addr;
        posts.spawn(async move {
            for i in 0..5 {
                let body = text_webhook(number, &format!("wamid.P{who}{i}"), &format!("add {who}item{i}"));
                let sig = sign(SECRET.as_bytes(), &body);
                let (status, _) = http(addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], &body).await;
                assert_eq!(status, 200);
            }
        });
    }
    posts.join_all().await;
    eventually("ten replies", || accepted_texts(&fake).len() >= 10).await;
    let data = svc.service.store.load_data().unwrap();
    let mut names: Vec<String> = data.list("shopping").iter().map(|i| i.name.clone()).collect();
    names.sort();
    let mut expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("aitem{i}"), format!("bitem{i}")])
        .collect();
    expected.sort();
    assert_eq!(names, expected, "no lost update");
    // Each member's messages were handled in the order the member sent them: the reply
    // rows were committed (ids ascending) in that order.
    let rows: Vec<alfred::edges::store::OutboxRow> = (1..=200)
        .filter_map(|id| svc.service.store.outbox_row(id).ok().flatten())
        .collect();
    for (member, who) in [("Anna", "a"), ("Ben", "b")] {
        let items: Vec<String> = rows
            .iter()
            .filter(|r| r.member == member)
            .map(|r| {
                let body = r.out_message().unwrap().body();
                body.trim_start_matches("Added ")
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let want: Vec<String> = (0..5).map(|i| format!("{who}item{i}")).collect();
        assert_eq!(items, want, "{member}'s messages handled in order");
    }
    // ... and the replies reached WhatsApp in that order (the sender keeps each member's
    // rows in order even though three workers published them).
    for (number, who) in [("+31612345001", "a"), ("+31612345002", "b")] {
        let items: Vec<String> = fake
            .exchanges()
            .into_iter()
            .filter(|x| x.is_accepted_send() && x.request.body["to"] == number)
            .filter_map(|x| x.request.body["text"]["body"].as_str().map(str::to_owned))
            .map(|b| {
                b.trim_start_matches("Added ")
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let want: Vec<String> = (0..5).map(|i| format!("{who}item{i}")).collect();
        assert_eq!(items, want, "{number}'s replies sent in order");
    }
    for (stop, task) in extra {
        let _ = stop.send(());
        task.await.unwrap();
    }
    svc.stop().await;
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Backend::embedded()).await } )*
        }
        mod scale_out {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Backend::scale_out()).await } )*
        }
    };
}

on_both_backends!(
    status_updates_reach_the_outbound_message,
    a_stranger_gets_the_configured_reply_and_nothing_else,
    a_rate_limited_send_is_retried_and_delivered_once,
    a_worker_killed_between_commit_and_ack_causes_no_second_reply,
    several_workers_lose_no_item_and_keep_each_members_order,
);
