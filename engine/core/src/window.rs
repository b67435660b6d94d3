//! WhatsApp's 24-hour customer-service window: free-form messages (text, buttons,
//! lists) reach a member only within 24 hours of their last message to us; approved
//! templates go out any time.
//!
//! [`decide`] is the one place that applies the rule. The sender calls it at send time
//! (with the last inbound time from the database) and the simulator calls it on its
//! virtual clock, so `alfred test` shows what the service will do.

use chrono::{DateTime, Duration, Utc};

use crate::event::OutMessage;
/// Declared in flow files, so it lives with them; re-exported here beside the rule.
pub use crate::model::WindowPolicy;

/// How long the window stays open after the member's last inbound message.
pub const WINDOW: Duration = Duration::hours(24);

/// The outcome of [`decide`].
#[derive(Clone, Debug, PartialEq)]
pub enum WindowDecision {
    /// Send the message as it is (the window is open, or it is a template).
    Send,
    /// The window is closed: send this fallback template instead.
    SendTemplate(OutMessage),
    /// The window is closed and there is no fallback: keep it until the member writes.
    Defer,
    /// The window is closed and there is no fallback: do not send it.
    Drop,
}

impl WindowDecision {
    /// A short name for traces and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            WindowDecision::Send => "send",
            WindowDecision::SendTemplate(_) => "template",
            WindowDecision::Defer => "defer",
            WindowDecision::Drop => "drop",
        }
    }
}

/// Whether a member who last wrote at `last_inbound` can receive free-form messages at
/// `now`. Never having written means closed.
pub fn is_open(last_inbound: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_inbound.is_some_and(|t| now < t + WINDOW)
}

/// Decides how `message` goes out at `now` to a member who last wrote at
/// `last_inbound`. A fallback that is not itself a template is ignored (only templates
/// may cross a closed window), so the policy applies.
pub fn decide(
    message: &OutMessage,
    fallback: Option<&OutMessage>,
    policy: WindowPolicy,
    last_inbound: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> WindowDecision {
    if matches!(message, OutMessage::Template { .. }) || is_open(last_inbound, now) {
        return WindowDecision::Send;
    }
    match (fallback, policy) {
        (Some(t @ OutMessage::Template { .. }), _) => WindowDecision::SendTemplate(t.clone()),
        (_, WindowPolicy::Defer) => WindowDecision::Defer,
        (_, WindowPolicy::Drop) => WindowDecision::Drop,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn text() -> OutMessage {
        OutMessage::Text { body: "hi".into() }
    }

    fn template() -> OutMessage {
        OutMessage::Template {
            name: "nudge".into(),
            language: "en_US".into(),
            params: vec!["x".into()],
        }
    }

    #[test]
    fn the_window_is_open_for_exactly_24_hours_after_the_last_inbound() {
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap();
        assert!(!is_open(None, t));
        assert!(is_open(Some(t), t));
        assert!(is_open(Some(t), t + WINDOW - Duration::seconds(1)));
        assert!(!is_open(Some(t), t + WINDOW));
        let d = |f: Option<&OutMessage>, p| decide(&text(), f, p, Some(t), t + WINDOW);
        assert_eq!(
            d(Some(&template()), WindowPolicy::Drop),
            WindowDecision::SendTemplate(template())
        );
        assert_eq!(d(None, WindowPolicy::Defer), WindowDecision::Defer);
        assert_eq!(d(None, WindowPolicy::Drop), WindowDecision::Drop);
        // Only a template may be a fallback; anything else falls through to the policy.
        assert_eq!(d(Some(&text()), WindowPolicy::Drop), WindowDecision::Drop);
        // Inside the window, or a template: as is.
        assert_eq!(
            decide(&text(), None, WindowPolicy::Drop, Some(t), t),
            WindowDecision::Send
        );
        assert_eq!(
            decide(&template(), None, WindowPolicy::Drop, None, t),
            WindowDecision::Send
        );
    }
}
