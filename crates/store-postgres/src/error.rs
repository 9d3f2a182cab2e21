//! Translation of storage failures into domain errors. Nothing above this crate sees a
//! diesel error, and no message carries an SQL parameter.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use llm_settings_domain::Error;

/// A failure inside one store operation: the database's, or a domain outcome decided by the
/// operation itself (not found, version conflict …).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("database error")]
    Db(#[from] DieselError),
    #[error(transparent)]
    Domain(#[from] Error),
}

impl StoreError {
    pub(crate) fn into_domain(self) -> Error {
        match self {
            Self::Domain(err) => err,
            Self::Db(err) => from_diesel(err),
        }
    }

    /// Whether the connection itself failed (so the operation may be retried on another).
    pub(crate) fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Db(err) if connection_lost(err))
    }
}

/// SQLSTATE class 57P (operator intervention: `pg_terminate_backend`, shutdown, crash) and
/// class 08 arrive as plain database errors; diesel keeps no code, so they are recognised by
/// the server's fixed messages.
const LOST_CONNECTION_MESSAGES: [&str; 5] = [
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection closed",
];

/// Whether `err` means the connection is gone rather than the statement refused.
pub(crate) fn connection_lost(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            LOST_CONNECTION_MESSAGES.iter().any(|m| message.contains(m))
        }
        DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit { commit_error, .. } => connection_lost(commit_error),
        _ => false,
    }
}

/// Maps a diesel error onto the domain's contract. Database messages are inspected but
/// never copied, because they may quote the values of a statement.
pub(crate) fn from_diesel(err: DieselError) -> Error {
    if connection_lost(&err) {
        return Error::Unavailable("the database connection was lost".into());
    }
    match err {
        DieselError::NotFound => Error::NotFound("row".into()),
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation => Error::Conflict(
                "the write conflicts with a stored row (a duplicate or a second default)".into(),
            ),
            DatabaseErrorKind::CheckViolation
                if info.constraint_name() == Some("provider_configs_default_enabled_check") =>
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
            other => {
                tracing::error!(
                    kind = ?other,
                    table = info.table_name(),
                    constraint = info.constraint_name(),
                    "postgres statement failed"
                );
                Error::Internal(format!("the database refused a statement ({other:?})"))
            }
        },
        DieselError::DeserializationError(_) => {
            Error::Internal("a stored row could not be decoded".into())
        }
        DieselError::SerializationError(_) => {
            Error::Internal("a value could not be encoded for storage".into())
        }
        DieselError::AlreadyInTransaction | DieselError::NotInTransaction => {
            Error::Internal("a transaction was misused".into())
        }
        other => {
            tracing::error!(error = %other, "postgres operation failed");
            Error::Internal("the database operation failed".into())
        }
    }
}

/// A stored row that does not decode into the domain.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Domain(Error::Internal(format!(
        "a stored {what} could not be decoded"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn uniqueness_is_a_conflict_without_the_statement_values() {
        let err = from_diesel(db(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint: (user, sk-planted-value)",
        ));
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert!(!err.to_string().contains("planted"), "{err}");
        let err = from_diesel(db(
            DatabaseErrorKind::Unknown,
            "invalid input syntax for type bigint: \"sk-planted-value\"",
        ));
        assert!(matches!(err, Error::Internal(_)), "{err:?}");
        assert!(!err.to_string().contains("planted"), "{err}");
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
    fn domain_outcomes_pass_through() {
        let err = StoreError::from(Error::NotFound("config 7".into())).into_domain();
        assert_eq!(err, Error::NotFound("config 7".into()));
    }
}
