//! A fake WhatsApp Graph API server for tests, following Meta's documented contract
//! (`../shared/reference/whatsapp-cloud-api.md` §4–5).
//!
//! A minimal HTTP/1.1 server over a tokio `TcpListener` on `127.0.0.1:0`: one request per
//! connection (`Connection: close`), `Content-Length` bodies only (what reqwest sends).
//! It records every request in order and answers like Meta would:
//!
//! - missing or wrong `Authorization: Bearer <token>` → 401 with error 190;
//! - anything but `POST /vNN.N/{phone_number_id}/messages` → 400 with error 100;
//! - `messaging_product` other than `whatsapp`, or neither `to` nor `recipient` → 400 with
//!   error 100;
//! - a mark-as-read body (`status: read` + `message_id`) → `{"success":true}`;
//! - a send → the `response_send_success.json` shape with a unique `wamid.FAKE<n>` and the
//!   request's `to` (or `recipient`) as `contacts[0].input`.
//!
//! Scripted failures ([`FakeGraph::fail_next`]) and a response delay
//! ([`FakeGraph::set_delay`]) take precedence over the rules above.
//!
//! Optionally it enforces Meta's rate limits on sends, on tokio's clock (so tests under
//! `tokio::time::pause` see virtual time): the pair rate ([`FakeGraph::enforce_pair_rate`],
//! a GCRA per recipient → 429 with error 131056) and the number's throughput
//! ([`FakeGraph::enforce_throughput`], at most n accepted sends in any second → 429 with
//! error 130429). A refused send does not count against either limit.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The bearer token the fake accepts unless [`start_with_token`] says otherwise.
pub const TOKEN: &str = "fake-graph-token";

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Request path (with query, if any).
    pub path: String,
    /// The `Authorization` header, verbatim.
    pub authorization: Option<String>,
    /// The body as JSON (`Value::Null` if it was not JSON).
    pub body: Value,
}

/// One request and what the fake answered.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request.
    pub request: RecordedRequest,
    /// The HTTP status answered.
    pub status: u16,
    /// The JSON body answered.
    pub response: Value,
}

impl Exchange {
    /// The wamid the fake handed out, for an accepted message send.
    pub fn wamid(&self) -> Option<&str> {
        self.response.get("messages")?.get(0)?.get("id")?.as_str()
    }

    /// Whether this was an accepted message send (not a read receipt, not a failure).
    pub fn is_accepted_send(&self) -> bool {
        self.status == 200 && self.wamid().is_some()
    }
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    exchanges: Vec<Exchange>,
    failures: VecDeque<(u16, Value)>,
    send_failures: VecDeque<(u16, Value)>,
    delay: Duration,
    next_id: u64,
    times: Vec<Instant>,
    /// (interval, burst) and each recipient's theoretical arrival time.
    pair_rate: Option<(Duration, u32)>,
    pair_tat: HashMap<String, Instant>,
    pair_hits: usize,
    /// Sends per second, and the accepted sends of the last second.
    throughput: Option<u32>,
    accepted: VecDeque<Instant>,
    throughput_hits: usize,
    sends: usize,
}

/// A running fake Graph API; stops when dropped.
pub struct FakeGraph {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

/// Starts a fake accepting the bearer token [`TOKEN`].
pub async fn start() -> FakeGraph {
    start_with_token(TOKEN).await
}

/// Starts a fake accepting `token`.
pub async fn start_with_token(token: &str) -> FakeGraph {
    start_on("127.0.0.1:0".parse().expect("a literal address"), token)
        .await
        .expect("bind 127.0.0.1:0")
}

/// Starts a fake on `addr` accepting `token` (the load scripts need a known port).
pub async fn start_on(addr: SocketAddr, token: &str) -> std::io::Result<FakeGraph> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(Mutex::new(State::default()));
    let token: Arc<str> = Arc::from(token);
    let task = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, token) = (Arc::clone(&state), Arc::clone(&token));
                tokio::spawn(async move {
                    // A client that hangs up (e.g. after its timeout) is not the fake's problem.
                    let _ = serve(stream, &state, &token).await;
                });
            }
        })
    };
    Ok(FakeGraph { addr, state, task })
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeGraph {
    /// `http://127.0.0.1:<port>`: the base URL to give the client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// How many requests arrived so far, and how many of them were sends (not
    /// mark-as-read), without copying them like [`FakeGraph::requests`] does.
    pub fn counts(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.requests.len(), s.sends)
    }

    /// Answers the next `n` requests with `http_status` and `body` (after recording them).
    pub fn fail_next(&self, n: usize, http_status: u16, body: Value) {
        let mut s = lock(&self.state);
        for _ in 0..n {
            s.failures.push_back((http_status, body.clone()));
        }
    }

    /// Answers the next `n` *message sends* (not read receipts) with this error.
    pub fn fail_next_sends(&self, n: usize, http_status: u16, body: Value) {
        let mut s = lock(&self.state);
        for _ in 0..n {
            s.send_failures.push_back((http_status, body.clone()));
        }
    }

    /// Every request with the answer it got, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.state).exchanges.clone()
    }

    /// Waits this long before answering each request (to exercise client timeouts).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// When each request arrived (tokio's clock), in arrival order.
    pub fn request_times(&self) -> Vec<Instant> {
        lock(&self.state).times.clone()
    }

    /// From now on, answers 131056 to a send that exceeds the pair rate for its recipient:
    /// one message per `interval`, `burst` at once (a GCRA, like the sender's own pacing).
    pub fn enforce_pair_rate(&self, interval: Duration, burst: u32) {
        lock(&self.state).pair_rate = Some((interval, burst.max(1)));
    }

    /// From now on, answers 130429 to a send beyond `per_second` accepted sends in any
    /// one-second window.
    pub fn enforce_throughput(&self, per_second: u32) {
        lock(&self.state).throughput = Some(per_second);
    }

    /// Sends refused with 131056 so far.
    pub fn pair_rate_hits(&self) -> usize {
        lock(&self.state).pair_hits
    }

    /// Sends refused with 130429 so far.
    pub fn throughput_hits(&self) -> usize {
        lock(&self.state).throughput_hits
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Graph API error body.
pub fn error_body(code: i64, message: &str, details: &str) -> Value {
    json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": details },
            "fbtrace_id": "FAKEtrace"
        }
    })
}

fn invalid_token() -> Value {
    json!({
        "error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": "FAKEtrace"
        }
    })
}

fn invalid_param(details: &str) -> Value {
    error_body(100, "(#100) Invalid parameter", details)
}

/// `/vNN.N/{phone_number_id}/messages`?
fn is_messages_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(parts.as_slice(), [version, phone, "messages"]
        if version.starts_with('v')
            && version[1..].split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            && !phone.is_empty()
            && phone.chars().all(|c| c.is_ascii_digit()))
}

/// Meta's limits, if enforced: `Some(response)` refuses the send to `to` at `now`, and an
/// accepted send is counted.
fn rate_limited(s: &mut State, to: &str, now: Instant) -> Option<(u16, Value)> {
    if let Some(limit) = s.throughput {
        while s
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            s.accepted.pop_front();
        }
        if s.accepted.len() >= limit as usize {
            s.throughput_hits += 1;
            return Some((
                429,
                error_body(
                    130_429,
                    "(#130429) Rate limit hit",
                    "Cloud API message throughput has been reached.",
                ),
            ));
        }
    }
    if let Some((interval, burst)) = s.pair_rate {
        let tat = s.pair_tat.get(to).copied().unwrap_or(now).max(now);
        let tolerance = interval * (burst - 1);
        if tat.duration_since(now) > tolerance {
            s.pair_hits += 1;
            return Some((
                429,
                error_body(
                    131_056,
                    "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                    "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
                ),
            ));
        }
        s.pair_tat.insert(to.to_owned(), tat + interval);
    }
    s.accepted.push_back(now);
    None
}

/// Decides the response (see [`decide`]) and records the exchange.
fn respond(state: &Mutex<State>, token: &str, req: &RecordedRequest) -> (u16, Value) {
    let (status, response) = decide(state, token, req);
    lock(state).exchanges.push(Exchange {
        request: req.clone(),
        status,
        response: response.clone(),
    });
    (status, response)
}

/// Decides the response the way Meta would (see the module docs).
fn decide(state: &Mutex<State>, token: &str, req: &RecordedRequest) -> (u16, Value) {
    let mut s = lock(state);
    s.requests.push(req.clone());
    let now = Instant::now();
    s.times.push(now);
    if req.body.get("status").is_none() {
        s.sends += 1;
    }
    if let Some(failure) = s.failures.pop_front() {
        return failure;
    }
    if req.body.get("status").is_none()
        && let Some(failure) = s.send_failures.pop_front()
    {
        return failure;
    }
    if req.authorization.as_deref() != Some(format!("Bearer {token}").as_str()) {
        return (401, invalid_token());
    }
    if req.method != "POST" || !is_messages_path(&req.path) {
        return (
            400,
            invalid_param("Unsupported request: only POST /{version}/{phone_number_id}/messages"),
        );
    }
    let body = &req.body;
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return (400, invalid_param("messaging_product must be whatsapp"));
    }
    if body.get("status").is_some() {
        return match (body["status"].as_str(), body.get("message_id").and_then(Value::as_str)) {
            (Some("read"), Some(_)) => (200, json!({ "success": true })),
            _ => (400, invalid_param("status must be read, with a message_id")),
        };
    }
    let Some(input) = body.get("to").or_else(|| body.get("recipient")).and_then(Value::as_str) else {
        return (400, invalid_param("The parameter to is required."));
    };
    if let Some(refused) = rate_limited(&mut s, input, now) {
        return refused;
    }
    s.next_id += 1;
    let wa_id: String = input.chars().filter(char::is_ascii_digit).collect();
    let response = json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": input, "wa_id": wa_id }],
        "messages": [{ "id": format!("wamid.FAKE{}", s.next_id) }]
    });
    (200, response)
}

async fn serve(mut stream: TcpStream, state: &Mutex<State>, token: &str) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let path = request_line.next().unwrap_or("").to_owned();
    let mut authorization = None;
    let mut content_length = 0usize;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            }
        }
    }
    while buf.len() < header_end + content_length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let raw = &buf[header_end..buf.len().min(header_end + content_length)];
    let body = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let req = RecordedRequest {
        method,
        path,
        authorization,
        body,
    };
    let (status, response) = respond(state, token, &req);
    let delay = lock(state).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // A scripted failure may be a non-JSON body (a string): send it as text/html, like a
    // proxy's error page.
    let (content_type, payload) = match &response {
        Value::String(s) => ("text/html", s.clone()),
        v => ("application/json", v.to_string()),
    };
    let reply = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        reason_phrase(status),
        payload.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Runs a fake on `addr` until `shutdown` completes, for the load scripts
/// (the `fake-graph` binary). Every `interval` in which the counts changed, it writes one line
/// `<unix ms> <requests> <sends>` to `out`, so a script can tell when the last reply
/// arrived without the fake keeping any clock of its own.
pub async fn run_standalone(
    addr: SocketAddr,
    token: &str,
    interval: Duration,
    mut out: impl std::io::Write,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let fake = start_on(addr, token).await?;
    writeln!(out, "listening {}", fake.base_url())?;
    out.flush()?;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = (0, 0);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = tick.tick() => {
                let now = fake.counts();
                if now != last {
                    last = now;
                    let ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    writeln!(out, "{ms} {} {}", now.0, now.1)?;
                    out.flush()?;
                }
            }
        }
    }
}
