//! Test connection: with the stored key, a key in the request, or a mask of the stored key.

use std::collections::BTreeMap;

use super::credentials::{check_stored_key_destination, Credentials};
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
        let credentials = test_credentials(&test, stored.as_ref())?;
        let stored_base = stored.as_ref().and_then(|c| c.base_url.clone());
        let base_url = test.base_url.clone().or_else(|| stored_base.clone());
        if spec.base_url_required && base_url.is_none() {
            return Err(Error::invalid(
                "base_url",
                format!("base_url is required for provider {}", spec.id),
            ));
        }
        if let Some(config) = stored.as_ref().filter(|_| credentials.uses_stored_secret()) {
            check_stored_key_destination(spec, config, base_url.as_ref(), &credentials.settings)?;
        }
        let used_stored_secret = credentials.uses_stored_secret();
        let secrets = self
            .open_for_test(
                actor,
                owner,
                stored.as_ref(),
                credentials.kept.iter().copied(),
            )
            .await?
            .into_iter()
            .chain(
                credentials
                    .fresh
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), value.clone())),
            )
            .collect();
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
        let outcome = self
            .ports
            .probe
            .probe(ProbeRequest {
                provider,
                secrets,
                settings: credentials.settings,
                base_url: base_url.map(|u| u.as_str().to_owned()),
                model: model.clone(),
            })
            .await;
        let fresh_primary = spec
            .primary_secret()
            .is_some_and(|f| credentials.fresh.contains_key(f.name));
        let same_endpoint = test.base_url.is_none() || test.base_url == stored_base;
        if let Some(config) = stored.as_ref().filter(|_| !fresh_primary && same_endpoint) {
            self.record_outcome(owner, config, &outcome).await?;
        }
        let result = ConnectionTestResult {
            provider,
            model,
            outcome,
            used_stored_secret,
        };
        Ok((result, stored))
    }

    /// Opens the stored secrets a test uses, auditing each decryption.
    async fn open_for_test(
        &self,
        actor: &Actor,
        owner: &Owner,
        stored: Option<&ProviderConfig>,
        fields: impl Iterator<Item = &'static str>,
    ) -> Result<BTreeMap<String, SecretValue>> {
        let mut opened = BTreeMap::new();
        let Some(config) = stored else {
            return Ok(opened);
        };
        for name in fields {
            let Some(secret) = config.secrets.get(name) else {
                continue;
            };
            let binding = SecretBinding::new(owner, config.provider, name);
            let value = self.ports.cipher.open(&secret.sealed, &binding);
            let outcome = match &value {
                Ok(_) => AuditOutcome::Success,
                Err(e) => AuditOutcome::Failure(e.code().to_owned()),
            };
            self.audit(
                actor,
                owner,
                Some(config.provider),
                Some(config.id),
                AuditAction::Decrypt,
                outcome,
            )
            .await;
            opened.insert(name.to_owned(), value?);
        }
        Ok(opened)
    }

    /// Stores a test's outcome on the config whose stored credentials it used.
    async fn record_outcome(
        &self,
        owner: &Owner,
        config: &ProviderConfig,
        outcome: &ProbeOutcome,
    ) -> Result<()> {
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
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The credentials a test uses: what it sent laid over what is stored. A missing primary key
/// is `ProviderNotConfigured`; another missing required field a validation error.
fn test_credentials(test: &ConnectionTest, stored: Option<&ProviderConfig>) -> Result<Credentials> {
    let spec = test.provider.spec();
    let secrets = test
        .secrets
        .iter()
        .map(|(name, value)| (name.clone(), Some(value.clone())))
        .collect();
    let settings = test
        .settings
        .iter()
        .map(|(name, value)| (name.clone(), Some(value.clone())))
        .collect();
    let credentials = Credentials::merge(spec, stored, &secrets, &settings)?;
    match credentials.missing_required(spec) {
        None => Ok(credentials),
        Some(field) if spec.primary_secret().is_some_and(|p| p.name == field.name) => {
            Err(Error::ProviderNotConfigured {
                provider: spec.id.to_owned(),
            })
        }
        Some(field) => Err(Error::invalid(
            field.name,
            format!("{} is required to test provider {}", field.name, spec.id),
        )),
    }
}
