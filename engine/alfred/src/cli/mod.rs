//! The commands people run: an admin's `check`, `test` and `shell` on a flows
//! directory, and `serve` (every role) or one role per process for operators. Each
//! command reads its input here and calls the core or the roles; none holds logic of
//! its own that a role or the core needs.
//!
//! - [`flowdir`]: find, read and check the household, flow and test files of a directory.
//! - [`check`]: `alfred check`.
//! - [`test`]: `alfred test`.
//! - [`shell`]: `alfred shell`.
//! - [`serve`]: running the roles (`alfred serve` runs them all).
//! - [`start`]: starting a service process: `.env`, logs, configuration, fatal errors.
//! - [`logging`]: the service's JSON logs, with role, instance and version on each line.
//! - [`migrate`]: `alfred migrate`.

pub mod check;
pub mod flowdir;
pub mod logging;
pub mod migrate;
pub mod serve;
pub mod shell;
pub mod start;
pub mod test;
