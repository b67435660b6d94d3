//! [`QueueError`]: what can go wrong talking to a queue, split into retryable and permanent.
//!
//! The split is the contract the roles act on: the webhook answers **503** on a retryable
//! error (Meta redelivers, nothing answered 200 is lost) and **500** on a permanent one; a
//! worker backs off and retries the former and alerts on the latter. Errors carry the backend's
//! message but never a payload: payloads hold phone numbers and message bodies.

use std::time::Duration;

/// A boxed backend error (redis, diesel, …), kept as the `source` of a [`QueueError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from a [`Queue`](super::Queue) operation.
///
/// Use [`QueueError::is_retryable`] rather than matching variants: a new backend may map its
/// errors onto the variants differently, but the retryable/permanent split is stable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The backend could not be reached: connection refused, reset or dropped, or the server
    /// is temporarily refusing work (loading its dataset, failing over, out of memory).
    /// Retryable.
    #[error("{backend} queue unavailable: {source}")]
    Unavailable {
        /// Which backend (`"redis"`, `"sql"`).
        backend: &'static str,
        /// The underlying error.
        source: BoxError,
    },
    /// The backend did not answer within the deadline. Retryable: the command may or may not
    /// have been applied, which every caller already tolerates (pushes are deduplicated
    /// downstream by WhatsApp message id, acks are idempotent).
    #[error("{backend} queue timed out after {after:?}: {source}")]
    Timeout {
        /// Which backend (`"redis"`, `"sql"`).
        backend: &'static str,
        /// The deadline that passed.
        after: Duration,
        /// The underlying error.
        source: BoxError,
    },
    /// The backend answered with an error that retrying will not fix (wrong type at the key,
    /// authentication failure, a bug in the command). Permanent.
    #[error("{backend} queue rejected the command: {source}")]
    Backend {
        /// Which backend (`"redis"`, `"sql"`).
        backend: &'static str,
        /// The underlying error.
        source: BoxError,
    },
    /// An entry in the queue does not have the shape Alfred writes (no `payload` field, say).
    /// Permanent for that entry: the consumer should dead-letter it, not retry it.
    #[error("malformed entry {id} in stream {stream}: {reason}")]
    Malformed {
        /// The stream the entry was read from.
        stream: String,
        /// The entry's id.
        id: String,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The queue was configured wrongly (an unparsable URL, say). Permanent.
    #[error("invalid queue configuration: {0}")]
    Config(String),
}

impl QueueError {
    /// Whether trying again later may succeed (connection trouble, timeouts, a server that is
    /// busy or failing over) as opposed to a permanent failure.
    ///
    /// The webhook answers 503 exactly when this is `true`.
    pub fn is_retryable(&self) -> bool {
        matches!(self, QueueError::Unavailable { .. } | QueueError::Timeout { .. })
    }
}

/// Shorthand for a queue operation's result.
pub type QueueResult<T> = Result<T, QueueError>;
