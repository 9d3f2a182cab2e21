//! The one place a provider credential is put on an outbound request, the provider's way, for
//! key tests and forwarded calls alike.
//!
//! Before injecting, every header that carries a credential for some provider is removed, so
//! a request only ever leaves with the stored credential.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use llm_settings_domain::{FailureClass, ProbeShape, ProviderSpec, SecretValue};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use url::Url;
use zeroize::Zeroizing;

use crate::failure::Failure;

/// Anthropic API version sent when the request names none.
pub(crate) const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The SigV4 signing name of Bedrock (control plane and runtime).
const BEDROCK_SERVICE: &str = "bedrock";

/// Headers that carry a credential for some provider: the adapter owns them.
const CREDENTIAL_HEADERS: [&str; 8] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// A credential's fields: the opened secrets and the other settings.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub(crate) spec: &'static ProviderSpec,
    pub(crate) secrets: &'a BTreeMap<String, SecretValue>,
    pub(crate) settings: &'a BTreeMap<String, String>,
}

impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("provider", &self.spec.id)
            .finish_non_exhaustive()
    }
}

impl<'a> Fields<'a> {
    /// A non-blank secret field, trimmed.
    pub(crate) fn secret(&self, name: &str) -> Option<&'a str> {
        self.secrets
            .get(name)
            .filter(|s| !s.is_blank())
            .map(|s| s.expose().trim())
    }

    /// A secret field that must be present.
    pub(crate) fn require_secret(&self, name: &str, what: &str) -> Result<&'a str, Failure> {
        self.secret(name).ok_or_else(|| Failure::missing(what))
    }

    /// The provider's API key; `Ok(None)` only when the catalog says it is optional.
    pub(crate) fn api_key(&self) -> Result<Option<&'a str>, Failure> {
        match self.secret("api_key") {
            Some(key) => Ok(Some(key)),
            None if self.spec.requires_api_key() => Err(Failure::missing("API key")),
            None => Ok(None),
        }
    }

    /// A non-blank, trimmed non-secret field.
    pub(crate) fn setting(&self, name: &str) -> Option<&'a str> {
        self.settings
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// AWS keys and the region they sign for.
#[derive(Clone, Copy)]
pub(crate) struct AwsKeys<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    pub(crate) session_token: Option<&'a str>,
    pub(crate) region: &'a str,
}

/// A credential ready to be put on a request. `Debug` never shows a value.
#[derive(Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// `Authorization: Bearer` when a key is given (OpenAI-style, OpenRouter, Ollama), with
    /// OpenAI's organization and project headers when they are set.
    Bearer {
        key: Option<&'a str>,
        organization: Option<&'a str>,
        project: Option<&'a str>,
    },
    /// Anthropic's `x-api-key`, and `anthropic-version` when the request has none.
    Anthropic(&'a str),
    /// Gemini's `x-goog-api-key` (never the `key` query parameter).
    GoogleApiKey(&'a str),
    /// Azure OpenAI's `api-key`.
    Azure(&'a str),
    /// AWS SigV4 over the method, URL, headers and body.
    SigV4(AwsKeys<'a>),
    /// A Google OAuth access token, and the quota project when the request names none.
    GoogleToken { token: &'a str, project: &'a str },
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Bearer { .. } => "Bearer",
            Self::Anthropic(_) => "Anthropic",
            Self::GoogleApiKey(_) => "GoogleApiKey",
            Self::Azure(_) => "Azure",
            Self::SigV4(_) => "SigV4",
            Self::GoogleToken { .. } => "GoogleToken",
        };
        write!(f, "Credential::{kind}(..)")
    }
}

impl<'a> Credential<'a> {
    /// The credential of a provider whose key is used as it is (every shape but Vertex AI,
    /// whose access token is minted first).
    pub(crate) fn of(fields: &Fields<'a>) -> Result<Self, Failure> {
        Ok(match fields.spec.probe {
            ProbeShape::OpenAiModels | ProbeShape::OpenRouterKey | ProbeShape::Ollama => {
                Self::Bearer {
                    key: fields.api_key()?,
                    organization: fields.setting("organization"),
                    project: fields.setting("project"),
                }
            }
            ProbeShape::Anthropic => Self::Anthropic(fields.require_secret("api_key", "API key")?),
            ProbeShape::Gemini => Self::GoogleApiKey(fields.require_secret("api_key", "API key")?),
            ProbeShape::Azure => Self::Azure(fields.require_secret("api_key", "API key")?),
            ProbeShape::Bedrock => Self::SigV4(aws_keys(fields)?),
            ProbeShape::Vertex => {
                return Err(Failure::new(
                    FailureClass::InvalidCredentials,
                    "a Vertex AI access token must be minted first",
                ))
            }
        })
    }

    /// Removes every credential header the request carries, then adds this credential.
    pub(crate) fn apply(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), Failure> {
        for name in CREDENTIAL_HEADERS {
            headers.remove(name);
        }
        match *self {
            Self::Bearer {
                key,
                organization,
                project,
            } => {
                if let Some(key) = key {
                    let bearer = Zeroizing::new(format!("Bearer {key}"));
                    put_secret(headers, "authorization", &bearer, "API key")?;
                }
                if let Some(organization) = organization {
                    put(headers, "openai-organization", organization)?;
                }
                if let Some(project) = project {
                    put(headers, "openai-project", project)?;
                }
            }
            Self::Anthropic(key) => {
                put_secret(headers, "x-api-key", key, "API key")?;
                if !headers.contains_key("anthropic-version") {
                    put(headers, "anthropic-version", ANTHROPIC_VERSION)?;
                }
            }
            Self::GoogleApiKey(key) => put_secret(headers, "x-goog-api-key", key, "API key")?,
            Self::Azure(key) => put_secret(headers, "api-key", key, "API key")?,
            Self::SigV4(keys) => sign_v4(keys, method, url, headers, body)?,
            Self::GoogleToken { token, project } => {
                let bearer = Zeroizing::new(format!("Bearer {token}"));
                put_secret(headers, "authorization", &bearer, "access token")?;
                if !headers.contains_key("x-goog-user-project") {
                    put(headers, "x-goog-user-project", project)?;
                }
            }
        }
        Ok(())
    }
}

/// The AWS keys and region of a Bedrock credential, the region checked (it becomes part of a
/// host name).
pub(crate) fn aws_keys<'a>(fields: &Fields<'a>) -> Result<AwsKeys<'a>, Failure> {
    let access_key_id = fields.require_secret("access_key_id", "AWS access key id")?;
    let secret_access_key = fields.require_secret("secret_access_key", "AWS secret access key")?;
    let region = fields
        .setting("region")
        .ok_or_else(|| Failure::missing("AWS region"))?;
    if !is_region(region) {
        return Err(Failure::new(
            FailureClass::BlockedByPolicy,
            "the AWS region must look like us-east-1",
        ));
    }
    Ok(AwsKeys {
        access_key_id,
        secret_access_key,
        session_token: fields.secret("session_token"),
        region,
    })
}

/// `us-east-1`, `eu-central-2`, `ap-southeast-3`, `us-gov-west-1`, `cn-north-1` …
pub(crate) fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && region.len() <= 32
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok_and(|n| n > 0)
}

/// Signs the request as it will be sent: every header it carries (that the signer does not
/// exclude), the URL with its query, and the body.
fn sign_v4(
    keys: AwsKeys<'_>,
    method: &Method,
    url: &Url,
    headers: &mut HeaderMap,
    body: &[u8],
) -> Result<(), Failure> {
    let unsignable = || {
        Failure::new(
            FailureClass::InvalidCredentials,
            "the AWS credentials could not be used to sign a request",
        )
    };
    let identity = Credentials::new(
        keys.access_key_id,
        keys.secret_access_key,
        keys.session_token.map(str::to_owned),
        None,
        "llm-settings",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(keys.region)
        .name(BEDROCK_SERVICE)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| unsignable())?
        .into();
    let signed: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
        .collect();
    let signable = SignableRequest::new(
        method.as_str(),
        url.as_str(),
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| unsignable())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|_| unsignable())?
        .into_parts();
    let mut added = Vec::new();
    for (name, value) in instructions.headers() {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| unsignable())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| unsignable())?;
        value.set_sensitive(true);
        added.push((name, value));
    }
    for (name, value) in added {
        headers.insert(name, value);
    }
    Ok(())
}

/// Adds a non-secret header; a value that is not valid header text is refused.
fn put(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), Failure> {
    let value = HeaderValue::from_str(value).map_err(|_| {
        Failure::new(
            FailureClass::InvalidCredentials,
            format!("the {name} value contains characters that cannot be sent"),
        )
    })?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// Adds a secret header, marked sensitive so it is never printed.
fn put_secret(
    headers: &mut HeaderMap,
    name: &'static str,
    value: &str,
    what: &str,
) -> Result<(), Failure> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        Failure::new(
            FailureClass::InvalidCredentials,
            format!("the {what} contains characters that cannot be sent"),
        )
    })?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_settings_domain::ProviderId;

    fn fields_of(
        provider: &str,
        secrets: &[(&str, &str)],
        settings: &[(&str, &str)],
    ) -> (
        BTreeMap<String, SecretValue>,
        BTreeMap<String, String>,
        &'static ProviderSpec,
    ) {
        (
            secrets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v)))
                .collect(),
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ProviderId::lookup(provider).unwrap().spec(),
        )
    }

    fn applied(provider: &str, secrets: &[(&str, &str)], client: &[(&str, &str)]) -> HeaderMap {
        let (secrets, settings, spec) = fields_of(provider, secrets, &[("region", "us-east-1")]);
        let fields = Fields {
            spec,
            secrets: &secrets,
            settings: &settings,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in client {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let url = Url::parse("https://example.test/v1/x").unwrap();
        Credential::of(&fields)
            .unwrap()
            .apply(&Method::POST, &url, &mut headers, b"{}")
            .unwrap();
        headers
    }

    #[test]
    fn client_credentials_are_replaced_by_the_stored_one() {
        let client = [
            ("authorization", "Bearer client-token"),
            ("x-api-key", "client-token"),
            ("x-goog-api-key", "client-token"),
            ("api-key", "client-token"),
            ("x-amz-security-token", "client-token"),
            ("anthropic-version", "2024-01-01"),
        ];
        let h = applied("anthropic", &[("api_key", "sk-ant-stored")], &client);
        assert_eq!(h["x-api-key"], "sk-ant-stored");
        assert_eq!(h["anthropic-version"], "2024-01-01");
        for gone in [
            "authorization",
            "x-goog-api-key",
            "api-key",
            "x-amz-security-token",
        ] {
            assert!(!h.contains_key(gone), "{gone}");
        }
        let h = applied("anthropic", &[("api_key", "sk-ant-stored")], &[]);
        assert_eq!(h["anthropic-version"], ANTHROPIC_VERSION);
        let h = applied("openai", &[("api_key", "sk-stored")], &client);
        assert_eq!(h["authorization"], "Bearer sk-stored");
        assert!(h["authorization"].is_sensitive());
        assert!(!h.contains_key("x-api-key"));
        let h = applied("ollama", &[], &client);
        assert!(!h.contains_key("authorization"));
        let h = applied(
            "amazon-bedrock",
            &[
                ("access_key_id", "AKIDEXAMPLE"),
                ("secret_access_key", "s3cr3t"),
            ],
            &client,
        );
        let auth = h["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(!h.contains_key("x-amz-security-token"));
    }

    #[test]
    fn debug_never_shows_a_value() {
        let c = Credential::Anthropic("sk-ant-secret");
        assert_eq!(format!("{c:?}"), "Credential::Anthropic(..)");
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-3",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "us-east",
            "evil.com/x",
            "us-east-1.evil.com",
            "US-EAST-1",
            "a-b-c-d-1",
            "us-east-0",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
