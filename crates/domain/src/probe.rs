//! What a connection test asks of a provider and what it learns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::ProviderId;
use crate::secret::SecretValue;

/// Why a connection test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    InvalidCredentials,
    PermissionDenied,
    QuotaExhausted,
    RateLimited,
    /// Model, deployment or endpoint path does not exist.
    NotFound,
    ProviderOverloaded,
    ProviderError,
    Unreachable,
    Timeout,
    InvalidResponse,
    /// The target address is not allowed by the outbound policy.
    BlockedByPolicy,
}

impl FailureClass {
    /// Stable machine code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::PermissionDenied => "permission_denied",
            Self::QuotaExhausted => "quota_exhausted",
            Self::RateLimited => "rate_limited",
            Self::NotFound => "not_found",
            Self::ProviderOverloaded => "provider_overloaded",
            Self::ProviderError => "provider_error",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::InvalidResponse => "invalid_response",
            Self::BlockedByPolicy => "blocked_by_policy",
        }
    }

    /// Parses a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        ALL_CLASSES.iter().copied().find(|c| c.as_str() == code)
    }
}

const ALL_CLASSES: [FailureClass; 11] = [
    FailureClass::InvalidCredentials,
    FailureClass::PermissionDenied,
    FailureClass::QuotaExhausted,
    FailureClass::RateLimited,
    FailureClass::NotFound,
    FailureClass::ProviderOverloaded,
    FailureClass::ProviderError,
    FailureClass::Unreachable,
    FailureClass::Timeout,
    FailureClass::InvalidResponse,
    FailureClass::BlockedByPolicy,
];

/// Everything a probe needs to test one set of credentials.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub provider: ProviderId,
    /// Secret credential fields (`api_key`, `secret_access_key` …).
    pub secrets: BTreeMap<String, SecretValue>,
    /// Non-secret credential fields (`organization`, `endpoint`, `region` …).
    pub settings: BTreeMap<String, String>,
    /// The endpoint to call; `None` means the provider's default.
    pub base_url: Option<String>,
    /// The model whose availability is checked.
    pub model: Option<String>,
}

/// The result of a connection test. A failed test is an outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub success: bool,
    pub latency_ms: u64,
    /// Whether the requested model appeared in the provider's list.
    pub model_available: bool,
    /// Model ids seen (capped by the probe).
    pub models: Vec<String>,
    pub failure: Option<FailureClass>,
    /// Seconds to wait, when the provider said so with a rate limit.
    pub retry_after_secs: Option<u64>,
    /// Short human message; never holds a secret or the provider's raw body.
    pub message: String,
}

impl ProbeOutcome {
    /// A failed outcome of one class.
    pub fn failed(class: FailureClass, latency_ms: u64, message: impl Into<String>) -> Self {
        Self {
            success: false,
            latency_ms,
            model_available: false,
            models: Vec::new(),
            failure: Some(class),
            retry_after_secs: None,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_codes_round_trip() {
        for c in ALL_CLASSES {
            assert_eq!(FailureClass::parse(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
    }
}
