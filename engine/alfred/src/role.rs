//! What the worker and sender roles share: their error type and running diesel (which
//! is synchronous) off the async threads.

use crate::queue::QueueError;
use crate::store::StoreError;

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
