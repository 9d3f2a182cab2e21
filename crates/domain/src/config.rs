//! The provider config entity and the shapes used to create and change one.

use std::collections::BTreeMap;

use crate::catalog::ProviderId;
use crate::mask::SecretHints;
use crate::owner::Owner;
use crate::probe::FailureClass;
use crate::secret::StoredSecret;
use crate::values::{BaseUrl, ConfigId, ModelName, Timestamp};

/// The outcome of the last connection test of a stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub at: Timestamp,
    pub success: bool,
    pub latency_ms: u64,
    pub failure: Option<FailureClass>,
    /// Short human message; never holds a secret or a provider's raw body.
    pub message: String,
}

/// One owner's credentials and settings for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub id: ConfigId,
    pub owner: Owner,
    pub provider: ProviderId,
    /// Sealed secret fields by name, each with the hints computed when it was written.
    pub secrets: BTreeMap<String, StoredSecret>,
    /// Non-secret credential fields (organization, region, endpoint …).
    pub settings: BTreeMap<String, String>,
    pub model: Option<ModelName>,
    pub base_url: Option<BaseUrl>,
    pub enabled: bool,
    pub is_default: bool,
    /// Bumped by every write; a write carrying an older version is a conflict.
    pub version: i64,
    pub last_test: Option<TestRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ProviderConfig {
    /// Hints of the provider's primary secret ("the API key"), when one is stored.
    pub fn primary_hints(&self) -> Option<&SecretHints> {
        let field = self.provider.spec().primary_secret()?;
        self.secrets.get(field.name).map(|s| &s.hints)
    }

    /// Whether the primary secret is stored.
    pub fn has_primary_secret(&self) -> bool {
        self.primary_hints().is_some()
    }

    /// The model in use: the override or the provider's default.
    pub fn effective_model(&self) -> Option<&str> {
        self.model
            .as_ref()
            .map(ModelName::as_str)
            .or(self.provider.spec().default_model)
    }

    /// The endpoint in use: the override or the provider's default.
    pub fn effective_base_url(&self) -> Option<&str> {
        self.base_url
            .as_ref()
            .map(BaseUrl::as_str)
            .or(self.provider.spec().default_base_url)
    }
}

/// A change to an optional field: leave it, clear it (explicit `null`), or set it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    /// Applies the patch to a current value.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Self::Keep => current,
            Self::Clear => None,
            Self::Set(v) => Some(v),
        }
    }

    /// Whether the patch changes anything.
    pub fn is_keep(&self) -> bool {
        matches!(self, Self::Keep)
    }
}

impl<T> From<Option<Option<T>>> for Patch<T> {
    /// `None` (absent) keeps, `Some(None)` (null) clears, `Some(Some(v))` sets.
    fn from(value: Option<Option<T>>) -> Self {
        match value {
            None => Self::Keep,
            Some(None) => Self::Clear,
            Some(Some(v)) => Self::Set(v),
        }
    }
}

/// What a caller may change on a config. Secret values may be masks handed out earlier.
#[derive(Debug, Clone, Default)]
pub struct ConfigPatch {
    /// Secret fields by name; `None` removes an optional secret.
    pub secrets: BTreeMap<String, Option<crate::secret::SecretValue>>,
    /// Non-secret fields by name; `None` removes an optional field.
    pub settings: BTreeMap<String, Option<String>>,
    pub model: Patch<ModelName>,
    pub base_url: Patch<BaseUrl>,
    pub enabled: Option<bool>,
    /// When set, the write fails with a conflict unless the config is still at this version.
    pub expected_version: Option<i64>,
}

impl ConfigPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
            && self.settings.is_empty()
            && self.model.is_keep()
            && self.base_url.is_keep()
            && self.enabled.is_none()
    }
}

/// A config to insert; the store assigns id, version and `is_default`.
#[derive(Debug, Clone)]
pub struct NewProviderConfig {
    pub owner: Owner,
    pub provider: ProviderId,
    pub secrets: BTreeMap<String, StoredSecret>,
    pub settings: BTreeMap<String, String>,
    pub model: Option<ModelName>,
    pub base_url: Option<BaseUrl>,
    pub enabled: bool,
    /// Make this the owner's default (clearing the others) even if it is not the first.
    pub make_default: bool,
    pub now: Timestamp,
}

/// A full replacement of a config's mutable fields, guarded by its version.
#[derive(Debug, Clone)]
pub struct ConfigWrite {
    pub id: ConfigId,
    pub owner: Owner,
    /// The version read before the change; the store refuses the write if it moved.
    pub expected_version: i64,
    pub secrets: BTreeMap<String, StoredSecret>,
    pub settings: BTreeMap<String, String>,
    pub model: Option<ModelName>,
    pub base_url: Option<BaseUrl>,
    pub enabled: bool,
    /// Make this the owner's default in the same transaction.
    pub make_default: bool,
    pub now: Timestamp,
}
