//! `alfred migrate`: apply the database migrations and say which ran. Only the
//! database is needed, so only `DATABASE_URL` is read (not the whole service
//! configuration with its secrets); the roles migrate on start as well.

use std::io::Write;

use crate::config::DEFAULT_DATABASE_URL;
use crate::edges::store::{Store, StoreError};

/// Why the migrations could not run.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database could not be opened or migrated.
    #[error("migrating {url}")]
    Store {
        /// The database URL.
        url: String,
        /// The cause.
        source: StoreError,
    },
    /// The report could not be written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Migrates the database at `url` (default: the embedded SQLite file).
pub fn run(url: Option<&str>, out: &mut dyn Write) -> Result<i32, MigrateError> {
    let url = url.unwrap_or(DEFAULT_DATABASE_URL);
    let store_err = |source| MigrateError::Store {
        url: url.to_owned(),
        source,
    };
    let applied = Store::open(url).and_then(|s| s.migrate()).map_err(store_err)?;
    if applied.is_empty() {
        writeln!(out, "database is up to date")?;
    } else {
        writeln!(out, "applied {} migration(s): {}", applied.len(), applied.join(", "))?;
    }
    Ok(0)
}
