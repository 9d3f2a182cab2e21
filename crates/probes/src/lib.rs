//! HTTP probes: test LLM provider credentials against the real provider APIs, cheaply, without
//! ever becoming an SSRF hole.
//!
//! [`HttpProbe`] implements the domain's [`ProviderProbe`] port. Each request shape of the
//! catalog ([`llm_settings_domain::ProbeShape`]) is one small module under `shapes`; every
//! request goes through the same outbound path (`outbound`), which enforces the
//! [`AllowList`]-aware address policy, pins the connection to the checked address, refuses
//! redirects and proxies, caps the body, and shares one deadline per probe. A probe never
//! fails: every failure is a [`ProbeOutcome`] with a
//! [`FailureClass`](llm_settings_domain::FailureClass) and a short message of our own that
//! never holds a secret or the provider's body.

use std::time::Duration;

use async_trait::async_trait;
use llm_settings_domain::ports::ProviderProbe;
use llm_settings_domain::{FailureClass, ProbeOutcome, ProbeRequest};
use tokio::time::Instant;
use url::Url;

mod failure;
mod models;
mod outbound;
mod policy;
mod shapes;

pub use policy::{AllowList, AllowListError};

/// Google's OAuth token endpoint used for Vertex AI (also the audience of the signed JWT).
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Environment variable holding the allow list (see [`AllowList::parse`]).
pub const ALLOW_HOSTS_ENV: &str = "LLM_SETTINGS_PROBE_ALLOW_HOSTS";
/// Environment variable holding the probe deadline in milliseconds.
pub const TIMEOUT_MS_ENV: &str = "LLM_SETTINGS_PROBE_TIMEOUT_MS";

/// Why the probe adapter could not be set up (a configuration mistake caught at start).
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    /// `LLM_SETTINGS_PROBE_ALLOW_HOSTS` has an entry that cannot be parsed.
    #[error(transparent)]
    AllowList(#[from] AllowListError),
    /// The deadline is zero or not a number of milliseconds.
    #[error("invalid {TIMEOUT_MS_ENV}: {0}")]
    Timeout(String),
    /// A limit is zero.
    #[error("invalid probe setting: {0}")]
    Limit(&'static str),
    /// The Google token URL override is not an http(s) URL.
    #[error("invalid Google token URL: {0}")]
    TokenUrl(String),
    /// The HTTP client (TLS backend) could not be initialised.
    #[error("the probe HTTP client could not be initialised: {0}")]
    Client(String),
}

/// How probes behave: deadline, reachable private hosts and size limits.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Deadline of one probe, DNS, every page and the token exchange included.
    pub timeout: Duration,
    /// Private hosts and networks any provider may reach.
    pub allow: AllowList,
    /// Largest response body read; a larger one is an invalid response.
    pub max_body_bytes: usize,
    /// Most model ids reported in an outcome.
    pub max_models: usize,
    /// Most pages of a paginated model list fetched by one probe.
    pub max_pages: usize,
    /// Treat `openai_compatible` as a local provider (may reach private addresses).
    pub compatible_is_local: bool,
    /// Replaces Google's token URL for Vertex AI (tests, private Google endpoints); `None`
    /// means [`GOOGLE_TOKEN_URL`]. Set only by code, never from a request or from the
    /// `token_uri` of a service-account file; requests to it still pass the outbound policy.
    pub google_token_url: Option<Url>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            allow: AllowList::none(),
            max_body_bytes: 1024 * 1024,
            max_models: 200,
            max_pages: 10,
            compatible_is_local: false,
            google_token_url: None,
        }
    }
}

impl ProbeSettings {
    /// `LLM_SETTINGS_PROBE_TIMEOUT_MS` default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Settings from configuration values (`LLM_SETTINGS_PROBE_ALLOW_HOSTS`,
    /// `LLM_SETTINGS_PROBE_TIMEOUT_MS`); `None` keeps the default.
    pub fn from_values(
        allow_hosts: Option<&str>,
        timeout_ms: Option<&str>,
    ) -> Result<Self, ProbeSetupError> {
        let mut settings = Self::default();
        if let Some(value) = allow_hosts {
            settings.allow = AllowList::parse(value)?;
        }
        if let Some(value) = timeout_ms.map(str::trim).filter(|v| !v.is_empty()) {
            let ms = value
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| ProbeSetupError::Timeout(value.to_owned()))?;
            settings.timeout = Duration::from_millis(ms);
        }
        Ok(settings)
    }

    /// Settings from the process environment.
    pub fn from_env() -> Result<Self, ProbeSetupError> {
        let allow = std::env::var(ALLOW_HOSTS_ENV).ok();
        let timeout = std::env::var(TIMEOUT_MS_ENV).ok();
        Self::from_values(allow.as_deref(), timeout.as_deref())
    }

    /// Sets [`ProbeSettings::google_token_url`] from text, checking it is an http(s) URL.
    pub fn with_google_token_url(mut self, url: &str) -> Result<Self, ProbeSetupError> {
        let parsed = Url::parse(url).map_err(|_| ProbeSetupError::TokenUrl(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ProbeSetupError::TokenUrl(url.to_owned()));
        }
        self.google_token_url = Some(parsed);
        Ok(self)
    }
}

/// The reqwest-based [`ProviderProbe`].
#[derive(Debug, Clone)]
pub struct HttpProbe {
    settings: ProbeSettings,
}

impl HttpProbe {
    /// Checks the settings and that an HTTP client with TLS can be built.
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
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| ProbeSetupError::Client(e.to_string()))?;
        Ok(Self { settings })
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
                allow: &self.settings.allow,
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
    fn settings_from_configuration_values() {
        let s =
            ProbeSettings::from_values(Some("gateway.internal, 10.0.0.0/8"), Some("2500")).unwrap();
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert!(!s.allow.is_empty());
        let d = ProbeSettings::from_values(None, None).unwrap();
        assert_eq!(d.timeout, ProbeSettings::DEFAULT_TIMEOUT);
        assert!(d.allow.is_empty());
        assert_eq!(d.max_body_bytes, 1024 * 1024);
        assert!(matches!(
            ProbeSettings::from_values(None, Some("0")),
            Err(ProbeSetupError::Timeout(_))
        ));
        assert!(matches!(
            ProbeSettings::from_values(None, Some("soon")),
            Err(ProbeSetupError::Timeout(_))
        ));
        let err = ProbeSettings::from_values(Some("10.0.0.0/99"), None).unwrap_err();
        assert!(err.to_string().contains(ALLOW_HOSTS_ENV));
        assert!(ProbeSettings::default()
            .with_google_token_url("file:///tmp/x")
            .is_err());
    }

    #[test]
    fn setup_rejects_useless_limits() {
        assert!(HttpProbe::new(ProbeSettings::default()).is_ok());
        let zero = ProbeSettings {
            timeout: Duration::ZERO,
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
