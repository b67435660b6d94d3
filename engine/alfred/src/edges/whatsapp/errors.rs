//! What to do when the Graph API refuses a request, decided by Meta's error code
//! (Meta: branch on `code`, not on titles or HTTP status).

use std::time::Duration;

use serde_json::Value;

/// The decision for a failed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Try again later (rate limits, Meta-side trouble, timeouts).
    Retry {
        /// Meta's code (0 for transport errors / 5xx without a body).
        code: i64,
        /// Backoff floor for this failure.
        min_backoff: Duration,
        /// Why.
        reason: String,
    },
    /// Will never succeed as is: dead-letter with the reason.
    Permanent {
        /// Meta's code.
        code: i64,
        /// Why.
        reason: String,
    },
    /// 131047: the 24-hour customer-service window is closed (a template is needed).
    WindowClosed {
        /// Why.
        reason: String,
    },
    /// 190 and other auth errors: the token is invalid or expired. Stop sending and
    /// alert the operator instead of retrying every message.
    Auth {
        /// Meta's code.
        code: i64,
        /// Why.
        reason: String,
    },
}

/// Classifies an HTTP error response (status + body).
pub fn classify(http_status: u16, body: &[u8]) -> SendFailure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let code = err.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let message = err.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("");
    let details = err
        .and_then(|e| e.get("error_data"))
        .and_then(|d| d.get("details"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let reason = match (message.is_empty(), details.is_empty()) {
        (false, false) => format!("{message}: {details}"),
        (false, true) => message.to_owned(),
        _ => format!("HTTP {http_status}"),
    };
    match code {
        Some(code) => classify_code(code, http_status, reason),
        None if http_status >= 500 || http_status == 429 => SendFailure::Retry {
            code: 0,
            min_backoff: Duration::from_secs(1),
            reason,
        },
        None if http_status == 401 => SendFailure::Auth { code: 0, reason },
        None => SendFailure::Permanent { code: 0, reason },
    }
}

/// Classifies a Meta error code (also used for `failed` status webhooks).
pub fn classify_code(code: i64, http_status: u16, reason: String) -> SendFailure {
    match code {
        131047 => SendFailure::WindowClosed { reason },
        // Pair rate limit: Meta advises backing off 4^n seconds; start at 4 s.
        131056 => SendFailure::Retry {
            code,
            min_backoff: Duration::from_secs(4),
            reason,
        },
        130429 | 4 | 80007 => SendFailure::Retry {
            code,
            min_backoff: Duration::from_secs(1),
            reason,
        },
        // Spam-rate limit: a long pause, not a burst of retries.
        131048 => SendFailure::Retry {
            code,
            min_backoff: Duration::from_secs(60),
            reason,
        },
        131000..=131002 | 1 | 2 => SendFailure::Retry {
            code,
            min_backoff: Duration::from_secs(1),
            reason,
        },
        0 | 190 | 10 | 200..=299 => SendFailure::Auth { code, reason },
        _ if http_status >= 500 => SendFailure::Retry {
            code,
            min_backoff: Duration::from_secs(1),
            reason,
        },
        // 131026 undeliverable, 100 invalid parameter, 132xxx template errors, 131049
        // marketing limits, 131051 unsupported type, … : retrying cannot help.
        _ => SendFailure::Permanent { code, reason },
    }
}
