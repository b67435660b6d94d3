//! # Storage: conversation state, household data, the outbox and timers
//!
//! One diesel `MultiConnection` ([`AnyConnection`]) runs every query on PostgreSQL
//! (production, `DATABASE_URL=postgres://…`) or on one SQLite file (the embedded
//! default). A [`Store`] is a cheap-to-clone handle over an r2d2 pool of them.
//!
//! The API is **blocking** (diesel is synchronous): async callers run it inside
//! `tokio::task::spawn_blocking`, so a slow query never stalls the runtime's threads.
//!
//! The heart is [`Store::commit_event`]: everything one engine run produced (the
//! dedupe marker, conversation state, household data, outbox rows, timers) is written
//! in **one** transaction, so a crash leaves either all of it or none of it, and a
//! redelivered inbound message is recognised by its marker and becomes a no-op.
//!
//! Layout:
//! - `schema`: the hand-written `table!`s (one schema for both backends).
//! - `conn`: [`AnyConnection`], the pool manager, SQLite pragmas, the write transaction.
//! - `commit`: [`EventCommit`] and the data/conversation reads.
//! - `outbox`: [`OutboxRow`] and the sender's lifecycle updates.
//! - `claim`: the sender's lease on a row (one member's rows in order) and the pacing state.
//! - `timers`: timer reads.
//! - `error`: [`StoreError`] and its retryable/permanent split.
//!
//! Migrations live in `schema/migrations/{postgres,sqlite}` with identical version
//! names and are embedded into the binary at compile time.

pub(crate) mod conn;
mod error;
pub mod schema;

mod claim;
mod commit;
mod outbox;
mod schedules;
mod timers;

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alfred_core::data::HouseholdData;
use diesel::RunQueryDsl;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use claim::{Claim, Claimed};
pub use commit::{CommitOutcome, EventCommit, Fired, OrderCheck, StateCheck, address_of};
pub use conn::{AnyConnection, AnyManager, Backend};
pub use error::StoreError;
pub use outbox::{DeliveryState, NOT_A_MEMBER, OutboxRow, OutboxStatus, WindowPlan};
pub use schedules::RunningSlot;

/// The Postgres migration set.
///
/// `embed_migrations!` reads the directory at compile time; the root `build.rs`
/// prints `cargo:rerun-if-changed=schema/migrations` so that adding a migration
/// directory (not only editing a file) rebuilds the crate.
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("schema/migrations/postgres");
/// The SQLite migration set (same version names as [`PG_MIGRATIONS`]).
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("schema/migrations/sqlite");

/// Key of the Postgres advisory lock held while migrating, so that several processes
/// starting at once (N workers, N senders) do not race to create the same tables.
const MIGRATION_LOCK_KEY: i64 = 0x616c_6672_6564; // "alfred"

/// A pooled connection, as [`Store::conn`] hands it out.
pub type PooledConn = PooledConnection<AnyManager>;

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The household data as of a version.
type CachedData = (i64, Arc<HouseholdData>);
/// The members in effect as of a version.
type CachedMembers = (i64, Option<Arc<Vec<alfred_core::flow::Member>>>);

/// A handle to the database: clone it freely (clones share one pool).
///
/// Every method blocks the calling thread; call it from `spawn_blocking`.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool<AnyManager>,
    backend: Backend,
    /// The household data at a version (see `Store::load_data_versioned`).
    data_cache: Arc<Mutex<Option<CachedData>>>,
    /// The members in effect at a version (see `Store::members_versioned`).
    members_cache: Arc<Mutex<Option<CachedMembers>>>,
}

impl Store {
    /// Opens a pool for `url`.
    ///
    /// - `postgres://…` or `postgresql://…`: PostgreSQL.
    /// - `sqlite://PATH`, `sqlite:PATH` or a plain `PATH`: a SQLite file; missing parent
    ///   directories are created. `file:…` URIs are handed to SQLite as they are.
    /// - `:memory:` (or `sqlite://:memory:`): a private in-memory SQLite database. Each
    ///   connection to `:memory:` is a *different* database, so that pool holds exactly
    ///   one connection and never recycles it.
    ///
    /// A connection is opened before this returns, so an unreachable database fails
    /// here, at once and with a retryable error, rather than on first use.
    pub fn open(url: &str) -> Result<Store> {
        let target = Target::parse(url)?;
        if let Some(dir) = &target.create_dir {
            std::fs::create_dir_all(dir)?;
        }
        let manager = AnyManager {
            backend: target.backend,
            target: target.target,
        };
        // Fail fast with the driver's own reason ("connection refused", "password
        // authentication failed") rather than r2d2's "timed out waiting for connection"
        // after the whole connection timeout.
        let mut first = manager.connect().map_err(|e| match e {
            diesel::r2d2::Error::ConnectionError(e) => StoreError::Connection(e),
            diesel::r2d2::Error::QueryError(e) => StoreError::Query(e),
        })?;
        if !target.in_memory {
            conn::use_wal(&mut first).map_err(StoreError::Query)?;
        }
        drop(first);
        let mut builder = Pool::builder()
            .max_size(target.pool_size)
            // One eager connection proves the database is reachable; the rest open on demand.
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10));
        if target.in_memory {
            // The single connection *is* the database: never let the pool retire it.
            builder = builder.idle_timeout(None).max_lifetime(None);
        }
        if target.backend == Backend::Sqlite {
            builder = builder.connection_customizer(Box::new(conn::SqlitePragmas));
        }
        let pool = builder.build(manager)?;
        Ok(Store {
            pool,
            backend: target.backend,
            data_cache: Arc::default(),
            members_cache: Arc::default(),
        })
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection from the pool, for modules that keep their own tables in this
    /// database (the SQL-table queue). Return it quickly: SQLite pools are small.
    pub fn conn(&self) -> Result<PooledConn> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` in one write transaction (SQLite: `BEGIN IMMEDIATE`, see
    /// `conn::write_tx`) and commits it if `f` returns `Ok`.
    pub fn write<T>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T>) -> Result<T> {
        let mut conn = self.pool.get()?;
        conn::write_tx(&mut conn, f)
    }

    /// Applies pending migrations; returns the versions applied now (empty when the
    /// schema was already current, so it is safe to call on every start).
    pub fn migrate(&self) -> Result<Vec<String>> {
        let mut conn = self.pool.get()?;
        let applied = match &mut *conn {
            AnyConnection::Postgresql(c) => {
                // Session-level advisory lock: a second process waits here, then finds
                // nothing left to apply. Unlocked even if a migration failed.
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(c)?;
                let run = c.run_pending_migrations(PG_MIGRATIONS).map(versions);
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(c)?;
                run
            }
            // One SQLite file belongs to one Alfred process (the embedded mode), and
            // each migration runs in its own transaction.
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(versions),
        };
        applied.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Checks that the database answers (for `/readyz`).
    pub fn ping(&self) -> Result<()> {
        let mut conn = self.pool.get()?;
        diesel::sql_query("SELECT 1").execute(&mut *conn)?;
        Ok(())
    }
}

fn versions(vs: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    vs.into_iter().map(|v| v.to_string()).collect()
}

/// What `Store::open` made of a URL.
#[derive(Debug, PartialEq)]
struct Target {
    backend: Backend,
    /// What the driver is given.
    target: String,
    pool_size: u32,
    in_memory: bool,
    create_dir: Option<std::path::PathBuf>,
}

impl Target {
    /// Postgres pool: enough for a few roles in one process; each process has its own.
    const PG_POOL: u32 = 10;
    /// SQLite file pool: WAL allows concurrent readers, writes are serialised anyway.
    const SQLITE_POOL: u32 = 4;

    fn parse(url: &str) -> Result<Target> {
        // Errors never echo the URL: it may carry a password.
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target {
                backend: Backend::Postgres,
                target: url.to_owned(),
                pool_size: Self::PG_POOL,
                in_memory: false,
                create_dir: None,
            });
        }
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if rest.is_empty() {
            return Err(StoreError::Invalid("empty database path".into()));
        }
        if rest.contains("://") {
            return Err(StoreError::Invalid(
                "unsupported database URL: use postgres://…, sqlite://PATH, a file path or :memory:".into(),
            ));
        }
        let sqlite = |target: &str, pool_size, in_memory, create_dir| Target {
            backend: Backend::Sqlite,
            target: target.to_owned(),
            pool_size,
            in_memory,
            create_dir,
        };
        if rest == ":memory:" {
            return Ok(sqlite(rest, 1, true, None));
        }
        if rest.starts_with("file:") {
            return Ok(sqlite(rest, Self::SQLITE_POOL, false, None));
        }
        let dir = Path::new(rest)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf);
        Ok(sqlite(rest, Self::SQLITE_POOL, false, dir))
    }
}
