//! Create, change, delete and list provider configs; the default-provider invariant.

use std::collections::BTreeMap;

use super::{SettingsService, WRITE_ATTEMPTS};
use crate::actor::{Access, Actor};
use crate::audit::AuditAction;
use crate::catalog::{ProviderId, ProviderSpec};
use crate::config::{ConfigPatch, ConfigWrite, NewProviderConfig, ProviderConfig};
use crate::error::{Error, Result};
use crate::mask::{looks_masked, SecretHints};
use crate::owner::Owner;
use crate::secret::{SecretBinding, SecretValue, StoredSecret};
use crate::values::{BaseUrl, ConfigId, ModelName};

/// Longest accepted secret value (a service-account JSON is a few KiB).
pub const MAX_SECRET_BYTES: usize = 32 * 1024;
/// Longest accepted non-secret credential field.
pub const MAX_SETTING_BYTES: usize = 1024;

/// Create-or-update of the owner's config for one provider.
#[derive(Debug, Clone)]
pub struct UpsertRequest {
    pub provider: ProviderId,
    /// The fields to set; its `provider` and `is_default` must be unset.
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
struct Applied {
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

    async fn load(&self, owner: &Owner, id: ConfigId) -> Result<ProviderConfig> {
        self.ports
            .configs
            .get(owner, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("config {id}")))
    }

    /// Creates the owner's config for a provider, or updates it if one exists (keeping its id
    /// and `created_at`). The owner's first config becomes its default.
    pub async fn upsert_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        request: UpsertRequest,
    ) -> Result<UpsertOutcome> {
        actor.authorize(owner, Access::Write)?;
        let provider = request.provider;
        let result = self.upsert_inner(owner, request).await;
        let action = match &result {
            Ok(UpsertOutcome::Updated(_)) => AuditAction::Update,
            _ => AuditAction::Create,
        };
        self.audited(actor, owner, Some(provider), action, result, |o| {
            Some(o.config().id)
        })
        .await
    }

    async fn upsert_inner(&self, owner: &Owner, request: UpsertRequest) -> Result<UpsertOutcome> {
        let UpsertRequest {
            provider,
            changes,
            make_default,
        } = request;
        self.catalog.ensure_offered(provider)?;
        reject_immutable(&changes)?;
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self.ports.configs.find_by_provider(owner, provider).await?;
            let applied = self.apply(owner, provider, existing.as_ref(), &changes)?;
            if make_default && !applied.enabled {
                return Err(disabled_default());
            }
            let now = self.ports.clock.now();
            let result = match existing {
                None => self
                    .ports
                    .configs
                    .insert(NewProviderConfig {
                        owner: owner.clone(),
                        provider,
                        secrets: applied.secrets,
                        settings: applied.settings,
                        model: applied.model,
                        base_url: applied.base_url,
                        enabled: applied.enabled,
                        make_default,
                        now,
                    })
                    .await
                    .map(UpsertOutcome::Created),
                Some(current) => self
                    .ports
                    .configs
                    .update(write_of(&current, applied, make_default, now))
                    .await
                    .map(UpsertOutcome::Updated),
            };
            match result {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(Error::Conflict(
            "the config was changed concurrently; retry the request".into(),
        ))
    }

    /// Partially updates a config. Its provider and default flag cannot change here.
    pub async fn update_config(
        &self,
        actor: &Actor,
        owner: &Owner,
        id: ConfigId,
        patch: ConfigPatch,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Write)?;
        let result = self.update_inner(owner, id, &patch).await;
        let provider = result.as_ref().ok().map(|c| c.provider);
        self.audited(actor, owner, provider, AuditAction::Update, result, |c| {
            Some(c.id)
        })
        .await
    }

    async fn update_inner(
        &self,
        owner: &Owner,
        id: ConfigId,
        patch: &ConfigPatch,
    ) -> Result<ProviderConfig> {
        reject_immutable(patch)?;
        for _ in 0..WRITE_ATTEMPTS {
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
                Err(Error::Conflict(_)) if patch.expected_version.is_none() => continue,
                Err(Error::Conflict(_)) => return Err(stale(current.version)),
                other => return other,
            }
        }
        Err(Error::Conflict(
            "the config was changed concurrently; retry the request".into(),
        ))
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

    /// Applies a change to the current state (or to nothing, for a new config), sealing new
    /// secrets and enforcing every per-field rule of the provider.
    fn apply(
        &self,
        owner: &Owner,
        provider: ProviderId,
        existing: Option<&ProviderConfig>,
        patch: &ConfigPatch,
    ) -> Result<Applied> {
        let spec = provider.spec();
        let mut secrets = existing.map(|c| c.secrets.clone()).unwrap_or_default();
        let mut settings = existing.map(|c| c.settings.clone()).unwrap_or_default();
        let mut fresh_secrets = Vec::new();

        for (name, value) in &patch.secrets {
            let field = spec
                .field(name)
                .filter(|f| f.secret)
                .ok_or_else(|| unknown_field(spec, name))?;
            let Some(value) = value else {
                secrets.remove(field.name);
                continue;
            };
            let stored = existing.and_then(|c| c.secrets.get(field.name));
            match classify_secret(field.name, value, stored.map(|s| &s.hints))? {
                SecretChoice::KeepStored => {}
                SecretChoice::New => {
                    let binding = SecretBinding::new(owner, provider, field.name);
                    let sealed = self.ports.cipher.seal(value, &binding)?;
                    let hints = SecretHints::of(value.expose());
                    secrets.insert(field.name.to_owned(), StoredSecret { sealed, hints });
                    fresh_secrets.push(field.name);
                }
            }
        }

        for (name, value) in &patch.settings {
            let field = spec
                .field(name)
                .filter(|f| !f.secret)
                .ok_or_else(|| unknown_field(spec, name))?;
            match value {
                None => {
                    settings.remove(field.name);
                }
                Some(value) => {
                    let value = value.trim();
                    if value.is_empty() {
                        return Err(Error::invalid(name, format!("{name} must not be empty")));
                    }
                    if value.chars().any(char::is_control) {
                        return Err(Error::invalid(
                            name,
                            format!("{name} must not contain control characters"),
                        ));
                    }
                    if value.len() > MAX_SETTING_BYTES {
                        return Err(Error::invalid(
                            name,
                            format!("{name} must be at most {MAX_SETTING_BYTES} bytes"),
                        ));
                    }
                    let value = if field.url {
                        BaseUrl::parse_field(name, value)?.as_str().to_owned()
                    } else {
                        value.to_owned()
                    };
                    settings.insert(field.name.to_owned(), value);
                }
            }
        }

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

        for field in spec.fields.iter().filter(|f| f.required) {
            let present = if field.secret {
                secrets.contains_key(field.name)
            } else {
                settings.contains_key(field.name)
            };
            if !present {
                return Err(Error::invalid(
                    field.name,
                    format!("{} is required for provider {}", field.name, spec.id),
                ));
            }
        }
        if spec.base_url_required && base_url.is_none() {
            return Err(Error::invalid(
                "base_url",
                format!("base_url is required for provider {}", spec.id),
            ));
        }

        if let Some(current) = existing {
            let kept_secret = current
                .secrets
                .keys()
                .any(|name| secrets.contains_key(name) && !fresh_secrets.contains(&name.as_str()));
            if kept_secret {
                check_endpoint_change(spec, current, base_url.as_ref(), &settings)?;
            }
        }

        Ok(Applied {
            secrets,
            settings,
            model,
            base_url,
            enabled,
        })
    }
}

/// What to do with a secret value sent by a client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SecretChoice {
    /// The value is a mask this service handed out for the stored secret.
    KeepStored,
    /// The value is a new secret.
    New,
}

/// Decides whether a value is a new secret or the round trip of a handed-out mask; a value
/// that looks masked but matches no hint is refused, never stored.
pub(crate) fn classify_secret(
    field: &str,
    value: &SecretValue,
    stored: Option<&SecretHints>,
) -> Result<SecretChoice> {
    if value.is_blank() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if value.expose().len() > MAX_SECRET_BYTES {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    // A service-account file may be pretty-printed; nothing else may hold control characters.
    let allowed = |c: char| field == "service_account_json" && matches!(c, '\n' | '\r' | '\t');
    if value
        .expose()
        .chars()
        .any(|c| c.is_control() && !allowed(c))
    {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if looks_masked(value.expose()) {
        return match stored {
            Some(hints) if hints.is_handed_out_mask(value.expose()) => Ok(SecretChoice::KeepStored),
            _ => Err(Error::MaskedSecretMismatch {
                field: field.to_owned(),
            }),
        };
    }
    Ok(SecretChoice::New)
}

/// A stored key may only go to its provider's own host or the endpoint stored with it:
/// pointing it elsewhere needs the key again.
fn check_endpoint_change(
    spec: &ProviderSpec,
    current: &ProviderConfig,
    new_base_url: Option<&BaseUrl>,
    new_settings: &BTreeMap<String, String>,
) -> Result<()> {
    let default_host = spec.default_host();
    if current.base_url.as_ref() != new_base_url {
        if let Some(url) = new_base_url {
            if Some(url.host()) != default_host {
                return Err(key_required_for("base_url", spec));
            }
        }
    }
    for field in spec.fields.iter().filter(|f| f.url) {
        if current.settings.get(field.name) != new_settings.get(field.name)
            && new_settings.contains_key(field.name)
        {
            return Err(key_required_for(field.name, spec));
        }
    }
    Ok(())
}

fn key_required_for(field: &str, spec: &ProviderSpec) -> Error {
    let key = spec.primary_secret().map_or("api_key", |f| f.name);
    Error::invalid(
        field,
        format!("changing {field} of a stored key requires sending {key} again"),
    )
}

fn reject_immutable(patch: &ConfigPatch) -> Result<()> {
    if patch.provider.is_some() {
        return Err(Error::invalid(
            "provider",
            "provider cannot be changed; delete the config and create a new one",
        ));
    }
    if patch.is_default.is_some() {
        return Err(Error::invalid(
            "is_default",
            "is_default cannot be changed here; use set-default",
        ));
    }
    Ok(())
}

fn unknown_field(spec: &ProviderSpec, name: &str) -> Error {
    let known: Vec<_> = spec.fields.iter().map(|f| f.name).collect();
    Error::invalid(
        name,
        format!(
            "{name} is not a credential field of provider {} (known: {})",
            spec.id,
            known.join(", ")
        ),
    )
}

fn disabled_default() -> Error {
    Error::invalid("is_default", "a disabled config cannot be the default")
}

fn stale(version: i64) -> Error {
    Error::Conflict(format!(
        "the config is no longer at version {version}; reload it and retry"
    ))
}

fn write_of(
    current: &ProviderConfig,
    applied: Applied,
    make_default: bool,
    now: crate::values::Timestamp,
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
