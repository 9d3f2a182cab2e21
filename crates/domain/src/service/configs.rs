//! Create, change, delete and list provider configs; the default-provider invariant.

use std::collections::BTreeMap;

use super::credentials::{check_stored_key_destination, Credentials};
use super::SettingsService;
use crate::actor::{Access, Actor};
use crate::audit::AuditAction;
use crate::catalog::ProviderId;
use crate::change::ChangeStep;
use crate::config::{ConfigPatch, ConfigWrite, NewProviderConfig, ProviderConfig};
use crate::error::{Error, Result};
use crate::mask::SecretHints;
use crate::owner::Owner;
use crate::secret::{SecretBinding, StoredSecret};
use crate::values::{BaseUrl, ConfigId, ModelName, Timestamp};

/// Create-or-update of the owner's config for one provider.
#[derive(Debug, Clone)]
pub struct UpsertRequest {
    pub provider: ProviderId,
    /// The fields to set.
    pub changes: ConfigPatch,
    /// Make the config the owner's default.
    pub make_default: bool,
}

/// Whether an upsert created a new config or changed the existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created(ProviderConfig),
    Updated(ProviderConfig),
}

impl UpsertOutcome {
    /// The resulting config.
    pub fn config(&self) -> &ProviderConfig {
        match self {
            Self::Created(c) | Self::Updated(c) => c,
        }
    }

    /// The resulting config, owned.
    pub fn into_config(self) -> ProviderConfig {
        match self {
            Self::Created(c) | Self::Updated(c) => c,
        }
    }
}

/// The mutable fields of a config after a change was applied.
pub(crate) struct Applied {
    secrets: BTreeMap<String, StoredSecret>,
    settings: BTreeMap<String, String>,
    model: Option<ModelName>,
    base_url: Option<BaseUrl>,
    enabled: bool,
}

impl SettingsService {
    /// The owner's configs, ordered by id.
    pub async fn list_configs(&self, actor: &Actor, owner: &Owner) -> Result<Vec<ProviderConfig>> {
        actor.authorize(owner, Access::Read)?;
        self.ports.configs.list(owner).await
    }

    /// One config of the owner; `NotFound` for absent ids and other owners' ids alike.
    pub async fn get_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        id: ConfigId,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Read)?;
        self.load(owner, id).await
    }

    /// The owner's config for a provider, if any.
    pub async fn find_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        provider: ProviderId,
    ) -> Result<Option<ProviderConfig>> {
        actor.authorize(owner, Access::Read)?;
        self.ports.configs.find_by_provider(owner, provider).await
    }

    /// The owner's default config, if any.
    pub async fn default_config(
        &self,
        actor: &Actor,
        owner: &Owner,
    ) -> Result<Option<ProviderConfig>> {
        actor.authorize(owner, Access::Read)?;
        self.ports.configs.find_default(owner).await
    }

    pub(crate) async fn load(&self, owner: &Owner, id: ConfigId) -> Result<ProviderConfig> {
        self.ports
            .configs
            .get(owner, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("config {id}")))
    }

    /// Creates the owner's config for a provider, or updates it if one exists (keeping its id
    /// and `created_at`). The owner's first config becomes its default. A config deleted
    /// while this runs is simply created again.
    pub async fn upsert_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        request: UpsertRequest,
    ) -> Result<UpsertOutcome> {
        actor.authorize(owner, Access::Write)?;
        let result = async {
            self.catalog.ensure_offered(request.provider)?;
            self.until_settled(
                || self.upsert_once(owner, &request),
                |e| matches!(e, Error::Conflict(_) | Error::NotFound(_)),
            )
            .await
        }
        .await;
        let action = match &result {
            Ok(UpsertOutcome::Updated(_)) => AuditAction::Update,
            _ => AuditAction::Create,
        };
        self.audited(actor, owner, Some(request.provider), action, result, |o| {
            Some(o.config().id)
        })
        .await
    }

    async fn upsert_once(&self, owner: &Owner, request: &UpsertRequest) -> Result<UpsertOutcome> {
        let existing = self
            .ports
            .configs
            .find_by_provider(owner, request.provider)
            .await?;
        let step = self.upsert_step(owner, request, existing.as_ref())?;
        match step {
            ChangeStep::Update(write) => self
                .ports
                .configs
                .update(write)
                .await
                .map(UpsertOutcome::Updated),
            ChangeStep::Insert(new) => self
                .ports
                .configs
                .insert(new)
                .await
                .map(UpsertOutcome::Created),
            _ => Err(Error::Internal(
                "an upsert plans an insert or an update".into(),
            )),
        }
    }

    /// The write that creates (`existing` is `None`) or updates the provider's config.
    pub(crate) fn upsert_step(
        &self,
        owner: &Owner,
        request: &UpsertRequest,
        existing: Option<&ProviderConfig>,
    ) -> Result<ChangeStep> {
        let applied = self.apply(owner, request.provider, existing, &request.changes)?;
        if request.make_default && !applied.enabled {
            return Err(disabled_default());
        }
        let now = self.ports.clock.now();
        Ok(match existing {
            Some(current) => {
                ChangeStep::Update(write_of(current, applied, request.make_default, now))
            }
            None => ChangeStep::Insert(NewProviderConfig {
                owner: owner.clone(),
                provider: request.provider,
                secrets: applied.secrets,
                settings: applied.settings,
                model: applied.model,
                base_url: applied.base_url,
                enabled: applied.enabled,
                make_default: request.make_default,
                now,
            }),
        })
    }

    /// Creates the owner's config for a provider; `Conflict` when the owner already has one
    /// (also when another request created it a moment earlier).
    pub async fn create_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        request: UpsertRequest,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Write)?;
        let result = async {
            self.catalog.ensure_offered(request.provider)?;
            let existing = self
                .ports
                .configs
                .find_by_provider(owner, request.provider)
                .await?;
            if existing.is_some() {
                return Err(already_configured(request.provider));
            }
            match self.upsert_step(owner, &request, None)? {
                ChangeStep::Insert(new) => self.ports.configs.insert(new).await,
                _ => Err(Error::Internal("a create plans an insert".into())),
            }
        }
        .await;
        self.audited(
            actor,
            owner,
            Some(request.provider),
            AuditAction::Create,
            result,
            |c| Some(c.id),
        )
        .await
    }

    /// Partially updates a config. Its provider and default flag do not change here.
    pub async fn update_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        id: ConfigId,
        patch: ConfigPatch,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Write)?;
        let pinned = patch.expected_version.is_some();
        let result = self
            .until_settled(
                || self.update_once(owner, id, &patch),
                |e| !pinned && matches!(e, Error::Conflict(_)),
            )
            .await;
        let provider = result.as_ref().ok().map(|c| c.provider);
        self.audited(actor, owner, provider, AuditAction::Update, result, |c| {
            Some(c.id)
        })
        .await
    }

    async fn update_once(
        &self,
        owner: &Owner,
        id: ConfigId,
        patch: &ConfigPatch,
    ) -> Result<ProviderConfig> {
        let current = self.load(owner, id).await?;
        if let Some(expected) = patch.expected_version {
            if expected != current.version {
                return Err(stale(expected));
            }
        }
        let applied = self.apply(owner, current.provider, Some(&current), patch)?;
        let now = self.ports.clock.now();
        match self
            .ports
            .configs
            .update(write_of(&current, applied, false, now))
            .await
        {
            Err(Error::Conflict(_)) if patch.expected_version.is_some() => {
                Err(stale(current.version))
            }
            other => other,
        }
    }

    /// Enables or disables a config; disabling the default clears the flag.
    pub async fn set_enabled(
        &self,
        actor: &Actor,
        owner: &Owner,
        id: ConfigId,
        enabled: bool,
    ) -> Result<ProviderConfig> {
        let patch = ConfigPatch {
            enabled: Some(enabled),
            ..ConfigPatch::default()
        };
        self.update_config(actor, owner, id, patch).await
    }

    /// Makes a config the owner's default, clearing the flag on the others atomically.
    pub async fn set_default(
        &self,
        actor: &Actor,
        owner: &Owner,
        id: ConfigId,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Write)?;
        let result = async {
            let current = self.load(owner, id).await?;
            if !current.enabled {
                return Err(disabled_default());
            }
            let now = self.ports.clock.now();
            match self.ports.configs.set_default(owner, id, now).await {
                Err(Error::Conflict(_)) => Err(disabled_default()),
                other => other,
            }
        }
        .await;
        let provider = result.as_ref().ok().map(|c| c.provider);
        self.audited(
            actor,
            owner,
            provider,
            AuditAction::SetDefault,
            result,
            |c| Some(c.id),
        )
        .await
    }

    /// Deletes a config. Deleting the default promotes no other config.
    pub async fn delete_config(&self, actor: &Actor, owner: &Owner, id: ConfigId) -> Result<()> {
        actor.authorize(owner, Access::Write)?;
        let result = async {
            let current = self.load(owner, id).await?;
            self.ports.configs.delete(owner, id).await?;
            Ok(current.provider)
        }
        .await;
        let provider = result.as_ref().ok().copied();
        self.audited(actor, owner, provider, AuditAction::Delete, result, |_| {
            Some(id)
        })
        .await
        .map(|_| ())
    }

    /// Applies a change to the current state (or to nothing, for a new config): lays the sent
    /// credentials over the stored ones, enforces the provider's field rules and where a
    /// stored key may be sent, and seals the new secrets.
    pub(crate) fn apply(
        &self,
        owner: &Owner,
        provider: ProviderId,
        existing: Option<&ProviderConfig>,
        patch: &ConfigPatch,
    ) -> Result<Applied> {
        let spec = provider.spec();
        let credentials = Credentials::merge(spec, existing, &patch.secrets, &patch.settings)?;
        let model = patch
            .model
            .clone()
            .apply(existing.and_then(|c| c.model.clone()));
        let base_url = patch
            .base_url
            .clone()
            .apply(existing.and_then(|c| c.base_url.clone()));
        let enabled = patch
            .enabled
            .unwrap_or_else(|| existing.is_none_or(|c| c.enabled));
        if let Some(field) = credentials.missing_required(spec) {
            return Err(Error::invalid(
                field.name,
                format!("{} is required for provider {}", field.name, spec.id),
            ));
        }
        if spec.base_url_required && base_url.is_none() {
            return Err(Error::invalid(
                "base_url",
                format!("base_url is required for provider {}", spec.id),
            ));
        }
        if let Some(current) = existing.filter(|_| credentials.uses_stored_secret()) {
            check_stored_key_destination(spec, current, base_url.as_ref(), &credentials.settings)?;
        }
        Ok(Applied {
            secrets: self.seal_fresh(owner, provider, existing, &credentials)?,
            settings: credentials.settings,
            model,
            base_url,
            enabled,
        })
    }

    /// The stored secrets still in effect plus the new ones, sealed bound to their row.
    fn seal_fresh(
        &self,
        owner: &Owner,
        provider: ProviderId,
        existing: Option<&ProviderConfig>,
        credentials: &Credentials,
    ) -> Result<BTreeMap<String, StoredSecret>> {
        let mut secrets: BTreeMap<String, StoredSecret> = existing
            .map(|c| c.secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| credentials.kept.contains(name.as_str()))
            .collect();
        for (name, value) in &credentials.fresh {
            let binding = SecretBinding::new(owner, provider, name);
            let sealed = self.ports.cipher.seal(value, &binding)?;
            let hints = SecretHints::of(value.expose());
            secrets.insert((*name).to_owned(), StoredSecret { sealed, hints });
        }
        Ok(secrets)
    }
}

pub(crate) fn disabled_default() -> Error {
    Error::invalid("is_default", "a disabled config cannot be the default")
}

fn already_configured(provider: ProviderId) -> Error {
    Error::Conflict(format!(
        "a config for provider {provider} already exists for this owner"
    ))
}

fn stale(version: i64) -> Error {
    Error::Conflict(format!(
        "the config is no longer at version {version}; reload it and retry"
    ))
}

pub(crate) fn write_of(
    current: &ProviderConfig,
    applied: Applied,
    make_default: bool,
    now: Timestamp,
) -> ConfigWrite {
    ConfigWrite {
        id: current.id,
        owner: current.owner.clone(),
        expected_version: current.version,
        secrets: applied.secrets,
        settings: applied.settings,
        model: applied.model,
        base_url: applied.base_url,
        enabled: applied.enabled,
        make_default,
        now,
    }
}
