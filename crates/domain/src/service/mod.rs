//! The use cases, as one service over the ports.
//!
//! Every method takes the calling [`Actor`] and the [`Owner`] it acts on and checks
//! authorization first, so transports cannot forget it.

mod active;
mod configs;
mod connection;
mod credentials;
mod gateway;
mod plan;
mod resolve;
mod rewrap;
mod settings;
mod tasks;
mod trail;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use crate::actor::Actor;
use crate::audit::{AuditAction, AuditEvent, AuditOutcome};
use crate::catalog::{Catalog, ProviderId};
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::ports::{
    AuditLog, AuditQueue, Clock, ConfigRepository, ProviderClient, ProviderProbe, SecretCipher,
    SettingsDocumentRepository, TaskAssignmentRepository,
};
use crate::values::ConfigId;

pub use configs::{UpsertOutcome, UpsertRequest};
pub use connection::{ConnectionTest, ConnectionTestResult};
pub use gateway::{GatewayAnswer, GatewayCall};
pub use resolve::{choose, Resolution, ResolveRequest, ResolvedCredential, ResolvedSource};
pub use rewrap::RewrapReport;
pub use settings::{SettingsUpdate, SettingsView};
pub use trail::MAX_AUDIT_PAGE;

/// The adapters a [`SettingsService`] runs on.
#[derive(Clone)]
pub struct Ports {
    pub configs: Arc<dyn ConfigRepository>,
    pub tasks: Arc<dyn TaskAssignmentRepository>,
    pub documents: Arc<dyn SettingsDocumentRepository>,
    pub audit: Arc<dyn AuditLog>,
    pub cipher: Arc<dyn SecretCipher>,
    pub probe: Arc<dyn ProviderProbe>,
    /// Forwards gateway calls (the same outbound adapter as `probe`).
    pub client: Arc<dyn ProviderClient>,
    /// Audit events written in batches off the request path (gateway calls).
    pub audit_queue: Arc<dyn AuditQueue>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}

/// Every use case of the service.
#[derive(Debug, Clone)]
pub struct SettingsService {
    ports: Ports,
    catalog: Catalog,
}

/// How many times a write that lost an optimistic race is tried before giving up.
const WRITE_ATTEMPTS: usize = 8;

impl SettingsService {
    /// A service over these adapters, offering the providers of `catalog`.
    pub fn new(ports: Ports, catalog: Catalog) -> Self {
        Self { ports, catalog }
    }

    /// The providers this deployment offers.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs a read-decide-write attempt again while it loses a race (`lost_race`), so a
    /// concurrent change is seen and planned around; gives up with `Conflict` after
    /// [`WRITE_ATTEMPTS`].
    async fn until_settled<T, Fut>(
        &self,
        mut attempt: impl FnMut() -> Fut,
        lost_race: impl Fn(&Error) -> bool,
    ) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            match attempt().await {
                Err(err) if lost_race(&err) => continue,
                other => return other,
            }
        }
        Err(Error::Conflict(
            "the settings were changed concurrently too often; retry the request".into(),
        ))
    }

    /// Records an audit event of `actor` on `owner`.
    async fn audit(
        &self,
        actor: &Actor,
        owner: &Owner,
        provider: Option<ProviderId>,
        config_id: Option<ConfigId>,
        action: AuditAction,
        outcome: AuditOutcome,
    ) {
        self.audit_as(
            actor.subject.as_str(),
            owner,
            provider,
            config_id,
            action,
            outcome,
        )
        .await;
    }

    async fn audit_as(
        &self,
        actor: &str,
        owner: &Owner,
        provider: Option<ProviderId>,
        config_id: Option<ConfigId>,
        action: AuditAction,
        outcome: AuditOutcome,
    ) {
        let event = AuditEvent {
            provider,
            config_id,
            ..AuditEvent::new(
                actor,
                owner.clone(),
                action,
                outcome,
                self.ports.clock.now(),
            )
        };
        self.record(event).await;
    }

    /// Records one audit event; a store failure is logged, not returned, because what the
    /// event describes has already happened.
    async fn record(&self, event: AuditEvent) {
        let action = event.action;
        if let Err(err) = self.ports.audit.record(event).await {
            tracing::warn!(
                code = err.code(),
                action = action.as_str(),
                "audit event not recorded"
            );
        }
    }

    /// Audits the result of a change and passes it through.
    async fn audited<T>(
        &self,
        actor: &Actor,
        owner: &Owner,
        provider: Option<ProviderId>,
        action: AuditAction,
        result: Result<T>,
        id_of: impl Fn(&T) -> Option<ConfigId>,
    ) -> Result<T> {
        let (config_id, outcome) = match &result {
            Ok(value) => (id_of(value), AuditOutcome::Success),
            Err(err) => (None, AuditOutcome::Failure(err.code().to_owned())),
        };
        self.audit(actor, owner, provider, config_id, action, outcome)
            .await;
        result
    }
}
