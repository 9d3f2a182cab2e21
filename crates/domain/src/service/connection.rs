//! Test connection: with the stored key, a key in the request, or a mask of the stored key.

use std::collections::BTreeMap;

use super::configs::{classify_secret, SecretChoice};
use super::SettingsService;
use crate::actor::{Access, Actor};
use crate::audit::{AuditAction, AuditOutcome};
use crate::catalog::ProviderId;
use crate::config::{ProviderConfig, TestRecord};
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::probe::{ProbeOutcome, ProbeRequest};
use crate::secret::{SecretBinding, SecretValue};
use crate::values::{BaseUrl, ModelName};

/// A request to test credentials for a provider.
#[derive(Debug, Clone)]
pub struct ConnectionTest {
    pub provider: ProviderId,
    /// Secret fields given in the request (plain or a handed-out mask); the rest come from
    /// the stored config.
    pub secrets: BTreeMap<String, SecretValue>,
    /// Non-secret fields overriding the stored ones.
    pub settings: BTreeMap<String, String>,
    pub base_url: Option<BaseUrl>,
    pub model: Option<ModelName>,
}

impl ConnectionTest {
    /// A test of the stored credentials of a provider.
    pub fn stored(provider: ProviderId) -> Self {
        Self {
            provider,
            secrets: BTreeMap::new(),
            settings: BTreeMap::new(),
            base_url: None,
            model: None,
        }
    }
}

/// The outcome of a connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTestResult {
    pub provider: ProviderId,
    /// The model whose availability was checked.
    pub model: Option<String>,
    pub outcome: ProbeOutcome,
    /// Whether a stored secret was used (the outcome is then recorded on the config).
    pub used_stored_secret: bool,
}

impl SettingsService {
    /// Tests credentials against the provider. A failed test is an `Ok` outcome with its
    /// class; errors are reserved for requests that cannot be tested at all.
    pub async fn test_connection(
        &self,
        actor: &Actor,
        owner: &Owner,
        test: ConnectionTest,
    ) -> Result<ConnectionTestResult> {
        actor.authorize(owner, Access::Write)?;
        let provider = test.provider;
        let result = self.test_inner(actor, owner, test).await;
        let (config_id, outcome) = match &result {
            Ok((result, config)) => (
                config.as_ref().map(|c| c.id),
                match result.outcome.failure {
                    None => AuditOutcome::Success,
                    Some(class) => AuditOutcome::Failure(class.as_str().to_owned()),
                },
            ),
            Err(err) => (None, AuditOutcome::Failure(err.code().to_owned())),
        };
        self.audit(
            actor,
            owner,
            Some(provider),
            config_id,
            AuditAction::Test,
            outcome,
        )
        .await;
        result.map(|(result, _)| result)
    }

    async fn test_inner(
        &self,
        actor: &Actor,
        owner: &Owner,
        test: ConnectionTest,
    ) -> Result<(ConnectionTestResult, Option<ProviderConfig>)> {
        let provider = test.provider;
        self.catalog.ensure_offered(provider)?;
        let spec = provider.spec();
        let stored = self.ports.configs.find_by_provider(owner, provider).await?;

        let mut secrets = BTreeMap::new();
        let mut from_store = Vec::new();
        for (name, value) in &test.secrets {
            let field = spec.field(name).filter(|f| f.secret).ok_or_else(|| {
                Error::invalid(name, format!("{name} is not a secret field of {}", spec.id))
            })?;
            let hints = stored
                .as_ref()
                .and_then(|c| c.secrets.get(field.name))
                .map(|s| &s.hints);
            match classify_secret(field.name, value, hints)? {
                SecretChoice::New => {
                    secrets.insert(field.name.to_owned(), value.clone());
                }
                SecretChoice::KeepStored => from_store.push(field.name),
            }
        }
        if let Some(config) = &stored {
            for name in config.secrets.keys() {
                if !secrets.contains_key(name) && !from_store.contains(&name.as_str()) {
                    from_store.push(spec.field(name).map_or("", |f| f.name));
                }
            }
        }
        from_store.retain(|n| !n.is_empty());

        let primary = spec.primary_secret();
        let has_primary =
            primary.is_none_or(|f| secrets.contains_key(f.name) || from_store.contains(&f.name));
        if primary.is_some_and(|f| f.required) && !has_primary {
            return Err(Error::ProviderNotConfigured {
                provider: spec.id.to_owned(),
            });
        }

        let mut settings = stored
            .as_ref()
            .map(|c| c.settings.clone())
            .unwrap_or_default();
        for (name, value) in &test.settings {
            let field = spec.field(name).filter(|f| !f.secret).ok_or_else(|| {
                Error::invalid(name, format!("{name} is not a field of {}", spec.id))
            })?;
            let value = if field.url {
                BaseUrl::parse_field(name, value)?.as_str().to_owned()
            } else {
                value.trim().to_owned()
            };
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(Error::invalid(
                    name,
                    format!("{name} must be non-empty text without control characters"),
                ));
            }
            settings.insert(field.name.to_owned(), value);
        }
        for field in spec.fields.iter().filter(|f| f.required && !f.secret) {
            if !settings.contains_key(field.name) {
                return Err(Error::invalid(
                    field.name,
                    format!("{} is required to test provider {}", field.name, spec.id),
                ));
            }
        }

        let stored_base = stored.as_ref().and_then(|c| c.base_url.clone());
        let base_url = test.base_url.clone().or_else(|| stored_base.clone());
        if spec.base_url_required && base_url.is_none() {
            return Err(Error::invalid(
                "base_url",
                format!("base_url is required for provider {}", spec.id),
            ));
        }
        if !from_store.is_empty() {
            let moved = test.base_url.is_some() && test.base_url != stored_base;
            let own_host = test.base_url.as_ref().map(BaseUrl::host) == spec.default_host();
            if moved && !own_host {
                return Err(Error::invalid(
                    "base_url",
                    "testing a stored key against another base_url requires the key in the request",
                ));
            }
            let moved_setting = spec.fields.iter().filter(|f| f.url).any(|f| {
                test.settings.contains_key(f.name)
                    && stored.as_ref().and_then(|c| c.settings.get(f.name)) != settings.get(f.name)
            });
            if moved_setting {
                return Err(Error::invalid(
                    "endpoint",
                    "testing a stored key against another endpoint requires the key in the request",
                ));
            }
        }

        if let Some(config) = &stored {
            for name in &from_store {
                let Some(secret) = config.secrets.get(*name) else {
                    continue;
                };
                let binding = SecretBinding::new(owner, provider, name);
                let opened = self.ports.cipher.open(&secret.sealed, &binding);
                let outcome = match &opened {
                    Ok(_) => AuditOutcome::Success,
                    Err(e) => AuditOutcome::Failure(e.code().to_owned()),
                };
                self.audit(
                    actor,
                    owner,
                    Some(provider),
                    Some(config.id),
                    AuditAction::Decrypt,
                    outcome,
                )
                .await;
                secrets.insert((*name).to_owned(), opened?);
            }
        }

        let model = test
            .model
            .as_ref()
            .map(|m| m.as_str().to_owned())
            .or_else(|| {
                stored
                    .as_ref()
                    .and_then(|c| c.effective_model().map(str::to_owned))
            })
            .or_else(|| spec.default_model.map(str::to_owned));
        let request = ProbeRequest {
            provider,
            secrets,
            settings,
            base_url: base_url.map(|u| u.as_str().to_owned()),
            model: model.clone(),
        };
        let outcome = self.ports.probe.probe(request).await;

        let used_stored_secret = !from_store.is_empty();
        let fresh_primary = primary
            .is_some_and(|f| test.secrets.contains_key(f.name) && !from_store.contains(&f.name));
        let same_endpoint = test.base_url.is_none() || test.base_url == stored_base;
        if let Some(config) = stored.as_ref().filter(|_| !fresh_primary && same_endpoint) {
            let record = TestRecord {
                at: self.ports.clock.now(),
                success: outcome.success,
                latency_ms: outcome.latency_ms,
                failure: outcome.failure,
                message: outcome.message.clone(),
            };
            match self
                .ports
                .configs
                .record_test(owner, config.id, record)
                .await
            {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }

        Ok((
            ConnectionTestResult {
                provider,
                model,
                outcome,
                used_stored_secret,
            },
            stored,
        ))
    }
}
