//! The service's logs: JSON lines on stdout, one object per event, each carrying the
//! process's `role`, `instance` and `version`, so lines from many processes can be told
//! apart once they are shipped to one place (Loki). Started after `.env` is read, so a
//! `RUST_LOG` there applies (default `info`). Fatal start errors go through here too:
//! one JSON line, like every other log.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Who writes the logs: added to every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `serve`, `webhook`, `worker`, `sender` or `scheduler`.
    pub role: String,
    /// `INSTANCE`.
    pub instance: String,
    /// The binary's version.
    pub version: &'static str,
}

impl Identity {
    /// The JSON members this identity adds, with a trailing comma.
    fn json_members(&self) -> String {
        let field = |k: &str, v: &str| format!("\"{k}\":{},", serde_json::Value::from(v));
        field("role", &self.role) + &field("instance", &self.instance) + &field("version", self.version)
    }
}

/// Formats events with `inner` (the JSON format) and puts the identity first.
struct WithIdentity<F> {
    inner: F,
    members: String,
}

impl<S, N, F> FormatEvent<S, N> for WithIdentity<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                writer.write_char('{')?;
                writer.write_str(&self.members)?;
                writer.write_str(rest)
            }
            None => writer.write_str(&line),
        }
    }
}

/// Starts JSON logging for the service roles (once per process).
pub fn init(identity: &Identity) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let format = WithIdentity {
        inner: tracing_subscriber::fmt::format().json().flatten_event(true),
        members: identity.json_members(),
    };
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .event_format(format)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_valid_json_members() {
        let id = Identity {
            role: "worker".into(),
            instance: "a\"b".into(),
            version: "1.2.3",
        };
        let line = format!("{{{}\"message\":\"x\"}}", id.json_members());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["role"], "worker");
        assert_eq!(v["instance"], "a\"b");
        assert_eq!(v["version"], "1.2.3");
    }
}
