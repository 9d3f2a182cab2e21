//! The application settings of an owner as one whole: provider configs, the default provider
//! and the settings document, changed together or not at all.

use serde_json::{Map, Value};

use super::plan::{Landed, Plan};
use super::{SettingsService, UpsertRequest};
use crate::actor::{Access, Actor};
use crate::audit::AuditAction;
use crate::catalog::ProviderId;
use crate::change::DocumentWrite;
use crate::config::{ConfigPatch, ProviderConfig};
use crate::document::{self, StoredDocument};
use crate::error::{Error, Result};
use crate::owner::Owner;

/// An owner's settings: the document as shown (defaults overlaid) and the provider configs.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsView {
    pub document: Value,
    /// Ordered by id.
    pub configs: Vec<ProviderConfig>,
}

impl SettingsView {
    /// The owner's default config, if any.
    pub fn default_config(&self) -> Option<&ProviderConfig> {
        self.configs.iter().find(|c| c.is_default)
    }
}

/// A change to an owner's settings; everything is checked before anything is written, and
/// the writes land in one transaction.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    /// Provider entries in the order sent: `Some` creates or changes that provider's config
    /// (adding one needs its key), `None` deletes it.
    pub providers: Vec<(ProviderId, Option<ConfigPatch>)>,
    /// The provider to make the default; it must be configured, already or by this update.
    pub default_provider: Option<ProviderId>,
    /// A JSON merge patch (RFC 7396) of the settings document.
    pub document: Option<Value>,
}

impl SettingsService {
    /// The owner's settings document (defaults overlaid) and provider configs.
    pub async fn settings(&self, actor: &Actor, owner: &Owner) -> Result<SettingsView> {
        actor.authorize(owner, Access::Read)?;
        let stored = self.ports.documents.get(owner).await?;
        let configs = self.ports.configs.list(owner).await?;
        Ok(SettingsView {
            document: document::effective(stored.as_ref().map(|d| &d.document)),
            configs,
        })
    }

    /// Applies a settings update as one unit: every provider entry, the default provider and
    /// the document merge land together, or nothing does.
    pub async fn update_settings(
        &self,
        actor: &Actor,
        owner: &Owner,
        update: SettingsUpdate,
    ) -> Result<SettingsView> {
        actor.authorize(owner, Access::Write)?;
        let result = async {
            check_update(self, &update)?;
            self.until_settled(
                || self.settings_once(owner, &update),
                |e| matches!(e, Error::Conflict(_)),
            )
            .await
        }
        .await;
        self.audit_landed(actor, owner, AuditAction::DocumentUpdate, None, &result)
            .await;
        let landed = result?;
        let document = match landed.outcome.document {
            Some(written) => Some(written),
            None => self.ports.documents.get(owner).await?,
        };
        Ok(SettingsView {
            document: document::effective(document.as_ref().map(|d| &d.document)),
            configs: landed.outcome.configs,
        })
    }

    async fn settings_once(&self, owner: &Owner, update: &SettingsUpdate) -> Result<Landed> {
        let configs = self.ports.configs.list(owner).await?;
        let mut plan = Plan::new(owner, self.ports.clock.now());
        for (provider, entry) in &update.providers {
            self.plan_entry(
                &mut plan,
                owner,
                &configs,
                update,
                *provider,
                entry.as_ref(),
            )?;
        }
        plan_default(&mut plan, &configs, update)?;
        if let Some(patch) = &update.document {
            let stored = self.ports.documents.get(owner).await?;
            plan.document(merged_document(stored, patch)?);
        }
        if plan.is_empty() {
            return Ok(Landed::unchanged(configs));
        }
        self.land(plan).await
    }

    /// Plans one provider entry: delete, create (its key required) or change.
    fn plan_entry(
        &self,
        plan: &mut Plan,
        owner: &Owner,
        configs: &[ProviderConfig],
        update: &SettingsUpdate,
        provider: ProviderId,
        entry: Option<&ConfigPatch>,
    ) -> Result<()> {
        let current = configs.iter().find(|c| c.provider == provider);
        let Some(patch) = entry else {
            if let Some(config) = current {
                plan.delete(config);
            }
            return Ok(());
        };
        let make_default =
            update.default_provider == Some(provider) && !current.is_some_and(|c| c.is_default);
        if current.is_some() && patch.is_empty() && !make_default {
            return Ok(());
        }
        if current.is_none() {
            require_key_to_add(provider, patch)?;
        }
        let request = UpsertRequest {
            provider,
            changes: patch.clone(),
            make_default,
        };
        plan.upsert(provider, self.upsert_step(owner, &request, current)?);
        Ok(())
    }
}

/// Checks what needs no reading: offered providers, each named once, the document patch.
fn check_update(service: &SettingsService, update: &SettingsUpdate) -> Result<()> {
    for (i, (provider, _)) in update.providers.iter().enumerate() {
        service.catalog.ensure_offered(*provider)?;
        if update.providers[..i].iter().any(|(p, _)| p == provider) {
            return Err(Error::invalid(
                format!("ai.providers.{provider}"),
                format!("provider {provider} is given twice in ai.providers"),
            ));
        }
    }
    if let Some(provider) = update.default_provider {
        service.catalog.ensure_offered(provider)?;
    }
    match &update.document {
        Some(patch) if !patch.is_object() => {
            Err(Error::invalid("settings", "settings must be a JSON object"))
        }
        Some(patch) => document::validate(patch),
        None => Ok(()),
    }
}

/// Adding a provider that needs a key needs that key.
fn require_key_to_add(provider: ProviderId, patch: &ConfigPatch) -> Result<()> {
    let Some(key) = provider.spec().primary_secret().filter(|f| f.required) else {
        return Ok(());
    };
    if matches!(patch.secrets.get(key.name), Some(Some(_))) {
        return Ok(());
    }
    Err(Error::invalid(
        format!("ai.providers.{provider}.apiKey"),
        format!("ai.providers.{provider}.apiKey is required to add provider {provider}"),
    ))
}

/// Plans making the named provider the default when no entry of the update already does.
fn plan_default(
    plan: &mut Plan,
    configs: &[ProviderConfig],
    update: &SettingsUpdate,
) -> Result<()> {
    let Some(provider) = update.default_provider else {
        return Ok(());
    };
    let entry = update.providers.iter().find(|(p, _)| *p == provider);
    let current = configs.iter().find(|c| c.provider == provider);
    let removed = matches!(entry, Some((_, None)));
    if removed || (current.is_none() && entry.is_none()) {
        return Err(Error::invalid(
            "ai.provider",
            format!(
                "ai.provider: provider {provider} is not configured; add it under ai.providers first"
            ),
        ));
    }
    if let Some(config) = current.filter(|c| !c.is_default && entry.is_none()) {
        plan.set_default(config);
    }
    Ok(())
}

/// The stored document with `patch` merged in, checked, guarded by the version read.
fn merged_document(stored: Option<StoredDocument>, patch: &Value) -> Result<DocumentWrite> {
    let (mut document, expected_version) = match stored {
        Some(s) => (s.document, Some(s.version)),
        None => (Value::Object(Map::new()), None),
    };
    json_patch::merge(&mut document, patch);
    document::validate(&document)?;
    Ok(DocumentWrite {
        document,
        expected_version,
    })
}
