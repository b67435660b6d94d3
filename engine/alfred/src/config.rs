//! Configuration: read once, at startup, from environment variables (and `.env`),
//! checked in one place. Every problem is reported at once, one clear line each, so
//! a misconfigured deployment fails before it accepts a single webhook.
//!
//! The table of every variable is [`VARIABLES`]: `alfred --help` prints it, and a test
//! checks that every variable [`Config::from_lookup`] reads is in it, so the two cannot
//! drift apart. `RUST_LOG` (the log filter, default `info`) is read by the logger, which
//! starts after `.env` is read, so `.env` may set it too.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What happens with a message from someone who is not a household member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSenderPolicy {
    /// Drop it (counted and logged without personal data).
    Ignore,
    /// Send a fixed reply that reveals nothing about the household.
    Reply,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Database URL (Postgres) or SQLite path.
    pub database_url: String,
    /// Redis URL, if queues run on Redis Streams.
    pub redis_url: Option<String>,
    /// Graph API token; `None` prints replies to the console instead of sending.
    pub whatsapp_token: Option<String>,
    /// Sending phone number id.
    pub whatsapp_phone_id: Option<String>,
    /// Webhook verify token.
    pub verify_token: Option<String>,
    /// App secret for signatures; `None` only with `insecure_dev`.
    pub meta_app_secret: Option<String>,
    /// Instance name.
    pub instance: String,
    /// Flows directory.
    pub flows_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Address of the metrics-only listener, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Graph API base URL, without a trailing slash.
    pub api_base: String,
    /// Graph API version, e.g. `v25.0`.
    pub api_version: String,
    /// Accept unsigned webhooks (development only).
    pub insecure_dev: bool,
    /// Unknown-sender policy.
    pub unknown_senders: UnknownSenderPolicy,
    /// What a non-member is told under [`UnknownSenderPolicy::Reply`].
    pub unknown_sender_reply: String,
    /// Global send rate of this process's sender, messages per second.
    pub send_rate: u32,
    /// Worker tasks in this process (`ALFRED_WORKER_TASKS`, default 4).
    pub worker_tasks: u32,
    /// Sender tasks in this process (`ALFRED_SENDER_TASKS`, default 1).
    pub sender_tasks: u32,
    /// `ALFRED_PACING=off`: no pair-rate or global pacing. Only for load tests against the
    /// fake Graph API (WhatsApp itself would refuse such a rate); warned about at start.
    pub pacing_off: bool,
}

/// The default reply to a non-member: says what this number is, and nothing about who
/// lives in the household.
pub const DEFAULT_UNKNOWN_SENDER_REPLY: &str =
    "Hello! This number is a private family assistant, so it cannot help you. Sorry.";

/// One environment variable: its name, what it means, and its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name.
    pub name: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// What applies when it is unset.
    pub default: &'static str,
}

const fn var(name: &'static str, meaning: &'static str, default: &'static str) -> Variable {
    Variable { name, meaning, default }
}

/// Every environment variable Alfred reads: the one table (`--help` prints it).
pub const VARIABLES: &[Variable] = &[
    var(
        "DATABASE_URL",
        "postgres://… for scale-out; a path or sqlite://PATH",
        "sqlite://data/alfred.db (embedded)",
    ),
    var(
        "REDIS_URL",
        "redis://…: queues on Redis Streams",
        "unset: queues in the database",
    ),
    var(
        "WHATSAPP_TOKEN",
        "Graph API access token (system user)",
        "unset: replies are printed, not sent",
    ),
    var(
        "WHATSAPP_PHONE_ID",
        "the business phone number id to send from",
        "required with a token",
    ),
    var(
        "VERIFY_TOKEN",
        "the webhook verify token typed into Meta's dashboard",
        "unset: every handshake is refused",
    ),
    var(
        "META_APP_SECRET",
        "app secret that signs webhooks (X-Hub-Signature-256)",
        "required unless ALFRED_INSECURE_DEV=1",
    ),
    var(
        "INSTANCE",
        "this process's stable name (queue consumers, claims, logs)",
        "alfred-1",
    ),
    var("ALFRED_FLOWS", "flows directory", "flows"),
    var(
        "ALFRED_LISTEN",
        "webhook listen address (also /metrics unless ALFRED_METRICS_LISTEN is set)",
        "0.0.0.0:8080; 127.0.0.1:8080 with ALFRED_INSECURE_DEV=1",
    ),
    var(
        "ALFRED_METRICS_LISTEN",
        "address serving /metrics, /healthz and /readyz for any role; `off`: none",
        "unset: none",
    ),
    var("WHATSAPP_API_BASE", "Graph API base URL", "https://graph.facebook.com"),
    var("WHATSAPP_API_VERSION", "Graph API version", "v25.0"),
    var(
        "ALFRED_INSECURE_DEV",
        "1: accept unsigned webhooks (development only; warned on every start)",
        "0",
    ),
    var(
        "ALFRED_UNKNOWN_SENDERS",
        "`ignore` or `reply` to non-members (a fixed reply, no household data)",
        "ignore",
    ),
    var(
        "ALFRED_UNKNOWN_SENDER_REPLY",
        "what a non-member is told with `reply` (at most 4096 characters)",
        "a fixed polite refusal",
    ),
    var(
        "ALFRED_SEND_RATE",
        "messages per second this process may send (Meta: 80 per number; split it across sender processes)",
        "80",
    ),
    var("ALFRED_WORKER_TASKS", "worker tasks in this process, 1 to 64", "4"),
    var("ALFRED_SENDER_TASKS", "sender tasks in this process, 1 to 64", "1"),
    var(
        "ALFRED_PACING",
        "`on`, or `off` (no rate limits: load tests only, WhatsApp itself would refuse)",
        "on",
    ),
    var("RUST_LOG", "log filter (read by the logger, also from .env)", "info"),
];

/// [`VARIABLES`] as the text `--help` ends with.
pub fn help_table() -> String {
    let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut out = String::from("Environment variables (also read from .env in the working directory):\n");
    for v in VARIABLES {
        out.push_str(&format!(
            "  {:width$}  {} [default: {}]\n",
            v.name, v.meaning, v.default
        ));
    }
    out
}

/// Reads `.env` into the process environment (variables already set win). Called before
/// logging starts, so `RUST_LOG` in `.env` is honoured. A missing `.env` is normal; a
/// malformed one is a configuration error.
pub fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::dotenv() {
        Err(e) if !e.not_found() => Err(ConfigError(vec![format!(".env: {e}")])),
        _ => Ok(()),
    }
}

/// This process's `INSTANCE` for its log lines, before (or without) a checked
/// configuration: a bad value is reported by [`Config::from_process_env`].
pub fn instance_for_logs() -> String {
    std::env::var("INSTANCE")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_INSTANCE.to_owned())
}

/// The instance name unless `INSTANCE` says otherwise.
pub const DEFAULT_INSTANCE: &str = "alfred-1";

/// The embedded database (one SQLite file) unless `DATABASE_URL` says otherwise.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/alfred.db";
/// Worker tasks per process unless `ALFRED_WORKER_TASKS` says otherwise.
pub const DEFAULT_WORKER_TASKS: u32 = 4;
/// Meta's default throughput per business number (messages per second): the sender's
/// global rate unless `ALFRED_SEND_RATE` says otherwise.
pub const DEFAULT_SEND_RATE: u32 = 80;

/// Sender tasks per process unless `ALFRED_SENDER_TASKS` says otherwise.
pub const DEFAULT_SENDER_TASKS: u32 = 1;

/// The webhook's listen address unless `ALFRED_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: ([u8; 4], u16) = ([0, 0, 0, 0], 8080);
/// The default under `ALFRED_INSECURE_DEV=1`: loopback only, since anyone who can reach
/// the port could post as any family member.
pub const DEFAULT_DEV_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 8080);

/// Everything wrong with the environment, one problem per item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_process_env() -> Result<Config, ConfigError> {
        load_dotenv()?;
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the configuration from any variable lookup (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| var(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut errors = Vec::new();

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let is_pg = database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !is_pg && database_url.contains("://") && !database_url.starts_with("sqlite://") {
            errors.push(format!(
                "DATABASE_URL: `{}` is neither postgres://… nor a SQLite path",
                scheme_of(&database_url)
            ));
        }
        let redis_url = get("REDIS_URL");
        if let Some(r) = &redis_url
            && !(r.starts_with("redis://") || r.starts_with("rediss://") || r.starts_with("unix://"))
        {
            errors.push("REDIS_URL: must start with redis://, rediss:// or unix://".to_owned());
        }
        let whatsapp_token = get("WHATSAPP_TOKEN");
        let whatsapp_phone_id = get("WHATSAPP_PHONE_ID");
        if whatsapp_token.is_some() && whatsapp_phone_id.is_none() {
            errors
                .push("WHATSAPP_PHONE_ID: required when WHATSAPP_TOKEN is set (the number id to send from)".to_owned());
        }
        if let Some(p) = &whatsapp_phone_id
            && !p.chars().all(|c| c.is_ascii_digit())
        {
            errors.push("WHATSAPP_PHONE_ID: must be the numeric phone number id from Meta's dashboard".to_owned());
        }
        let insecure_dev = match get("ALFRED_INSECURE_DEV").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(_) => {
                errors.push("ALFRED_INSECURE_DEV: use 1 or 0".to_owned());
                false
            }
        };
        let meta_app_secret = get("META_APP_SECRET");
        if meta_app_secret.is_none() && !insecure_dev {
            errors.push(
                "META_APP_SECRET: required to check webhook signatures (set ALFRED_INSECURE_DEV=1 only for local development)"
                    .to_owned(),
            );
        }
        // Unsigned webhooks are accepted in insecure development mode: then only this
        // machine may post by default, never the whole network.
        let default_listen = if insecure_dev {
            DEFAULT_DEV_LISTEN
        } else {
            DEFAULT_LISTEN
        };
        let listen = match get("ALFRED_LISTEN").map(|v| v.parse::<SocketAddr>()) {
            None => SocketAddr::from(default_listen),
            Some(Ok(a)) => a,
            Some(Err(_)) => {
                errors.push("ALFRED_LISTEN: must be host:port, e.g. 0.0.0.0:8080".to_owned());
                SocketAddr::from(default_listen)
            }
        };
        let metrics_listen = match get("ALFRED_METRICS_LISTEN").as_deref() {
            None | Some("off") => None,
            Some(v) => match v.parse::<SocketAddr>() {
                Ok(a) if a == listen => {
                    errors.push(
                        "ALFRED_METRICS_LISTEN: must differ from ALFRED_LISTEN (the webhook server already serves /metrics)"
                            .to_owned(),
                    );
                    None
                }
                Ok(a) => Some(a),
                Err(_) => {
                    errors.push("ALFRED_METRICS_LISTEN: must be host:port, e.g. 0.0.0.0:9091, or `off`".to_owned());
                    None
                }
            },
        };
        let api_base = get("WHATSAPP_API_BASE").unwrap_or_else(|| "https://graph.facebook.com".to_owned());
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            errors.push("WHATSAPP_API_BASE: must be an http(s) URL".to_owned());
        }
        let api_version = get("WHATSAPP_API_VERSION").unwrap_or_else(|| "v25.0".to_owned());
        let version_ok = api_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !version_ok {
            errors.push("WHATSAPP_API_VERSION: must look like v25.0".to_owned());
        }
        let unknown_senders = match get("ALFRED_UNKNOWN_SENDERS").as_deref() {
            None | Some("ignore") => UnknownSenderPolicy::Ignore,
            Some("reply") => UnknownSenderPolicy::Reply,
            Some(_) => {
                errors.push("ALFRED_UNKNOWN_SENDERS: use `ignore` or `reply`".to_owned());
                UnknownSenderPolicy::Ignore
            }
        };
        let unknown_sender_reply =
            get("ALFRED_UNKNOWN_SENDER_REPLY").unwrap_or_else(|| DEFAULT_UNKNOWN_SENDER_REPLY.to_owned());
        if unknown_sender_reply.chars().count() > 4096 {
            errors.push("ALFRED_UNKNOWN_SENDER_REPLY: at most 4096 characters (WhatsApp's text limit)".to_owned());
        }
        let send_rate = match get("ALFRED_SEND_RATE").map(|v| v.parse::<u32>()) {
            None => DEFAULT_SEND_RATE,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            Some(_) => {
                errors.push(
                    "ALFRED_SEND_RATE: a whole number of messages per second from 1 to 1000 (Meta's default limit is 80 per number)"
                        .to_owned(),
                );
                DEFAULT_SEND_RATE
            }
        };
        let worker_tasks = match get("ALFRED_WORKER_TASKS").map(|v| v.parse::<u32>()) {
            None => DEFAULT_WORKER_TASKS,
            Some(Ok(n)) if (1..=64).contains(&n) => n,
            Some(_) => {
                errors.push("ALFRED_WORKER_TASKS: a whole number of worker tasks from 1 to 64".to_owned());
                DEFAULT_WORKER_TASKS
            }
        };
        let sender_tasks = match get("ALFRED_SENDER_TASKS").map(|v| v.parse::<u32>()) {
            None => DEFAULT_SENDER_TASKS,
            Some(Ok(n)) if (1..=64).contains(&n) => n,
            Some(_) => {
                errors.push("ALFRED_SENDER_TASKS: a whole number of sender tasks from 1 to 64".to_owned());
                DEFAULT_SENDER_TASKS
            }
        };
        let pacing_off = match get("ALFRED_PACING").as_deref() {
            None | Some("on") => false,
            Some("off") => true,
            Some(_) => {
                errors.push("ALFRED_PACING: `on` (default) or `off` (load tests against a fake API only)".to_owned());
                false
            }
        };
        let instance = get("INSTANCE").unwrap_or_else(|| DEFAULT_INSTANCE.to_owned());
        if !instance
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            errors.push("INSTANCE: letters, digits, `-`, `_` and `.` only (it names queue consumers)".to_owned());
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Config {
            database_url,
            redis_url,
            whatsapp_token,
            whatsapp_phone_id,
            verify_token: get("VERIFY_TOKEN"),
            meta_app_secret,
            instance,
            flows_dir: PathBuf::from(get("ALFRED_FLOWS").unwrap_or_else(|| "flows".to_owned())),
            listen,
            metrics_listen,
            api_base: api_base.trim_end_matches('/').to_owned(),
            api_version,
            insecure_dev,
            unknown_senders,
            unknown_sender_reply,
            send_rate,
            worker_tasks,
            sender_tasks,
            pacing_off,
        })
    }

    /// What the operator must hear on every start: settings that are allowed but unsafe.
    /// One line each, naming the variable.
    pub fn start_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.insecure_dev && self.meta_app_secret.is_none() {
            warnings.push(
                "ALFRED_INSECURE_DEV=1 without META_APP_SECRET: webhook signatures are NOT checked; never use this in production"
                    .to_owned(),
            );
        }
        if self.insecure_dev && !self.listen.ip().is_loopback() {
            warnings.push(format!(
                "ALFRED_LISTEN={} with ALFRED_INSECURE_DEV=1: development mode is reachable beyond this machine",
                self.listen
            ));
        }
        warnings
    }

    /// Where the database is, for an error message an operator can act on: the file for
    /// SQLite, host and database for Postgres (never a password).
    pub fn database_location(&self) -> String {
        if !self.is_embedded() {
            let rest = self.database_url.split_once("://").map_or("", |(_, r)| r);
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            return format!("{}://{host}", scheme_of(&self.database_url));
        }
        let path = self
            .database_url
            .strip_prefix("sqlite://")
            .unwrap_or(&self.database_url);
        match std::path::Path::new(path).canonicalize() {
            Ok(full) => full.display().to_string(),
            Err(_) => path.to_owned(),
        }
    }

    /// Whether this is the embedded default (SQLite, no servers).
    pub fn is_embedded(&self) -> bool {
        !(self.database_url.starts_with("postgres://") || self.database_url.starts_with("postgresql://"))
    }
}

/// Only the scheme of a URL, so credentials never reach a log or an error message.
fn scheme_of(url: &str) -> &str {
    url.split("://").next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_embedded_default_needs_only_a_secret() {
        let c = cfg(&[("META_APP_SECRET", "s")]).unwrap();
        assert!(c.is_embedded());
        assert_eq!(c.database_url, "sqlite://data/alfred.db");
        assert_eq!(c.redis_url, None);
        assert_eq!(c.whatsapp_token, None);
        assert_eq!(c.api_base, "https://graph.facebook.com");
        assert_eq!(c.api_version, "v25.0");
        assert_eq!(c.unknown_senders, UnknownSenderPolicy::Ignore);
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.send_rate, 80);
        assert_eq!(c.worker_tasks, DEFAULT_WORKER_TASKS);
    }

    #[test]
    fn pacing_is_on_unless_explicitly_off() {
        assert!(!cfg(&[("META_APP_SECRET", "s")]).unwrap().pacing_off);
        assert!(
            cfg(&[("META_APP_SECRET", "s"), ("ALFRED_PACING", "off")])
                .unwrap()
                .pacing_off
        );
        let e = cfg(&[("META_APP_SECRET", "s"), ("ALFRED_PACING", "fast")]).unwrap_err();
        assert!(e.0[0].starts_with("ALFRED_PACING"), "{e}");
    }

    #[test]
    fn worker_tasks_are_a_small_whole_number() {
        let ok = cfg(&[("META_APP_SECRET", "s"), ("ALFRED_WORKER_TASKS", "8")]).unwrap();
        assert_eq!(ok.worker_tasks, 8);
        for bad in ["0", "65", "-1", "many"] {
            let e = cfg(&[("META_APP_SECRET", "s"), ("ALFRED_WORKER_TASKS", bad)]).unwrap_err();
            assert_eq!(e.0.len(), 1, "{bad}: {e}");
            assert!(e.0[0].starts_with("ALFRED_WORKER_TASKS"), "{bad}: {e}");
            let e = cfg(&[("META_APP_SECRET", "s"), ("ALFRED_SENDER_TASKS", bad)]).unwrap_err();
            assert!(e.0[0].starts_with("ALFRED_SENDER_TASKS"), "{bad}: {e}");
        }
        assert_eq!(
            cfg(&[("META_APP_SECRET", "s")]).unwrap().sender_tasks,
            DEFAULT_SENDER_TASKS
        );
    }

    #[test]
    fn the_metrics_listener_is_optional_and_must_not_clash_with_the_webhook() {
        let with = |v: &str| cfg(&[("META_APP_SECRET", "s"), ("ALFRED_METRICS_LISTEN", v)]);
        assert_eq!(with("off").unwrap().metrics_listen, None);
        assert_eq!(
            with("0.0.0.0:9091").unwrap().metrics_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 9091)))
        );
        let e = with("0.0.0.0:8080").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].starts_with("ALFRED_METRICS_LISTEN: must differ"), "{e}");
    }

    #[test]
    fn the_send_rate_is_a_whole_number_of_messages_per_second() {
        let ok = cfg(&[("META_APP_SECRET", "s"), ("ALFRED_SEND_RATE", "20")]).unwrap();
        assert_eq!(ok.send_rate, 20);
        for bad in ["0", "-5", "2.5", "fast", "1001"] {
            let e = cfg(&[("META_APP_SECRET", "s"), ("ALFRED_SEND_RATE", bad)]).unwrap_err();
            assert_eq!(e.0.len(), 1, "{bad}: {e}");
            assert!(e.0[0].starts_with("ALFRED_SEND_RATE: a whole number"), "{bad}: {e}");
        }
    }

    #[test]
    fn no_secret_is_refused_unless_insecure_dev_is_explicit() {
        let e = cfg(&[]).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].starts_with("META_APP_SECRET"));
        assert!(cfg(&[("ALFRED_INSECURE_DEV", "1")]).unwrap().insecure_dev);
    }

    #[test]
    fn every_problem_is_reported_at_once_without_secrets() {
        let e = cfg(&[
            ("DATABASE_URL", "mysql://user:hunter2@db/x"),
            ("REDIS_URL", "http://x"),
            ("WHATSAPP_TOKEN", "t"),
            ("ALFRED_LISTEN", "nowhere"),
            ("ALFRED_METRICS_LISTEN", "9091"),
            ("WHATSAPP_API_VERSION", "25"),
            ("ALFRED_UNKNOWN_SENDERS", "shout"),
            ("INSTANCE", "a b"),
            ("ALFRED_SEND_RATE", "lots"),
        ])
        .unwrap_err();
        let text = e.to_string();
        for var in [
            "DATABASE_URL",
            "REDIS_URL",
            "WHATSAPP_PHONE_ID",
            "META_APP_SECRET",
            "ALFRED_LISTEN",
            "ALFRED_METRICS_LISTEN",
            "WHATSAPP_API_VERSION",
            "ALFRED_UNKNOWN_SENDERS",
            "INSTANCE",
            "ALFRED_SEND_RATE",
        ] {
            assert!(text.contains(var), "{var} missing from:\n{text}");
        }
        assert!(!text.contains("hunter2"), "a password leaked into:\n{text}");
    }

    #[test]
    fn insecure_dev_listens_on_loopback_unless_told_otherwise() {
        let dev = cfg(&[("ALFRED_INSECURE_DEV", "1")]).unwrap();
        assert_eq!(dev.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(dev.start_warnings().len(), 1, "{:?}", dev.start_warnings());
        assert!(dev.start_warnings()[0].contains("NOT checked"));
        // Production keeps listening on every interface (Meta must reach it).
        let prod = cfg(&[("META_APP_SECRET", "s")]).unwrap();
        assert_eq!(prod.listen, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert!(prod.start_warnings().is_empty());
        // An explicit address elsewhere is allowed, and warned about on every start.
        let open = cfg(&[("ALFRED_INSECURE_DEV", "1"), ("ALFRED_LISTEN", "0.0.0.0:9000")]).unwrap();
        assert_eq!(open.listen, SocketAddr::from(([0, 0, 0, 0], 9000)));
        let w = open.start_warnings();
        assert!(w.iter().any(|l| l.starts_with("ALFRED_LISTEN=0.0.0.0:9000")), "{w:?}");
        let local = cfg(&[("ALFRED_INSECURE_DEV", "1"), ("ALFRED_LISTEN", "127.0.0.1:9000")]).unwrap();
        assert!(!local.start_warnings().iter().any(|l| l.contains("ALFRED_LISTEN")));
    }

    #[test]
    fn a_set_secret_means_signatures_are_checked_even_in_dev_mode() {
        let c = cfg(&[("ALFRED_INSECURE_DEV", "1"), ("META_APP_SECRET", "s")]).unwrap();
        assert!(c.start_warnings().is_empty(), "{:?}", c.start_warnings());
    }

    #[test]
    fn the_table_lists_every_variable_the_configuration_reads() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        // A valid environment, so every variable is read (some only once the checks pass).
        let c = Config::from_lookup(|k| {
            asked.borrow_mut().insert(k.to_owned());
            (k == "ALFRED_INSECURE_DEV").then(|| "1".to_owned())
        });
        assert!(c.is_ok(), "{c:?}");
        let table: std::collections::BTreeSet<String> = VARIABLES.iter().map(|v| v.name.to_owned()).collect();
        let asked = asked.into_inner();
        let missing: Vec<_> = asked.difference(&table).collect();
        assert!(missing.is_empty(), "read but not in VARIABLES: {missing:?}");
        let unread: Vec<_> = table.difference(&asked).collect();
        assert_eq!(unread, ["RUST_LOG"], "in VARIABLES but never read");
        for name in [
            "ALFRED_WORKER_TASKS",
            "ALFRED_SENDER_TASKS",
            "ALFRED_PACING",
            "ALFRED_UNKNOWN_SENDER_REPLY",
        ] {
            assert!(help_table().contains(name), "{name} missing from --help");
        }
    }

    #[test]
    fn the_database_location_names_the_file_or_host_never_a_password() {
        let c = cfg(&[
            ("META_APP_SECRET", "s"),
            ("DATABASE_URL", "sqlite:///nowhere/alfred.db"),
        ])
        .unwrap();
        assert_eq!(c.database_location(), "/nowhere/alfred.db");
        let c = cfg(&[
            ("META_APP_SECRET", "s"),
            ("DATABASE_URL", "postgres://alfred:hunter2@db:5432/alfred"),
        ])
        .unwrap();
        assert_eq!(c.database_location(), "postgres://db:5432/alfred");
    }

    #[test]
    fn scale_out_settings() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://alfred@db/alfred"),
            ("REDIS_URL", "redis://cache:6379/0"),
            ("WHATSAPP_TOKEN", "t"),
            ("WHATSAPP_PHONE_ID", "106540352242922"),
            ("META_APP_SECRET", "s"),
            ("WHATSAPP_API_BASE", "http://127.0.0.1:9999/"),
        ])
        .unwrap();
        assert!(!c.is_embedded());
        assert_eq!(c.api_base, "http://127.0.0.1:9999");
    }
}
