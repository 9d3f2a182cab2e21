//! The one table that turns storage failures into domain errors. Nothing above a store sees
//! a diesel error, and no message carries an SQL parameter.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use llm_settings_domain::{ConfigId, Error};

/// A failure inside one store operation: the database's, or a domain outcome decided by the
/// operation itself (not found, version conflict …).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed; mapped by [`from_diesel`].
    #[error("database error")]
    Db(#[from] DieselError),
    /// An outcome the operation decided itself.
    #[error(transparent)]
    Domain(#[from] Error),
}

impl StoreError {
    /// The domain error this failure means.
    pub fn into_domain(self) -> Error {
        match self {
            Self::Domain(err) => err,
            Self::Db(err) => from_diesel(err),
        }
    }

    /// Whether the connection itself failed (so the operation may be retried on another).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Db(err) if connection_lost(err))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        err.into_domain()
    }
}

/// PostgreSQL reports SQLSTATE class 57P (`pg_terminate_backend`, shutdown, crash) and class
/// 08 as plain database errors; diesel keeps no code, so they are recognised by the server's
/// fixed messages.
const LOST_CONNECTION_MESSAGES: [&str; 5] = [
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection closed",
];

/// SQLite's messages for a database locked by another writer past the busy timeout.
const BUSY_MESSAGES: [&str; 2] = ["database is locked", "database table is locked"];

/// SQLite's messages for a database file that cannot be opened or written.
const UNREACHABLE_MESSAGES: [&str; 4] = [
    "unable to open",
    "disk I/O error",
    "readonly database",
    "database or disk is full",
];

fn mentions(message: &str, any_of: &[&str]) -> bool {
    any_of.iter().any(|m| message.contains(m))
}

/// Whether `err` means the connection is gone rather than the statement refused.
pub fn connection_lost(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            mentions(info.message(), &LOST_CONNECTION_MESSAGES)
        }
        DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit { commit_error, .. } => connection_lost(commit_error),
        _ => false,
    }
}

/// Maps a diesel error onto the domain's contract. Database messages are inspected but
/// never copied, because they may quote the values of a statement.
pub fn from_diesel(err: DieselError) -> Error {
    if connection_lost(&err) {
        return Error::Unavailable("the database connection was lost".into());
    }
    match err {
        DieselError::NotFound => Error::NotFound("row".into()),
        DieselError::DatabaseError(kind, info) => {
            // PostgreSQL names the constraint; SQLite only mentions it in the message.
            let constraint = info.constraint_name().unwrap_or(info.message());
            match kind {
                DatabaseErrorKind::UniqueViolation => Error::Conflict(
                    "the write conflicts with a stored row (a duplicate or a second default)"
                        .into(),
                ),
                DatabaseErrorKind::CheckViolation
                    if constraint.contains("provider_configs_default_enabled_check") =>
                {
                    Error::Conflict("a disabled config cannot be the default".into())
                }
                DatabaseErrorKind::ForeignKeyViolation => {
                    Error::Conflict("the config was deleted concurrently".into())
                }
                DatabaseErrorKind::SerializationFailure => {
                    Error::Conflict("the write lost a race with another write; retry".into())
                }
                DatabaseErrorKind::ReadOnlyTransaction => {
                    Error::Unavailable("the database is read-only (a standby?)".into())
                }
                _ if mentions(info.message(), &BUSY_MESSAGES) => {
                    Error::Unavailable("the database stayed locked by another writer".into())
                }
                _ if mentions(info.message(), &UNREACHABLE_MESSAGES) => {
                    Error::Unavailable("the database file cannot be opened or written".into())
                }
                other => {
                    tracing::error!(
                        kind = ?other,
                        table = info.table_name(),
                        constraint = info.constraint_name(),
                        "a database statement failed"
                    );
                    Error::Internal(format!("the database refused a statement ({other:?})"))
                }
            }
        }
        DieselError::DeserializationError(_) => {
            Error::Internal("a stored row could not be decoded".into())
        }
        DieselError::SerializationError(_) => {
            Error::Internal("a value could not be encoded for storage".into())
        }
        DieselError::RollbackErrorOnCommit { commit_error, .. } => from_diesel(*commit_error),
        // A connection is never handed out inside a transaction (see `InUse`), so meeting
        // one is a bug, not a passing outage.
        DieselError::AlreadyInTransaction | DieselError::NotInTransaction => {
            Error::Internal("a transaction was misused".into())
        }
        other => {
            tracing::error!(error = %other, "a database operation failed");
            Error::Internal("the database operation failed".into())
        }
    }
}

/// A stored row that does not decode into the domain.
pub fn corrupt(what: &str) -> StoreError {
    StoreError::Domain(Error::Internal(format!(
        "a stored {what} could not be decoded"
    )))
}

/// The owner has no config `id`.
pub fn not_found(id: ConfigId) -> StoreError {
    StoreError::Domain(Error::NotFound(format!("config {id}")))
}

/// Config `id` is no longer at version `expected`.
pub fn stale(id: ConfigId, expected: i64) -> StoreError {
    StoreError::Domain(Error::Conflict(format!(
        "config {id} was changed since version {expected}; reload it and retry"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn refusals_never_quote_the_statement_values() {
        for (err, conflict) in [
            (
                db(
                    DatabaseErrorKind::UniqueViolation,
                    "duplicate key value violates unique constraint: (user, sk-planted-value)",
                ),
                true,
            ),
            (
                db(
                    DatabaseErrorKind::Unknown,
                    "invalid input syntax for type bigint: \"sk-planted-value\"",
                ),
                false,
            ),
            (
                db(
                    DatabaseErrorKind::Unknown,
                    "near \"sk-planted\": syntax error",
                ),
                false,
            ),
        ] {
            let err = from_diesel(err);
            assert_eq!(matches!(err, Error::Conflict(_)), conflict, "{err:?}");
            assert_eq!(matches!(err, Error::Internal(_)), !conflict, "{err:?}");
            assert!(!err.to_string().contains("planted"), "{err}");
        }
    }

    #[test]
    fn a_disabled_default_is_a_conflict_on_either_backend() {
        let sqlite = db(
            DatabaseErrorKind::CheckViolation,
            "CHECK constraint failed: provider_configs_default_enabled_check",
        );
        assert!(matches!(from_diesel(sqlite), Error::Conflict(_)));
        let other_check = db(
            DatabaseErrorKind::CheckViolation,
            "CHECK constraint failed: x",
        );
        assert!(matches!(from_diesel(other_check), Error::Internal(_)));
    }

    #[test]
    fn lost_connections_are_unavailable_and_retryable() {
        for lost in [
            db(DatabaseErrorKind::ClosedConnection, "closed"),
            db(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            db(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            db(
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
            DieselError::BrokenTransactionManager,
        ] {
            assert!(connection_lost(&lost));
            assert!(StoreError::Db(lost).is_connection_lost());
        }
        let refused = db(DatabaseErrorKind::UniqueViolation, "duplicate");
        assert!(!connection_lost(&refused));
        let err = from_diesel(db(DatabaseErrorKind::UnableToSendCommand, "x"));
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn a_locked_or_missing_database_is_unavailable() {
        for message in [
            "database is locked",
            "unable to open database file",
            "disk I/O error",
        ] {
            let err = from_diesel(db(DatabaseErrorKind::Unknown, message));
            assert!(matches!(err, Error::Unavailable(_)), "{message}: {err:?}");
        }
    }

    #[test]
    fn a_misused_transaction_is_internal_on_every_backend() {
        for err in [
            DieselError::AlreadyInTransaction,
            DieselError::NotInTransaction,
        ] {
            assert!(matches!(from_diesel(err), Error::Internal(_)));
        }
    }

    #[test]
    fn domain_outcomes_pass_through() {
        let err = StoreError::from(Error::NotFound("config 7".into())).into_domain();
        assert_eq!(err, Error::NotFound("config 7".into()));
    }
}
