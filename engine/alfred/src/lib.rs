//! # alfred: the Alfred-Home binary's library
//!
//! `main.rs` only parses arguments and calls into here, so every command is testable
//! in-process. The pure flow core lives in `alfred-core`; this crate holds the edges:
//! reading flow directories, the CLI commands, and (later) the service roles.
//!
//! - [`config`]: the environment, read and checked once at startup.
//! - [`serve`]: running the roles (`alfred serve` runs them all).
//! - [`role`]: what the roles share (error type, blocking store calls).
//! - [`sender`]: the sender role (outbox → Graph API; retries, dead letters).
//! - [`worker`]: the orchestrator role (ingest → engine → one transaction → outbox).
//! - [`scheduler`]: the scheduler role (schedule slots and durable timers → engine → outbox).
//! - [`flowdir`]: find and read the household, flow and test files of a directory.
//! - [`cmd_check`]: `alfred check`.
//! - [`cmd_test`]: `alfred test`.
//! - [`cmd_shell`]: `alfred shell`.
//! - [`whatsapp`]: the WhatsApp Cloud API contract (signatures, payloads, errors).
//! - [`store`]: the database (Postgres or SQLite): conversations, household data, outbox, timers.
//! - [`graph`]: the WhatsApp Graph API client (send, mark read, backoff; console fallback).
//! - [`queue`]: durable queues with consumer groups (Redis Streams, or an SQL table embedded).
//! - [`metrics`]: `GET /metrics` (Prometheus text format) and the metrics-only listener.
//! - [`webhook`]: the webhook role: Meta's verification and signed POSTs into `alfred-ingest`.

pub mod cmd_check;
pub mod cmd_shell;
pub mod cmd_test;
pub mod config;
pub mod flowdir;
pub mod graph;
pub mod http_server;
pub mod metrics;
pub mod order;
pub mod pacing;
pub mod queue;
pub mod role;
pub mod run;
pub mod scheduler;
pub mod sender;
pub mod serve;
pub mod store;
pub mod webhook;
pub mod whatsapp;
pub mod worker;
