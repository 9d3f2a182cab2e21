//! The provider catalog: every provider the service knows, as data.
//!
//! Behaviour that differs per provider (which credential fields exist, which are secret, how a
//! key is tested) is read from [`ProviderSpec`] rather than spread over `match` arms.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// How a key for this provider is tested; each shape is one module of the probe adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeShape {
    /// `GET {base}/models` with a bearer key (OpenAI, DeepSeek, xAI, Mistral, Groq, compatible).
    OpenAiModels,
    /// `GET {base}/key` with a bearer key (OpenRouter's model list needs no key).
    OpenRouterKey,
    /// `GET {base}/v1/models` with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// `GET {base}/v1beta/models` with `x-goog-api-key`.
    Gemini,
    /// `GET {base}/api/tags`, no key.
    Ollama,
    /// `GET {endpoint}/openai/models?api-version=…` with `api-key`.
    Azure,
    /// Bedrock `ListFoundationModels`, SigV4-signed.
    Bedrock,
    /// Vertex AI publisher models with a service-account token.
    Vertex,
}

/// One credential field of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialField {
    /// Wire and storage name, e.g. `api_key`, `endpoint`.
    pub name: &'static str,
    /// Sealed at rest and never echoed when true.
    pub secret: bool,
    /// Must be present for the config to be usable.
    pub required: bool,
    /// The value is a URL the key is sent to (subject to the same rules as `base_url`).
    pub url: bool,
}

const fn secret(name: &'static str, required: bool) -> CredentialField {
    CredentialField {
        name,
        secret: true,
        required,
        url: false,
    }
}

const fn setting(name: &'static str, required: bool) -> CredentialField {
    CredentialField {
        name,
        secret: false,
        required,
        url: false,
    }
}

const fn url_setting(name: &'static str, required: bool) -> CredentialField {
    CredentialField {
        name,
        secret: false,
        required,
        url: true,
    }
}

/// Everything the service knows about one provider.
#[derive(Debug)]
pub struct ProviderSpec {
    /// Canonical id, e.g. `deepseek_cloud`.
    pub id: &'static str,
    /// Other names a surface uses for it (`google` on the provider-configuration API).
    pub aliases: &'static [&'static str],
    /// Human name for settings pages.
    pub display_name: &'static str,
    /// Model used when a config names none.
    pub default_model: Option<&'static str>,
    /// Endpoint used when a config names none; `None` when the operator must give one.
    pub default_base_url: Option<&'static str>,
    /// Runs on the operator's own network; probes may reach private and loopback addresses.
    pub local: bool,
    /// A `base_url` must be given (the provider has no public endpoint).
    pub base_url_required: bool,
    /// Credential fields; the first secret field is the provider's "API key".
    pub fields: &'static [CredentialField],
    /// How a key is tested.
    pub probe: ProbeShape,
}

impl ProviderSpec {
    /// The secret shown as "the API key" on surfaces that have a single key field.
    pub fn primary_secret(&self) -> Option<&'static CredentialField> {
        self.fields.iter().find(|f| f.secret)
    }

    /// Whether a config of this provider is unusable without a key.
    pub fn requires_api_key(&self) -> bool {
        self.primary_secret().is_some_and(|f| f.required)
    }

    /// The credential field with this name.
    pub fn field(&self, name: &str) -> Option<&'static CredentialField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Origin (`scheme://host:port`) of the default endpoint, if the provider has one.
    pub fn default_origin(&self) -> Option<String> {
        self.default_base_url.and_then(crate::values::origin_of)
    }

    /// Host of the default endpoint, if the provider has one.
    pub fn default_host(&self) -> Option<String> {
        self.default_base_url
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    }
}

const API_KEY: CredentialField = secret("api_key", true);
const OPTIONAL_API_KEY: CredentialField = secret("api_key", false);

/// Every provider the service knows, in display order.
pub static PROVIDERS: &[ProviderSpec] = &[
    ProviderSpec {
        id: "anthropic",
        aliases: &["claude"],
        display_name: "Anthropic",
        default_model: Some("claude-sonnet-4-5"),
        default_base_url: Some("https://api.anthropic.com"),
        local: false,
        base_url_required: false,
        fields: &[API_KEY],
        probe: ProbeShape::Anthropic,
    },
    ProviderSpec {
        id: "openai",
        aliases: &[],
        display_name: "OpenAI",
        default_model: Some("gpt-4o"),
        default_base_url: Some("https://api.openai.com/v1"),
        local: false,
        base_url_required: false,
        fields: &[
            API_KEY,
            setting("organization", false),
            setting("project", false),
        ],
        probe: ProbeShape::OpenAiModels,
    },
    ProviderSpec {
        id: "gemini",
        aliases: &["google", "google-gemini"],
        display_name: "Google Gemini",
        default_model: Some("gemini-2.5-flash"),
        default_base_url: Some("https://generativelanguage.googleapis.com"),
        local: false,
        base_url_required: false,
        fields: &[API_KEY],
        probe: ProbeShape::Gemini,
    },
    ProviderSpec {
        id: "deepseek_cloud",
        aliases: &["deepseek", "deepseek-cloud"],
        display_name: "DeepSeek Cloud",
        default_model: Some("deepseek-chat"),
        default_base_url: Some("https://api.deepseek.com"),
        local: false,
        base_url_required: false,
        fields: &[API_KEY],
        probe: ProbeShape::OpenAiModels,
    },
    ProviderSpec {
        id: "deepseek_local",
        aliases: &["deepseek-local"],
        display_name: "DeepSeek (local)",
        default_model: Some("deepseek-r1"),
        default_base_url: Some("http://localhost:11434"),
        local: true,
        base_url_required: false,
        fields: &[OPTIONAL_API_KEY],
        probe: ProbeShape::Ollama,
    },
    ProviderSpec {
        id: "openrouter",
        aliases: &[],
        display_name: "OpenRouter",
        default_model: Some("openrouter/auto"),
        default_base_url: Some("https://openrouter.ai/api/v1"),
        local: false,
        base_url_required: false,
        fields: &[API_KEY],
        probe: ProbeShape::OpenRouterKey,
    },
    ProviderSpec {
        id: "ollama",
        aliases: &[],
        display_name: "Ollama",
        default_model: Some("llama3.1"),
        default_base_url: Some("http://localhost:11434"),
        local: true,
        base_url_required: false,
        fields: &[OPTIONAL_API_KEY],
        probe: ProbeShape::Ollama,
    },
    ProviderSpec {
        id: "xai",
        aliases: &["grok"],
        display_name: "xAI",
        default_model: Some("grok-4"),
        default_base_url: Some("https://api.x.ai/v1"),
        local: false,
        base_url_required: false,
        fields: &[API_KEY],
        probe: ProbeShape::OpenAiModels,
    },
    ProviderSpec {
        id: "mistral",
        aliases: &[],
        display_name: "Mistral AI",
        default_model: Some("mistral-large-latest"),
        default_base_url: Some("https://api.mistral.ai/v1"),
        local: false,
        base_url_required: false,
        fields: &[API_KEY],
        probe: ProbeShape::OpenAiModels,
    },
    ProviderSpec {
        id: "groq",
        aliases: &[],
        display_name: "Groq",
        default_model: Some("llama-3.3-70b-versatile"),
        default_base_url: Some("https://api.groq.com/openai/v1"),
        local: false,
        base_url_required: false,
        fields: &[API_KEY],
        probe: ProbeShape::OpenAiModels,
    },
    ProviderSpec {
        id: "azure",
        aliases: &["azure-openai", "azure_openai"],
        display_name: "Azure OpenAI",
        default_model: Some("gpt-4o"),
        default_base_url: None,
        local: false,
        base_url_required: false,
        fields: &[
            API_KEY,
            url_setting("endpoint", true),
            setting("deployment", false),
            setting("api_version", false),
        ],
        probe: ProbeShape::Azure,
    },
    ProviderSpec {
        id: "amazon-bedrock",
        aliases: &["bedrock", "amazon_bedrock"],
        display_name: "Amazon Bedrock",
        default_model: Some("anthropic.claude-3-5-sonnet-20240620-v1:0"),
        default_base_url: None,
        local: false,
        base_url_required: false,
        fields: &[
            secret("secret_access_key", true),
            secret("access_key_id", true),
            secret("session_token", false),
            setting("region", true),
        ],
        probe: ProbeShape::Bedrock,
    },
    ProviderSpec {
        id: "google-vertex",
        aliases: &["vertex", "google_vertex", "vertex-ai"],
        display_name: "Google Vertex AI",
        default_model: Some("gemini-2.5-flash"),
        default_base_url: None,
        local: false,
        base_url_required: false,
        fields: &[
            secret("service_account_json", true),
            setting("project_id", true),
            setting("location", false),
        ],
        probe: ProbeShape::Vertex,
    },
    ProviderSpec {
        id: "openai_compatible",
        aliases: &["openai-compatible", "custom"],
        display_name: "OpenAI-compatible endpoint",
        default_model: None,
        default_base_url: None,
        local: false,
        base_url_required: true,
        fields: &[OPTIONAL_API_KEY, setting("organization", false)],
        probe: ProbeShape::OpenAiModels,
    },
];

/// The error for a name that is no offered provider; the name is repeated only when it looks
/// like a provider id.
fn unknown(name: &str) -> Error {
    Error::UnknownProvider(crate::error::shown(name))
}

/// A provider of the catalog. Only obtainable through a lookup, so it is always known.
#[derive(Clone, Copy)]
pub struct ProviderId(&'static ProviderSpec);

impl ProviderId {
    /// Looks a provider up by canonical id or alias (case-insensitive), ignoring operator
    /// restrictions; use [`Catalog::resolve`] for requests.
    pub fn lookup(name: &str) -> Option<Self> {
        let name = name.trim();
        PROVIDERS
            .iter()
            .find(|p| {
                p.id.eq_ignore_ascii_case(name)
                    || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            })
            .map(Self)
    }

    /// The canonical id.
    pub fn as_str(&self) -> &'static str {
        self.0.id
    }

    /// The catalog entry.
    pub fn spec(&self) -> &'static ProviderSpec {
        self.0
    }
}

impl PartialEq for ProviderId {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for ProviderId {}
impl Hash for ProviderId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}
impl PartialOrd for ProviderId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ProviderId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(other.0.id)
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderId({})", self.0.id)
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.id)
    }
}

impl std::str::FromStr for ProviderId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::lookup(s).ok_or_else(|| unknown(s))
    }
}

impl Serialize for ProviderId {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.id)
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::lookup(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown provider: {s}")))
    }
}

/// The providers this deployment offers (all of them unless the operator restricts the list).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    offered: Option<BTreeSet<ProviderId>>,
}

impl Catalog {
    /// Every provider offered.
    pub fn all() -> Self {
        Self { offered: None }
    }

    /// Only the named providers (ids or aliases); an unknown name is an error so a typo in
    /// the operator's configuration is caught at start.
    pub fn restricted<I, S>(names: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut offered = BTreeSet::new();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            offered.insert(ProviderId::lookup(name).ok_or_else(|| unknown(name))?);
        }
        if offered.is_empty() {
            return Err(Error::invalid("providers", "the provider list is empty"));
        }
        Ok(Self {
            offered: Some(offered),
        })
    }

    /// Whether a provider is offered.
    pub fn offers(&self, provider: ProviderId) -> bool {
        self.offered
            .as_ref()
            .is_none_or(|set| set.contains(&provider))
    }

    /// Resolves a requested provider name to an offered provider.
    pub fn resolve(&self, name: &str) -> Result<ProviderId> {
        ProviderId::lookup(name)
            .filter(|p| self.offers(*p))
            .ok_or_else(|| unknown(name))
    }

    /// Checks that a provider is offered.
    pub fn ensure_offered(&self, provider: ProviderId) -> Result<()> {
        if self.offers(provider) {
            Ok(())
        } else {
            Err(Error::UnknownProvider(provider.as_str().to_owned()))
        }
    }

    /// Offered providers in catalog order.
    pub fn providers(&self) -> impl Iterator<Item = ProviderId> + '_ {
        PROVIDERS.iter().map(ProviderId).filter(|p| self.offers(*p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_aliases_resolve() {
        assert_eq!(
            ProviderId::lookup("google").map(|p| p.as_str()),
            Some("gemini")
        );
        assert_eq!(
            ProviderId::lookup("deepseek").map(|p| p.as_str()),
            Some("deepseek_cloud")
        );
        assert_eq!(
            ProviderId::lookup("Amazon-Bedrock").map(|p| p.as_str()),
            Some("amazon-bedrock")
        );
        assert!(ProviderId::lookup("xyz").is_none());
    }

    #[test]
    fn ids_and_aliases_are_unique() {
        let mut seen = BTreeSet::new();
        for p in PROVIDERS {
            assert!(seen.insert(p.id.to_ascii_lowercase()), "duplicate {}", p.id);
            for a in p.aliases {
                assert!(seen.insert(a.to_ascii_lowercase()), "duplicate alias {a}");
            }
        }
    }

    #[test]
    fn every_provider_is_consistent() {
        for p in PROVIDERS {
            assert!(
                p.primary_secret().is_some() || !p.requires_api_key(),
                "{}",
                p.id
            );
            if let Some(url) = p.default_base_url {
                assert!(url::Url::parse(url).is_ok(), "{}", p.id);
            }
            assert!(
                p.default_base_url.is_some()
                    || p.base_url_required
                    || p.probe != ProbeShape::OpenAiModels,
                "{} has no endpoint",
                p.id
            );
        }
        let local: Vec<_> = PROVIDERS.iter().filter(|p| p.local).map(|p| p.id).collect();
        assert_eq!(local, ["deepseek_local", "ollama"]);
    }

    #[test]
    fn key_requirements() {
        let p = |id| ProviderId::lookup(id).map(|p| p.spec().requires_api_key());
        assert_eq!(p("openai"), Some(true));
        assert_eq!(p("deepseek_local"), Some(false));
        assert_eq!(p("ollama"), Some(false));
        assert_eq!(p("amazon-bedrock"), Some(true));
    }

    #[test]
    fn restriction_is_enforced() {
        let catalog = Catalog::restricted(["openai", "google"]).unwrap();
        assert!(catalog.resolve("gemini").is_ok());
        assert_eq!(
            catalog.resolve("anthropic").unwrap_err().code(),
            "unknown_provider"
        );
        assert_eq!(catalog.providers().count(), 2);
        assert!(Catalog::restricted(["nope"]).is_err());
        assert!(Catalog::restricted([""]).is_err());
        let long = "sk-ant-api03-THIS-IS-A-KEY-NOT-A-PROVIDER-0123456789";
        assert!(!catalog
            .resolve(long)
            .unwrap_err()
            .to_string()
            .contains("THIS-IS"));
        assert_eq!(
            catalog.resolve("xyz").unwrap_err().to_string(),
            "unknown provider: xyz"
        );
    }

    #[test]
    fn serde_uses_canonical_id() {
        let p: ProviderId = serde_json::from_str("\"google\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"gemini\"");
        assert!(serde_json::from_str::<ProviderId>("\"xyz\"").is_err());
    }
}
