//! Helpers shared by the probe tests: a probe pointed at the fake provider and requests for
//! each provider's credential form.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use llm_settings_domain::ports::ProviderProbe;
use llm_settings_domain::{ProbeOutcome, ProbeRequest, ProviderId, SecretValue};
use llm_settings_fake_provider::{
    Behaviour, FakeProvider, BEDROCK_REGION, BEDROCK_SECRET_ACCESS_KEY, VERTEX_PROJECT,
};
use llm_settings_probes::{AllowList, HttpProbe, ProbeSettings};

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
