//! # The webhook role: Meta's WhatsApp Cloud API calls in, raw bodies go to `alfred-ingest`
//!
//! A small hyper 1.x HTTP/1.1 server ([`run`]) with four routes:
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /webhook` | Meta's verification handshake: 200 `text/plain` with the raw `hub.challenge` when `hub.mode=subscribe` and `hub.verify_token` matches, else 403. |
//! | `POST /webhook` | 413 above [`MAX_BODY_BYTES`] (checked on `Content-Length` and while reading, **before** the signature); 401 without `X-Hub-Signature-256`; 403 on a mismatch; 400 for a body that is not a WhatsApp webhook; then the **raw bytes, unchanged**, are pushed to the ingest stream: 200 once the push is durable, 503 if it failed (Meta redelivers, so nothing answered 200 is ever lost). |
//! | `GET /healthz` | 200 `ok`: the process is alive. |
//! | `GET /readyz` | 200 when the database (if any) and the queue answer, else 503 naming the one that failed. |
//! | `GET /metrics` | Prometheus text exposition ([`crate::edges::metrics`]); 404 when the state has no metrics. |
//!
//! Anything else is 404, or 405 for a known path with the wrong method.
//!
//! The signature is checked over the bytes as received (Meta escapes `\u00e9` and `\/`, so
//! re-serialised JSON would not match) and the same bytes are what the worker reads.
//!
//! Timeouts: request headers must arrive within [`HEADER_READ_TIMEOUT`] (hyper's
//! `header_read_timeout`, which needs a timer, or it panics), the body within
//! [`BODY_READ_TIMEOUT`] (408 otherwise). On shutdown the listener is closed, in-flight
//! connections are drained for up to [`SHUTDOWN_GRACE`], then [`run`] returns.
//!
//! Logs carry methods, paths, status codes and sizes only: never bodies, phone numbers,
//! signatures or tokens.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::edges::health::Health;
use crate::edges::http_server;
use crate::edges::metrics::Metrics;
use crate::edges::queue::{AnyQueue, Queue};
use crate::edges::store::Store;
use crate::edges::whatsapp::{inbound, signature};
use crate::roles::log_limit::{LogLimit, Verdict};
use crate::roles::order;

/// The largest accepted body: Meta's payloads are at most 3 MB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How long a client may take to send the request line and headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send the body once the headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`run`] waits for in-flight connections after the shutdown future completes.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The header Meta signs every POST with.
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// What the webhook needs; build it once and share it as an `Arc` with [`run`].
#[derive(Debug)]
pub struct WebhookState {
    /// Where accepted bodies are pushed.
    pub queue: AnyQueue,
    /// The stream accepted bodies go to (`StreamNames::ingest`, normally `alfred-ingest`).
    pub ingest_stream: String,
    /// `META_APP_SECRET`. `None` only in insecure development mode: unsigned bodies are then
    /// accepted, and [`run`] logs a warning when it starts.
    pub app_secret: Option<Vec<u8>>,
    /// `VERIFY_TOKEN` for the `GET /webhook` handshake; `None` refuses every handshake (403).
    pub verify_token: Option<String>,
    /// The database to ping for `/readyz`, if the role has one.
    pub store: Option<Store>,
    /// Where every request is counted and timed, and what `/metrics` renders; `None`
    /// serves no `/metrics` (404).
    pub metrics: Option<Arc<Metrics>>,
    /// Whether this port also serves `/metrics`: not when a metrics listener of its own
    /// (`ALFRED_METRICS_LISTEN`) does, so the public webhook port shows no internals.
    pub public_metrics: bool,
    /// Refused verification handshakes are logged once a minute per reason.
    pub refusal_log: LogLimit,
}

/// The deadlines [`run_with`] enforces; [`Timeouts::default`] is what [`run`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the request line and headers ([`HEADER_READ_TIMEOUT`]); the connection is closed.
    pub header_read: Duration,
    /// For the body once the headers are in ([`BODY_READ_TIMEOUT`]); answered 408.
    pub body_read: Duration,
    /// For draining open connections on shutdown ([`SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: HEADER_READ_TIMEOUT,
            body_read: BODY_READ_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// The response body type of every route.
type Body = Full<Bytes>;

/// Serves the webhook on `listener` until `shutdown` completes, then stops accepting,
/// drains open connections for up to [`SHUTDOWN_GRACE`] and returns.
///
/// Bind the listener yourself (tests bind `127.0.0.1:0` and read the port back). Accept
/// errors (a reset before accept, too many open files) are logged and retried, not fatal.
pub async fn run(
    listener: TcpListener,
    state: Arc<WebhookState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_with(listener, state, shutdown, Timeouts::default()).await
}

/// [`run`] with other deadlines (tests use short ones).
pub async fn run_with(
    listener: TcpListener,
    state: Arc<WebhookState>,
    shutdown: impl Future<Output = ()>,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    // No secret (insecure development mode) is warned about at start, with the
    // configuration's other warnings (`Config::start_warnings`).
    let state = Arc::clone(&state);
    let handler = move |req| {
        let state = Arc::clone(&state);
        async move { handle(req, &state, timeouts.body_read).await }
    };
    let deadlines = http_server::Deadlines {
        header_read: timeouts.header_read,
        shutdown_grace: timeouts.shutdown_grace,
    };
    http_server::serve("webhook", listener, deadlines, handler, shutdown).await
}

/// Routes one request and logs its outcome.
async fn handle(req: Request<Incoming>, state: &WebhookState, body_timeout: Duration) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match (path.as_str(), &method) {
        ("/webhook", &Method::GET) => verify_handshake(&req, state),
        ("/webhook", &Method::POST) => receive(req, state, body_timeout).await,
        ("/healthz", &Method::GET) => text(StatusCode::OK, "ok"),
        ("/readyz", &Method::GET) => readiness(state).await,
        ("/metrics", &Method::GET) => match &state.metrics {
            Some(metrics) if state.public_metrics => metrics.http_response(),
            _ => text(StatusCode::NOT_FOUND, "not found"),
        },
        ("/webhook", _) => method_not_allowed("GET, POST"),
        ("/healthz" | "/readyz" | "/metrics", _) => method_not_allowed("GET"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    };
    if let Some(metrics) = &state.metrics {
        metrics.observe_request(&path, &method, response.status(), started.elapsed());
    }
    // Debug, not info: /metrics counts every request by status, and one log line per
    // request cost 6-8 % of the webhook's throughput (docs/benchmarks.md). Rejections
    // (401/403/400/413/503) are logged at info where they are decided.
    tracing::debug!(%method, %path, status = response.status().as_u16(), "webhook request");
    response
}

/// `GET /webhook?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`.
fn verify_handshake(req: &Request<Incoming>, state: &WebhookState) -> Response<Body> {
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for pair in req.uri().query().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match percent_decode(key).as_deref() {
            Some("hub.mode") => &mut mode,
            Some("hub.verify_token") => &mut token,
            Some("hub.challenge") => &mut challenge,
            _ => continue,
        };
        *slot = percent_decode(value);
    }
    let accepted = mode.as_deref() == Some("subscribe")
        && matches!((&state.verify_token, &token), (Some(want), Some(got)) if constant_time_eq(want.as_bytes(), got.as_bytes()));
    match (accepted, challenge) {
        (true, Some(challenge)) => text(StatusCode::OK, challenge),
        _ => {
            // The operator's first sign of a mistyped VERIFY_TOKEN: a WARN, without the
            // token Meta sent, once a minute however often the dashboard retries.
            let reason = match (&state.verify_token, mode.as_deref()) {
                (None, _) => "VERIFY_TOKEN is not set",
                (Some(_), Some("subscribe")) => "the verify token does not match VERIFY_TOKEN",
                (Some(_), _) => "hub.mode is not subscribe",
            };
            if let Verdict::Log { suppressed } = state.refusal_log.check(reason, std::time::Instant::now()) {
                tracing::warn!(status = 403, suppressed, "webhook verification refused: {reason}");
            }
            text(StatusCode::FORBIDDEN, "forbidden")
        }
    }
}

/// `POST /webhook`: size cap, signature, shape check, durable push.
async fn receive(req: Request<Incoming>, state: &WebhookState, body_timeout: Duration) -> Response<Body> {
    // Refuse a declared oversize body before reading a byte of it.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        tracing::info!(declared, "webhook: body too large (Content-Length)");
        return text(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
    }
    // A header that is not visible ASCII is present but cannot match: 403, not 401.
    let sig_header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or("").to_owned());

    let limited = Limited::new(req.into_body(), MAX_BODY_BYTES);
    let body = match tokio::time::timeout(body_timeout, limited.collect()).await {
        Err(_elapsed) => return text(StatusCode::REQUEST_TIMEOUT, "body read timed out"),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            tracing::info!("webhook: body too large (while reading)");
            return text(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "webhook: reading the body failed");
            return text(StatusCode::BAD_REQUEST, "bad body");
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let size = body.len();

    if let Some(secret) = &state.app_secret {
        match signature::verify(secret, &body, sig_header.as_deref()) {
            Ok(()) => {}
            Err(signature::SignatureError::Missing) => {
                tracing::info!(size, "webhook: unsigned POST");
                return text(StatusCode::UNAUTHORIZED, "missing signature");
            }
            Err(signature::SignatureError::Mismatch) => {
                tracing::info!(size, "webhook: signature mismatch");
                return text(StatusCode::FORBIDDEN, "bad signature");
            }
        }
    }

    let senders = match inbound::parse(&body) {
        Ok(batch) => order::sender_counts(&batch.messages),
        Err(e) => {
            // The error names what is wrong (serde's position, a missing key), never the content.
            let kind = match e {
                inbound::InboundError::NotJson(_) => "not JSON",
                _ => "not a WhatsApp webhook",
            };
            tracing::info!(size, kind, "webhook: rejected body");
            return text(StatusCode::BAD_REQUEST, kind);
        }
    };

    // Numbered per sender in the same atomic step, so that several workers can keep each
    // member's messages in arrival order (see `crate::roles::order`).
    match state.queue.push_numbered(&state.ingest_stream, &body, &senders).await {
        Ok(id) => {
            tracing::debug!(size, %id, "webhook: queued");
            text(StatusCode::OK, "ok")
        }
        Err(e) => {
            // QueueError never carries a payload. Retryable or not, 503 makes Meta redeliver.
            tracing::warn!(size, retryable = e.is_retryable(), error = %e, "webhook: push failed");
            text(StatusCode::SERVICE_UNAVAILABLE, "queue unavailable")
        }
    }
}

/// `GET /readyz`: the store and the queue ([`Health`]).
async fn readiness(state: &WebhookState) -> Response<Body> {
    let health = Health {
        store: state.store.clone(),
        queue: state.queue.clone(),
    };
    let (status, body) = health.readyz().await;
    text(status, body)
}

/// A `text/plain` response.
fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// 405 with the `Allow` header.
fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Decodes one `application/x-www-form-urlencoded` component (`%XX`, `+` = space);
/// `None` if it is malformed or not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Compares two secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::edges::queue::{RedisQueue, RedisQueueConfig, SqlQueue, SqlQueueConfig};

    const SECRET: &[u8] = b"test-app-secret";
    const VERIFY: &str = "my verify/token";

    fn unique() -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        format!("{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
    }

    /// A migrated SQLite store on a temp file, and the file's path (for cleanup).
    fn temp_store() -> (Store, PathBuf) {
        let path = std::env::temp_dir().join(format!("alfred_webhook_test_{}.db", unique()));
        let store = Store::open(path.to_str().expect("utf-8 temp path")).expect("open SQLite");
        store.migrate().expect("migrate");
        (store, path)
    }

    fn remove_db(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    struct Server {
        addr: SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<std::io::Result<()>>,
    }

    impl Server {
        async fn start(state: WebhookState) -> Server {
            Server::start_with(state, Timeouts::default()).await
        }

        async fn start_with(state: WebhookState, timeouts: Timeouts) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local addr");
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(run_with(
                listener,
                Arc::new(state),
                async move {
                    let _ = stopped.await;
                },
                timeouts,
            ));
            Server {
                addr,
                stop: Some(stop),
                task,
            }
        }

        fn signal_stop(&mut self) {
            self.stop
                .take()
                .expect("not stopped yet")
                .send(())
                .expect("server alive");
        }

        async fn stop(mut self) {
            self.signal_stop();
            self.wait().await;
        }

        async fn wait(self) {
            tokio::time::timeout(Duration::from_secs(5), self.task)
                .await
                .expect("run returns promptly after shutdown")
                .expect("run did not panic")
                .expect("run returned Ok");
        }
    }

    fn sql_state(store: &Store, stream: &str) -> WebhookState {
        WebhookState {
            queue: SqlQueue::new(store.clone(), SqlQueueConfig::default()).into(),
            ingest_stream: stream.to_owned(),
            app_secret: Some(SECRET.to_vec()),
            verify_token: Some(VERIFY.to_owned()),
            store: Some(store.clone()),
            metrics: Some(Arc::new(Metrics::new())),
            public_metrics: true,
            refusal_log: LogLimit::default(),
        }
    }

    /// One HTTP/1.1 request over a fresh connection (`Connection: close`); returns the status
    /// code and the body.
    async fn request(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .expect("response in time")
            .expect("read response");
        parse_response(&raw)
    }

    fn parse_response(raw: &[u8]) -> (u16, Vec<u8>) {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head}"));
        (status, raw[split + 4..].to_vec())
    }

    async fn post_signed(addr: SocketAddr, body: &[u8]) -> (u16, Vec<u8>) {
        let sig = signature::sign(SECRET, body);
        request(
            addr,
            "POST",
            "/webhook",
            &[("Content-Type", "application/json"), ("X-Hub-Signature-256", &sig)],
            body,
        )
        .await
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/whatsapp-payloads")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Everything currently in `stream`, read through the Queue trait.
    /// The queued webhook bodies, each without the arrival-number header the queue put
    /// in front (checked to be there whenever the body holds messages).
    async fn drain(queue: &AnyQueue, stream: &str) -> Vec<Vec<u8>> {
        let deliveries = queue
            .read(stream, "worker", "webhook-test", 100, Duration::ZERO)
            .await
            .expect("read back");
        deliveries
            .into_iter()
            .map(|d| {
                let (numbers, body) = order::split(&d.payload);
                let batch = inbound::parse(body).expect("a webhook body");
                let expected = order::sender_counts(&batch.messages).len();
                if expected > 0 {
                    assert_eq!(numbers.map(|n| n.len()), Some(expected), "one number per sender");
                }
                body.to_vec()
            })
            .collect()
    }

    #[tokio::test]
    async fn verify_handshake_echoes_the_challenge_only_for_the_right_token() {
        let (store, path) = temp_store();
        let server = Server::start(sql_state(&store, "t-ingest")).await;
        let ok = "/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my+verify%2Ftoken";
        assert_eq!(
            request(server.addr, "GET", ok, &[], b"").await,
            (200, b"1158201444".to_vec())
        );
        let wrong = "/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=nope";
        assert_eq!(request(server.addr, "GET", wrong, &[], b"").await.0, 403);
        let no_mode = "/webhook?hub.challenge=1&hub.verify_token=my+verify%2Ftoken";
        assert_eq!(request(server.addr, "GET", no_mode, &[], b"").await.0, 403);
        assert_eq!(request(server.addr, "GET", "/webhook", &[], b"").await.0, 403);
        server.stop().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn signed_fixture_is_queued_byte_for_byte_and_bad_posts_are_refused() {
        let (store, path) = temp_store();
        let stream = format!("t{}-ingest", unique());
        let state = sql_state(&store, &stream);
        let queue = state.queue.clone();
        let server = Server::start(state).await;
        let addr = server.addr;

        let body = fixture("webhook_text.json");
        // Unsigned → 401; tampered → 403; non-JSON and non-webhook (signed) → 400.
        assert_eq!(request(addr, "POST", "/webhook", &[], &body).await.0, 401);
        let sig = signature::sign(SECRET, &body);
        let mut tampered = body.clone();
        let last = tampered.iter().rposition(|b| b.is_ascii_digit()).expect("a digit");
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            request(addr, "POST", "/webhook", &[("X-Hub-Signature-256", &sig)], &tampered)
                .await
                .0,
            403
        );
        assert_eq!(
            request(addr, "POST", "/webhook", &[("X-Hub-Signature-256", "sha256=zz")], &body)
                .await
                .0,
            403
        );
        assert_eq!(post_signed(addr, b"not json at all").await.0, 400);
        assert_eq!(post_signed(addr, br#"{"object":"page"}"#).await.0, 400);
        assert!(
            drain(&queue, &stream).await.is_empty(),
            "nothing refused reaches the queue"
        );

        // The real fixture, signed over its exact bytes.
        assert_eq!(post_signed(addr, &body).await.0, 200);
        assert_eq!(drain(&queue, &stream).await, vec![body]);

        // Escapes must survive: signed and stored as received, never re-serialised.
        let escaped = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"1"},"contacts":[{"profile":{"name":"Ren\u00e9e"},"wa_id":"447700900123"}],"messages":[{"from":"447700900123","id":"wamid.esc1","timestamp":"1718000000","type":"text","text":{"body":"caf\u00e9 \/ bar"}}]}}]}]}"#;
        assert_eq!(post_signed(addr, escaped).await.0, 200);
        assert_eq!(drain(&queue, &stream).await, vec![escaped.to_vec()]);

        server.stop().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn oversize_bodies_get_413_before_the_signature_check() {
        let (store, path) = temp_store();
        let server = Server::start(sql_state(&store, "t-ingest")).await;
        // Declared 4 MB: refused on the header alone, unsigned or not.
        let four_mb = (4 * 1024 * 1024).to_string();
        let (status, _) = request(
            server.addr,
            "POST",
            "/webhook",
            &[("Content-Length", four_mb.as_str())],
            b"",
        )
        .await;
        assert_eq!(status, 413);
        // Chunked, no length declared: refused once the cap is crossed while reading.
        let mut conn = TcpStream::connect(server.addr).await.expect("connect");
        let head = "POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        conn.write_all(head.as_bytes()).await.expect("head");
        let chunk = vec![b'a'; 64 * 1024];
        let mut chunked = Vec::new();
        for _ in 0..(MAX_BODY_BYTES / chunk.len() + 1) {
            chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            chunked.extend_from_slice(&chunk);
            chunked.extend_from_slice(b"\r\n");
        }
        // Write what the server wants to read; it stops after the cap, so ignore write errors.
        let (mut rd, mut wr) = conn.into_split();
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&chunked).await;
            wr
        });
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the response head and its small body are in (tolerate a reset after it).
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        assert_eq!(parse_response(&raw).0, 413);
        drop(writer.await);
        server.stop().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn health_readiness_and_routing() {
        let (store, path) = temp_store();
        let server = Server::start(sql_state(&store, "t-ingest")).await;
        let addr = server.addr;
        assert_eq!(request(addr, "GET", "/healthz", &[], b"").await, (200, b"ok".to_vec()));
        assert_eq!(request(addr, "GET", "/readyz", &[], b"").await.0, 200);
        assert_eq!(request(addr, "GET", "/nope", &[], b"").await.0, 404);
        assert_eq!(request(addr, "PUT", "/webhook", &[], b"").await.0, 405);
        assert_eq!(request(addr, "POST", "/healthz", &[], b"").await.0, 405);
        server.stop().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn queue_down_gives_503_and_readyz_names_the_queue() {
        let (store, path) = temp_store();
        let mut config = RedisQueueConfig::new("redis://127.0.0.1:1/");
        config.connect_timeout = Duration::from_millis(300);
        config.response_timeout = Duration::from_millis(300);
        config.reconnect_retries = 0;
        let state = WebhookState {
            queue: RedisQueue::new(config).expect("lazy connection").into(),
            ..sql_state(&store, "t-ingest")
        };
        let metrics = state.metrics.clone().expect("sql_state has metrics");
        let server = Server::start(state).await;
        assert_eq!(post_signed(server.addr, &fixture("webhook_text.json")).await.0, 503);
        // Counted where the WebhookUnavailable alert looks for it.
        assert_eq!(
            crate::edges::metrics::sample(
                &metrics.render().expect("render"),
                "alfred_webhook_requests_total{route=\"/webhook\",method=\"POST\",status=\"503\"}"
            ),
            Some(1.0)
        );
        let (status, body) = request(server.addr, "GET", "/readyz", &[], b"").await;
        assert_eq!(
            (status, String::from_utf8_lossy(&body).into_owned()),
            (503, "unavailable: queue".to_owned())
        );
        server.stop().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn insecure_dev_mode_accepts_unsigned_posts() {
        let (store, path) = temp_store();
        let stream = format!("t{}-ingest", unique());
        let state = WebhookState {
            app_secret: None,
            ..sql_state(&store, &stream)
        };
        let queue = state.queue.clone();
        let server = Server::start(state).await;
        let body = fixture("webhook_text.json");
        assert_eq!(request(server.addr, "POST", "/webhook", &[], &body).await.0, 200);
        assert_eq!(drain(&queue, &stream).await, vec![body]);
        server.stop().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn shutdown_returns_even_with_an_idle_connection_open() {
        let (store, path) = temp_store();
        let server = Server::start(sql_state(&store, "t-ingest")).await;
        // An idle keep-alive connection that has finished one request: graceful shutdown closes it.
        let mut idle = TcpStream::connect(server.addr).await.expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = idle.read(&mut buf).await.expect("read");
        assert_eq!(parse_response(&buf[..n]).0, 200);
        let addr = server.addr;
        server.stop().await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "listener closed after shutdown"
        );
        remove_db(&path);
    }

    #[tokio::test]
    async fn shutdown_lets_an_in_flight_post_finish_and_queue() {
        let (store, path) = temp_store();
        let stream = format!("t{}-ingest", unique());
        let state = sql_state(&store, &stream);
        let queue = state.queue.clone();
        let mut server = Server::start(state).await;
        let body = fixture("webhook_text.json");
        let (first, rest) = body.split_at(body.len() / 2);
        let head = format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nX-Hub-Signature-256: {}\r\n\r\n",
            body.len(),
            signature::sign(SECRET, &body)
        );
        let mut conn = TcpStream::connect(server.addr).await.expect("connect");
        conn.write_all(head.as_bytes()).await.expect("head");
        conn.write_all(first).await.expect("first half");
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Shut down while the body is half sent; the request must still complete.
        server.signal_stop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.write_all(rest).await.expect("second half");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut raw))
            .await
            .expect("answered and closed in time")
            .expect("read");
        assert_eq!(parse_response(&raw).0, 200);
        server.wait().await;
        assert_eq!(drain(&queue, &stream).await, vec![body]);
        remove_db(&path);
    }

    #[tokio::test]
    async fn slow_headers_are_cut_off_and_slow_bodies_get_408() {
        let (store, path) = temp_store();
        let timeouts = Timeouts {
            header_read: Duration::from_millis(300),
            body_read: Duration::from_millis(300),
            shutdown_grace: Duration::from_secs(2),
        };
        let server = Server::start_with(sql_state(&store, "t-ingest"), timeouts).await;
        // Headers never finished: hyper closes the connection (a 408 head, or nothing).
        let mut slow = TcpStream::connect(server.addr).await.expect("connect");
        slow.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let mut raw = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut raw)).await;
        assert!(read.is_ok(), "connection closed after the header read timeout");
        // Headers complete, body stalls: 408.
        let mut stalled = TcpStream::connect(server.addr).await.expect("connect");
        stalled
            .write_all(
                b"POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100\r\n\r\n{\"entry\"",
            )
            .await
            .expect("write");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), stalled.read_to_end(&mut raw))
            .await
            .expect("answered in time")
            .expect("read");
        assert_eq!(parse_response(&raw).0, 408);
        server.stop().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn redis_queue_holds_the_exact_bytes() {
        let url = std::env::var("ALFRED_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let queue: AnyQueue = RedisQueue::new(RedisQueueConfig::new(url.clone()))
            .expect("valid URL")
            .into();
        queue
            .ping()
            .await
            .unwrap_or_else(|e| panic!("this test needs Redis at {url} (ALFRED_TEST_REDIS_URL): {e}"));
        let stream = format!("alfred-test-webhook-{}-ingest", unique());
        let state = WebhookState {
            queue: queue.clone(),
            ingest_stream: stream.clone(),
            app_secret: Some(SECRET.to_vec()),
            verify_token: Some(VERIFY.to_owned()),
            store: None,
            metrics: None,
            public_metrics: true,
            refusal_log: LogLimit::default(),
        };
        let server = Server::start(state).await;
        let body = fixture("webhook_text.json");
        assert_eq!(request(server.addr, "POST", "/webhook", &[], &body).await.0, 401);
        assert_eq!(post_signed(server.addr, &body).await.0, 200);
        assert_eq!(request(server.addr, "GET", "/readyz", &[], b"").await.0, 200);
        let got = drain(&queue, &stream).await;
        server.stop().await;

        let client = redis::Client::open(url.as_str()).expect("URL");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let _: () = redis::cmd("DEL")
            .arg(&stream)
            .arg(format!("{{{stream}}}:seq"))
            .query_async(&mut conn)
            .await
            .expect("DEL");
        assert_eq!(got, vec![body]);
    }

    #[tokio::test]
    async fn every_outcome_is_counted_by_status_and_metrics_are_served() {
        let (store, path) = temp_store();
        let state = sql_state(&store, &format!("t{}-ingest", unique()));
        let metrics = state.metrics.clone().expect("sql_state has metrics");
        let server = Server::start(state).await;
        let body = fixture("webhook_text.json");
        assert_eq!(post_signed(server.addr, &body).await.0, 200);
        assert_eq!(request(server.addr, "POST", "/webhook", &[], &body).await.0, 401);
        let wrong = signature::sign(b"another secret", &body);
        let sig = [(SIGNATURE_HEADER, wrong.as_str())];
        assert_eq!(request(server.addr, "POST", "/webhook", &sig, &body).await.0, 403);
        assert_eq!(post_signed(server.addr, b"{\"hello\":1}").await.0, 400);
        let four_mb = (4 * 1024 * 1024).to_string();
        let declared = [("Content-Length", four_mb.as_str())];
        assert_eq!(request(server.addr, "POST", "/webhook", &declared, b"").await.0, 413);
        let (status, scraped) = request(server.addr, "GET", "/metrics", &[], b"").await;
        assert_eq!(status, 200);
        let scraped = String::from_utf8(scraped).expect("UTF-8 exposition");
        server.stop().await;
        let count = |status: &str| {
            crate::edges::metrics::sample(
                &scraped,
                &crate::edges::metrics::series(
                    "alfred_webhook_requests_total",
                    &[("route", "/webhook"), ("method", "POST"), ("status", status)],
                ),
            )
        };
        for status in ["200", "401", "403", "400", "413"] {
            assert_eq!(count(status), Some(1.0), "status {status} in:\n{scraped}");
        }
        assert_eq!(
            crate::edges::metrics::sample(
                &scraped,
                "alfred_webhook_request_duration_seconds_count{route=\"/webhook\",method=\"POST\"}"
            ),
            Some(5.0)
        );
        // The scrape itself is counted after it was rendered.
        let again = metrics.render().expect("render");
        assert_eq!(
            crate::edges::metrics::sample(
                &again,
                "alfred_webhook_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"}"
            ),
            Some(1.0)
        );
        remove_db(&path);
    }

    #[test]
    fn percent_decoding_and_constant_time_compare() {
        assert_eq!(percent_decode("a+b%2Fc%C3%A9").as_deref(), Some("a b/cé"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
