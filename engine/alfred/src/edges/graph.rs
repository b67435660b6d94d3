//! The WhatsApp Graph API client: sends messages and read receipts.
//!
//! `POST {base}/{version}/{phone_number_id}/messages` with `Authorization: Bearer <token>`
//! and the JSON bodies of [`crate::edges::whatsapp::outbound`]. Failures become
//! [`SendFailure`] decisions through [`classify`] (Meta's error codes); transport errors
//! and timeouts are `Retry { code: 0, min_backoff: 1 s }`. A 2xx means *accepted*, not
//! delivered: the returned wamid correlates the later status webhooks.
//!
//! Without a token, [`Outbound::Console`] prints each message to stdout instead.
//! The token is never logged: [`GraphClient`]'s `Debug` hides it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alfred_core::event::OutMessage;
use serde_json::Value;

use crate::edges::whatsapp::errors::{SendFailure, classify};
use crate::edges::whatsapp::outbound::{Recipient, mark_read_body, message_body, reaction_body};

/// Meta's Graph API host.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// The Graph API version used unless configured otherwise.
pub const DEFAULT_VERSION: &str = "v25.0";
/// Connect timeout of [`GraphClient::new`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout of [`GraphClient::new`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest [`backoff`].
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// A message Meta accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// Meta's message id (`wamid.…`), or `console.<run>.<n>` from the console sender.
    pub wamid: String,
}

/// A Graph API client for one business phone number.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base_url: String,
    version: String,
    phone_number_id: String,
    token: String,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .field("phone_number_id", &self.phone_number_id)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn transport_failure(what: &str, e: &reqwest::Error) -> SendFailure {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "transport error"
    };
    SendFailure::Retry {
        code: 0,
        min_backoff: Duration::from_secs(1),
        reason: format!("{what}: {kind}: {e}"),
    }
}

impl GraphClient {
    /// A client with the default timeouts ([`CONNECT_TIMEOUT`], [`REQUEST_TIMEOUT`]).
    pub fn new(base_url: &str, version: &str, phone_number_id: &str, token: &str) -> Result<Self, reqwest::Error> {
        Self::with_timeouts(
            base_url,
            version,
            phone_number_id,
            token,
            CONNECT_TIMEOUT,
            REQUEST_TIMEOUT,
        )
    }

    /// A client without client-side timeouts, for tests under `tokio::time::pause`: a
    /// paused clock jumps to the next timer whenever the runtime waits for I/O, so a
    /// request timeout would fire while the fake is still answering.
    pub fn untimed(base_url: &str, version: &str, phone_number_id: &str, token: &str) -> Result<Self, reqwest::Error> {
        // No idle pool either: its reaper is a timer too.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .user_agent(concat!("alfred-home/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            version: version.trim_matches('/').to_owned(),
            phone_number_id: phone_number_id.to_owned(),
            token: token.to_owned(),
        })
    }

    /// A client with explicit connect and whole-request timeouts.
    pub fn with_timeouts(
        base_url: &str,
        version: &str,
        phone_number_id: &str,
        token: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .user_agent(concat!("alfred-home/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            version: version.trim_matches('/').to_owned(),
            phone_number_id: phone_number_id.to_owned(),
            token: token.to_owned(),
        })
    }

    /// `{base}/{version}/{phone_number_id}/messages`.
    pub fn messages_url(&self) -> String {
        format!("{}/{}/{}/messages", self.base_url, self.version, self.phone_number_id)
    }

    /// POSTs `body`; a 2xx gives its JSON body, anything else a [`SendFailure`].
    async fn post(&self, what: &str, body: &Value) -> Result<Value, SendFailure> {
        let response = self
            .http
            .post(self.messages_url())
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_failure(what, &e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport_failure(what, &e))?;
        if !status.is_success() {
            return Err(classify(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| SendFailure::Permanent {
            code: 0,
            reason: format!("{what}: HTTP {} with a body that is not JSON: {e}", status.as_u16()),
        })
    }

    /// Sends one message; `Ok` carries the wamid Meta assigned.
    pub async fn send(&self, to: &Recipient, msg: &OutMessage) -> Result<SentMessage, SendFailure> {
        self.send_body(&message_body(to, msg)).await
    }

    /// Reacts to a message (an empty emoji removes the reaction).
    pub async fn react(&self, to: &Recipient, message_id: &str, emoji: &str) -> Result<SentMessage, SendFailure> {
        self.send_body(&reaction_body(to, message_id, emoji)).await
    }

    async fn send_body(&self, body: &Value) -> Result<SentMessage, SendFailure> {
        let response = self.post("send", body).await?;
        match response.pointer("/messages/0/id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(SentMessage { wamid: id.to_owned() }),
            // Probably sent, but uncorrelatable: retrying could send it twice.
            _ => Err(SendFailure::Permanent {
                code: 0,
                reason: format!("send: 2xx response without messages[0].id: {response}"),
            }),
        }
    }

    /// Marks an inbound message as read (optionally showing "typing…").
    pub async fn mark_read(&self, wamid: &str, typing: bool) -> Result<(), SendFailure> {
        let response = self.post("mark_read", &mark_read_body(wamid, typing)).await?;
        if response.get("success").and_then(Value::as_bool) == Some(true) {
            Ok(())
        } else {
            Err(SendFailure::Permanent {
                code: 0,
                reason: format!("mark_read: 2xx response without \"success\": true: {response}"),
            })
        }
    }
}

/// Prints messages to stdout instead of sending them (no `WHATSAPP_TOKEN` configured).
///
/// Its synthetic wamids must be unique for the life of the database, not just of the
/// process: `outbox.wamid` is unique, so a second start numbering from 1 again made
/// `mark_sent` fail and stalled the member's replies. Each sender therefore takes a
/// run id (start time, process id, a per-process counter) that no other start shares.
#[derive(Debug)]
pub struct ConsoleSender {
    run: String,
    sent: AtomicU64,
}

impl Default for ConsoleSender {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSender {
    /// A console sender with a run id of its own, numbering its wamids from 1.
    pub fn new() -> Self {
        static SENDERS: AtomicU64 = AtomicU64::new(0);
        // The edge may read the wall clock; this is only a unique tag, never a time.
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let k = SENDERS.fetch_add(1, Ordering::Relaxed);
        ConsoleSender {
            run: format!("{started:x}-{:x}-{k}", std::process::id()),
            sent: AtomicU64::new(0),
        }
    }

    fn emit(&self, body: &Value) -> SentMessage {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        println!("[whatsapp console] {body}");
        SentMessage {
            wamid: format!("console.{}.{n}", self.run),
        }
    }

    /// Prints the request body `message_body` would send; returns `console.<run>.<n>`.
    pub fn send(&self, to: &Recipient, msg: &OutMessage) -> SentMessage {
        self.emit(&message_body(to, msg))
    }

    /// Prints the reaction body; returns `console.<run>.<n>`.
    pub fn react(&self, to: &Recipient, message_id: &str, emoji: &str) -> SentMessage {
        self.emit(&reaction_body(to, message_id, emoji))
    }
}

/// Where outbound messages go: Meta's Graph API, or stdout.
#[derive(Debug)]
pub enum Outbound {
    /// The real Graph API (or a fake one in tests).
    Graph(GraphClient),
    /// No token: print instead of sending.
    Console(ConsoleSender),
}

impl Outbound {
    /// [`Outbound::Graph`] against Meta with the default version and timeouts when a
    /// non-empty token is given, else [`Outbound::Console`].
    pub fn from_token(token: Option<&str>, phone_number_id: &str) -> Result<Self, reqwest::Error> {
        match token.map(str::trim) {
            Some(t) if !t.is_empty() => Ok(Self::Graph(GraphClient::new(
                DEFAULT_BASE_URL,
                DEFAULT_VERSION,
                phone_number_id,
                t,
            )?)),
            _ => Ok(Self::Console(ConsoleSender::new())),
        }
    }

    /// Sends (or prints) one message.
    pub async fn send(&self, to: &Recipient, msg: &OutMessage) -> Result<SentMessage, SendFailure> {
        match self {
            Self::Graph(g) => g.send(to, msg).await,
            Self::Console(c) => Ok(c.send(to, msg)),
        }
    }

    /// Reacts to a message (printed on the console).
    pub async fn react(&self, to: &Recipient, message_id: &str, emoji: &str) -> Result<SentMessage, SendFailure> {
        match self {
            Self::Graph(g) => g.react(to, message_id, emoji).await,
            Self::Console(c) => Ok(c.react(to, message_id, emoji)),
        }
    }

    /// Marks a message read (a no-op on the console).
    pub async fn mark_read(&self, wamid: &str, typing: bool) -> Result<(), SendFailure> {
        match self {
            Self::Graph(g) => g.mark_read(wamid, typing).await,
            Self::Console(_) => Ok(()),
        }
    }
}

/// SplitMix64: a tiny, well-mixed deterministic hash for jitter.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The delay before retry number `attempt` (0-based): `min · 2^attempt` plus a
/// deterministic jitter of 0–25 % drawn from `jitter_seed` and `attempt`, capped at
/// [`MAX_BACKOFF`]. Non-decreasing in `attempt` for a fixed seed (doubling outgrows the
/// jitter), and reproducible: the same inputs give the same delay.
pub fn backoff(attempt: u32, min: Duration, jitter_seed: u64) -> Duration {
    let cap = MAX_BACKOFF.as_millis() as u64;
    let min_ms = u64::try_from(min.as_millis()).unwrap_or(u64::MAX);
    let factor = 1u64.checked_shl(attempt).unwrap_or(u64::MAX);
    let base = min_ms.saturating_mul(factor).min(cap);
    let r = splitmix64(jitter_seed ^ splitmix64(u64::from(attempt))) >> 32; // 0..2^32
    let jitter = ((u128::from(base / 4) * u128::from(r)) >> 32) as u64;
    Duration::from_millis(base.saturating_add(jitter).min(cap))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use alfred_core::event::{Choice, Section};
    use serde_json::json;

    use super::*;
    use alfred_fake_graph::{self as fake_graph, TOKEN};

    const PHONE_ID: &str = "106540352242922";

    fn fixture(name: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/whatsapp-payloads")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("fixture is JSON")
    }

    fn client(base: &str) -> GraphClient {
        GraphClient::new(base, DEFAULT_VERSION, PHONE_ID, TOKEN).expect("client")
    }

    fn text(body: &str) -> OutMessage {
        OutMessage::Text { body: body.to_owned() }
    }

    fn phone() -> Recipient {
        Recipient::Phone("+16505551234".to_owned())
    }

    fn choice(id: &str, title: &str, description: Option<&str>) -> Choice {
        Choice {
            id: id.to_owned(),
            title: title.to_owned(),
            description: description.map(str::to_owned),
        }
    }

    fn assert_retry(r: Result<SentMessage, SendFailure>, want_code: i64) {
        match r {
            Err(SendFailure::Retry { code, min_backoff, .. }) => {
                assert_eq!(code, want_code);
                assert!(min_backoff >= Duration::from_secs(1));
            }
            other => panic!("expected Retry {want_code}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn text_send_returns_wamid_and_fake_sees_exact_body() {
        let fake = fake_graph::start().await;
        let c = client(&fake.base_url());
        let msg = text("hello");
        let sent = c.send(&phone(), &msg).await.expect("sent");
        assert_eq!(sent.wamid, "wamid.FAKE1");
        let second = c.send(&phone(), &msg).await.expect("sent");
        assert_eq!(second.wamid, "wamid.FAKE2");
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].path, format!("/v25.0/{PHONE_ID}/messages"));
        assert_eq!(
            reqs[0].authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(reqs[0].body, message_body(&phone(), &msg));
    }

    #[tokio::test]
    async fn text_body_on_the_wire_matches_meta_fixture() {
        let fake = fake_graph::start().await;
        let body = "As requested, here's the link to our latest product: https://www.meta.com/quest/quest-3/";
        client(&fake.base_url())
            .send(&phone(), &text(body))
            .await
            .expect("sent");
        assert_eq!(fake.requests()[0].body, fixture("outbound_text.json"));
    }

    #[tokio::test]
    async fn interactive_and_template_bodies_arrive_intact() {
        let fake = fake_graph::start().await;
        let c = client(&fake.base_url());
        let user = Recipient::UserId("US.13491208655302741918".to_owned());
        let msgs = [
            OutMessage::Buttons {
                body: "Dinner tonight?".to_owned(),
                buttons: vec![choice("yes", "Yes", None), choice("no", "No", None)],
                footer: Some("Alfred".to_owned()),
            },
            OutMessage::List {
                body: "Pick a chore".to_owned(),
                button: "Chores".to_owned(),
                sections: vec![Section {
                    title: Some("Today".to_owned()),
                    rows: vec![
                        choice("bins", "Bins", Some("Take the bins out")),
                        choice("dishes", "Dishes", None),
                    ],
                }],
                footer: None,
            },
            OutMessage::Template {
                name: "reminder".to_owned(),
                language: "en_GB".to_owned(),
                params: vec!["Sam".to_owned(), "dentist".to_owned()],
            },
        ];
        for (i, m) in msgs.iter().enumerate() {
            let to = if i == 1 { &user } else { &phone() };
            let sent = c.send(to, m).await.expect("sent");
            assert_eq!(sent.wamid, format!("wamid.FAKE{}", i + 1));
        }
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 3);
        for (i, m) in msgs.iter().enumerate() {
            let to = if i == 1 { user.clone() } else { phone() };
            assert_eq!(reqs[i].body, message_body(&to, m));
        }
    }

    #[tokio::test]
    async fn rate_limit_130429_is_retry() {
        let fake = fake_graph::start().await;
        fake.fail_next(1, 429, fixture("response_error_130429.json"));
        let c = client(&fake.base_url());
        assert_retry(c.send(&phone(), &text("hi")).await, 130429);
        // The script is used up: the next send goes through.
        assert_eq!(c.send(&phone(), &text("hi")).await.expect("sent").wamid, "wamid.FAKE1");
    }

    #[tokio::test]
    async fn window_closed_131047() {
        let fake = fake_graph::start().await;
        fake.fail_next(1, 400, fixture("response_error_131047.json"));
        let r = client(&fake.base_url()).send(&phone(), &text("hi")).await;
        assert!(matches!(r, Err(SendFailure::WindowClosed { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn expired_token_190_is_auth() {
        let fake = fake_graph::start().await;
        fake.fail_next(1, 401, fixture("response_error_190.json"));
        let r = client(&fake.base_url()).send(&phone(), &text("hi")).await;
        assert!(matches!(r, Err(SendFailure::Auth { code: 190, .. })), "{r:?}");
    }

    #[tokio::test]
    async fn wrong_token_is_auth_and_token_not_in_debug() {
        let fake = fake_graph::start().await;
        let c = GraphClient::new(&fake.base_url(), DEFAULT_VERSION, PHONE_ID, "s3cret-wrong").expect("client");
        let r = c.send(&phone(), &text("hi")).await;
        assert!(matches!(r, Err(SendFailure::Auth { code: 190, .. })), "{r:?}");
        let dbg = format!("{c:?} {:?}", Outbound::Graph(c.clone()));
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[tokio::test]
    async fn fake_rejects_bad_bodies_with_code_100() {
        let fake = fake_graph::start().await;
        let http = reqwest::Client::new();
        let url = format!("{}/v25.0/{PHONE_ID}/messages", fake.base_url());
        for body in [
            json!({ "messaging_product": "sms", "to": "+1" }),
            json!({ "messaging_product": "whatsapp" }),
        ] {
            let resp = http
                .post(&url)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .expect("response");
            assert_eq!(resp.status().as_u16(), 400);
            let v: Value = resp.json().await.expect("json");
            assert_eq!(v["error"]["code"], 100);
        }
        let resp = http.post(&url).json(&json!({})).send().await.expect("response");
        assert_eq!(resp.status().as_u16(), 401);
    }

    #[tokio::test]
    async fn server_error_with_html_is_retry() {
        let fake = fake_graph::start().await;
        fake.fail_next(
            1,
            500,
            Value::String("<html><body>Internal Server Error</body></html>".to_owned()),
        );
        assert_retry(client(&fake.base_url()).send(&phone(), &text("hi")).await, 0);
    }

    #[tokio::test]
    async fn connection_refused_is_retry() {
        assert_retry(client("http://127.0.0.1:1").send(&phone(), &text("hi")).await, 0);
    }

    #[tokio::test]
    async fn timeout_is_retry() {
        let fake = fake_graph::start().await;
        fake.set_delay(Duration::from_secs(2));
        let c = GraphClient::with_timeouts(
            &fake.base_url(),
            DEFAULT_VERSION,
            PHONE_ID,
            TOKEN,
            Duration::from_millis(200),
            Duration::from_millis(200),
        )
        .expect("client");
        let r = c.send(&phone(), &text("hi")).await;
        assert_retry(r.clone(), 0);
        let Err(SendFailure::Retry { reason, .. }) = r else {
            unreachable!()
        };
        assert!(reason.contains("timeout"), "{reason}");
    }

    #[tokio::test]
    async fn mark_read_ok_and_body_on_the_wire() {
        let fake = fake_graph::start().await;
        let c = client(&fake.base_url());
        let wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA=";
        c.mark_read(wamid, false).await.expect("read");
        c.mark_read(wamid, true).await.expect("read + typing");
        let reqs = fake.requests();
        assert_eq!(reqs[0].body, fixture("outbound_mark_as_read.json"));
        assert_eq!(reqs[1].body, fixture("outbound_mark_as_read_typing.json"));
    }

    #[tokio::test]
    async fn success_without_message_id_is_permanent() {
        let fake = fake_graph::start().await;
        fake.fail_next(1, 200, json!({ "messaging_product": "whatsapp" }));
        let r = client(&fake.base_url()).send(&phone(), &text("hi")).await;
        match r {
            Err(SendFailure::Permanent { reason, .. }) => assert!(reason.contains("messages[0].id"), "{reason}"),
            other => panic!("expected Permanent, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn console_outbound_numbers_its_wamids() {
        let out = Outbound::from_token(None, PHONE_ID).expect("outbound");
        assert!(matches!(out, Outbound::Console(_)));
        let first = out.send(&phone(), &text("hi")).await.expect("printed").wamid;
        let second = out.send(&phone(), &text("again")).await.expect("printed").wamid;
        let run = first.strip_suffix(".1").expect("numbered from 1");
        assert!(run.starts_with("console.") && run.len() > "console.".len(), "{first}");
        assert_eq!(second, format!("{run}.2"));
        // Another sender (another start of the process) never repeats a wamid.
        let again = Outbound::from_token(None, PHONE_ID).expect("outbound");
        let other = again.send(&phone(), &text("hi")).await.expect("printed").wamid;
        assert!(other != first && other != second, "{other} repeats {first} or {second}");
        out.mark_read("wamid.X", true).await.expect("no-op");
        assert!(matches!(
            Outbound::from_token(Some("  "), PHONE_ID).expect("outbound"),
            Outbound::Console(_)
        ));
        assert!(matches!(
            Outbound::from_token(Some("tok"), PHONE_ID).expect("outbound"),
            Outbound::Graph(_)
        ));
    }

    #[test]
    fn backoff_is_monotonic_capped_and_deterministic() {
        for seed in [0u64, 1, 42, u64::MAX] {
            for min in [
                Duration::from_millis(1),
                Duration::from_secs(1),
                Duration::from_secs(4),
                Duration::from_secs(60),
            ] {
                let delays: Vec<Duration> = (0..80).map(|a| backoff(a, min, seed)).collect();
                assert!(delays[0] >= min && delays[0] <= min + min / 4, "{:?}", delays[0]);
                for w in delays.windows(2) {
                    assert!(w[0] <= w[1], "not monotonic: {w:?}");
                }
                assert!(delays.iter().all(|d| *d <= MAX_BACKOFF));
                assert_eq!(*delays.last().expect("delays"), MAX_BACKOFF);
                let again: Vec<Duration> = (0..80).map(|a| backoff(a, min, seed)).collect();
                assert_eq!(delays, again);
            }
        }
        // The seed matters: different seeds spread the same attempt.
        let spread: std::collections::HashSet<Duration> =
            (0..16).map(|s| backoff(3, Duration::from_secs(1), s)).collect();
        assert!(spread.len() > 1);
        assert_eq!(
            backoff(0, Duration::from_secs(1), 7),
            backoff(0, Duration::from_secs(1), 7)
        );
    }
}
