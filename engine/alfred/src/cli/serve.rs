//! Running the roles: `alfred serve` runs all of them in one process; `alfred webhook`,
//! `alfred worker`, `alfred sender` and `alfred scheduler` run one each (several processes of each may run
//! against the same Postgres and Redis).
//!
//! Everything is built once from the checked [`Config`]; a flow set with errors is
//! never loaded (the process refuses to start and prints the diagnostics).

use std::sync::Arc;
use std::time::Duration;

use alfred_core::flow::FlowSet;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::flowdir::{FlowDir, LoadError};
use crate::config::Config;
use crate::edges::graph::{ConsoleSender, GraphClient, Outbound};
use crate::edges::health::Health;
use crate::edges::metrics::{DeadLetterStream, Metrics};
use crate::edges::queue::redis::{RedisQueue, RedisQueueConfig};
use crate::edges::queue::sql::{SqlQueue, SqlQueueConfig};
use crate::edges::queue::{AnyQueue, Consumer, ConsumerConfig, SENDER_GROUP, StreamNames, WORKER_GROUP};
use crate::edges::store::Store;
use crate::roles::outage::Outage;
use crate::roles::pacing::Pacing;
use crate::roles::scheduler::{Scheduler, SchedulerConfig, owner_name};
use crate::roles::sender::Sender;
use crate::roles::webhook::{self, WebhookState};
use crate::roles::worker::Worker;

/// Why the service could not start. Each message names what to fix (the setting, the
/// path or the address) and carries its cause once: it is logged as one line.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error("database {location} (DATABASE_URL): {source}")]
    Store {
        /// The file, or the Postgres host and database (never a password).
        location: String,
        /// Why.
        source: crate::edges::store::StoreError,
    },
    /// The queue could not be set up.
    #[error("queue (REDIS_URL): {0}")]
    Queue(#[from] crate::edges::queue::QueueError),
    /// The flows have errors (the rendered diagnostics follow).
    #[error("the flows in {dir} (ALFRED_FLOWS) have errors; the service does not start with them:\n{report}")]
    Flows {
        /// Flows directory.
        dir: String,
        /// Rendered diagnostics.
        report: String,
    },
    /// The flows directory could not be read.
    #[error("flows (ALFRED_FLOWS): {0}")]
    FlowDir(#[from] crate::cli::flowdir::FlowDirError),
    /// The HTTP client could not be built.
    #[error("graph client: {0}")]
    Http(#[from] reqwest::Error),
    /// An address could not be bound.
    #[error("cannot listen on {addr} ({setting}): {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The variable that sets it.
        setting: &'static str,
        /// Why (in use, not permitted, not an address of this machine).
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Binds `addr`, set by `setting`; the error names both.
pub async fn bind(addr: std::net::SocketAddr, setting: &'static str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, setting, source })
}

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The webhook (HTTP).
    pub webhook: bool,
    /// The worker (ingest → engine → outbox).
    pub worker: bool,
    /// The sender (outbox → Graph API).
    pub sender: bool,
    /// The scheduler (schedule slots and timers → engine → outbox).
    pub scheduler: bool,
}

impl Roles {
    /// Every role (`alfred serve`).
    pub const ALL: Roles = Roles {
        webhook: true,
        worker: true,
        sender: true,
        scheduler: true,
    };
}

/// The shared parts of every role.
pub struct Service {
    /// The configuration.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// The queues.
    pub queue: AnyQueue,
    /// Stream names.
    pub streams: StreamNames,
    /// The checked flows.
    pub flows: Arc<FlowSet>,
    /// Where messages go.
    pub outbound: Arc<Outbound>,
    /// The process's metrics: the roles count into it, `/metrics` renders it.
    pub metrics: Arc<Metrics>,
    /// The clock every role reads: the wall clock, or a virtual one in tests (so a
    /// test can run the real service through 07:00 without waiting for it).
    pub clock: Clock,
}

/// A shared source of "now".
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>;

/// Loads and checks the flows; errors become [`ServeError::Flows`] with the report.
pub fn load_flows(dir: &std::path::Path) -> Result<FlowSet, ServeError> {
    match FlowDir::load_checked(dir) {
        Ok((_, flows)) => Ok(flows),
        Err(LoadError::Read(e)) => Err(e.into()),
        Err(LoadError::Flows { dir, report }) => Err(ServeError::Flows { dir, report }),
    }
}

impl Service {
    /// The sender's pacing from the configuration.
    fn pacing(&self) -> Pacing {
        if !self.config.pacing_off {
            return Pacing::new(self.config.instance.clone(), self.config.send_rate);
        }
        tracing::warn!("ALFRED_PACING=off: no rate limits; only for load tests against a fake Graph API");
        Pacing::off(self.config.instance.clone())
    }

    /// Opens and migrates the database, sets up the queue, loads the flows and the
    /// Graph client.
    pub async fn build(config: Config) -> Result<Service, ServeError> {
        let url = config.database_url.clone();
        let store = tokio::task::spawn_blocking(move || -> Result<Store, crate::edges::store::StoreError> {
            let store = Store::open(&url)?;
            store.migrate()?;
            Ok(store)
        })
        .await
        .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?
        .map_err(|source| ServeError::Store {
            location: config.database_location(),
            source,
        })?;
        let queue = match &config.redis_url {
            Some(url) => AnyQueue::from(RedisQueue::new(RedisQueueConfig::new(url.clone()))?),
            None => AnyQueue::from(SqlQueue::new(store.clone(), SqlQueueConfig::default())),
        };
        let flows = Arc::new(load_flows(&config.flows_dir)?);
        let outbound = match (&config.whatsapp_token, &config.whatsapp_phone_id) {
            (Some(token), Some(phone)) => {
                Outbound::Graph(GraphClient::new(&config.api_base, &config.api_version, phone, token)?)
            }
            // No token: print replies, so a newcomer sees Alfred answer at once.
            _ => Outbound::Console(ConsoleSender::new()),
        };
        Ok(Service {
            config,
            store,
            queue,
            streams: StreamNames::default(),
            flows,
            outbound: Arc::new(outbound),
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(Utc::now),
        })
    }

    /// Runs the chosen roles until `shutdown` completes. The webhook listens on
    /// `listener` (bind it yourself; tests use `127.0.0.1:0`); the metrics-only listener,
    /// if `ALFRED_METRICS_LISTEN` is set, is bound here.
    pub async fn run(
        &self,
        listener: Option<TcpListener>,
        roles: Roles,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let metrics_listener = match self.config.metrics_listen {
            Some(addr) => Some(bind(addr, "ALFRED_METRICS_LISTEN").await?),
            None => None,
        };
        self.run_with_listeners(listener, metrics_listener, roles, shutdown)
            .await
    }

    /// [`run`](Self::run) with the metrics-only listener bound by the caller (serving
    /// `/metrics` and `/healthz`; tests bind `127.0.0.1:0`).
    pub async fn run_with_listeners(
        &self,
        listener: Option<TcpListener>,
        metrics_listener: Option<TcpListener>,
        roles: Roles,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let public_metrics = metrics_listener.is_none();
        let stop = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        // Each role loop reports dependency failures here: one WARN when an outage
        // starts, one line when it ends, whatever the number of tasks.
        let outage = Outage::default();
        let health = Health {
            store: Some(self.store.clone()),
            queue: self.queue.clone(),
        };
        if let Some(listener) = metrics_listener {
            let metrics = self.metrics.clone();
            let (token, health) = (stop.clone(), health.clone());
            tasks.spawn(async move {
                let stopped = async move { token.cancelled().await };
                if let Err(e) = crate::edges::metrics::serve(listener, metrics, health, stopped).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            });
        }
        if roles.webhook
            && let Some(listener) = listener
        {
            let state = Arc::new(WebhookState {
                queue: self.queue.clone(),
                ingest_stream: self.streams.ingest.clone(),
                app_secret: self.config.meta_app_secret.clone().map(String::into_bytes),
                verify_token: self.config.verify_token.clone(),
                store: Some(self.store.clone()),
                metrics: Some(self.metrics.clone()),
                public_metrics,
                refusal_log: Default::default(),
            });
            let token = stop.clone();
            tasks.spawn(async move {
                if let Err(e) = webhook::run(listener, state, async move { token.cancelled().await }).await {
                    tracing::error!(error = %e, "webhook stopped");
                }
            });
        }
        let clock = self.clock.clone();
        if roles.worker {
            // Several worker tasks per process: while one waits on the database, the
            // others work. Safe because each member's messages stay in arrival order and
            // commits are optimistic (see docs/service.md). Task 0 keeps the plain
            // instance name, so a restarted process re-reads exactly what it held.
            let counters = self.metrics.worker_counters();
            let progress = Arc::new(tokio::sync::Notify::new());
            for i in 0..self.config.worker_tasks {
                let worker = Worker {
                    store: self.store.clone(),
                    queue: self.queue.clone(),
                    flows: self.flows.clone(),
                    outbox_stream: self.streams.outbox.clone(),
                    unknown_senders: self.config.unknown_senders,
                    unknown_sender_reply: self.config.unknown_sender_reply.clone(),
                    clock: clock.clone(),
                    hold_back: crate::roles::order::HOLD_BACK,
                    progress: progress.clone(),
                    counters: counters.clone(),
                };
                let name = match i {
                    0 => self.config.instance.clone(),
                    i => format!("{}-w{i}", self.config.instance),
                };
                let mut cfg = ConsumerConfig::new(self.streams.ingest.clone(), WORKER_GROUP, name);
                cfg.block = Duration::from_secs(1);
                let consumer = Consumer::new(self.queue.clone(), cfg)
                    .count_dead_letters(self.metrics.dead_letters(DeadLetterStream::Ingest));
                let (token, outage) = (stop.clone(), outage.clone());
                tasks.spawn(async move {
                    worker
                        .run(consumer, async move { token.cancelled().await }, &outage)
                        .await;
                });
            }
        }
        if roles.scheduler {
            let scheduler = Scheduler {
                store: self.store.clone(),
                queue: self.queue.clone(),
                flows: self.flows.clone(),
                outbox_stream: self.streams.outbox.clone(),
                owner: owner_name(&self.config.instance),
                clock: clock.clone(),
                config: SchedulerConfig::default(),
            };
            let (token, outage) = (stop.clone(), outage.clone());
            tasks.spawn(async move { scheduler.run(async move { token.cancelled().await }, &outage).await });
        }
        if roles.sender {
            let sender = Sender {
                store: self.store.clone(),
                queue: self.queue.clone(),
                outbound: self.outbound.clone(),
                flows: self.flows.clone(),
                outbox_stream: self.streams.outbox.clone(),
                clock,
                counters: self.metrics.sender_counters(),
                pacing: Arc::new(self.pacing()),
            };
            let sender = Arc::new(sender);
            // The sweep runs beside the send loop, never raced against it: dropping a
            // `run_once` that had already leased entries (a `select!` on a sweep tick
            // would) leaves them stuck until their lease runs out.
            let (sweeper, token, sweep_outage) = (sender.clone(), stop.clone(), outage.clone());
            tasks.spawn(async move {
                let mut sweep = tokio::time::interval(Duration::from_secs(5));
                let mut retry = sweep_outage.retry();
                loop {
                    tokio::select! {
                        () = token.cancelled() => return,
                        _ = sweep.tick() => match sweeper.sweep(Duration::from_secs(30)).await {
                            Ok(_) => retry.recovered(),
                            // The next tick tries again; the outage is logged once.
                            Err(e) => drop(retry.failed(&e)),
                        },
                    }
                }
            });
            // Several sender tasks share one sender (one pacing, one global limit).
            // The claim makes that safe: a row is sent by one task, and only a member's
            // oldest open row can be claimed, so each member's messages stay in order.
            let mut senders = tokio::task::JoinSet::new();
            for i in 0..self.config.sender_tasks {
                let name = match i {
                    0 => self.config.instance.clone(),
                    i => format!("{}-s{i}", self.config.instance),
                };
                let mut cfg = ConsumerConfig::new(self.streams.outbox.clone(), SENDER_GROUP, name);
                cfg.block = Duration::from_secs(1);
                let consumer = Consumer::new(self.queue.clone(), cfg)
                    .count_dead_letters(self.metrics.dead_letters(DeadLetterStream::Outbox));
                let (sender, token, outage) = (sender.clone(), stop.clone(), outage.clone());
                senders.spawn(async move { sender.run(consumer, token, &outage).await });
            }
            // Once every send loop has ended (each finished or gave up the delivery in
            // hand), no claim of this process is in use: release them all, so a restart
            // sends at once instead of waiting out the lease.
            tasks.spawn(async move {
                while senders.join_next().await.is_some() {}
                sender.release_claims().await;
            });
        }
        shutdown.await;
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}
