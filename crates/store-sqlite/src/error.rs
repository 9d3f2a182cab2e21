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
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        err.into_domain()
    }
}

/// Maps a diesel error onto the domain's contract. Database messages are inspected but
/// never copied, because they may quote the values of a statement.
pub(crate) fn from_diesel(err: DieselError) -> Error {
    match err {
        DieselError::NotFound => Error::NotFound("row".into()),
        DieselError::DatabaseError(kind, info) => {
            let message = info.message();
            match kind {
                DatabaseErrorKind::UniqueViolation => Error::Conflict(
                    "the write conflicts with a stored row (a duplicate or a second default)"
                        .into(),
                ),
                DatabaseErrorKind::CheckViolation if message.contains("default_enabled") => {
                    Error::Conflict("a disabled config cannot be the default".into())
                }
                DatabaseErrorKind::ForeignKeyViolation => {
                    Error::Conflict("the config was deleted concurrently".into())
                }
                DatabaseErrorKind::SerializationFailure => {
                    Error::Conflict("the write lost a race with another write; retry".into())
                }
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                    Error::Unavailable("the database connection was lost".into())
                }
                _ if is_busy(message) => {
                    Error::Unavailable("the database stayed locked by another writer".into())
                }
                _ if is_unreachable(message) => {
                    Error::Unavailable("the database file cannot be opened or written".into())
                }
                other => {
                    tracing::error!(kind = ?other, "sqlite statement failed");
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
        DieselError::BrokenTransactionManager | DieselError::AlreadyInTransaction => {
            Error::Unavailable("the database connection is in a broken state".into())
        }
        other => {
            tracing::error!(error = %other, "sqlite operation failed");
            Error::Internal("the database operation failed".into())
        }
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database table is locked")
}

fn is_unreachable(message: &str) -> bool {
    [
        "unable to open",
        "disk I/O error",
        "readonly database",
        "database or disk is full",
    ]
    .iter()
    .any(|m| message.contains(m))
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
            "UNIQUE constraint failed: provider_configs.owner_id",
        ));
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let err = from_diesel(db(
            DatabaseErrorKind::Unknown,
            "near \"sk-planted\": syntax error",
        ));
        assert!(matches!(err, Error::Internal(_)), "{err:?}");
        assert!(!err.to_string().contains("planted"), "{err}");
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
        let err = from_diesel(db(
            DatabaseErrorKind::CheckViolation,
            "CHECK constraint failed: provider_configs_default_enabled_check",
        ));
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    }
}
