//! Audit events: who did what to which owner's configs, never with a secret.

use serde::{Deserialize, Serialize};

use crate::catalog::ProviderId;
use crate::owner::{InstanceId, Owner, UserId};
use crate::values::{ConfigId, Timestamp};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    SetDefault,
    Test,
    Decrypt,
    Rewrap,
    TaskAssignments,
    DocumentUpdate,
    /// A service resolved a credential on behalf of a user or instance.
    Resolve,
    /// A call was forwarded to a provider through the gateway.
    Gateway,
}

impl AuditAction {
    /// Stable storage name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::SetDefault => "set_default",
            Self::Test => "test",
            Self::Decrypt => "decrypt",
            Self::Rewrap => "rewrap",
            Self::TaskAssignments => "task_assignments",
            Self::DocumentUpdate => "document_update",
            Self::Resolve => "resolve",
            Self::Gateway => "gateway",
        }
    }

    /// Every action, in the order of the list above.
    pub const ALL: [Self; 11] = [
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::SetDefault,
        Self::Test,
        Self::Decrypt,
        Self::Rewrap,
        Self::TaskAssignments,
        Self::DocumentUpdate,
        Self::Resolve,
        Self::Gateway,
    ];

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

/// How it ended: `success`, or the error or failure code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "code")]
pub enum AuditOutcome {
    Success,
    Failure(String),
}

impl AuditOutcome {
    /// Storage form: `success` or the failure code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "success",
            Self::Failure(code) => code,
        }
    }

    /// Rebuilds from the storage form.
    pub fn parse(value: &str) -> Self {
        if value == "success" {
            Self::Success
        } else {
            Self::Failure(value.to_owned())
        }
    }
}

/// Figures of a call made with a credential (gateway calls, connection tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallStats {
    pub latency_ms: u64,
    /// The provider's HTTP status, when it answered.
    pub upstream_status: Option<u16>,
    /// Bytes of the request body sent upstream.
    pub request_bytes: u64,
    /// Bytes of the response body sent back to the client.
    pub response_bytes: u64,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// The acting subject (`sub` claim) or a system actor such as `system:rewrap`.
    pub actor: String,
    /// The user a service (or the gateway) acted for, when it acted for one.
    pub on_behalf_of: Option<UserId>,
    /// The tenant instance the call was made in, when it was made in one.
    pub instance: Option<InstanceId>,
    /// Whose settings were read or changed: for resolutions and gateway calls, the owner whose
    /// credential was used (or the most specific owner asked for, when none was found).
    pub owner: Owner,
    pub provider: Option<ProviderId>,
    pub config_id: Option<ConfigId>,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub at: Timestamp,
    /// Latency, upstream status and byte counts of a call, when one was made.
    pub call: Option<CallStats>,
}

impl AuditEvent {
    /// An event of `actor` on `owner` with no call figures, on-behalf-of user or instance.
    pub fn new(
        actor: impl Into<String>,
        owner: Owner,
        action: AuditAction,
        outcome: AuditOutcome,
        at: Timestamp,
    ) -> Self {
        Self {
            actor: actor.into(),
            on_behalf_of: None,
            instance: None,
            owner,
            provider: None,
            config_id: None,
            action,
            outcome,
            at,
            call: None,
        }
    }
}

/// A stored audit event with its id (ids grow with every event; the cursor of listings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub event: AuditEvent,
}

/// One page of audit events, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// The `before_id` that reads the next page; `None` when this page is the last.
    pub next_before_id: Option<i64>,
}

/// Whose events a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditScope {
    /// Every event (superadmins).
    All,
    /// Events on the user's own settings and calls made on their behalf.
    User(UserId),
    /// Events on the instance's settings and calls made in the instance.
    Instance(InstanceId),
}

/// A page of audit events, newest (highest id) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub scope: AuditScope,
    /// Only events on this owner.
    pub owner: Option<Owner>,
    /// Only events of this actor.
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub provider: Option<ProviderId>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events before this time.
    pub until: Option<Timestamp>,
    /// Only events with an id below this one (the previous page's last id).
    pub before_id: Option<i64>,
    /// Most events returned.
    pub limit: u32,
}

impl AuditQuery {
    /// The newest `limit` events visible in `scope`, unfiltered.
    pub fn newest(scope: AuditScope, limit: u32) -> Self {
        Self {
            scope,
            owner: None,
            actor: None,
            action: None,
            provider: None,
            since: None,
            until: None,
            before_id: None,
            limit,
        }
    }
}
