//! Starting a service process (`alfred serve`, or one role): `.env` first, then the
//! logs (so `RUST_LOG` in `.env` applies), then the checked configuration, the service
//! and its listeners. Whatever stops the start is logged once, as one JSON line like
//! every other log, naming what to fix (`ALFRED_LISTEN` and the address, the database
//! file, `ALFRED_FLOWS`); the process then exits with 1.

use std::future::Future;

use crate::cli::logging::{self, Identity};
use crate::cli::serve::{Roles, ServeError, Service, bind};
use crate::config::{self, Config, ConfigError};

/// Why a service process did not start (or stopped with an error).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The environment is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The service could not be built or run.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The async runtime could not be built.
    #[error("the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs `roles` (named `role` in the logs) until `shutdown` completes. Returns the exit
/// code: 0 after a clean stop, 1 after an error (already logged).
pub fn main(role: &str, roles: Roles, shutdown: impl Future<Output = ()> + Send + 'static) -> i32 {
    let dotenv = config::load_dotenv();
    logging::init(&Identity {
        role: role.to_owned(),
        instance: config::instance_for_logs(),
        version: env!("CARGO_PKG_VERSION"),
    });
    match dotenv.map_err(StartError::from).and_then(|()| run(roles, shutdown)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("alfred cannot run: {e}");
            1
        }
    }
}

fn run(roles: Roles, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
    let config = Config::from_process_env()?;
    // Both warnings are about the webhook (unsigned POSTs, where it listens): a worker,
    // sender or scheduler accepts no webhook, so saying it there would be untrue.
    if roles.webhook {
        for warning in config.start_warnings() {
            tracing::warn!("{warning}");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async move {
        let listen = config.listen;
        let service = Service::build(config).await?;
        let listener = if roles.webhook {
            Some(bind(listen, "ALFRED_LISTEN").await?)
        } else {
            None
        };
        if roles.webhook {
            tracing::info!(%listen, embedded = service.config.is_embedded(), "Alfred is running");
        } else {
            tracing::info!(embedded = service.config.is_embedded(), "Alfred is running");
        }
        service.run(listener, roles, shutdown).await?;
        tracing::info!("Alfred stopped");
        Ok(())
    })
}
