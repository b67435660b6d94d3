//! Store errors, split by what the caller should do about them.
//!
//! The roles only need one decision: try the same work again later (the database was
//! busy, unreachable, or a concurrent transaction lost a race), or give up on it (the
//! data itself is wrong, and retrying would fail the same way forever).

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};

/// Anything the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No pooled connection could be had in time (the database is down or saturated).
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// Opening a connection failed.
    #[error("database connection: {0}")]
    Connection(#[from] ConnectionError),
    /// A query failed; [`StoreError::is_retryable`] looks at why.
    #[error("database: {0}")]
    Query(#[from] DieselError),
    /// Running the migrations failed.
    #[error("migrations: {0}")]
    Migration(String),
    /// A stored or given JSON value does not (de)serialise.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A value is out of what the store accepts (a bad URL, an unknown status, …).
    #[error("{0}")]
    Invalid(String),
    /// The SQLite file's directory could not be created.
    #[error("creating the database directory: {0}")]
    Io(#[from] std::io::Error),
    /// An event lost its optimistic-concurrency race too many times in a row (its
    /// conversation or the household data kept changing under it). Retryable.
    #[error("too much contention: {0}")]
    Contention(String),
}

impl StoreError {
    /// Whether the same operation may succeed if tried again later.
    ///
    /// Retryable: the pool timed out, a connection broke, Postgres reported a
    /// serialization failure or deadlock, or SQLite said "database is locked" after
    /// its busy timeout. Everything else (constraint violations, bad JSON, invalid
    /// input, migration failures) is permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Contention(_) => true,
            // A connection that cannot be opened now may open later; a bad URL is
            // caught by `Store::open` as `Invalid` before we get here.
            StoreError::Connection(e) => !matches!(e, ConnectionError::InvalidConnectionUrl(_)),
            StoreError::Query(e) => query_error_is_retryable(e),
            StoreError::Migration(_) | StoreError::Json(_) | StoreError::Invalid(_) | StoreError::Io(_) => false,
        }
    }
}

fn query_error_is_retryable(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection => true,
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::RestrictViolation
            | DatabaseErrorKind::ExclusionViolation => false,
            // diesel maps neither Postgres deadlocks (40P01) nor SQLite BUSY/LOCKED to a
            // kind, and does not expose the SQLSTATE: the message is all there is.
            _ => message_is_transient(info.message()),
        },
        // The transaction manager gave up on the connection (e.g. a failed ROLLBACK
        // after the server went away): the pool discards it, a new one may work.
        DieselError::BrokenTransactionManager | DieselError::RollbackErrorOnCommit { .. } => true,
        _ => false,
    }
}

/// Messages of transient failures, from SQLite (`sqlite3_errstr`) and Postgres.
fn message_is_transient(message: &str) -> bool {
    const TRANSIENT: &[&str] = &[
        "database is locked",       // SQLITE_BUSY (after busy_timeout)
        "database table is locked", // SQLITE_LOCKED
        "database schema is locked",
        "deadlock detected",                         // Postgres 40P01
        "could not serialize access",                // Postgres 40001 (if not mapped)
        "canceling statement due to lock timeout",   // Postgres 55P03
        "terminating connection",                    // Postgres 57P01 admin shutdown
        "the database system is starting up",        // Postgres 57P03
        "the database system is shutting down",      // Postgres 57P03
        "server closed the connection unexpectedly", // libpq
        "no connection to the server",               // libpq
    ];
    let m = message.to_ascii_lowercase();
    TRANSIENT.iter().any(|t| m.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info(&'static str);
    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db(kind: DatabaseErrorKind, msg: &'static str) -> StoreError {
        StoreError::Query(DieselError::DatabaseError(kind, Box::new(Info(msg))))
    }

    #[test]
    fn transient_database_errors_are_retryable() {
        assert!(db(DatabaseErrorKind::Unknown, "database is locked").is_retryable());
        assert!(db(DatabaseErrorKind::Unknown, "deadlock detected").is_retryable());
        assert!(db(DatabaseErrorKind::SerializationFailure, "could not serialize").is_retryable());
        assert!(db(DatabaseErrorKind::ClosedConnection, "gone").is_retryable());
        assert!(StoreError::Connection(ConnectionError::BadConnection("refused".into())).is_retryable());
    }

    #[test]
    fn data_errors_are_permanent() {
        assert!(!db(DatabaseErrorKind::UniqueViolation, "duplicate key").is_retryable());
        assert!(!db(DatabaseErrorKind::CheckViolation, "check").is_retryable());
        assert!(!db(DatabaseErrorKind::Unknown, "syntax error").is_retryable());
        assert!(!StoreError::Query(DieselError::NotFound).is_retryable());
        assert!(!StoreError::Invalid("bad".into()).is_retryable());
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!StoreError::Json(json).is_retryable());
    }
}
