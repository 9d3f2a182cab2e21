//! Audit events: who did what to which owner's configs, never with a secret.

use serde::{Deserialize, Serialize};

use crate::catalog::ProviderId;
use crate::owner::Owner;
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
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Create,
            Self::Update,
            Self::Delete,
            Self::SetDefault,
            Self::Test,
            Self::Decrypt,
            Self::Rewrap,
            Self::TaskAssignments,
            Self::DocumentUpdate,
        ]
        .into_iter()
        .find(|a| a.as_str() == value)
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

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// The acting subject (`sub` claim) or a system actor such as `system:rewrap`.
    pub actor: String,
    pub owner: Owner,
    pub provider: Option<ProviderId>,
    pub config_id: Option<ConfigId>,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub at: Timestamp,
}
