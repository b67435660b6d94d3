//! # alfred: the Alfred-Home binary's library
//!
//! `main.rs` only parses arguments and calls into here, so every command is testable
//! in-process. The pure flow core lives in `alfred-core`; this crate holds everything
//! around it, grouped by what it is for (see `docs/architecture.md`):
//!
//! - [`config`]: the environment, read and checked once at startup.
//! - [`roles`]: the four service roles (webhook, worker, sender, scheduler) and what
//!   they share: running one event and committing it, arrival order, pacing.
//! - [`edges`]: the I/O the roles stand on: the database, the queues, the WhatsApp
//!   contract and Graph API client, the HTTP accept loop and the metrics.
//! - [`cli`]: the admin's commands (`check`, `test`, `shell`) and running the roles
//!   (`serve` and one role per process), with the flow directory they all read.

pub mod cli;
pub mod config;
pub mod edges;
pub mod roles;
