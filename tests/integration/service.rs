//! The service end to end, in process: a signed webhook in, the reply at a fake Graph
//! API, the data in the database. The same scenario runs on the embedded default
//! (SQLite file, SQL-table queue) and on scale-out (a fresh PostgreSQL database, Redis
//! Streams with their own stream names).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alfred::cli::serve::{Roles, Service};
use alfred::config::Config;
use alfred::edges::whatsapp::signature::sign;
use alfred_fake_graph as fake_graph;

use crate::support::{SECRET, http, pg_admin, pg_base, text_webhook, unique};

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Waits (bounded, 10 s) until the fake Graph API has received `n` text sends; returns
/// (to, body) of all text sends so far.
async fn wait_for_texts(fake: &fake_graph::FakeGraph, n: usize) -> Vec<(String, String)> {
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
        if texts().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    texts()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_add_bananas_is_stored_and_the_reply_reaches_whatsapp_once() {
    let dir = std::env::temp_dir().join(format!("alfred-svc-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("alfred.db").to_string_lossy().into_owned();
    add_bananas_scenario(db, None, None).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_add_bananas_is_stored_and_the_reply_reaches_whatsapp_once() {
    let name = format!("alfred_e2e_{}", unique());
    pg_admin(&format!("CREATE DATABASE \"{name}\""));
    let redis = std::env::var("ALFRED_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("test-{name}");
    add_bananas_scenario(
        format!("{}/{name}", pg_base()),
        Some(redis.clone()),
        Some(prefix.clone()),
    )
    .await;
    pg_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    // Remove this test's streams.
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

async fn add_bananas_scenario(database_url: String, redis_url: Option<String>, prefix: Option<String>) {
    let fake = fake_graph::start().await;
    let mut vars: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url),
        ("META_APP_SECRET", SECRET.into()),
        ("VERIFY_TOKEN", "vt".into()),
        ("WHATSAPP_TOKEN", fake_graph::TOKEN.into()),
        ("WHATSAPP_PHONE_ID", "106540352242922".into()),
        ("WHATSAPP_API_BASE", fake.base_url()),
        ("ALFRED_FLOWS", repo().join("flows").to_string_lossy().into_owned()),
        // One worker task: this scenario checks the order of replies *across* members,
        // which only one pipeline gives (several keep each member's order only).
        ("ALFRED_WORKER_TASKS", "1".into()),
    ];
    if let Some(r) = redis_url {
        vars.push(("REDIS_URL", r));
    }
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let mut service = Service::build(config).await.expect("service starts");
    if let Some(p) = prefix {
        service.streams = alfred::edges::queue::StreamNames::with_prefix(&p);
    }
    let service = Arc::new(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let svc = service.clone();
    let running = tokio::spawn(async move {
        svc.run(Some(listener), Roles::ALL, async move {
            let _ = stop_rx.await;
        })
        .await
    });

    let (status, body) = http(
        addr,
        "GET",
        "/webhook?hub.mode=subscribe&hub.verify_token=vt&hub.challenge=1158201444",
        &[],
        b"",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "1158201444"));

    let body = text_webhook("31612345001", "wamid.E2E1", "add bananas");
    let (status, _) = http(addr, "POST", "/webhook", &[], &body).await;
    assert_eq!(status, 401, "unsigned");
    let mut tampered = body.clone();
    tampered[40] ^= 1;
    let sig = sign(SECRET.as_bytes(), &body);
    let (status, _) = http(addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], &tampered).await;
    assert_eq!(status, 403, "tampered");
    let (status, _) = http(addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], &body).await;
    assert_eq!(status, 200);
    // Meta redelivers: the same message again must not be handled twice.
    let (status, _) = http(addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], &body).await;
    assert_eq!(status, 200);

    // Wait (bounded) until the reply reached the fake Graph API.
    let mut sends = Vec::new();
    for _ in 0..200 {
        sends = fake
            .requests()
            .into_iter()
            .filter(|r| r.body.get("text").is_some())
            .collect();
        if !sends.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sends.len(), 1, "exactly one reply: {sends:?}");
    assert_eq!(sends[0].body["to"], serde_json::json!("+31612345001"));
    assert_eq!(
        sends[0].body["text"]["body"],
        serde_json::json!("Added bananas. The list has 1 item.")
    );
    let data = service.store.load_data().unwrap();
    assert_eq!(
        data.list("shopping")
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["bananas"]
    );

    // One worker processes the ingest stream in order, so once a later message's reply
    // is out, the duplicate before it has been processed (and ignored).
    let post = |body: Vec<u8>| {
        let sig = sign(SECRET.as_bytes(), &body);
        async move {
            http(addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], &body)
                .await
                .0
        }
    };
    // An unknown sender, then a batch of two changes from two members, then "list".
    assert_eq!(post(text_webhook("15550001111", "wamid.E2E2", "list")).await, 200);
    let mut batch: serde_json::Value =
        serde_json::from_slice(&text_webhook("31612345001", "wamid.E2E3", "add milk")).unwrap();
    let second: serde_json::Value =
        serde_json::from_slice(&text_webhook("31612345002", "wamid.E2E4", "add eggs")).unwrap();
    let change = second["entry"][0]["changes"][0].clone();
    batch["entry"][0]["changes"].as_array_mut().unwrap().push(change);
    assert_eq!(post(batch.to_string().into_bytes()).await, 200);
    assert_eq!(post(text_webhook("31612345001", "wamid.E2E5", "list")).await, 200);

    let texts = wait_for_texts(&fake, 4).await;
    assert_eq!(
        texts,
        [
            (
                "+31612345001".to_owned(),
                "Added bananas. The list has 1 item.".to_owned()
            ),
            (
                "+31612345001".to_owned(),
                "Added milk. The list has 2 items.".to_owned()
            ),
            (
                "+31612345002".to_owned(),
                "Added eggs. The list has 3 items.".to_owned()
            ),
            (
                "+31612345001".to_owned(),
                "Shopping list (3):\n• bananas\n• milk\n• eggs".to_owned()
            ),
        ],
        "one reply per handled message: none for the duplicate, none for the stranger"
    );
    // Handled messages are marked read (once each).
    let reads: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.body.get("status").and_then(|s| s.as_str()) == Some("read"))
        .filter_map(|r| r.body.get("message_id").and_then(|m| m.as_str()).map(str::to_owned))
        .collect();
    assert_eq!(reads, ["wamid.E2E1", "wamid.E2E3", "wamid.E2E4", "wamid.E2E5"]);

    let _ = stop_tx.send(());
    running.await.unwrap().unwrap();
}
