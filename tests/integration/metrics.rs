//! `/metrics` from the running service: a webhook process (metrics on its own HTTP
//! server) and a worker + sender process (metrics on the `ALFRED_METRICS_LISTEN`
//! listener) share one embedded database; after a member's message, a stranger's and a
//! few refused requests (and one garbage queue entry), each process's scrape shows what it did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alfred::cli::serve::{Roles, Service};
use alfred::config::Config;
use alfred::edges::metrics::{sample, series};
use alfred::edges::queue::Queue as _;
use alfred::edges::whatsapp::signature::sign;
use alfred_fake_graph as fake_graph;

use crate::support::{SECRET, http, text_webhook};

async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200, "GET /metrics");
    body
}

/// A running service; stops (and waits for) its roles when told to.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), alfred::cli::serve::ServeError>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn start(
    config: Config,
    roles: Roles,
    webhook: bool,
    metrics: bool,
) -> (Running, Option<SocketAddr>, Arc<Service>) {
    let service = Arc::new(Service::build(config).await.expect("service starts"));
    let handle = service.clone();
    let bind = async |wanted: bool| match wanted {
        true => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
        false => None,
    };
    let (listener, metrics_listener) = (bind(webhook).await, bind(metrics).await);
    let addr = listener
        .as_ref()
        .or(metrics_listener.as_ref())
        .map(|l| l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        service
            .run_with_listeners(listener, metrics_listener, roles, async move {
                let _ = stopped.await;
            })
            .await
    });
    (Running { stop, task }, addr, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_process_exposes_what_it_counted_on_metrics() {
    let dir = std::env::temp_dir().join(format!("alfred-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = fake_graph::start().await;
    let vars: Vec<(&str, String)> = vec![
        ("DATABASE_URL", dir.join("alfred.db").to_string_lossy().into_owned()),
        ("META_APP_SECRET", SECRET.into()),
        ("VERIFY_TOKEN", "vt".into()),
        ("WHATSAPP_TOKEN", fake_graph::TOKEN.into()),
        ("WHATSAPP_PHONE_ID", "106540352242922".into()),
        ("WHATSAPP_API_BASE", fake.base_url()),
        (
            "ALFRED_FLOWS",
            crate::support::root().join("flows").to_string_lossy().into_owned(),
        ),
    ];
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    // `alfred webhook` and `alfred worker`+`sender`, as two processes would run them.
    let webhook_only = Roles {
        webhook: true,
        worker: false,
        sender: false,
        scheduler: false,
    };
    let (webhook, webhook_addr, _) = start(config.clone(), webhook_only, true, false).await;
    let webhook_addr = webhook_addr.unwrap();
    let back_roles = Roles {
        webhook: false,
        worker: true,
        sender: true,
        scheduler: false,
    };
    let (back, metrics_addr, back_service) = start(config, back_roles, false, true).await;
    let metrics_addr = metrics_addr.unwrap();
    assert_eq!(http(metrics_addr, "GET", "/healthz", &[], b"").await.0, 200);

    let post = async |body: &[u8]| {
        let sig = sign(SECRET.as_bytes(), body);
        http(webhook_addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], body)
            .await
            .0
    };
    let member = text_webhook("31612345001", "wamid.M1", "add bananas");
    assert_eq!(http(webhook_addr, "POST", "/webhook", &[], &member).await.0, 401);
    let forged = sign(b"not the secret", &member);
    let forged = [("X-Hub-Signature-256", forged.as_str())];
    assert_eq!(http(webhook_addr, "POST", "/webhook", &forged, &member).await.0, 403);
    assert_eq!(post(b"{\"not\":\"a webhook\"}").await, 400);
    assert_eq!(post(&text_webhook("15550001111", "wamid.M2", "list")).await, 200);
    assert_eq!(post(&member).await, 200);
    // A body that never came through the webhook (a bug, or someone writing to the
    // queue): the worker dead-letters it and both counters show it.
    back_service
        .queue
        .push(&back_service.streams.ingest, b"not a webhook")
        .await
        .unwrap();

    // Bounded wait for the reply at the fake Graph API: the worker handled both
    // messages in order, and the sender recorded the send before it acked.
    let mut replies = 0;
    for _ in 0..200 {
        replies = fake.requests().iter().filter(|r| r.body.get("text").is_some()).count();
        if replies >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(replies, 1, "the member got their reply");
    let mut back_text = scrape(metrics_addr).await;
    for _ in 0..200 {
        let dead = "alfred_queue_dead_letters_total{stream=\"ingest\"}";
        if sample(&back_text, "alfred_outbox_results_total{result=\"sent\"}") == Some(1.0)
            && sample(&back_text, dead) == Some(1.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        back_text = scrape(metrics_addr).await;
    }

    let front = scrape(webhook_addr).await;
    let requests = |status: &str| {
        sample(
            &front,
            &series(
                "alfred_webhook_requests_total",
                &[("route", "/webhook"), ("method", "POST"), ("status", status)],
            ),
        )
    };
    assert_eq!(requests("200"), Some(2.0), "{front}");
    assert_eq!(requests("401"), Some(1.0), "{front}");
    assert_eq!(requests("403"), Some(1.0), "{front}");
    assert_eq!(requests("400"), Some(1.0), "{front}");
    assert_eq!(requests("503"), None, "{front}");
    assert_eq!(
        sample(
            &front,
            "alfred_webhook_request_duration_seconds_count{route=\"/webhook\",method=\"POST\"}"
        ),
        Some(5.0)
    );
    // The webhook process runs no worker: its role counters stay at zero.
    assert_eq!(
        sample(&front, "alfred_worker_messages_total{outcome=\"handled\"}"),
        Some(0.0)
    );

    for (series, want) in [
        ("alfred_worker_messages_total{outcome=\"handled\"}", 1.0),
        ("alfred_worker_messages_total{outcome=\"unknown_sender\"}", 1.0),
        ("alfred_worker_messages_total{outcome=\"duplicate\"}", 0.0),
        ("alfred_outbox_results_total{result=\"sent\"}", 1.0),
        ("alfred_outbox_results_total{result=\"dead\"}", 0.0),
        ("alfred_whatsapp_auth_failures_total", 0.0),
        ("alfred_queue_dead_letters_total{stream=\"ingest\"}", 1.0),
        ("alfred_queue_dead_letters_total{stream=\"outbox\"}", 0.0),
        ("alfred_worker_malformed_total", 1.0),
    ] {
        assert_eq!(sample(&back_text, series), Some(want), "{series} in:\n{back_text}");
    }
    // No personal data in any label: neither the numbers nor the message.
    for text in [&front, &back_text] {
        assert!(!text.contains("3161234") && !text.contains("1555000"), "{text}");
        assert!(!text.contains("bananas"), "{text}");
    }

    back.stop().await;
    webhook.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
