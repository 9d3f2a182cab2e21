//! Settings of the outbound adapter, from configuration values (environment or file), checked
//! once at start with messages that name the setting at fault.

use std::time::Duration;

use url::Url;

use crate::policy::{AllowList, AllowListError};

/// Environment variable holding the hosts any provider may reach (see [`AllowList::parse`]).
pub const ALLOW_HOSTS_ENV: &str = "LLM_SETTINGS_PROBE_ALLOW_HOSTS";
/// Environment variable holding the hosts local providers may reach.
pub const LOCAL_PROVIDER_HOSTS_ENV: &str = "LLM_SETTINGS_LOCAL_PROVIDER_HOSTS";
/// Environment variable holding the probe deadline in milliseconds.
pub const TIMEOUT_MS_ENV: &str = "LLM_SETTINGS_PROBE_TIMEOUT_MS";
/// Environment variable: longest wait for a forwarded call's connection, in milliseconds.
pub const GATEWAY_CONNECT_TIMEOUT_MS_ENV: &str = "LLM_SETTINGS_GATEWAY_CONNECT_TIMEOUT_MS";
/// Environment variable: longest wait for the provider's status and headers, in milliseconds.
pub const GATEWAY_FIRST_BYTE_TIMEOUT_MS_ENV: &str = "LLM_SETTINGS_GATEWAY_FIRST_BYTE_TIMEOUT_MS";
/// Environment variable: longest silence between two chunks of an answer, in milliseconds.
pub const GATEWAY_IDLE_TIMEOUT_MS_ENV: &str = "LLM_SETTINGS_GATEWAY_IDLE_TIMEOUT_MS";
/// Environment variable: longest forwarded call from start to the answer's end, in ms.
pub const GATEWAY_TOTAL_TIMEOUT_MS_ENV: &str = "LLM_SETTINGS_GATEWAY_TOTAL_TIMEOUT_MS";

/// Longest accepted limit (one day); also keeps deadlines far from overflowing.
const MAX_LIMIT_MS: u64 = 24 * 60 * 60 * 1000;

/// Why the outbound adapter could not be set up (a configuration mistake caught at start).
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    /// `LLM_SETTINGS_PROBE_ALLOW_HOSTS` has an entry that cannot be parsed.
    #[error("{ALLOW_HOSTS_ENV}: {0}")]
    AllowList(#[from] AllowListError),
    /// `LLM_SETTINGS_LOCAL_PROVIDER_HOSTS` has an entry that cannot be parsed.
    #[error("{LOCAL_PROVIDER_HOSTS_ENV}: {0}")]
    LocalProviderHosts(AllowListError),
    /// The probe deadline is zero, too long or not a number of milliseconds.
    #[error("invalid {TIMEOUT_MS_ENV}: {0:?} is not a number of milliseconds from 1 to 86400000")]
    Timeout(String),
    /// A gateway limit is zero, too long or not a number of milliseconds.
    #[error("invalid {setting}: {value:?} is not a number of milliseconds from 1 to 86400000")]
    GatewayLimit {
        /// The environment variable at fault.
        setting: &'static str,
        /// Its value, as given.
        value: String,
    },
    /// A limit is zero.
    #[error("invalid probe setting: {0}")]
    Limit(&'static str),
    /// The Google token URL override is not an http(s) URL.
    #[error("invalid Google token URL: {0}")]
    TokenUrl(String),
    /// The HTTP client (TLS backend) could not be initialised.
    #[error("the outbound HTTP client could not be initialised: {0}")]
    Client(String),
}

/// A positive number of milliseconds up to a day; `None` for a blank or absent value.
fn millis(value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    text.parse::<u64>()
        .ok()
        .filter(|ms| (1..=MAX_LIMIT_MS).contains(ms))
        .map(|ms| Some(Duration::from_millis(ms)))
        .ok_or_else(|| text.to_owned())
}

/// How probes behave, and whom every outbound request may reach.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Deadline of one probe, DNS, every page and the token exchange included.
    pub timeout: Duration,
    /// Private hosts and networks any provider may reach (`LLM_SETTINGS_PROBE_ALLOW_HOSTS`).
    pub allow: AllowList,
    /// Loopback and private hosts and networks local providers may reach
    /// (`LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`, default [`AllowList::loopback`]).
    pub local_hosts: AllowList,
    /// Largest response body read; a larger one is an invalid response.
    pub max_body_bytes: usize,
    /// Most model ids reported in an outcome.
    pub max_models: usize,
    /// Most pages of a paginated model list fetched by one probe.
    pub max_pages: usize,
    /// Treat `openai_compatible` as a local provider (may reach the local providers' hosts).
    pub compatible_is_local: bool,
    /// Replaces Google's token URL for Vertex AI (tests, private Google endpoints); `None`
    /// means [`GOOGLE_TOKEN_URL`](crate::GOOGLE_TOKEN_URL). Set only by code, never from a
    /// request or from the `token_uri` of a service-account file; requests to it still pass
    /// the outbound policy.
    pub google_token_url: Option<Url>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            allow: AllowList::none(),
            local_hosts: AllowList::loopback(),
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
        if let Some(timeout) = millis(timeout_ms).map_err(ProbeSetupError::Timeout)? {
            settings.timeout = timeout;
        }
        Ok(settings)
    }

    /// Sets the local providers' reach from `LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`; `None` or a
    /// blank value keeps loopback only.
    pub fn with_local_provider_hosts(
        mut self,
        value: Option<&str>,
    ) -> Result<Self, ProbeSetupError> {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            self.local_hosts =
                AllowList::parse(value).map_err(ProbeSetupError::LocalProviderHosts)?;
        }
        Ok(self)
    }

    /// Settings from named configuration values: `lookup` answers a variable name
    /// (`LLM_SETTINGS_PROBE_ALLOW_HOSTS`, `LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`,
    /// `LLM_SETTINGS_PROBE_TIMEOUT_MS`) with its value, if set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProbeSetupError> {
        Self::from_values(
            lookup(ALLOW_HOSTS_ENV).as_deref(),
            lookup(TIMEOUT_MS_ENV).as_deref(),
        )?
        .with_local_provider_hosts(lookup(LOCAL_PROVIDER_HOSTS_ENV).as_deref())
    }

    /// Settings from the process environment.
    pub fn from_env() -> Result<Self, ProbeSetupError> {
        Self::from_lookup(|name| std::env::var(name).ok())
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

/// Limits of a forwarded call (the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Resolution and connection (`LLM_SETTINGS_GATEWAY_CONNECT_TIMEOUT_MS`, 10 s).
    pub connect_timeout: Duration,
    /// From sending to the provider's status and headers
    /// (`LLM_SETTINGS_GATEWAY_FIRST_BYTE_TIMEOUT_MS`, 300 s).
    pub first_byte_timeout: Duration,
    /// Silence between two chunks of the answer (`LLM_SETTINGS_GATEWAY_IDLE_TIMEOUT_MS`,
    /// 120 s).
    pub idle_timeout: Duration,
    /// The whole call, to the answer's last byte (`LLM_SETTINGS_GATEWAY_TOTAL_TIMEOUT_MS`,
    /// 15 min).
    pub total_timeout: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(15 * 60),
        }
    }
}

impl GatewaySettings {
    /// Limits from configuration values in milliseconds (connect, first byte, idle, total);
    /// `None` or blank keeps the default.
    pub fn from_values(
        connect_ms: Option<&str>,
        first_byte_ms: Option<&str>,
        idle_ms: Option<&str>,
        total_ms: Option<&str>,
    ) -> Result<Self, ProbeSetupError> {
        let mut settings = Self::default();
        let fields = [
            (
                GATEWAY_CONNECT_TIMEOUT_MS_ENV,
                connect_ms,
                &mut settings.connect_timeout,
            ),
            (
                GATEWAY_FIRST_BYTE_TIMEOUT_MS_ENV,
                first_byte_ms,
                &mut settings.first_byte_timeout,
            ),
            (
                GATEWAY_IDLE_TIMEOUT_MS_ENV,
                idle_ms,
                &mut settings.idle_timeout,
            ),
            (
                GATEWAY_TOTAL_TIMEOUT_MS_ENV,
                total_ms,
                &mut settings.total_timeout,
            ),
        ];
        for (setting, value, slot) in fields {
            let parsed =
                millis(value).map_err(|value| ProbeSetupError::GatewayLimit { setting, value })?;
            if let Some(limit) = parsed {
                *slot = limit;
            }
        }
        Ok(settings)
    }

    /// Limits from named configuration values: `lookup` answers a variable name
    /// (`LLM_SETTINGS_GATEWAY_*_TIMEOUT_MS`) with its value, if set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProbeSetupError> {
        Self::from_values(
            lookup(GATEWAY_CONNECT_TIMEOUT_MS_ENV).as_deref(),
            lookup(GATEWAY_FIRST_BYTE_TIMEOUT_MS_ENV).as_deref(),
            lookup(GATEWAY_IDLE_TIMEOUT_MS_ENV).as_deref(),
            lookup(GATEWAY_TOTAL_TIMEOUT_MS_ENV).as_deref(),
        )
    }

    /// Limits from the process environment.
    pub fn from_env() -> Result<Self, ProbeSetupError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_settings_from_configuration_values() {
        let s =
            ProbeSettings::from_values(Some("gateway.internal, 10.0.0.0/8"), Some("2500")).unwrap();
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert!(!s.allow.is_empty());
        let d = ProbeSettings::from_values(None, None).unwrap();
        assert_eq!(d.timeout, ProbeSettings::DEFAULT_TIMEOUT);
        assert!(d.allow.is_empty());
        assert_eq!(d.local_hosts, AllowList::loopback());
        assert_eq!(d.max_body_bytes, 1024 * 1024);
        for bad in ["0", "soon", "-5", "86400001"] {
            let err = ProbeSettings::from_values(None, Some(bad)).unwrap_err();
            assert!(matches!(err, ProbeSetupError::Timeout(_)), "{bad}");
            assert!(err.to_string().contains(TIMEOUT_MS_ENV));
        }
        let err = ProbeSettings::from_values(Some("10.0.0.0/99"), None).unwrap_err();
        assert!(err.to_string().contains(ALLOW_HOSTS_ENV), "{err}");
        assert!(ProbeSettings::default()
            .with_google_token_url("file:///tmp/x")
            .is_err());
    }

    #[test]
    fn local_provider_hosts_are_the_operators_choice() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let s = ProbeSettings::from_lookup(env(&[])).unwrap();
        assert_eq!(s.local_hosts, AllowList::loopback());
        let s = ProbeSettings::from_lookup(env(&[(
            LOCAL_PROVIDER_HOSTS_ENV,
            "ollama.lan:11434, 192.168.10.0/24",
        )]))
        .unwrap();
        assert_eq!(
            s.local_hosts,
            AllowList::parse("ollama.lan:11434, 192.168.10.0/24").unwrap()
        );
        let err = ProbeSettings::from_lookup(env(&[(LOCAL_PROVIDER_HOSTS_ENV, "10.0.0.0/40")]))
            .unwrap_err();
        assert!(matches!(err, ProbeSetupError::LocalProviderHosts(_)));
        assert!(err.to_string().contains(LOCAL_PROVIDER_HOSTS_ENV), "{err}");
    }

    #[test]
    fn gateway_limits_from_configuration_values() {
        let d = GatewaySettings::from_values(None, None, None, Some(" ")).unwrap();
        assert_eq!(d, GatewaySettings::default());
        assert_eq!(d.connect_timeout, Duration::from_secs(10));
        assert_eq!(d.first_byte_timeout, Duration::from_secs(300));
        assert_eq!(d.idle_timeout, Duration::from_secs(120));
        assert_eq!(d.total_timeout, Duration::from_secs(900));
        let s = GatewaySettings::from_values(Some("250"), Some("1000"), Some("500"), Some("60000"))
            .unwrap();
        assert_eq!(s.connect_timeout, Duration::from_millis(250));
        assert_eq!(s.first_byte_timeout, Duration::from_secs(1));
        assert_eq!(s.idle_timeout, Duration::from_millis(500));
        assert_eq!(s.total_timeout, Duration::from_secs(60));
        let err = GatewaySettings::from_values(None, None, Some("0"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid LLM_SETTINGS_GATEWAY_IDLE_TIMEOUT_MS: \"0\" is not a number of \
             milliseconds from 1 to 86400000"
        );
        let err = GatewaySettings::from_lookup(|name| {
            (name == GATEWAY_TOTAL_TIMEOUT_MS_ENV).then(|| "15m".to_owned())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains(GATEWAY_TOTAL_TIMEOUT_MS_ENV),
            "{err}"
        );
    }
}
