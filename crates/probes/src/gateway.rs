//! The gateway's outbound side: a client's request forwarded to its provider with the stored
//! credential, under the same policy and credential code as the probes, the answer streamed
//! back as it arrives.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use llm_settings_domain::forward::{passes_downstream, passes_upstream};
use llm_settings_domain::ports::ProviderClient;
use llm_settings_domain::{
    FailureClass, ForwardFailure, ForwardRequest, ForwardResponse, ProbeShape, ProviderSpec,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use tokio::time::Instant;
use url::Url;
use zeroize::Zeroizing;

use crate::answer::{Body, Scrubber};
use crate::credentials::{Credential, Fields};
use crate::failure::Failure;
use crate::google::{self, ServiceAccount, TokenCache};
use crate::network::{cause_of, Cause, Network};
use crate::outbound::Outbound;
use crate::policy::Reach;
use crate::settings::{GatewaySettings, ProbeSettings, ProbeSetupError};
use crate::shapes::{self, parse_base};

/// Largest token answer read from Google's token endpoint.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// The reqwest-based [`ProviderClient`]: pooled connections, one client per policy class.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    network: Network,
    limits: GatewaySettings,
    compatible_is_local: bool,
    google_token_url: Option<Url>,
    tokens: TokenCache,
}

impl HttpGateway {
    /// A gateway client under the probes' outbound policy (`policy`: allow lists, local
    /// providers, Google token URL) with the gateway's limits.
    pub fn new(policy: &ProbeSettings, limits: GatewaySettings) -> Result<Self, ProbeSetupError> {
        let zero = [
            limits.connect_timeout,
            limits.first_byte_timeout,
            limits.idle_timeout,
            limits.total_timeout,
        ]
        .iter()
        .any(Duration::is_zero);
        if zero {
            return Err(ProbeSetupError::Limit("gateway limits must be positive"));
        }
        let reach = Reach {
            allow: policy.allow.clone(),
            local_hosts: policy.local_hosts.clone(),
        };
        let network = Network::new(reach, limits.connect_timeout)
            .map_err(|e| ProbeSetupError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                network,
                limits,
                compatible_is_local: policy.compatible_is_local,
                google_token_url: policy.google_token_url.clone(),
                tokens: TokenCache::default(),
            }),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &GatewaySettings {
        &self.inner.limits
    }
}

#[async_trait]
impl ProviderClient for HttpGateway {
    async fn forward(&self, request: ForwardRequest) -> Result<ForwardResponse, ForwardFailure> {
        let started = Instant::now();
        let inner = &*self.inner;
        let spec = request.provider.spec();
        let result = inner.send(spec, request, started).await;
        match &result {
            Ok(response) => tracing::debug!(
                target: "llm_settings_probes",
                provider = spec.id,
                status = response.status,
                first_byte_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "forwarded call answered"
            ),
            Err(failure) => tracing::info!(
                target: "llm_settings_probes",
                provider = spec.id,
                "forwarded call failed: {failure}"
            ),
        }
        result
    }
}

impl Inner {
    async fn send(
        &self,
        spec: &'static ProviderSpec,
        mut request: ForwardRequest,
        started: Instant,
    ) -> Result<ForwardResponse, ForwardFailure> {
        let local = spec.local || (self.compatible_is_local && spec.id == "openai_compatible");
        let fields = Fields {
            spec,
            secrets: &request.secrets,
            settings: &request.settings,
        };
        let url = target_url(&fields, &request)?;
        let (client, checked) = self
            .network
            .route(&url, local)
            .map_err(|refusal| ForwardFailure::Blocked(refusal.to_string()))?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| ForwardFailure::Invalid("the method is not a valid HTTP method".into()))?;
        let mut headers = upstream_headers(&request.headers)?;
        let deadline = started + self.limits.total_timeout;
        let first_byte = started
            + self
                .limits
                .first_byte_timeout
                .min(self.limits.total_timeout);

        self.authorize(
            &fields,
            &method,
            &url,
            &mut headers,
            &request.body,
            first_byte,
        )
        .await?;

        tracing::debug!(
            target: "llm_settings_probes",
            provider = spec.id,
            method = %method,
            host = %checked.host,
            port = checked.port,
            "forwarding a call"
        );
        let call = client
            .request(method, url)
            .headers(headers)
            .body(std::mem::take(&mut request.body))
            .send();
        let response = match tokio::time::timeout_at(first_byte, call).await {
            Err(_) => {
                return Err(ForwardFailure::Timeout(format!(
                    "no answer within {}",
                    shown(first_byte - started)
                )))
            }
            Ok(result) => result.map_err(|e| send_failure(&e, &self.limits))?,
        };
        let status = response.status().as_u16();
        // Error answers may echo the key; successful ones pass untouched and unbuffered.
        let scrubber = if status >= 400 {
            Scrubber::new(request.secrets.values().map(|s| s.expose()))
        } else {
            None
        };
        Ok(ForwardResponse {
            status,
            headers: downstream_headers(response.headers()),
            body: Body::new(response, self.limits.idle_timeout, deadline, scrubber).into_stream(),
        })
    }

    /// Puts the credential on the request: the stored key as it is, or for Vertex AI the
    /// service account's cached access token.
    async fn authorize(
        &self,
        fields: &Fields<'_>,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(), ForwardFailure> {
        if fields.spec.probe != ProbeShape::Vertex {
            let credential = Credential::of(fields).map_err(refused)?;
            return credential
                .apply(method, url, headers, body)
                .map_err(refused);
        }
        let json = fields
            .require_secret("service_account_json", "service account JSON")
            .map_err(refused)?;
        let account = ServiceAccount::parse(json).map_err(refused)?;
        let target = shapes::vertex::Target::of(
            fields.setting("project_id"),
            fields.setting("location"),
            &account,
        )
        .map_err(refused)?;
        let token = self.vertex_token(&account, deadline).await?;
        let credential = Credential::GoogleToken {
            token: &token,
            project: target.project,
        };
        credential
            .apply(method, url, headers, body)
            .map_err(refused)
    }

    /// The cached access token of a Vertex AI service account, minted when missing or
    /// about to expire.
    async fn vertex_token(
        &self,
        account: &ServiceAccount,
        deadline: Instant,
    ) -> Result<Zeroizing<String>, ForwardFailure> {
        let token_url = google::token_url(self.google_token_url.as_ref()).map_err(refused)?;
        let out = Outbound {
            network: &self.network,
            local: false,
            deadline,
            max_body_bytes: TOKEN_BODY_LIMIT,
        };
        self.tokens
            .token(&out, account, &token_url)
            .await
            .map_err(refused)
    }
}

/// `{base}/{path}?{query}`: the base from the request, else derived the provider's way.
fn target_url(fields: &Fields<'_>, request: &ForwardRequest) -> Result<Url, ForwardFailure> {
    let given = request
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    let base = match given {
        Some(base) => base.to_owned(),
        None => derived_base(fields)?,
    };
    let mut url = parse_base(&base).map_err(refused)?;
    let path = format!(
        "{}/{}",
        url.path().trim_end_matches('/'),
        request.path.as_str()
    );
    url.set_path(&path);
    url.set_query(request.query.as_deref().filter(|q| !q.is_empty()));
    Ok(url)
}

/// The endpoint of a provider configured by its credential fields, else the catalog default.
fn derived_base(fields: &Fields<'_>) -> Result<String, ForwardFailure> {
    let spec = fields.spec;
    match spec.probe {
        ProbeShape::Azure => fields
            .setting("endpoint")
            .map(str::to_owned)
            .ok_or_else(|| ForwardFailure::Invalid("no Azure OpenAI endpoint was given".into())),
        ProbeShape::Bedrock => {
            let keys = crate::credentials::aws_keys(fields).map_err(refused)?;
            Ok(shapes::bedrock::regional_endpoint(
                "bedrock-runtime",
                keys.region,
            ))
        }
        ProbeShape::Vertex => {
            let location = fields.setting("location").unwrap_or("us-central1");
            if !shapes::vertex::is_location(location) {
                return Err(ForwardFailure::Invalid(
                    "the Vertex AI location must look like us-central1".into(),
                ));
            }
            Ok(shapes::vertex::regional_endpoint(location))
        }
        _ => spec.default_base_url.map(str::to_owned).ok_or_else(|| {
            ForwardFailure::Invalid(format!("{} needs a base URL", spec.display_name))
        }),
    }
}

/// The client's headers that may pass, as a header map; the domain filtered them already,
/// the filter runs again so this adapter never forwards what it must not.
fn upstream_headers(given: &[(String, Vec<u8>)]) -> Result<HeaderMap, ForwardFailure> {
    let mut headers = HeaderMap::with_capacity(given.len() + 4);
    for (name, value) in given {
        if !passes_upstream(name) {
            continue;
        }
        let invalid = || ForwardFailure::Invalid("a request header could not be forwarded".into());
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_bytes(value).map_err(|_| invalid())?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The provider's headers that may go back to the client.
fn downstream_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| passes_downstream(name.as_str()))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// Why a call failed before an answer arrived, never with the transport's own text.
fn send_failure(error: &reqwest::Error, limits: &GatewaySettings) -> ForwardFailure {
    match cause_of(error) {
        Cause::Refused(refusal) => return ForwardFailure::Blocked(refusal.to_string()),
        Cause::Unresolvable => {
            return ForwardFailure::Unreachable(
                "the provider's host name could not be resolved".into(),
            )
        }
        Cause::Other => {}
    }
    if error.is_timeout() {
        return ForwardFailure::Timeout(format!(
            "no connection within {}",
            shown(limits.connect_timeout)
        ));
    }
    if error.is_connect() {
        return ForwardFailure::Unreachable(
            "could not connect to the provider (network or TLS failure)".into(),
        );
    }
    ForwardFailure::Unreachable("the connection to the provider failed before an answer".into())
}

/// A probe-style failure as the forward port's failure.
fn refused(failure: Failure) -> ForwardFailure {
    match failure.class {
        FailureClass::BlockedByPolicy => ForwardFailure::Blocked(failure.message),
        FailureClass::Timeout => ForwardFailure::Timeout(failure.message),
        FailureClass::Unreachable => ForwardFailure::Unreachable(failure.message),
        _ => ForwardFailure::Invalid(failure.message),
    }
}

/// A limit for messages: `1500 ms`, `10 s`.
pub(crate) fn shown(limit: Duration) -> String {
    if limit.subsec_millis() == 0 {
        format!("{} s", limit.as_secs())
    } else {
        format!("{} ms", limit.as_millis())
    }
}
