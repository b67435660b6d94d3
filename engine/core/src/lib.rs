//! # alfred-core: the pure flow core of Alfred-Home
//!
//! Admins write conversation flows in YAML; this crate turns them into validated state
//! machines and runs them. It does no I/O and never reads the clock: the service
//! around it (webhook, queues, database, Graph API) feeds it events and applies the
//! effects it returns, and `alfred check` / `alfred test` / `alfred shell` use it directly.
//!
//! Module map, in the order data flows through them:
//! - [`model`]: the YAML file types (what admins write), with source positions.
//! - [`check`]: sources → diagnostics + compiled [`flow::FlowSet`].
//! - [`diag`]: diagnostics and their rustc-style rendering.
//! - [`flow`]: the compiled flow set the engine runs.
//! - [`member`]: a member and looking one up by name, phone or user id.
//! - [`tmpl`]: minijinja templates and expressions.
//! - [`engine`]: `handle(flows, state, event, data, now) -> Outcome`.
//! - [`event`]: events in; state, effects and trace out.
//! - [`data`]: household lists and records, and how changes apply.
//! - [`parse`]: people's text: items, durations, dates, numbers.
//! - [`quiet`]: quiet hours: when a non-urgent timer waits for the morning.
//! - [`recur`]: recurrence rules ("every monday", "on the 1st"), DST-correct.
//! - [`roster`]: the members in effect (household.yaml or changed over chat) and their rules.
//! - [`schedule`]: cron in a time zone, DST-correct.
//! - [`sim`]: a household simulator on a virtual clock (tests and shell).
//! - [`testing`]: conversation tests (`alfred test`).
//! - [`schema`]: JSON Schema of the files for editors.
//! - [`window`]: WhatsApp's 24-hour window: send, template fallback, defer or drop.

pub mod check;
pub mod data;
pub mod diag;
pub mod engine;
pub mod event;
pub mod flow;
pub mod member;
pub mod model;
pub mod parse;
pub mod quiet;
pub mod recur;
pub mod roster;
pub mod schedule;
pub mod schema;
pub mod sim;
pub mod testing;
pub mod tmpl;
pub mod window;

pub use check::{Checked, SourceFile, load};
pub use engine::handle;
