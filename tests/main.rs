//! Alfred-Home's end-to-end tests: one integration-test binary, one module per area.
//!
//! The modules live in `tests/integration/` (not beside this file) so that Cargo does
//! not also build each of them as a test binary of its own.
//!
//! - `broken_flows`: every class of mistake `alfred check` must report, with snapshots
//!   of the rendered output (`tests/fixtures/broken/`, `tests/snapshots/`).
//! - `hostile_yaml`: inputs built to hang, crash or exhaust the checker.
//! - `schema_drift`: the committed JSON Schemas match the model types.
//! - `core_is_pure`: `alfred-core` depends on no I/O crate.
//! - `cli`: the real `alfred` binary (`check`, `test`, `shell`).
//! - `service`: the running service in process: signed webhook in, reply at a fake Graph API.
//! - `pipeline`: the service's failure paths on both backends: statuses, a 429 then a
//!   send, a worker killed between commit and ack, several workers on one list.
//! - `metrics`: `/metrics` of a webhook process and of a worker + sender process.
//! - `window`: the 24-hour window in worker + sender on both backends (template
//!   fallback, async 131047, defer until the member writes).
//! - `restart`: the real `alfred serve`, embedded: start, talk, stop, start, talk; its
//!   logs on a clean start, fatal errors, `.env`, and Redis going down and back.
//! - `operations`: the real binary as an operator sees it: clean-start logs, fatal
//!   errors, `.env`, every role's health listener, a Redis outage.
//! - `stop`: a graceful stop during a send finishes it; the restart answers at once.
//! - `scheduler`: the scheduler role in the running service: an overdue timer fires once.
//! - `skills`: the family skills through the service, on both backends.
//! - `chores`: a repeating, rotating chore through the service, on both backends.
//! - `admin`: household admin over chat, on both backends: members added and removed.
//! - `lists`: shopping-list updates to opted-in members through the service, on both backends.
//! - `defects`: the two crate swaps of the design (serde-saphyr, croner) keep their promise.

/// Runs one `async fn scenario(backend: Backend)` of the module it is used in on each
/// backend, as two tests: `scenario::embedded` and `scenario::scale_out`.
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$scenario(Backend::embedded()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn scale_out() {
                super::$scenario(Backend::scale_out()).await;
            }
        }
    };
}

#[path = "integration/support.rs"]
mod support;

#[path = "integration/admin.rs"]
mod admin;
#[path = "integration/broken_flows.rs"]
mod broken_flows;
#[path = "integration/chores.rs"]
mod chores;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/core_is_pure.rs"]
mod core_is_pure;
#[path = "integration/defects.rs"]
mod defects;
#[path = "integration/hostile_yaml.rs"]
mod hostile_yaml;
#[path = "integration/lists.rs"]
mod lists;
#[path = "integration/metrics.rs"]
mod metrics;
#[path = "integration/operations.rs"]
mod operations;
#[path = "integration/pipeline.rs"]
mod pipeline;
#[path = "integration/restart.rs"]
mod restart;
#[path = "integration/scheduler.rs"]
mod scheduler;
#[path = "integration/schema_drift.rs"]
mod schema_drift;
#[path = "integration/service.rs"]
mod service;
#[path = "integration/skills.rs"]
mod skills;
#[path = "integration/stop.rs"]
mod stop;
#[path = "integration/window.rs"]
mod window;
