//! The admin API's "active configuration" of an owner: its default config, one per owner.
//!
//! A config's provider never changes in place: its secrets are sealed bound to the provider, so
//! a key stored for one provider cannot be opened as another's. Moving the active
//! configuration to another provider therefore creates (or updates) the target provider's
//! config as the default and deletes the old one — in one store transaction.

use super::plan::{Landed, Plan};
use super::{SettingsService, UpsertRequest};
use crate::actor::{Access, Actor};
use crate::audit::AuditAction;
use crate::catalog::ProviderId;
use crate::config::{ConfigPatch, ProviderConfig};
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::values::ConfigId;

impl SettingsService {
    /// Creates the owner's active configuration: `request.provider`'s config (created, or
    /// updated if the owner has a non-default one) as the owner's default.
    ///
    /// `Conflict` when the owner already has a default — also when a concurrent request made
    /// one first: the check is repeated inside the store's per-owner transaction, so of many
    /// concurrent creations exactly one succeeds, across processes.
    pub async fn create_active_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        request: UpsertRequest,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Write)?;
        let request = UpsertRequest {
            make_default: true,
            ..request
        };
        let result = async {
            self.catalog.ensure_offered(request.provider)?;
            self.until_settled(
                || self.create_active_once(owner, &request),
                |e| matches!(e, Error::Conflict(_)) && *e != active_exists(),
            )
            .await
        }
        .await;
        self.audit_landed(
            actor,
            owner,
            AuditAction::Create,
            Some(request.provider),
            &result,
        )
        .await;
        configured(result?, request.provider)
    }

    async fn create_active_once(&self, owner: &Owner, request: &UpsertRequest) -> Result<Landed> {
        if self.ports.configs.find_default(owner).await?.is_some() {
            return Err(active_exists());
        }
        let mut plan = Plan::new(owner, self.ports.clock.now());
        plan.require_no_default();
        self.plan_upsert(&mut plan, owner, request).await?;
        self.land(plan).await
    }

    /// Moves config `id` of `owner` to provider `to`, applying `changes` (secrets, model, base
    /// URL, settings) to the target. Nothing of the old config is carried over: its key is
    /// bound to the old provider and its model and endpoint belong to it.
    ///
    /// When `to` is the config's own provider this is a plain [`SettingsService::update_config`].
    /// Otherwise the target's primary secret must be in `changes` unless the target provider
    /// needs none (`Validation` naming that field); in one transaction the target becomes the
    /// owner's default (created, or updated if the owner already has a config for it) and the
    /// old config is deleted. `NotFound` when the owner has no config `id`.
    pub async fn switch_provider(
        &self,
        actor: &Actor,
        owner: &Owner,
        id: ConfigId,
        to: ProviderId,
        changes: ConfigPatch,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Write)?;
        if self.load(owner, id).await?.provider == to {
            return self.update_config(actor, owner, id, changes).await;
        }
        let request = UpsertRequest {
            provider: to,
            changes,
            make_default: true,
        };
        let result = async {
            self.catalog.ensure_offered(to)?;
            require_primary_secret(&request)?;
            self.until_settled(
                || self.switch_once(owner, id, &request),
                |e| matches!(e, Error::Conflict(_)),
            )
            .await
        }
        .await;
        self.audit_landed(actor, owner, AuditAction::Update, Some(to), &result)
            .await;
        configured(result?, to)
    }

    async fn switch_once(
        &self,
        owner: &Owner,
        id: ConfigId,
        request: &UpsertRequest,
    ) -> Result<Landed> {
        let current = self.load(owner, id).await?;
        let mut plan = Plan::new(owner, self.ports.clock.now());
        self.plan_upsert(&mut plan, owner, request).await?;
        plan.delete(&current);
        self.land(plan).await
    }

    /// Plans creating or updating the request's provider config, as the owner has it now.
    async fn plan_upsert(
        &self,
        plan: &mut Plan,
        owner: &Owner,
        request: &UpsertRequest,
    ) -> Result<()> {
        let existing = self
            .ports
            .configs
            .find_by_provider(owner, request.provider)
            .await?;
        plan.upsert(
            request.provider,
            self.upsert_step(owner, request, existing.as_ref())?,
        );
        Ok(())
    }
}

/// Moving to a provider that needs a key needs that key: a stored key belongs to its provider.
fn require_primary_secret(request: &UpsertRequest) -> Result<()> {
    let spec = request.provider.spec();
    let Some(key) = spec.primary_secret().filter(|f| f.required) else {
        return Ok(());
    };
    let given = request
        .changes
        .secrets
        .get(key.name)
        .is_some_and(|value| value.is_some());
    if given {
        return Ok(());
    }
    Err(Error::invalid(
        key.name,
        format!(
            "changing the provider to {} requires its {} (a stored key belongs to its provider)",
            spec.id, key.name
        ),
    ))
}

fn active_exists() -> Error {
    Error::Conflict(
        "Configuration already exists for this scope; change it with PATCH or delete it first"
            .into(),
    )
}

/// The provider's config in a landed change.
fn configured(landed: Landed, provider: ProviderId) -> Result<ProviderConfig> {
    landed
        .outcome
        .config_of(provider)
        .cloned()
        .ok_or_else(|| Error::Internal(format!("the {provider} config is missing after its write")))
}
