//! A workflow's writes, planned from what was read, landed in one store transaction and
//! audited one event per write.

use super::SettingsService;
use crate::actor::Actor;
use crate::audit::{AuditAction, AuditOutcome};
use crate::catalog::ProviderId;
use crate::change::{ChangeOutcome, ChangeStep, DocumentWrite, OwnerChange};
use crate::config::ProviderConfig;
use crate::error::Result;
use crate::owner::Owner;
use crate::values::{ConfigId, Timestamp};

/// What one write of a plan records in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlannedEvent {
    action: AuditAction,
    provider: Option<ProviderId>,
    /// Unknown for inserts until the change landed.
    config_id: Option<ConfigId>,
}

/// The writes of one workflow on one owner, with their audit events.
#[derive(Debug)]
pub(crate) struct Plan {
    change: OwnerChange,
    events: Vec<PlannedEvent>,
}

impl Plan {
    /// Nothing planned yet on `owner`.
    pub fn new(owner: &Owner, now: Timestamp) -> Self {
        Self {
            change: OwnerChange::new(owner.clone(), now),
            events: Vec::new(),
        }
    }

    /// Fails the whole change if the owner has a default config by the time it lands.
    pub fn require_no_default(&mut self) {
        self.change.steps.push(ChangeStep::RequireNoDefault);
    }

    /// Creates or updates `provider`'s config (`step` is an insert or an update).
    pub fn upsert(&mut self, provider: ProviderId, step: ChangeStep) {
        let (action, config_id) = match &step {
            ChangeStep::Update(write) => (AuditAction::Update, Some(write.id)),
            _ => (AuditAction::Create, None),
        };
        self.push(step, action, Some(provider), config_id);
    }

    /// Deletes a config, if it is still at the version read.
    pub fn delete(&mut self, config: &ProviderConfig) {
        let step = ChangeStep::Delete {
            id: config.id,
            expected_version: config.version,
        };
        self.push(
            step,
            AuditAction::Delete,
            Some(config.provider),
            Some(config.id),
        );
    }

    /// Makes a config the owner's default.
    pub fn set_default(&mut self, config: &ProviderConfig) {
        let step = ChangeStep::SetDefault { id: config.id };
        self.push(
            step,
            AuditAction::SetDefault,
            Some(config.provider),
            Some(config.id),
        );
    }

    /// Writes the owner's settings document.
    pub fn document(&mut self, write: DocumentWrite) {
        self.change.document = Some(write);
        self.events.push(PlannedEvent {
            action: AuditAction::DocumentUpdate,
            provider: None,
            config_id: None,
        });
    }

    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.change.is_empty()
    }

    fn push(
        &mut self,
        step: ChangeStep,
        action: AuditAction,
        provider: Option<ProviderId>,
        config_id: Option<ConfigId>,
    ) {
        self.change.steps.push(step);
        self.events.push(PlannedEvent {
            action,
            provider,
            config_id,
        });
    }
}

/// A landed plan: the owner's state afterwards and what to audit.
#[derive(Debug)]
pub(crate) struct Landed {
    pub outcome: ChangeOutcome,
    events: Vec<PlannedEvent>,
}

impl Landed {
    /// A plan with nothing to write: the owner's configs as read.
    pub fn unchanged(configs: Vec<ProviderConfig>) -> Self {
        Self {
            outcome: ChangeOutcome {
                configs,
                document: None,
            },
            events: Vec::new(),
        }
    }
}

impl SettingsService {
    /// Lands every write of `plan` in one store transaction.
    pub(crate) async fn land(&self, plan: Plan) -> Result<Landed> {
        let outcome = self.ports.configs.apply(plan.change).await?;
        Ok(Landed {
            outcome,
            events: plan.events,
        })
    }

    /// Audits each write of a landed plan, or one failure of `action` when it did not land.
    pub(crate) async fn audit_landed(
        &self,
        actor: &Actor,
        owner: &Owner,
        action: AuditAction,
        provider: Option<ProviderId>,
        result: &Result<Landed>,
    ) {
        let landed = match result {
            Ok(landed) => landed,
            Err(err) => {
                let outcome = AuditOutcome::Failure(err.code().to_owned());
                return self
                    .audit(actor, owner, provider, None, action, outcome)
                    .await;
            }
        };
        for event in &landed.events {
            let config_id = event.config_id.or_else(|| {
                let provider = event.provider?;
                landed.outcome.config_of(provider).map(|c| c.id)
            });
            self.audit(
                actor,
                owner,
                event.provider,
                config_id,
                event.action,
                AuditOutcome::Success,
            )
            .await;
        }
    }
}

impl ChangeOutcome {
    /// The owner's config for `provider` after the change.
    pub fn config_of(&self, provider: ProviderId) -> Option<&ProviderConfig> {
        self.configs.iter().find(|c| c.provider == provider)
    }
}
