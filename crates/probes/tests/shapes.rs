//! Every request shape against the fake provider: success and each failure class.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use llm_settings_domain::FailureClass;
use llm_settings_fake_provider::{
    models, Behaviour, FakeProvider, AZURE_DEPLOYMENT, REDIRECT_TARGET, RETRY_AFTER_SECS,
};
use llm_settings_probes::{AllowList, HttpProbe, ProbeSettings};
use support::{fake_request, probe_for, request, run, PROVIDERS};

/// Long enough for any honest answer on a busy machine, shorter than the fake's slow answer.
const DEADLINE: Duration = Duration::from_millis(3500);

fn expected(provider: &str, behaviour: Behaviour) -> Option<(FailureClass, Option<u64>)> {
    use Behaviour as B;
    use FailureClass as C;
    let retry = (provider != "amazon-bedrock").then_some(RETRY_AFTER_SECS);
    Some(match behaviour {
        B::Valid => return None,
        B::Invalid => (C::InvalidCredentials, None),
        B::Forbidden => (C::PermissionDenied, None),
        B::Quota => (C::QuotaExhausted, None),
        B::RateLimited => (C::RateLimited, retry),
        B::Overloaded => (C::ProviderOverloaded, None),
        B::ServerError => (C::ProviderError, None),
        B::Slow => (C::Timeout, None),
        B::Redirect => (C::NotFound, None),
        B::Huge | B::Html => (C::InvalidResponse, None),
    })
}

/// Probes `providers` with every behaviour of the fake, concurrently, and checks each outcome.
async fn every_class(providers: &[&str]) {
    let fake = FakeProvider::start().await;
    let probe = Arc::new(probe_for(&fake, DEADLINE));
    let mut cases = tokio::task::JoinSet::new();
    for provider in providers {
        let model = PROVIDERS
            .iter()
            .find(|(p, _)| p == provider)
            .and_then(|(_, m)| *m);
        for behaviour in Behaviour::ALL {
            let request = fake_request(&fake, provider, behaviour, model);
            let probe = Arc::clone(&probe);
            let provider = provider.to_string();
            cases.spawn(async move { (provider, behaviour, run(&probe, request).await) });
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) = cases.join_next().await {
        let (provider, behaviour, outcome) = joined.unwrap();
        let case = format!("{provider} / {behaviour:?}: {outcome:?}");
        match expected(&provider, behaviour) {
            None => {
                if !(outcome.success
                    && outcome.failure.is_none()
                    && outcome.model_available
                    && !outcome.models.is_empty()
                    && outcome.message.contains("credentials accepted"))
                {
                    failures.push(case);
                }
            }
            Some((class, retry)) => {
                if outcome.success
                    || outcome.failure != Some(class)
                    || outcome.retry_after_secs != retry
                    || outcome.message.is_empty()
                    || outcome.message.contains(&behaviour.key())
                {
                    failures.push(case);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected outcomes:\n{}",
        failures.join("\n")
    );
    let followed = fake
        .requests()
        .await
        .iter()
        .any(|r| r.url.path() == REDIRECT_TARGET);
    assert!(!followed, "a redirect was followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_style_providers_map_every_class() {
    every_class(&[
        "openai",
        "deepseek_cloud",
        "xai",
        "mistral",
        "groq",
        "openai_compatible",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openrouter_maps_every_class() {
    every_class(&["openrouter"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_maps_every_class() {
    every_class(&["anthropic"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_maps_every_class() {
    every_class(&["gemini"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_and_local_deepseek_map_every_class() {
    every_class(&["ollama", "deepseek_local"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_maps_every_class() {
    every_class(&["azure"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_maps_every_class() {
    every_class(&["amazon-bedrock"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_maps_every_class() {
    every_class(&["google-vertex"]).await;
}

#[tokio::test]
async fn openai_sends_bearer_organization_and_project() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let key = Behaviour::Valid.key();
    let req = request(
        "openai",
        Some(fake.base_url("openai")),
        &[("api_key", &key)],
        &[("organization", "org-fake"), ("project", "proj_fake")],
        None,
    );
    let outcome = run(&probe, req).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.models, models("openai"));
    let sent = fake.requests().await;
    let r = sent.last().unwrap();
    assert_eq!(r.url.path(), "/openai/v1/models");
    assert_eq!(r.headers["authorization"], format!("Bearer {key}").as_str());
    assert_eq!(r.headers["openai-organization"], "org-fake");
    assert_eq!(r.headers["openai-project"], "proj_fake");
}

#[tokio::test]
async fn gemini_key_travels_in_a_header_and_pages_are_followed() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let outcome = run(
        &probe,
        fake_request(&fake, "gemini", Behaviour::Valid, None),
    )
    .await;
    assert!(outcome.success && outcome.model_available, "{outcome:?}");
    assert_eq!(
        outcome.models,
        models("gemini"),
        "ids without the models/ prefix"
    );
    let sent = fake.requests().await;
    assert_eq!(sent.len(), 2, "two pages");
    for r in &sent {
        assert!(!r.url.as_str().contains(&Behaviour::Valid.key()));
        assert!(r.url.query_pairs().all(|(k, _)| k != "key"));
        assert_eq!(r.headers["x-goog-api-key"], Behaviour::Valid.key().as_str());
    }
    assert_eq!(
        sent[1]
            .url
            .query_pairs()
            .find(|(k, _)| k == "pageToken")
            .unwrap()
            .1,
        "page-2"
    );
}

#[tokio::test]
async fn anthropic_follows_after_id_with_the_version_header() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let outcome = run(
        &probe,
        fake_request(&fake, "anthropic", Behaviour::Valid, None),
    )
    .await;
    assert!(outcome.success && outcome.model_available, "{outcome:?}");
    assert_eq!(outcome.models, models("anthropic"));
    let sent = fake.requests().await;
    assert_eq!(sent.len(), 3, "three pages of two");
    assert!(sent
        .iter()
        .all(|r| r.headers["anthropic-version"] == "2023-06-01"));
    assert_eq!(
        sent[1]
            .url
            .query_pairs()
            .find(|(k, _)| k == "after_id")
            .unwrap()
            .1,
        "claude-opus-4-0"
    );
}

#[tokio::test]
async fn pagination_stops_once_the_model_is_found_and_the_cap_is_full() {
    let fake = FakeProvider::start().await;
    let settings = ProbeSettings {
        timeout: DEADLINE,
        allow: AllowList::parse(&fake.allow_hosts()).unwrap(),
        max_models: 2,
        ..ProbeSettings::default()
    };
    let probe = HttpProbe::new(settings).unwrap();
    let req = fake_request(
        &fake,
        "anthropic",
        Behaviour::Valid,
        Some("claude-opus-4-0"),
    );
    let outcome = run(&probe, req).await;
    assert!(outcome.model_available, "{outcome:?}");
    assert_eq!(outcome.models.len(), 2);
    assert_eq!(fake.requests().await.len(), 1);

    let req = fake_request(&fake, "anthropic", Behaviour::Valid, None);
    let outcome = run(&probe, req).await;
    assert!(
        outcome.model_available,
        "found on the last page: {outcome:?}"
    );
    assert_eq!(outcome.models.len(), 2, "capped");
}

#[tokio::test]
async fn a_model_missing_from_the_list_is_reported_not_failed() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let req = fake_request(&fake, "openai", Behaviour::Valid, Some("gpt-9-imaginary"));
    let outcome = run(&probe, req).await;
    assert!(outcome.success, "{outcome:?}");
    assert!(!outcome.model_available);
    assert!(outcome.message.contains("gpt-9-imaginary was not found"));
}

#[tokio::test]
async fn a_wrong_base_url_is_not_found() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let key = Behaviour::Valid.key();
    for provider in ["openai", "anthropic", "gemini", "ollama"] {
        let base = format!("{}/not-an-api", fake.uri());
        let outcome = run(
            &probe,
            request(provider, Some(base), &[("api_key", &key)], &[], None),
        )
        .await;
        assert_eq!(
            outcome.failure,
            Some(FailureClass::NotFound),
            "{provider}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn azure_checks_the_deployment() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let key = Behaviour::Valid.key();
    let endpoint = fake.base_url("azure");
    let with = |deployment: &str| {
        request(
            "azure",
            None,
            &[("api_key", &key)],
            &[
                ("endpoint", &endpoint),
                ("deployment", deployment),
                ("api_version", "2024-10-21"),
            ],
            None,
        )
    };
    let outcome = run(&probe, with(AZURE_DEPLOYMENT)).await;
    assert!(outcome.success && outcome.model_available, "{outcome:?}");
    assert!(outcome.message.contains(AZURE_DEPLOYMENT));

    let outcome = run(&probe, with("no-such-deployment")).await;
    assert_eq!(outcome.failure, Some(FailureClass::NotFound), "{outcome:?}");
    assert!(outcome.message.contains("no-such-deployment"));

    let sent = fake.requests().await;
    assert!(sent.iter().all(|r| r.headers["api-key"] == key.as_str()));
    assert!(sent.iter().all(|r| r
        .url
        .query_pairs()
        .any(|(k, v)| k == "api-version" && v == "2024-10-21")));

    let outcome = run(&probe, with("../../admin")).await;
    assert_eq!(outcome.failure, Some(FailureClass::NotFound));
    assert_eq!(
        fake.requests().await.len(),
        sent.len() + 1,
        "refused before the deployment call"
    );
}

#[tokio::test]
async fn bedrock_signature_uses_the_secret_and_region() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let good = fake_request(&fake, "amazon-bedrock", Behaviour::Valid, None);
    let outcome = run(&probe, good.clone()).await;
    assert!(outcome.success && outcome.model_available, "{outcome:?}");
    let auth = fake.requests().await[0].headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAFAKEVALID/"));
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"));

    let mut wrong_secret = good.clone();
    wrong_secret.secrets.insert(
        "secret_access_key".into(),
        llm_settings_domain::SecretValue::new("not-the-secret"),
    );
    let outcome = run(&probe, wrong_secret).await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::InvalidCredentials),
        "{outcome:?}"
    );

    let mut wrong_region = good.clone();
    wrong_region
        .settings
        .insert("region".into(), "eu-west-1".into());
    let outcome = run(&probe, wrong_region).await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::InvalidCredentials),
        "{outcome:?}"
    );

    let mut hostile_region = good;
    hostile_region.base_url = None;
    hostile_region
        .settings
        .insert("region".into(), "x.evil.example/".into());
    let outcome = run(&probe, hostile_region).await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::BlockedByPolicy),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn vertex_uses_the_configured_token_url_never_the_files_token_uri() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let outcome = run(
        &probe,
        fake_request(&fake, "google-vertex", Behaviour::Valid, None),
    )
    .await;
    assert!(outcome.success && outcome.model_available, "{outcome:?}");
    let sent = fake.requests().await;
    assert_eq!(sent[0].url.path(), "/google/token");
    assert_eq!(sent[1].headers["x-goog-user-project"], "fake-project");
    assert_eq!(sent.len(), 3, "token and two pages");
}

#[tokio::test]
async fn missing_or_unreadable_credentials_fail_before_any_request() {
    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let cases = [
        request("openai", Some(fake.base_url("openai")), &[], &[], None),
        request(
            "anthropic",
            Some(fake.base_url("anthropic")),
            &[("api_key", "  ")],
            &[],
            None,
        ),
        request(
            "google-vertex",
            Some(fake.base_url("google-vertex")),
            &[("service_account_json", "{not json")],
            &[("project_id", "p")],
            None,
        ),
        request(
            "amazon-bedrock",
            Some(fake.base_url("amazon-bedrock")),
            &[("access_key_id", "A")],
            &[("region", "us-east-1")],
            None,
        ),
        request("azure", None, &[("api_key", "k")], &[], None),
        request(
            "openai",
            Some(fake.base_url("openai")),
            &[("api_key", "bad\nkey")],
            &[],
            None,
        ),
    ];
    for req in cases {
        let outcome = run(&probe, req).await;
        assert_eq!(
            outcome.failure,
            Some(FailureClass::InvalidCredentials),
            "{outcome:?}"
        );
    }
    assert!(fake.requests().await.is_empty());
}

#[tokio::test]
async fn openrouter_reports_an_exhausted_key_limit_and_routers() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": { "label": "x", "limit": 10.0, "usage": 10.0, "limit_remaining": 0.0 }
        })))
        .mount(&server)
        .await;
    let probe = support::probe_with(&server.address().to_string(), DEADLINE);
    let base = format!("{}/api/v1", server.uri());
    let outcome = run(
        &probe,
        request("openrouter", Some(base), &[("api_key", "k-123")], &[], None),
    )
    .await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::QuotaExhausted),
        "{outcome:?}"
    );

    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, DEADLINE);
    let outcome = run(
        &probe,
        fake_request(&fake, "openrouter", Behaviour::Valid, None),
    )
    .await;
    assert!(
        outcome.success && outcome.model_available,
        "openrouter/auto: {outcome:?}"
    );
    let outcome = run(
        &probe,
        fake_request(
            &fake,
            "openrouter",
            Behaviour::Valid,
            Some("nobody/nothing"),
        ),
    )
    .await;
    assert!(outcome.success && !outcome.model_available, "{outcome:?}");
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..64 {
            let frame = format!("{:x}\r\n", chunk.len());
            if socket.write_all(frame.as_bytes()).await.is_err()
                || socket.write_all(&chunk).await.is_err()
                || socket.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
    });
    let probe = support::probe_with(&addr.to_string(), DEADLINE);
    let outcome = run(
        &probe,
        request(
            "openai",
            Some(format!("http://{addr}/v1")),
            &[("api_key", "k-1234")],
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::InvalidResponse),
        "{outcome:?}"
    );
    assert!(outcome.message.contains("larger"));
    server.abort();
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let probe = support::probe_with("127.0.0.0/8", DEADLINE);
    let outcome = run(
        &probe,
        request(
            "openai",
            Some(format!("http://127.0.0.1:{port}/v1")),
            &[("api_key", "k-1234")],
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::Unreachable),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_error_status_with_a_huge_body_keeps_its_class() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let page = format!("<html>{}</html>", "x".repeat(3 * 1024 * 1024));
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(page, "text/html"))
        .mount(&server)
        .await;
    let probe = support::probe_with(&server.address().to_string(), DEADLINE);
    let base = format!("{}/v1", server.uri());
    let outcome = run(
        &probe,
        request("openai", Some(base), &[("api_key", "k-123")], &[], None),
    )
    .await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::InvalidCredentials),
        "{outcome:?}"
    );
}
