//! A unit of work on one owner's settings: every write of a workflow, landed together.
//!
//! Use cases read the owner's state, decide every write (with the versions they read), and
//! hand the whole plan to [`ConfigRepository::apply`](crate::ports::ConfigRepository::apply):
//! the store runs it in ONE transaction serialised per owner, so either everything lands or
//! nothing does, across processes. A step whose precondition no longer holds fails the whole
//! change with `Conflict`; the use case then reads again and replans.

use serde_json::Value;

use crate::config::{ConfigWrite, NewProviderConfig, ProviderConfig};
use crate::document::StoredDocument;
use crate::owner::Owner;
use crate::values::{ConfigId, Timestamp};

/// One write to one of the owner's configs, in the order given.
#[derive(Debug, Clone)]
pub enum ChangeStep {
    /// Fails the change with `Conflict` when the owner already has a default config (the
    /// admin API's "one active configuration per scope").
    RequireNoDefault,
    /// Inserts a config as [`ConfigRepository::insert`](crate::ports::ConfigRepository::insert)
    /// does; `Conflict` when the owner already has one for the provider.
    Insert(NewProviderConfig),
    /// Replaces a config as [`ConfigRepository::update`](crate::ports::ConfigRepository::update)
    /// does; `NotFound` or `Conflict` (version moved).
    Update(ConfigWrite),
    /// Deletes a config (promoting nothing); `NotFound` when absent, `Conflict` when its
    /// version is no longer `expected_version`.
    Delete { id: ConfigId, expected_version: i64 },
    /// Makes a config the default, clearing the others; `NotFound`, or `Conflict` when it is
    /// disabled.
    SetDefault { id: ConfigId },
}

/// A new settings document for the owner, guarded like
/// [`SettingsDocumentRepository::put`](crate::ports::SettingsDocumentRepository::put).
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentWrite {
    pub document: Value,
    /// `None`: the owner must have no document yet; `Some(v)`: it must still be at `v`.
    pub expected_version: Option<i64>,
}

/// Every write of one workflow on one owner.
#[derive(Debug, Clone)]
pub struct OwnerChange {
    pub owner: Owner,
    /// Applied in order; each step's config belongs to `owner`.
    pub steps: Vec<ChangeStep>,
    pub document: Option<DocumentWrite>,
    /// `updated_at` of what set-default and document writes touch.
    pub now: Timestamp,
}

impl OwnerChange {
    /// An empty change of `owner`.
    pub fn new(owner: Owner, now: Timestamp) -> Self {
        Self {
            owner,
            steps: Vec::new(),
            document: None,
            now,
        }
    }

    /// Whether the change writes nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.document.is_none()
    }
}

/// The owner's state after a change landed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeOutcome {
    /// All of the owner's configs after the change, ordered by id.
    pub configs: Vec<ProviderConfig>,
    /// The document written, when the change wrote one.
    pub document: Option<StoredDocument>,
}
