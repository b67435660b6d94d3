//! The edges: every kind of I/O the roles stand on, one room each. Nothing here runs
//! flows or decides what to say; that is the core's (`alfred-core`) and the roles'.
//!
//! - [`store`]: the database (Postgres or SQLite): conversations, household data, outbox, timers.
//! - [`queue`]: durable queues with consumer groups (Redis Streams, or an SQL table embedded).
//! - [`whatsapp`]: the WhatsApp Cloud API contract (signatures, payloads, errors).
//! - [`graph`]: the WhatsApp Graph API client (send, mark read, backoff; console fallback).
//! - [`health`]: readiness (`/readyz`): does the database and the queue answer.
//! - [`http_server`]: the HTTP/1 accept loop the webhook and metrics listeners share.
//! - [`metrics`]: `GET /metrics` (Prometheus text format) and the metrics-only listener.

pub mod graph;
pub mod health;
pub mod http_server;
pub mod metrics;
pub mod queue;
pub mod store;
pub mod whatsapp;
