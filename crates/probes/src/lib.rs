//! The one outbound adapter: HTTP probes that test LLM provider credentials against the real
//! provider APIs, and the gateway client that forwards calls with a stored credential —
//! under one outbound policy, with one place that injects credentials, never an SSRF hole.
//!
//! - [`HttpProbe`] implements the domain's [`ProviderProbe`] port. Each request shape of the
//!   catalog ([`llm_settings_domain::ProbeShape`]) is one small module under `shapes`. A probe
//!   never fails: every failure is a [`ProbeOutcome`] with a
//!   [`FailureClass`] and a short message of our own that
//!   never holds a secret or the provider's body.
//! - [`HttpGateway`] implements the domain's
//!   [`ProviderClient`](llm_settings_domain::ports::ProviderClient) port: the client's request
//!   goes to `{base URL}/{path}?{query}` with the credential injected the provider's way
//!   (Bearer, `x-api-key`, `x-goog-api-key`, `api-key`, Bedrock SigV4 over the forwarded
//!   request, a Vertex AI access token cached until shortly before it expires), and the
//!   answer streams back chunk by chunk.
//!
//! Both send through long-lived pooled clients, one per policy class, whose DNS resolver
//! checks every address a name resolves to before connecting (so the checked address is the
//! one connected); IP-literal hosts in any spelling and allow-list `host:port` entries are
//! checked before sending. Redirects are never followed and no proxy is used. Cloud
//! providers reach public addresses only; local providers (`ollama`, `deepseek_local`) also
//! reach what the operator lists for them.
//!
//! # Configuration
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LLM_SETTINGS_PROBE_ALLOW_HOSTS` | hosts, `host:port` or CIDRs any provider may reach although private | none |
//! | `LLM_SETTINGS_LOCAL_PROVIDER_HOSTS` | hosts, `host:port` or CIDRs local providers may reach; other private targets are blocked for them too (a user could otherwise map the internal network) | `localhost, 127.0.0.0/8, ::1` |
//! | `LLM_SETTINGS_PROBE_TIMEOUT_MS` | deadline of one probe | `10000` |
//! | `LLM_SETTINGS_GATEWAY_CONNECT_TIMEOUT_MS` | resolution and connection of a forwarded call | `10000` |
//! | `LLM_SETTINGS_GATEWAY_FIRST_BYTE_TIMEOUT_MS` | from sending to the provider's status and headers | `300000` |
//! | `LLM_SETTINGS_GATEWAY_IDLE_TIMEOUT_MS` | silence between two chunks of an answer | `120000` |
//! | `LLM_SETTINGS_GATEWAY_TOTAL_TIMEOUT_MS` | a whole forwarded call, to the answer's last byte | `900000` |
//!
//! [`ProbeSettings::from_lookup`] and [`GatewaySettings::from_lookup`] read them through a
//! lookup function (the environment, a file); `from_env` reads the process environment.
//!
//! ```no_run
//! # fn wire() -> Result<(), llm_settings_probes::ProbeSetupError> {
//! use llm_settings_probes::{GatewaySettings, HttpGateway, HttpProbe, ProbeSettings};
//! let policy = ProbeSettings::from_env()?;
//! let probe = HttpProbe::new(policy.clone())?;
//! let gateway = HttpGateway::new(&policy, GatewaySettings::from_env()?)?;
//! # let _ = (probe, gateway);
//! # Ok(())
//! # }
//! ```
//!
//! A limit hit before the provider's status and headers arrive is
//! [`ForwardFailure::Timeout`](llm_settings_domain::ForwardFailure::Timeout); after that
//! the body stream yields a [`StreamFailure`](llm_settings_domain::StreamFailure) and ends.
//! Dropping the response, its body or the pending call closes the upstream connection.

use std::sync::Arc;

use async_trait::async_trait;
use llm_settings_domain::ports::ProviderProbe;
use llm_settings_domain::{FailureClass, ProbeOutcome, ProbeRequest};
use tokio::time::Instant;

mod answer;
mod credentials;
mod failure;
mod gateway;
mod google;
mod models;
mod network;
mod outbound;
mod policy;
mod settings;
mod shapes;

pub use gateway::HttpGateway;
pub use policy::{AllowList, AllowListError};
pub use settings::{
    GatewaySettings, ProbeSettings, ProbeSetupError, ALLOW_HOSTS_ENV,
    GATEWAY_CONNECT_TIMEOUT_MS_ENV, GATEWAY_FIRST_BYTE_TIMEOUT_MS_ENV, GATEWAY_IDLE_TIMEOUT_MS_ENV,
    GATEWAY_TOTAL_TIMEOUT_MS_ENV, LOCAL_PROVIDER_HOSTS_ENV, TIMEOUT_MS_ENV,
};

/// Google's OAuth token endpoint used for Vertex AI (also the audience of the signed JWT).
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// The reqwest-based [`ProviderProbe`].
#[derive(Debug, Clone)]
pub struct HttpProbe {
    settings: ProbeSettings,
    network: Arc<network::Network>,
}

impl HttpProbe {
    /// Checks the settings and builds the pooled HTTP clients (TLS included).
    pub fn new(settings: ProbeSettings) -> Result<Self, ProbeSetupError> {
        if settings.timeout.is_zero() {
            return Err(ProbeSetupError::Timeout("0".into()));
        }
        if settings.max_body_bytes == 0 {
            return Err(ProbeSetupError::Limit("max_body_bytes must be positive"));
        }
        if settings.max_pages == 0 {
            return Err(ProbeSetupError::Limit("max_pages must be positive"));
        }
        let reach = policy::Reach {
            allow: settings.allow.clone(),
            local_hosts: settings.local_hosts.clone(),
        };
        let network = network::Network::new(reach, settings.timeout)
            .map_err(|e| ProbeSetupError::Client(e.to_string()))?;
        Ok(Self {
            settings,
            network: Arc::new(network),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &ProbeSettings {
        &self.settings
    }
}

#[async_trait]
impl ProviderProbe for HttpProbe {
    async fn probe(&self, request: ProbeRequest) -> ProbeOutcome {
        let started = Instant::now();
        let spec = request.provider.spec();
        let local =
            spec.local || (self.settings.compatible_is_local && spec.id == "openai_compatible");
        let ctx = shapes::Ctx {
            out: outbound::Outbound {
                network: &self.network,
                local,
                deadline: started + self.settings.timeout,
                max_body_bytes: self.settings.max_body_bytes,
            },
            spec,
            request: &request,
            model: request
                .model
                .clone()
                .or_else(|| spec.default_model.map(str::to_owned)),
            max_models: self.settings.max_models,
            max_pages: self.settings.max_pages,
            google_token_url: self.settings.google_token_url.as_ref(),
        };
        let result = tokio::time::timeout(self.settings.timeout, shapes::run(&ctx)).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut outcome = match result {
            Err(_) => failed(failure::Failure::timeout(), latency_ms),
            Ok(Err(failure)) => failed(failure, latency_ms),
            Ok(Ok(listing)) => succeeded(spec.display_name, listing, latency_ms),
        };
        outcome.message = redact(outcome.message, &request);
        tracing::info!(
            target: "llm_settings_probes",
            provider = spec.id,
            success = outcome.success,
            failure = outcome.failure.map(|c| c.as_str()),
            latency_ms,
            "provider probe finished"
        );
        outcome
    }
}

fn failed(failure: failure::Failure, latency_ms: u64) -> ProbeOutcome {
    let mut outcome = ProbeOutcome::failed(failure.class, latency_ms, failure.message);
    if failure.class == FailureClass::RateLimited {
        outcome.retry_after_secs = failure.retry_after_secs;
    }
    outcome
}

fn succeeded(provider: &str, listing: shapes::Listing, latency_ms: u64) -> ProbeOutcome {
    let models = listing.models;
    let available = listing.model_available.unwrap_or_else(|| models.found());
    let mut message = format!("{provider}: credentials accepted; ");
    match listing.summary {
        Some(summary) => message.push_str(&summary),
        None => message.push_str(&format!("{} models listed", models.total())),
    }
    if let Some(model) = models.wanted() {
        if available {
            message.push_str(&format!("; model {model} is available"));
        } else {
            message.push_str(&format!("; model {model} was not found"));
        }
    }
    ProbeOutcome {
        success: true,
        latency_ms,
        model_available: available,
        models: models.into_ids(),
        failure: None,
        retry_after_secs: None,
        message,
    }
}

/// Last line of defence: no secret of the request survives in a message.
fn redact(message: String, request: &ProbeRequest) -> String {
    let mut message = message;
    for secret in request.secrets.values() {
        let value = secret.expose().trim();
        if value.len() >= 4 && message.contains(value) {
            message = message.replace(value, "[redacted]");
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_rejects_useless_limits() {
        assert!(HttpProbe::new(ProbeSettings::default()).is_ok());
        let zero = ProbeSettings {
            timeout: std::time::Duration::ZERO,
            ..ProbeSettings::default()
        };
        assert!(HttpProbe::new(zero).is_err());
        let no_body = ProbeSettings {
            max_body_bytes: 0,
            ..ProbeSettings::default()
        };
        assert!(HttpProbe::new(no_body).is_err());
    }

    #[test]
    fn redaction_is_the_last_line_of_defence() {
        let request = ProbeRequest {
            provider: llm_settings_domain::ProviderId::lookup("openai").unwrap(),
            secrets: [(
                "api_key".to_owned(),
                llm_settings_domain::SecretValue::new("sk-abcdef"),
            )]
            .into_iter()
            .collect(),
            settings: Default::default(),
            base_url: None,
            model: None,
        };
        assert_eq!(
            redact("key sk-abcdef refused".into(), &request),
            "key [redacted] refused"
        );
    }
}
