//! Helpers shared by the probe and gateway tests: a probe or gateway client pointed at the
//! fake provider, and requests for each provider's credential form.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use llm_settings_domain::ports::ProviderProbe;
use llm_settings_domain::{
    ByteStream, ForwardPath, ForwardRequest, ProbeOutcome, ProbeRequest, ProviderId, SecretValue,
    StreamFailure,
};
use llm_settings_fake_provider::{
    Behaviour, FakeProvider, BEDROCK_REGION, BEDROCK_SECRET_ACCESS_KEY, VERTEX_PROJECT,
};
use llm_settings_probes::{AllowList, GatewaySettings, HttpGateway, HttpProbe, ProbeSettings};

/// Every provider of the catalog with the model the tests ask for.
pub const PROVIDERS: [(&str, Option<&str>); 14] = [
    ("openai", None),
    ("deepseek_cloud", None),
    ("xai", None),
    ("mistral", None),
    ("groq", None),
    ("openai_compatible", Some("gpt-4o")),
    ("openrouter", Some("anthropic/claude-sonnet-4.5")),
    ("anthropic", None),
    ("gemini", None),
    ("ollama", None),
    ("deepseek_local", None),
    ("azure", None),
    ("amazon-bedrock", None),
    ("google-vertex", None),
];

/// A probe that may reach the fake (allow-listed by host:port) and uses its token endpoint.
pub fn probe_for(fake: &FakeProvider, timeout: Duration) -> HttpProbe {
    let settings = ProbeSettings {
        timeout,
        allow: AllowList::parse(&fake.allow_hosts()).unwrap(),
        ..ProbeSettings::default()
    }
    .with_google_token_url(&fake.token_url())
    .unwrap();
    HttpProbe::new(settings).unwrap()
}

/// A probe with the given allow list and deadline.
pub fn probe_with(allow: &str, timeout: Duration) -> HttpProbe {
    HttpProbe::new(ProbeSettings {
        timeout,
        allow: AllowList::parse(allow).unwrap(),
        ..ProbeSettings::default()
    })
    .unwrap()
}

/// A bare request.
pub fn request(
    provider: &str,
    base_url: Option<String>,
    secrets: &[(&str, &str)],
    settings: &[(&str, &str)],
    model: Option<&str>,
) -> ProbeRequest {
    ProbeRequest {
        provider: ProviderId::lookup(provider).unwrap(),
        secrets: secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v)))
            .collect::<BTreeMap<_, _>>(),
        settings: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        base_url,
        model: model.map(str::to_owned),
    }
}

/// The request that makes the fake behave as `behaviour` for `provider`, with the catalog's
/// default model unless one is given.
pub fn fake_request(
    fake: &FakeProvider,
    provider: &str,
    behaviour: Behaviour,
    model: Option<&str>,
) -> ProbeRequest {
    let base = fake.base_url(provider);
    let key = behaviour.key();
    let model = model.or(ProviderId::lookup(provider).unwrap().spec().default_model);
    match provider {
        "azure" => request(
            provider,
            None,
            &[("api_key", &key)],
            &[("endpoint", &base)],
            model,
        ),
        "amazon-bedrock" => {
            let id = behaviour.access_key_id();
            request(
                provider,
                Some(base),
                &[
                    ("access_key_id", &id),
                    ("secret_access_key", BEDROCK_SECRET_ACCESS_KEY),
                ],
                &[("region", BEDROCK_REGION)],
                model,
            )
        }
        "google-vertex" => {
            let json = behaviour.service_account_json();
            request(
                provider,
                Some(base),
                &[("service_account_json", &json)],
                &[("project_id", VERTEX_PROJECT), ("location", "us-central1")],
                model,
            )
        }
        _ => request(provider, Some(base), &[("api_key", &key)], &[], model),
    }
}

/// Runs one probe.
pub async fn run(probe: &HttpProbe, request: ProbeRequest) -> ProbeOutcome {
    probe.probe(request).await
}

/// A gateway client that may reach the fake (allow-listed by host:port) and uses its token
/// endpoint, with the given limits.
pub fn gateway_for(fake: &FakeProvider, limits: GatewaySettings) -> HttpGateway {
    let policy = ProbeSettings {
        allow: AllowList::parse(&fake.allow_hosts()).unwrap(),
        ..ProbeSettings::default()
    }
    .with_google_token_url(&fake.token_url())
    .unwrap();
    HttpGateway::new(&policy, limits).unwrap()
}

/// A gateway client with the given allow list and local providers' hosts.
pub fn gateway_with(
    allow: &str,
    local_hosts: Option<&str>,
    limits: GatewaySettings,
) -> HttpGateway {
    let policy = ProbeSettings {
        allow: AllowList::parse(allow).unwrap(),
        ..ProbeSettings::default()
    }
    .with_local_provider_hosts(local_hosts)
    .unwrap();
    HttpGateway::new(&policy, limits).unwrap()
}

/// Limits short enough for tests.
pub fn short_limits() -> GatewaySettings {
    GatewaySettings {
        connect_timeout: Duration::from_secs(3),
        first_byte_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(20),
    }
}

/// A forwarded request as the domain would build it.
pub struct Call<'a> {
    pub provider: &'a str,
    pub base_url: Option<String>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: Vec<u8>,
    pub secrets: Vec<(&'a str, String)>,
    pub settings: Vec<(&'a str, String)>,
}

impl Call<'_> {
    pub fn build(self) -> ForwardRequest {
        ForwardRequest {
            provider: ProviderId::lookup(self.provider).unwrap(),
            base_url: self.base_url,
            path: ForwardPath::parse(self.path).unwrap(),
            query: self.query.map(str::to_owned),
            method: "POST".to_owned(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: Bytes::from(self.body),
            secrets: self
                .secrets
                .into_iter()
                .map(|(k, v)| (k.to_owned(), SecretValue::new(v)))
                .collect(),
            settings: self
                .settings
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        }
    }
}

/// The path an official SDK calls below the gateway for a completion of `provider`, with
/// its query.
pub fn sdk_path(provider: &str) -> (&'static str, Option<&'static str>) {
    match provider {
        "anthropic" => ("v1/messages", None),
        "gemini" => ("v1beta/models/gemini-2.5-flash:generateContent", None),
        "ollama" | "deepseek_local" => ("v1/chat/completions", None),
        "azure" => (
            "openai/deployments/gpt-4o-prod/chat/completions",
            Some("api-version=2024-10-21"),
        ),
        "amazon-bedrock" => (
            "model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            None,
        ),
        "google-vertex" => (
            "v1/projects/fake-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent",
            None,
        ),
        _ => ("chat/completions", None),
    }
}

/// A completion request body in the provider's format.
pub fn chat_body(provider: &str, stream: bool) -> Vec<u8> {
    let body = match provider {
        "gemini" | "google-vertex" => {
            serde_json::json!({ "contents": [{ "role": "user", "parts": [{ "text": "Hi" }] }] })
        }
        "amazon-bedrock" => {
            serde_json::json!({ "messages": [{ "role": "user", "content": [{ "text": "Hi" }] }] })
        }
        "anthropic" => serde_json::json!({
            "model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
            "messages": [{ "role": "user", "content": "Hi" }]
        }),
        _ => serde_json::json!({
            "model": "gpt-4o", "stream": stream,
            "messages": [{ "role": "user", "content": "Hi" }]
        }),
    };
    body.to_string().into_bytes()
}

/// A completion call of `provider` to the fake with the credential of `behaviour`, the way
/// the provider's SDK sends it, plus the given client headers.
pub fn fake_call<'a>(
    fake: &FakeProvider,
    provider: &'a str,
    behaviour: Behaviour,
    stream: bool,
    headers: Vec<(&'a str, &'a str)>,
) -> Call<'a> {
    let (path, query) = sdk_path(provider);
    let base = fake.base_url(provider);
    let mut call = Call {
        provider,
        base_url: Some(base.clone()),
        path,
        query,
        headers,
        body: chat_body(provider, stream),
        secrets: vec![("api_key", behaviour.key())],
        settings: Vec::new(),
    };
    match provider {
        "azure" => {
            call.base_url = None;
            call.settings = vec![("endpoint", base)];
        }
        "amazon-bedrock" => {
            call.secrets = vec![
                ("access_key_id", behaviour.access_key_id()),
                ("secret_access_key", BEDROCK_SECRET_ACCESS_KEY.to_owned()),
            ];
            call.settings = vec![("region", BEDROCK_REGION.to_owned())];
        }
        "google-vertex" => {
            call.secrets = vec![("service_account_json", behaviour.service_account_json())];
            call.settings = vec![
                ("project_id", VERTEX_PROJECT.to_owned()),
                ("location", "us-central1".to_owned()),
            ];
        }
        _ => {}
    }
    call
}

/// Reads a body to its end: the bytes and the failure that ended it early, if any.
pub async fn read_all(mut body: ByteStream) -> (Vec<u8>, Option<StreamFailure>) {
    use futures_util::StreamExt;
    let mut read = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => read.extend_from_slice(&bytes),
            Err(failure) => return (read, Some(failure)),
        }
    }
    (read, None)
}
