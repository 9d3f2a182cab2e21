//! The ports: what the domain needs from the outside world.
//!
//! Every trait is `Send + Sync + 'static` so services can hold them as `Arc<dyn …>`. Each
//! method documents which [`Error`](crate::Error) variant it returns for which case; an
//! adapter maps its own failures onto exactly these (a lost connection is
//! [`Error::Unavailable`](crate::Error::Unavailable), never a library error). With the `mock`
//! feature every trait gets a `mockall` mock (`MockConfigRepository` …).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use crate::audit::{AuditEvent, AuditQuery, AuditRecord};
use crate::catalog::ProviderId;
use crate::chain::{ChainQuery, ChainSnapshot};
use crate::change::{ChangeOutcome, OwnerChange};
use crate::config::{ConfigWrite, NewProviderConfig, ProviderConfig, TestRecord};
use crate::document::StoredDocument;
use crate::error::Result;
use crate::forward::{ForwardFailure, ForwardRequest, ForwardResponse};
use crate::owner::Owner;
use crate::probe::{ProbeOutcome, ProbeRequest};
use crate::secret::{SealedSecret, SecretBinding, SecretValue};
use crate::task::{TaskAssignment, TaskName};
use crate::values::{ConfigId, Timestamp};

/// Storage of provider configs.
///
/// Every method fails with `Unavailable` when the store cannot be reached and `Internal` when
/// a stored row cannot be decoded. Rows of other owners are invisible: looking one up by id
/// under the wrong owner behaves exactly like a missing row.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ConfigRepository: Send + Sync + 'static {
    /// All configs of `owner`, ordered by id.
    async fn list(&self, owner: &Owner) -> Result<Vec<ProviderConfig>>;

    /// The config `id` of `owner`; `Ok(None)` when absent or owned by someone else.
    async fn get(&self, owner: &Owner, id: ConfigId) -> Result<Option<ProviderConfig>>;

    /// The config of `owner` for `provider`, if any.
    async fn find_by_provider(
        &self,
        owner: &Owner,
        provider: ProviderId,
    ) -> Result<Option<ProviderConfig>>;

    /// The default config of `owner`, if any.
    async fn find_default(&self, owner: &Owner) -> Result<Option<ProviderConfig>>;

    /// Inserts a config with version 1. It becomes the owner's default when it is enabled and
    /// either `make_default` is set or the owner has no other config; any other default of the
    /// owner is cleared in the same transaction, serialised per owner so concurrent callers
    /// never see a uniqueness error nor leave two defaults.
    ///
    /// `Conflict` when the owner already has a config for the provider.
    async fn insert(&self, config: NewProviderConfig) -> Result<ProviderConfig>;

    /// Replaces the mutable fields of a config, bumps its version and sets `updated_at`.
    /// A disabled config loses the default flag; `make_default` on an enabled config makes it
    /// the default atomically (as [`ConfigRepository::set_default`]).
    ///
    /// `NotFound` when the owner has no such config; `Conflict` when its version is no longer
    /// `expected_version`.
    async fn update(&self, write: ConfigWrite) -> Result<ProviderConfig>;

    /// Makes the config the owner's default and clears the flag on the owner's other configs,
    /// in one transaction serialised per owner. Bumps the version and `updated_at`.
    ///
    /// `NotFound` when the owner has no such config; `Conflict` when it is disabled.
    async fn set_default(
        &self,
        owner: &Owner,
        id: ConfigId,
        now: Timestamp,
    ) -> Result<ProviderConfig>;

    /// Deletes the config; if it was the default, no other config is promoted.
    ///
    /// `NotFound` when the owner has no such config.
    async fn delete(&self, owner: &Owner, id: ConfigId) -> Result<()>;

    /// Applies every step of `change` (then its document write) in ONE transaction,
    /// serialised per owner with every other write to that owner, across processes: either
    /// all of it lands or none of it does. Returns the owner's configs afterwards.
    ///
    /// Fails with the first failing step's error (see [`ChangeStep`](crate::change::ChangeStep)),
    /// `Conflict` for a document whose version moved, and `Internal` when a step's config
    /// belongs to another owner.
    async fn apply(&self, change: OwnerChange) -> Result<ChangeOutcome>;

    /// The enabled configs and the task's assignments of the chain's owners, in one query
    /// or one read-only transaction (a resolution reads the store once).
    async fn load_chain(&self, query: ChainQuery) -> Result<ChainSnapshot>;

    /// Stores the outcome of the last connection test without bumping the version.
    ///
    /// `NotFound` when the owner has no such config.
    async fn record_test(&self, owner: &Owner, id: ConfigId, record: TestRecord) -> Result<()>;

    /// A page of configs of every owner, ordered by id, after `after` (for key rotation).
    async fn page_all(&self, after: Option<ConfigId>, limit: u32) -> Result<Vec<ProviderConfig>>;

    /// Swaps the sealed bytes of some secret fields (hints unchanged, version not bumped) if
    /// the config is still at `version`. `Ok(false)` when the version moved or the row is gone.
    async fn replace_sealed(
        &self,
        id: ConfigId,
        version: i64,
        sealed: BTreeMap<String, SealedSecret>,
    ) -> Result<bool>;
}

/// Storage of task → provider + model assignments.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TaskAssignmentRepository: Send + Sync + 'static {
    /// The owner's assignments ordered by task name.
    async fn list(&self, owner: &Owner) -> Result<Vec<TaskAssignment>>;

    /// Inserts or replaces each assignment by task name, atomically.
    async fn upsert(
        &self,
        owner: &Owner,
        assignments: Vec<TaskAssignment>,
        now: Timestamp,
    ) -> Result<()>;

    /// Removes one assignment; `Ok(false)` when there was none.
    async fn delete(&self, owner: &Owner, task: &TaskName) -> Result<bool>;
}

/// Storage of the per-owner settings document.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SettingsDocumentRepository: Send + Sync + 'static {
    /// The owner's document, if one was ever stored.
    async fn get(&self, owner: &Owner) -> Result<Option<StoredDocument>>;

    /// Stores a document. With `expected_version: None` the owner must have none yet; with
    /// `Some(v)` the stored one must still be at `v`. Otherwise `Conflict`.
    async fn put(
        &self,
        owner: &Owner,
        document: Value,
        expected_version: Option<i64>,
        now: Timestamp,
    ) -> Result<StoredDocument>;
}

/// Append-only audit trail.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends one event.
    async fn record(&self, event: AuditEvent) -> Result<()>;

    /// Appends several events in one statement (the gateway's batched writes).
    async fn record_many(&self, events: Vec<AuditEvent>) -> Result<()>;

    /// The events matching `query`, highest id first, at most `query.limit`.
    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditRecord>>;

    /// Deletes at most `batch` events older than `before`, oldest first; returns how many
    /// were deleted (fewer than `batch` means none older remain).
    async fn prune(&self, before: Timestamp, batch: u32) -> Result<u64>;
}

/// Seals secrets at rest, bound to the row and field they belong to.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait SecretCipher: Send + Sync + 'static {
    /// Seals under the active key. `Internal` if sealing itself fails.
    fn seal(&self, value: &SecretValue, binding: &SecretBinding) -> Result<SealedSecret>;

    /// Opens a sealed secret. `SecretUnreadable` when the key is unknown, the bytes were
    /// changed, or the binding differs from the one it was sealed with.
    fn open(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SecretValue>;

    /// Whether the envelope is sealed under the active key.
    fn is_current(&self, sealed: &SealedSecret) -> bool;

    /// Re-seals under the active key. Errors as [`SecretCipher::open`].
    fn rewrap(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SealedSecret>;
}

/// Tests credentials against a provider. Never fails: every failure is an outcome class.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ProviderProbe: Send + Sync + 'static {
    /// Calls the provider once (or a few pages) within the probe deadline.
    async fn probe(&self, request: ProbeRequest) -> ProbeOutcome;
}

/// Forwards calls to providers with a resolved credential: the gateway's outbound side, the
/// same adapter and outbound policy as [`ProviderProbe`].
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ProviderClient: Send + Sync + 'static {
    /// Sends `request` under the outbound policy (resolve once, connect to the checked
    /// address, no redirects, private addresses only where allowed), injecting the credential
    /// the provider's way, and returns once the status and headers arrived; the body streams.
    /// Dropping the response or the future cancels the upstream request.
    ///
    /// `Blocked` when the policy refuses the target (nothing is sent), `Timeout` when no
    /// connection or first byte came within its limit, `Unreachable` when the provider could
    /// not be reached, `Invalid` when the request cannot be built for the provider.
    async fn forward(
        &self,
        request: ForwardRequest,
    ) -> std::result::Result<ForwardResponse, ForwardFailure>;
}

/// Audit events that must not wait for the store (gateway calls): the adapter writes them in
/// batches off the request's path. Never fails; events lost to a store outage are logged.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait AuditQueue: Send + Sync + 'static {
    /// Queues one event.
    fn submit(&self, event: AuditEvent);
}

/// The current time.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::new(time::OffsetDateTime::now_utc())
    }
}
