//! The one error type of the domain, with a stable machine code per variant.
//!
//! Adapters translate their own failures into these variants (a unique violation becomes
//! [`Error::Conflict`], a refused connection [`Error::Unavailable`]); transports map
//! [`Error::code`] to a status once, at the edge. No variant ever carries a secret.

/// Whether a client-supplied name (provider, field, path segment) may be repeated in a message:
/// only identifier-like names are, so a key pasted into the wrong place never comes back.
pub fn is_repeatable(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// A client-supplied name as it may appear in a message (see [`is_repeatable`]).
pub fn shown(name: &str) -> String {
    if is_repeatable(name) {
        name.to_owned()
    } else {
        "(name not shown)".to_owned()
    }
}

/// Result alias used across the domain and its ports.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stable machine codes of domain errors; every transport maps each to its status once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ValidationError,
    MaskedKeyMismatch,
    UnknownProvider,
    ProviderNotConfigured,
    TaskNotAssigned,
    NotFound,
    Conflict,
    Forbidden,
    StoreUnavailable,
    SecretUnreadable,
    InternalError,
}

impl ErrorCode {
    /// The code as clients see it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ValidationError => "validation_error",
            Self::MaskedKeyMismatch => "masked_key_mismatch",
            Self::UnknownProvider => "unknown_provider",
            Self::ProviderNotConfigured => "provider_not_configured",
            Self::TaskNotAssigned => "task_not_assigned",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Forbidden => "forbidden",
            Self::StoreUnavailable => "store_unavailable",
            Self::SecretUnreadable => "secret_unreadable",
            Self::InternalError => "internal_error",
        }
    }
}

/// Everything a use case or a port can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is malformed or breaks a rule; `field` names the offending field when known.
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    /// A value that looks like a masked key matched none of the hints handed out for it.
    #[error(
        "{field} looks like a masked key but does not match the stored key; send the full key"
    )]
    MaskedSecretMismatch { field: String },
    /// The provider id is not in the catalog or not offered by this deployment.
    #[error("unknown provider: {0}")]
    UnknownProvider(String),
    /// There is no stored key for the provider and the request carried none.
    #[error("no API key is stored for provider {provider} and none was given")]
    ProviderNotConfigured { provider: String },
    /// No owner along a resolution chain has an enabled config for the provider.
    #[error("no enabled config for provider {provider} in {searched}")]
    NoCredential { provider: String, searched: String },
    /// No owner along a resolution chain assigns the task.
    #[error("task {task} is not assigned in {searched}")]
    TaskNotAssigned { task: String, searched: String },
    /// The thing does not exist for this owner (also used for other owners' rows).
    #[error("{0} not found")]
    NotFound(String),
    /// The write lost a race or would break a uniqueness rule (stale version, duplicate).
    #[error("{0}")]
    Conflict(String),
    /// The actor may not perform this action on this owner.
    #[error("{0}")]
    Forbidden(String),
    /// The store (or another dependency) cannot be reached right now; retrying may help.
    #[error("the settings store is unavailable: {0}")]
    Unavailable(String),
    /// A stored ciphertext could not be opened (wrong master key, tampering, moved row).
    #[error("a stored secret could not be decrypted")]
    SecretUnreadable,
    /// An invariant of the service itself failed; never caused by client input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for a validation error naming a field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The stable machine code of this error, shared by every transport.
    pub fn kind(&self) -> ErrorCode {
        match self {
            Self::Validation { .. } => ErrorCode::ValidationError,
            Self::MaskedSecretMismatch { .. } => ErrorCode::MaskedKeyMismatch,
            Self::UnknownProvider(_) => ErrorCode::UnknownProvider,
            Self::ProviderNotConfigured { .. } | Self::NoCredential { .. } => {
                ErrorCode::ProviderNotConfigured
            }
            Self::TaskNotAssigned { .. } => ErrorCode::TaskNotAssigned,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Unavailable(_) => ErrorCode::StoreUnavailable,
            Self::SecretUnreadable => ErrorCode::SecretUnreadable,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// The stable machine code as text (`validation_error`, `not_found` …).
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Validation { field, .. } => field.as_deref(),
            Self::MaskedSecretMismatch { field } => Some(field),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_identifier_like_names_are_repeated() {
        assert_eq!(shown("openai"), "openai");
        assert_eq!(
            shown("sk-ant-api03-a-pasted-key-0123456789"),
            "(name not shown)"
        );
        assert_eq!(shown("has space"), "(name not shown)");
        assert_eq!(shown(""), "(name not shown)");
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::invalid("model", "bad").code(), "validation_error");
        assert_eq!(
            Error::ProviderNotConfigured {
                provider: "openai".into()
            }
            .code(),
            "provider_not_configured"
        );
        assert_eq!(Error::NotFound("config".into()).code(), "not_found");
        assert_eq!(Error::Conflict("x".into()).code(), "conflict");
        assert_eq!(Error::Forbidden("x".into()).code(), "forbidden");
        assert_eq!(Error::Unavailable("x".into()).code(), "store_unavailable");
        assert_eq!(
            Error::MaskedSecretMismatch {
                field: "api_key".into()
            }
            .field(),
            Some("api_key")
        );
    }
}
