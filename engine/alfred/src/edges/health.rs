//! Readiness: whether this process can do its job, i.e. its database (if it has one) and
//! its queue answer. `GET /readyz` on every listener answers from here: the webhook's
//! port and the metrics listener (`ALFRED_METRICS_LISTEN`) of every role, so Docker and
//! Kubernetes see a worker, sender or scheduler whose Redis is down as not ready
//! instead of healthy. (`/healthz` only says the process is alive.)
//!
//! A failed ping is logged at debug only: health checks poll every few seconds, and the
//! outage itself is logged once by the role loops (`roles/outage.rs`).

use crate::edges::queue::{AnyQueue, Queue as _};
use crate::edges::store::Store;

/// What `/readyz` pings.
#[derive(Clone, Debug)]
pub struct Health {
    /// The database, if the process has one.
    pub store: Option<Store>,
    /// The queue.
    pub queue: AnyQueue,
}

impl Health {
    /// `Ok` when every dependency answers; else the names of those that did not
    /// (`database`, `queue`), for the 503's body.
    pub async fn check(&self) -> Result<(), Vec<&'static str>> {
        let mut failed = Vec::new();
        if let Some(store) = &self.store {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "readyz: database ping failed");
                    failed.push("database");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "readyz: database ping task failed");
                    failed.push("database");
                }
            }
        }
        if let Err(e) = self.queue.ping().await {
            tracing::debug!(error = %e, "readyz: queue ping failed");
            failed.push("queue");
        }
        if failed.is_empty() { Ok(()) } else { Err(failed) }
    }

    /// The status and body of `GET /readyz`: 200 `ready`, or 503 naming what failed.
    pub async fn readyz(&self) -> (hyper::StatusCode, String) {
        match self.check().await {
            Ok(()) => (hyper::StatusCode::OK, "ready".to_owned()),
            Err(failed) => (
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                format!("unavailable: {}", failed.join(", ")),
            ),
        }
    }
}
