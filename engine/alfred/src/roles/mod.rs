//! The four service roles, one room each, and what they share. A role owns a loop
//! (`run(..., shutdown)`) over a queue or a clock; it talks to the world only through
//! [`crate::edges`] and to the flows only through `alfred-core`.
//!
//! - [`webhook`]: Meta's verification and signed POSTs into `alfred-ingest`.
//! - [`worker`]: the orchestrator (ingest → engine → one transaction → outbox), with
//!   [`order`] keeping one member's messages in arrival order across workers.
//! - [`sender`]: outbox → Graph API (retries, dead letters), paced by [`pacing`].
//! - [`scheduler`]: schedule slots and durable timers → engine → outbox.
//! - [`run`]: the one path every event takes through the engine and into a commit.
//! - [`log_limit`]: repeated failures logged once per key and interval, with a count.
//! - [`outage`]: how the role loops retry and log while the database or queue is down.
//!
//! This file holds what the worker and sender share: their error type and running
//! diesel (which is synchronous) off the async threads.

pub mod log_limit;
pub mod order;
pub mod outage;
pub mod pacing;
pub mod run;
pub mod scheduler;
pub mod sender;
pub mod webhook;
pub mod worker;

use crate::edges::queue::QueueError;
use crate::edges::store::StoreError;

/// Why a role could not do its job (as opposed to a message failing in a flow or at
/// Meta, which the role records and moves on from).
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The queue failed.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(String),
}

impl RoleError {
    /// Whether the work should be left for redelivery (true) or dead-lettered.
    pub fn is_retryable(&self) -> bool {
        match self {
            RoleError::Store(e) => e.is_retryable(),
            RoleError::Queue(e) => e.is_retryable(),
            RoleError::Join(_) => true,
        }
    }
}

/// Runs a store call on the blocking pool (diesel blocks; the async threads must not).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, RoleError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(RoleError::Join(e.to_string())),
    }
}
