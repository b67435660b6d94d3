//! # Metrics: `GET /metrics` in the Prometheus text exposition format (0.0.4)
//!
//! One [`Metrics`] per process owns the registry. The roles keep counting in their own
//! atomics ([`WorkerCounters`], [`SenderCounters`], the consumers' dead-letter counters);
//! [`Metrics`] hands those `Arc`s out when the roles are built and reads them at scrape
//! time through a custom collector, so the roles need no metrics code of their own.
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `alfred_build_info` | gauge (always 1) | `version` |
//! | `alfred_webhook_requests_total` | counter | `route`, `method`, `status` |
//! | `alfred_webhook_request_duration_seconds` | histogram | `route`, `method` |
//! | `alfred_worker_messages_total` | counter | `outcome` = `handled`, `duplicate`, `unknown_sender` |
//! | `alfred_worker_malformed_total` | counter | (ingest bodies that were not webhooks) |
//! | `alfred_worker_order_waits_total` | counter | (a message waited for its sender's previous one) |
//! | `alfred_worker_order_gaps_total` | counter | (a message went ahead after the hold-back: order not kept) |
//! | `alfred_outbox_results_total` | counter | `result` = `sent`, `retry`, `dead`, `window_closed` (`dead` includes `window_closed`) |
//! | `alfred_whatsapp_auth_failures_total` | counter | (Graph API error 190: the token is invalid) |
//! | `alfred_queue_dead_letters_total` | counter | `stream` = `ingest`, `outbox` |
//!
//! Labels only ever hold values from fixed sets (a route that is not one of Alfred's
//! becomes `other`), so neither personal data nor an attacker's URLs can reach a label.
//!
//! Queue depth is not exported: the [`Queue`](crate::edges::queue::Queue) trait has no length
//! operation yet.
//!
//! Every role's process serves `/metrics`, `/healthz` and `/readyz` with [`serve`] on
//! `ALFRED_METRICS_LISTEN` when it is set; a webhook process then serves `/metrics` only
//! there, not on its public port.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::collector::Collector;

use crate::edges::health::Health;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::roles::sender::SenderCounters;
use crate::roles::worker::WorkerCounters;

/// The `Content-Type` of a scrape answer.
pub const CONTENT_TYPE_TEXT: &str = prometheus_text::CONTENT_TYPE;

/// Why the metrics could not be rendered or served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A collector failed while writing the exposition.
    #[error("encoding the metrics failed")]
    Encode(#[from] std::fmt::Error),
    /// The metrics listener failed.
    #[error("metrics listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Which queue a dead-letter counter belongs to (the label `stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterStream {
    /// `alfred-ingest` (the worker's consumer).
    Ingest,
    /// `alfred-outbox` (the sender's consumer).
    Outbox,
}

/// Labels of `alfred_webhook_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// Labels of `alfred_webhook_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

/// The webhook latency histogram's buckets: 0.5 ms to about 4 s, doubling. A push to
/// Redis takes about a millisecond; seconds mean the queue is struggling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// The process's metrics: the registry, the webhook's own series, and the role counters
/// it reads at scrape time. Share it as an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    roles: Arc<RoleCounters>,
}

/// The counters the roles own; read by [`RoleCollector`] at scrape time.
#[derive(Debug, Default)]
struct RoleCounters {
    worker: Arc<WorkerCounters>,
    sender: Arc<SenderCounters>,
    ingest_dead_letters: Arc<AtomicU64>,
    outbox_dead_letters: Arc<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every series registered (at zero).
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "alfred_webhook_requests",
            "HTTP requests to the webhook server, by route, method and status code",
            requests.clone(),
        );
        let durations: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "alfred_webhook_request_duration_seconds",
            "Time from request headers to response, by route and method",
            durations.clone(),
        );
        let roles = Arc::new(RoleCounters::default());
        registry.register_collector(Box::new(RoleCollector(roles.clone())));
        Metrics {
            registry,
            requests,
            durations,
            roles,
        }
    }

    /// The worker's counters: give these to the [`Worker`](crate::roles::worker::Worker).
    pub fn worker_counters(&self) -> Arc<WorkerCounters> {
        self.roles.worker.clone()
    }

    /// The sender's counters: give these to the [`Sender`](crate::roles::sender::Sender).
    pub fn sender_counters(&self) -> Arc<SenderCounters> {
        self.roles.sender.clone()
    }

    /// The dead-letter counter of one stream's consumer
    /// (see [`Consumer::count_dead_letters`](crate::edges::queue::Consumer::count_dead_letters)).
    pub fn dead_letters(&self, stream: DeadLetterStream) -> Arc<AtomicU64> {
        match stream {
            DeadLetterStream::Ingest => self.roles.ingest_dead_letters.clone(),
            DeadLetterStream::Outbox => self.roles.outbox_dead_letters.clone(),
        }
    }

    /// Records one answered webhook-server request. Unknown paths and methods are
    /// folded into `other`, so label values stay a small fixed set.
    pub fn observe_request(&self, path: &str, method: &Method, status: StatusCode, elapsed: Duration) {
        let route = route_label(path);
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status: status.as_u16(),
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels { route, method })
            .observe(elapsed.as_secs_f64());
    }

    /// The exposition text of every series.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// The answer to `GET /metrics`: 200 with the exposition, or 500 if it failed.
    pub fn http_response(&self) -> Response<Full<Bytes>> {
        match self.render() {
            Ok(text) => response(StatusCode::OK, CONTENT_TYPE_TEXT, text),
            Err(e) => {
                tracing::error!(error = %e, "rendering /metrics failed");
                response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    "metrics failed",
                )
            }
        }
    }
}

/// A route label: one of Alfred's paths, or `other`.
fn route_label(path: &str) -> &'static str {
    match path {
        "/webhook" => "/webhook",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// A method label: the few methods anyone should send, or `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// Reads the roles' atomics at scrape time.
#[derive(Debug)]
struct RoleCollector(Arc<RoleCounters>);

/// Writes one counter family with a fixed label set per value.
fn counter_family(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        let labels = [(label, *value)];
        ConstCounter::new(*n).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one counter without labels.
fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, n: u64) -> Result<(), std::fmt::Error> {
    ConstCounter::new(n).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

impl Collector for RoleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let RoleCounters {
            worker: w,
            sender: s,
            ingest_dead_letters,
            outbox_dead_letters,
        } = &*self.0;
        {
            let mut metric = encoder.encode_descriptor(
                "alfred_build_info",
                "Always 1; the labels say which build is running",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("version", env!("CARGO_PKG_VERSION"))];
            ConstGauge::new(1i64).encode(metric.encode_family(&labels)?)?;
        }
        counter_family(
            &mut encoder,
            "alfred_worker_messages",
            "Inbound messages the worker took from the ingest stream, by outcome",
            "outcome",
            &[
                ("handled", load(&w.handled)),
                ("duplicate", load(&w.duplicates)),
                ("unknown_sender", load(&w.unknown_senders)),
            ],
        )?;
        counter(
            &mut encoder,
            "alfred_worker_malformed",
            "Ingest entries that were not WhatsApp webhook bodies (dead-lettered)",
            load(&w.malformed),
        )?;
        counter(
            &mut encoder,
            "alfred_worker_order_waits",
            "Times a message waited for its sender's previous message to be handled first",
            load(&w.order_waits),
        )?;
        counter(
            &mut encoder,
            "alfred_worker_order_gaps",
            "Messages handled before an earlier message of their sender, after the hold-back ran out",
            load(&w.order_gaps),
        )?;
        counter_family(
            &mut encoder,
            "alfred_outbox_results",
            "Outbox send attempts by result; dead includes window_closed",
            "result",
            &[
                ("sent", load(&s.sent)),
                ("retry", load(&s.retried)),
                ("dead", load(&s.dead)),
                ("window_closed", load(&s.window_closed)),
            ],
        )?;
        counter(
            &mut encoder,
            "alfred_whatsapp_auth_failures",
            "Graph API authentication failures (error 190): the access token must be replaced",
            load(&s.auth_failed),
        )?;
        counter_family(
            &mut encoder,
            "alfred_queue_dead_letters",
            "Queue entries dead-lettered by a consumer (not webhooks, or delivered too often)",
            "stream",
            &[
                ("ingest", load(ingest_dead_letters)),
                ("outbox", load(outbox_dead_letters)),
            ],
        )?;
        Ok(())
    }
}

/// A response with a body and content type.
fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// How long request headers may take on the metrics listener.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`serve`] waits for open connections after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves `GET /metrics`, `GET /healthz` and `GET /readyz` on `listener` until
/// `shutdown` completes: `ALFRED_METRICS_LISTEN`, in every role's process (and the only
/// place a webhook process serves `/metrics` when it is set).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MetricsError> {
    let handler = move |req: Request<hyper::body::Incoming>| {
        let (metrics, health) = (Arc::clone(&metrics), health.clone());
        async move { route(&req, &metrics, &health).await }
    };
    let deadlines = crate::edges::http_server::Deadlines {
        header_read: HEADER_READ_TIMEOUT,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    crate::edges::http_server::serve("metrics", listener, deadlines, handler, shutdown).await?;
    Ok(())
}

/// The metrics listener's routes.
async fn route<B>(req: &Request<B>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (req.uri().path(), req.method()) {
        ("/metrics", &Method::GET) => metrics.http_response(),
        ("/healthz", &Method::GET) => response(StatusCode::OK, TEXT, "ok"),
        ("/readyz", &Method::GET) => {
            let (status, body) = health.readyz().await;
            response(status, TEXT, body)
        }
        ("/metrics" | "/healthz" | "/readyz", _) => {
            let mut r = response(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed");
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
            r
        }
        _ => response(StatusCode::NOT_FOUND, TEXT, "not found"),
    }
}

/// The value of one sample in an exposition text (`name{labels} value`), if present:
/// for tests and tools that check a scrape.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Renders `labels` as a series suffix (`{a="x",b="y"}`) in the order given.
pub fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut s = name.to_owned();
    if !labels.is_empty() {
        s.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{k}=\"{v}\"");
        }
        s.push('}');
    }
    s
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn a_fresh_registry_exposes_every_series_at_zero_in_the_text_format() {
        let m = Metrics::new();
        let text = m.render().unwrap();
        for (name, kind) in [
            ("alfred_build_info", "gauge"),
            ("alfred_worker_messages_total", "counter"),
            ("alfred_worker_malformed_total", "counter"),
            ("alfred_worker_order_waits_total", "counter"),
            ("alfred_worker_order_gaps_total", "counter"),
            ("alfred_outbox_results_total", "counter"),
            ("alfred_whatsapp_auth_failures_total", "counter"),
            ("alfred_queue_dead_letters_total", "counter"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} {kind} in:\n{text}"
            );
            assert!(text.contains(&format!("# HELP {name} ")), "help for {name} in:\n{text}");
        }
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            sample(&text, &format!("alfred_build_info{{version=\"{version}\"}}")),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "alfred_worker_messages_total{outcome=\"handled\"}"),
            Some(0.0)
        );
        assert_eq!(sample(&text, "alfred_whatsapp_auth_failures_total"), Some(0.0));
        // The classic text format has no OpenMetrics `# EOF` trailer.
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn role_counters_are_read_at_scrape_time() {
        let m = Metrics::new();
        let (w, s) = (m.worker_counters(), m.sender_counters());
        w.handled.fetch_add(3, Ordering::Relaxed);
        w.unknown_senders.fetch_add(1, Ordering::Relaxed);
        s.sent.fetch_add(2, Ordering::Relaxed);
        s.dead.fetch_add(1, Ordering::Relaxed);
        s.window_closed.fetch_add(1, Ordering::Relaxed);
        s.auth_failed.fetch_add(4, Ordering::Relaxed);
        m.dead_letters(DeadLetterStream::Outbox).fetch_add(5, Ordering::Relaxed);
        let text = m.render().unwrap();
        for (series, want) in [
            ("alfred_worker_messages_total{outcome=\"handled\"}", 3.0),
            ("alfred_worker_messages_total{outcome=\"unknown_sender\"}", 1.0),
            ("alfred_worker_messages_total{outcome=\"duplicate\"}", 0.0),
            ("alfred_outbox_results_total{result=\"sent\"}", 2.0),
            ("alfred_outbox_results_total{result=\"dead\"}", 1.0),
            ("alfred_outbox_results_total{result=\"window_closed\"}", 1.0),
            ("alfred_whatsapp_auth_failures_total", 4.0),
            ("alfred_queue_dead_letters_total{stream=\"outbox\"}", 5.0),
            ("alfred_queue_dead_letters_total{stream=\"ingest\"}", 0.0),
        ] {
            assert_eq!(sample(&text, series), Some(want), "{series} in:\n{text}");
        }
    }

    #[test]
    fn requests_are_counted_by_status_and_timed_with_bounded_labels() {
        let m = Metrics::new();
        let ms = Duration::from_millis(3);
        m.observe_request("/webhook", &Method::POST, StatusCode::OK, ms);
        m.observe_request("/webhook", &Method::POST, StatusCode::OK, ms);
        m.observe_request("/webhook", &Method::POST, StatusCode::SERVICE_UNAVAILABLE, ms);
        m.observe_request("/+31612345001", &Method::DELETE, StatusCode::NOT_FOUND, ms);
        let text = m.render().unwrap();
        assert!(text.contains("# TYPE alfred_webhook_requests_total counter\n"));
        assert!(text.contains("# TYPE alfred_webhook_request_duration_seconds histogram\n"));
        let requests = |route: &str, method: &str, status: &str| {
            sample(
                &text,
                &series(
                    "alfred_webhook_requests_total",
                    &[("route", route), ("method", method), ("status", status)],
                ),
            )
        };
        assert_eq!(requests("/webhook", "POST", "200"), Some(2.0));
        assert_eq!(requests("/webhook", "POST", "503"), Some(1.0));
        assert_eq!(requests("other", "other", "404"), Some(1.0));
        // A path never becomes a label value.
        assert!(!text.contains("3161234"), "{text}");
        let hist = |suffix: &str| {
            sample(
                &text,
                &format!("alfred_webhook_request_duration_seconds_{suffix}{{route=\"/webhook\",method=\"POST\"}}"),
            )
        };
        assert_eq!(hist("count"), Some(3.0));
        let sum = hist("sum").unwrap();
        assert!((sum - 0.009).abs() < 1e-9, "sum {sum}");
        // 3 ms is above the 2 ms bucket and within the 4 ms one.
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    "alfred_webhook_request_duration_seconds_bucket{{route=\"/webhook\",method=\"POST\",le=\"{le}\"}}"
                ),
            )
        };
        assert_eq!(bucket("0.002"), Some(0.0), "{text}");
        assert_eq!(bucket("0.004"), Some(3.0), "{text}");
        assert_eq!(bucket("+Inf"), Some(3.0), "{text}");
    }

    #[test]
    fn sample_reads_only_exact_series() {
        let text = "# HELP a_total x\na_total 1\na_total{k=\"v\"} 2\nab_total 3\n";
        assert_eq!(sample(text, "a_total"), Some(1.0));
        assert_eq!(sample(text, "a_total{k=\"v\"}"), Some(2.0));
        assert_eq!(sample(text, "a"), None);
        assert_eq!(series("a_total", &[("k", "v"), ("l", "w")]), "a_total{k=\"v\",l=\"w\"}");
    }

    async fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    #[tokio::test]
    async fn the_metrics_listener_serves_metrics_and_health_and_stops() {
        let m = Arc::new(Metrics::new());
        m.worker_counters().handled.fetch_add(7, Ordering::Relaxed);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let store = crate::edges::store::Store::open(":memory:").unwrap();
        store.migrate().unwrap();
        let queue = crate::edges::queue::sql::SqlQueue::new(store.clone(), Default::default());
        let health = Health {
            store: Some(store),
            queue: queue.into(),
        };
        let server = tokio::spawn(serve(listener, m.clone(), health, async move {
            let _ = stopped.await;
        }));
        let (status, head, body) = get(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
        assert_eq!(
            sample(&body, "alfred_worker_messages_total{outcome=\"handled\"}"),
            Some(7.0)
        );
        assert_eq!(get(addr, "GET", "/healthz").await.0, 200);
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);
        assert_eq!(get(addr, "POST", "/metrics").await.0, 405);
        assert_eq!(get(addr, "GET", "/webhook").await.0, 404);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
    }
}
