//! Forwarded calls against the fake provider: credential injection, streaming, cancellation,
//! redirects, the outbound policy and the limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llm_settings_domain::ports::ProviderClient;
use llm_settings_domain::{ForwardFailure, ForwardResponse};
use llm_settings_fake_provider::{
    completion_text, Behaviour, FakeProvider, SilentServer, StreamEnd, Unconnectable,
    BEDROCK_SECRET_ACCESS_KEY, COMPLETION_PIECES, REDIRECT_TARGET, TOKEN_PATH,
};
use llm_settings_probes::GatewaySettings;
use support::{fake_call, gateway_for, gateway_with, read_all, short_limits, Call};
use tokio::net::TcpListener;

/// What a caller's SDK puts on the request: its own token in every credential header, a
/// cookie, and headers that must pass.
const CALLER: &str = "caller-token-7f3a";

fn caller_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("authorization", "Bearer caller-token-7f3a"),
        ("x-api-key", CALLER),
        ("x-goog-api-key", CALLER),
        ("api-key", CALLER),
        ("x-amz-security-token", CALLER),
        ("x-amz-date", "20200101T000000Z"),
        ("cookie", "session=caller-token-7f3a"),
        ("content-type", "application/json"),
        ("x-custom-header", "kept"),
        ("user-agent", "OpenAI/Python 1.0"),
    ]
}

async fn expect_ok(
    gateway: &impl ProviderClient,
    request: llm_settings_domain::ForwardRequest,
) -> ForwardResponse {
    match gateway.forward(request).await {
        Ok(response) => response,
        Err(failure) => panic!("forward failed: {failure}"),
    }
}

async fn expect_failure(
    gateway: &impl ProviderClient,
    request: llm_settings_domain::ForwardRequest,
) -> ForwardFailure {
    match gateway.forward(request).await {
        Ok(response) => panic!("expected a failure, got HTTP {}", response.status),
        Err(failure) => failure,
    }
}

/// The credential header(s) each provider must receive, as (name, exact value or prefix).
fn expected_credential(provider: &str) -> Vec<(&'static str, String)> {
    let key = Behaviour::Valid.key();
    match provider {
        "anthropic" => vec![
            ("x-api-key", key),
            ("anthropic-version", "2023-06-01".into()),
        ],
        "gemini" => vec![("x-goog-api-key", key)],
        "azure" => vec![("api-key", key)],
        "amazon-bedrock" => vec![(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/",
                Behaviour::Valid.access_key_id()
            ),
        )],
        "google-vertex" => vec![
            ("authorization", "Bearer fake-vertex-token-valid".into()),
            ("x-goog-user-project", "fake-project".into()),
        ],
        _ => vec![("authorization", format!("Bearer {key}"))],
    }
}

#[tokio::test]
async fn every_provider_receives_its_stored_credential_and_never_the_callers() {
    let fake = FakeProvider::start().await;
    let gateway = gateway_for(&fake, short_limits());
    for provider in [
        "openai",
        "deepseek_cloud",
        "xai",
        "mistral",
        "groq",
        "openrouter",
        "openai_compatible",
        "ollama",
        "deepseek_local",
        "anthropic",
        "gemini",
        "azure",
        "amazon-bedrock",
        "google-vertex",
    ] {
        let call = fake_call(&fake, provider, Behaviour::Valid, false, caller_headers());
        let (sent_body, query) = (call.body.clone(), call.query);
        let response = expect_ok(&gateway, call.build()).await;
        assert_eq!(response.status, 200, "{provider}");
        let (body, failure) = read_all(response.body).await;
        assert!(failure.is_none(), "{provider}: {failure:?}");
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(&completion_text()), "{provider}: {text}");

        let seen = fake.received();
        let last = seen.last().unwrap();
        let (path, _) = support::sdk_path(provider);
        let prefix = fake.base_url(provider).replace(&fake.uri(), "");
        assert_eq!(last.path(), format!("{prefix}/{path}"), "{provider}");
        assert_eq!(last.query(), query, "{provider}");
        assert_eq!(
            last.body, sent_body,
            "{provider}: the body passes untouched"
        );
        assert_eq!(last.header("x-custom-header"), Some("kept"), "{provider}");
        assert_eq!(last.header("content-type"), Some("application/json"));
        for (name, expected) in expected_credential(provider) {
            let value = last.header(name).unwrap_or_default();
            assert!(
                value.starts_with(&expected),
                "{provider}: {name} is {value:?}, expected {expected:?}"
            );
        }
        for (name, value) in &last.headers {
            let value = value.to_str().unwrap_or_default();
            assert!(
                !value.contains(CALLER),
                "{provider}: {name} carries the caller's token"
            );
        }
        assert!(last.header("cookie").is_none(), "{provider}");
        if provider != "amazon-bedrock" {
            assert!(last.header("x-amz-date").is_none(), "{provider}");
        }
    }
    // Vertex minted one token; every other request was a completion.
    let tokens = fake
        .received()
        .iter()
        .filter(|r| r.path() == TOKEN_PATH)
        .count();
    assert_eq!(tokens, 1);
}

#[tokio::test]
async fn provider_specific_headers_are_added_only_when_due() {
    let fake = FakeProvider::start().await;
    let gateway = gateway_for(&fake, short_limits());

    // OpenAI's organization and project travel with the key.
    let mut call = fake_call(&fake, "openai", Behaviour::Valid, false, vec![]);
    call.settings = vec![
        ("organization", "org-fake".into()),
        ("project", "proj_fake".into()),
    ];
    expect_ok(&gateway, call.build()).await;
    let last = fake.received().pop().unwrap();
    assert_eq!(last.header("openai-organization"), Some("org-fake"));
    assert_eq!(last.header("openai-project"), Some("proj_fake"));

    // The client's own anthropic-version is kept.
    let call = fake_call(
        &fake,
        "anthropic",
        Behaviour::Valid,
        false,
        vec![("anthropic-version", "2024-10-22")],
    );
    expect_ok(&gateway, call.build()).await;
    let last = fake.received().pop().unwrap();
    assert_eq!(last.header("anthropic-version"), Some("2024-10-22"));

    // A local provider without a stored key sends no credential at all.
    let mut call = fake_call(&fake, "ollama", Behaviour::Valid, false, caller_headers());
    call.secrets.clear();
    let response = expect_ok(&gateway, call.build()).await;
    assert_eq!(response.status, 200);
    let last = fake.received().pop().unwrap();
    assert!(last.header("authorization").is_none());

    // Answer headers: no cookie, no length (recomputed downstream), the rest as sent.
    let response = expect_ok(
        &gateway,
        fake_call(&fake, "openai", Behaviour::Valid, false, vec![]).build(),
    )
    .await;
    let names: Vec<&str> = response.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(!names.contains(&"set-cookie"), "{names:?}");
    assert!(!names.contains(&"content-length"), "{names:?}");
    assert!(names.contains(&"content-type"), "{names:?}");
    assert!(names.contains(&"x-request-id"), "{names:?}");
}

#[tokio::test]
async fn provider_errors_come_back_as_answers() {
    let fake = FakeProvider::start().await;
    let gateway = gateway_for(&fake, short_limits());
    for (provider, behaviour, status) in [
        ("openai", Behaviour::Invalid, 401),
        ("openai", Behaviour::RateLimited, 429),
        ("anthropic", Behaviour::Invalid, 401),
        ("anthropic", Behaviour::RateLimited, 429),
        ("gemini", Behaviour::RateLimited, 429),
        ("azure", Behaviour::Invalid, 401),
    ] {
        let call = fake_call(&fake, provider, behaviour, false, vec![]);
        let response = expect_ok(&gateway, call.build()).await;
        assert_eq!(response.status, status, "{provider} {behaviour:?}");
        if status == 429 && provider != "gemini" {
            assert!(response.headers.iter().any(|(n, _)| n == "retry-after"));
        }
    }
    // A wrong Bedrock secret fails AWS's signature check.
    let mut call = fake_call(&fake, "amazon-bedrock", Behaviour::Valid, false, vec![]);
    call.secrets[1].1 = format!("{BEDROCK_SECRET_ACCESS_KEY}x");
    let response = expect_ok(&gateway, call.build()).await;
    assert_eq!(response.status, 403);
    let (body, _) = read_all(response.body).await;
    assert!(String::from_utf8_lossy(&body).contains("signature"));
}

#[tokio::test]
async fn bedrock_signs_the_forwarded_request_and_a_session_token() {
    let fake = FakeProvider::start().await;
    let gateway = gateway_for(&fake, short_limits());
    for path in [
        "model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        "model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
    ] {
        let mut call = fake_call(
            &fake,
            "amazon-bedrock",
            Behaviour::Valid,
            false,
            vec![
                ("content-type", "application/json"),
                ("x-amzn-bedrock-trace", "ENABLED"),
            ],
        );
        call.path = path;
        call.secrets
            .push(("session_token", "FwoGZXIvYXdzEBYaDfakeSession".into()));
        let response = expect_ok(&gateway, call.build()).await;
        assert_eq!(
            response.status, 200,
            "{path}: the fake verified the signature"
        );
        let last = fake.received().pop().unwrap();
        let auth = last.header("authorization").unwrap();
        assert!(auth.contains("x-amzn-bedrock-trace"), "{auth}");
        assert!(auth.contains("content-type"), "{auth}");
        assert_eq!(
            last.header("x-amz-security-token"),
            Some("FwoGZXIvYXdzEBYaDfakeSession")
        );
    }
}

#[tokio::test]
async fn a_vertex_token_is_minted_once_per_account_and_reused() {
    let fake = FakeProvider::start().await;
    let gateway = gateway_for(&fake, short_limits());
    let token_exchanges = || {
        fake.received()
            .iter()
            .filter(|r| r.path() == TOKEN_PATH)
            .count()
    };
    for _ in 0..2 {
        let call = fake_call(&fake, "google-vertex", Behaviour::Valid, false, vec![]);
        assert_eq!(expect_ok(&gateway, call.build()).await.status, 200);
    }
    assert_eq!(token_exchanges(), 1, "one token exchange for two calls");

    // Another service account gets its own token; the first one's is never used for it.
    let call = fake_call(&fake, "google-vertex", Behaviour::Forbidden, false, vec![]);
    let response = expect_ok(&gateway, call.build()).await;
    assert_eq!(response.status, 403);
    assert_eq!(token_exchanges(), 2);
    let last = fake.received().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some("Bearer fake-vertex-token-forbidden")
    );

    // Concurrent first calls of one account share one exchange.
    let fresh = gateway_for(&fake, short_limits());
    let calls = (0..4).map(|_| {
        let call = fake_call(&fake, "google-vertex", Behaviour::Valid, false, vec![]);
        fresh.forward(call.build())
    });
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(result.unwrap().status, 200);
    }
    assert_eq!(token_exchanges(), 3);
}

#[tokio::test]
async fn a_streamed_answer_arrives_chunk_by_chunk() {
    let fake = FakeProvider::start_with_chunk_delay(Duration::from_millis(300)).await;
    let gateway = gateway_for(&fake, short_limits());
    for provider in ["openai", "anthropic", "azure"] {
        let started = Instant::now();
        let call = fake_call(&fake, provider, Behaviour::Valid, true, vec![]);
        let mut response = expect_ok(&gateway, call.build()).await;
        assert_eq!(response.status, 200);
        let mut arrivals = Vec::new();
        let mut text = Vec::new();
        while let Some(chunk) = response.body.next().await {
            text.extend_from_slice(&chunk.unwrap());
            arrivals.push(started.elapsed());
        }
        let first = arrivals[0];
        let last = *arrivals.last().unwrap();
        assert!(
            arrivals.len() >= COMPLETION_PIECES.len(),
            "{provider}: {arrivals:?}"
        );
        assert!(
            first < Duration::from_millis(900),
            "{provider}: {arrivals:?}"
        );
        assert!(
            last - first >= Duration::from_millis(1200),
            "{provider}: the first chunk came long before the last: {arrivals:?}"
        );
        let text = String::from_utf8(text).unwrap();
        for piece in COMPLETION_PIECES {
            assert!(text.contains(piece), "{provider}: {text}");
        }
        assert_eq!(fake.streams().last().unwrap().end, StreamEnd::Completed);
    }
}

#[tokio::test]
async fn dropping_the_answer_cancels_the_upstream_stream() {
    let fake = FakeProvider::start_with_chunk_delay(Duration::from_millis(200)).await;
    let gateway = gateway_for(&fake, short_limits());
    let call = fake_call(&fake, "openai", Behaviour::Valid, true, vec![]);
    let mut response = expect_ok(&gateway, call.build()).await;
    let first = response.body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hello"));
    drop(response);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stream = fake.streams().pop().unwrap();
        if stream.end == StreamEnd::ClientWentAway {
            assert!(stream.chunks_sent < stream.chunks_total, "{stream:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream stream went on: {stream:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn dropping_the_pending_call_closes_the_connection() {
    let silent = SilentServer::start().await.unwrap();
    let gateway = gateway_with(&silent.address().to_string(), None, short_limits());
    let call = Call {
        provider: "openai",
        base_url: Some(format!("{}/v1", silent.uri())),
        path: "chat/completions",
        query: None,
        headers: vec![],
        body: b"{}".to_vec(),
        secrets: vec![("api_key", "sk-test-1234567890".into())],
        settings: vec![],
    };
    let pending = tokio::time::timeout(Duration::from_millis(300), gateway.forward(call.build()));
    assert!(pending.await.is_err(), "the silent server never answers");
    let deadline = Instant::now() + Duration::from_secs(5);
    while silent.closed() < 1 {
        assert!(Instant::now() < deadline, "the connection stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(silent.accepted(), 1);
}

#[tokio::test]
async fn redirects_go_back_to_the_client_unfollowed() {
    let fake = FakeProvider::start().await;
    let gateway = gateway_for(&fake, short_limits());
    let call = fake_call(&fake, "openai", Behaviour::Redirect, false, vec![]);
    let response = expect_ok(&gateway, call.build()).await;
    assert_eq!(response.status, 302);
    let location = response
        .headers
        .iter()
        .find(|(n, _)| n == "location")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    assert_eq!(location.as_deref(), Some(REDIRECT_TARGET));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fake.received().iter().all(|r| r.path() != REDIRECT_TARGET));
}

/// Asserts nobody connected to the listener.
async fn assert_untouched(listener: &TcpListener, target: &str) {
    let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
    assert!(accepted.is_err(), "{target}: a connection was made");
}

fn openai_call(base: String) -> Call<'static> {
    Call {
        provider: "openai",
        base_url: Some(base),
        path: "chat/completions",
        query: None,
        headers: vec![],
        body: b"{}".to_vec(),
        secrets: vec![("api_key", "sk-test-1234567890".into())],
        settings: vec![],
    }
}

#[tokio::test]
async fn blocked_targets_send_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let gateway = gateway_with("", None, short_limits());
    let loopback = [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://2130706433:{port}/v1"),
        format!("http://0x7f.1:{port}/v1"),
        format!("http://0177.0.0.1:{port}/v1"),
        format!("http://127.1:{port}/v1"),
        format!("http://[::ffff:127.0.0.1]:{port}/v1"),
        format!("http://[::ffff:7f00:1]:{port}/v1"),
        format!("http://[::1]:{port}/v1"),
        format!("http://localhost:{port}/v1"),
    ];
    for provider in ["openai", "anthropic", "openai_compatible", "gemini"] {
        for target in &loopback {
            let mut call = openai_call(target.clone());
            call.provider = provider;
            let failure = expect_failure(&gateway, call.build()).await;
            assert!(
                matches!(&failure, ForwardFailure::Blocked(why) if why.contains("loopback or private")),
                "{provider} {target}: {failure:?}"
            );
            assert_untouched(&listener, target).await;
        }
    }
    for (target, why) in [
        (format!("http://0.0.0.0:{port}/v1"), "metadata, unspecified"),
        (format!("ftp://127.0.0.1:{port}/v1"), "only http and https"),
        (format!("http://user:pw@127.0.0.1:{port}/v1"), "credentials"),
    ] {
        let failure = expect_failure(&gateway, openai_call(target.clone()).build()).await;
        assert!(
            matches!(&failure, ForwardFailure::Blocked(m) if m.contains(why)),
            "{target}: {failure:?}"
        );
        assert_untouched(&listener, &target).await;
    }
    // Endpoints from credential fields pass the same gate.
    let azure = Call {
        provider: "azure",
        base_url: None,
        path: "openai/deployments/d/chat/completions",
        query: Some("api-version=2024-10-21"),
        headers: vec![],
        body: b"{}".to_vec(),
        secrets: vec![("api_key", "azure-key-1234567890".into())],
        settings: vec![("endpoint", format!("http://127.0.0.1:{port}"))],
    };
    let failure = expect_failure(&gateway, azure.build()).await;
    assert!(matches!(failure, ForwardFailure::Blocked(_)), "{failure:?}");
    let bedrock = Call {
        provider: "amazon-bedrock",
        base_url: None,
        path: "model/m/converse",
        query: None,
        headers: vec![],
        body: b"{}".to_vec(),
        secrets: vec![
            ("access_key_id", "AKIAEXAMPLE".into()),
            ("secret_access_key", "secret-example-123".into()),
        ],
        settings: vec![("region", "us-east-1.evil.test".into())],
    };
    let failure = expect_failure(&gateway, bedrock.build()).await;
    assert!(
        matches!(&failure, ForwardFailure::Blocked(m) if m.contains("region")),
        "{failure:?}"
    );
    assert_untouched(&listener, "credential-field endpoints").await;
}

#[tokio::test]
async fn a_vertex_token_url_outside_the_policy_sends_nothing() {
    let fake = FakeProvider::start().await;
    let port = fake.address().port();
    // The model endpoint is allow-listed, the token URL (by name) is not.
    let policy = llm_settings_probes::ProbeSettings {
        allow: llm_settings_probes::AllowList::parse(&fake.allow_hosts()).unwrap(),
        ..Default::default()
    }
    .with_google_token_url(&format!("http://localhost:{port}{TOKEN_PATH}"))
    .unwrap();
    let gateway = llm_settings_probes::HttpGateway::new(&policy, short_limits()).unwrap();
    let call = fake_call(&fake, "google-vertex", Behaviour::Valid, false, vec![]);
    let failure = expect_failure(&gateway, call.build()).await;
    assert!(
        matches!(&failure, ForwardFailure::Blocked(m) if m.contains("loopback or private")),
        "{failure:?}"
    );
    assert!(fake.received().is_empty());

    // A target outside the policy is refused before any token is minted.
    let gateway = gateway_with("", None, short_limits());
    let call = fake_call(&fake, "google-vertex", Behaviour::Valid, false, vec![]);
    let failure = expect_failure(&gateway, call.build()).await;
    assert!(matches!(failure, ForwardFailure::Blocked(_)), "{failure:?}");
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn local_providers_reach_only_the_operators_local_hosts() {
    let fake = FakeProvider::start().await;
    let port = fake.address().port();

    // Default: loopback only, so a local Ollama is reachable without any allow list.
    let gateway = gateway_with("", None, short_limits());
    for provider in ["ollama", "deepseek_local"] {
        let call = fake_call(&fake, provider, Behaviour::Valid, false, vec![]);
        assert_eq!(
            expect_ok(&gateway, call.build()).await.status,
            200,
            "{provider}"
        );
    }
    let received = fake.received().len();

    // An operator list that leaves this address out blocks it, by literal or by name, for
    // forwarded calls and probes alike; nothing reaches the server.
    let gateway = gateway_with("", Some("127.0.0.2, ollama.internal:11434"), short_limits());
    for base in [
        fake.base_url("ollama"),
        format!("http://localhost:{port}/ollama"),
    ] {
        let mut call = fake_call(&fake, "ollama", Behaviour::Valid, false, vec![]);
        call.base_url = Some(base.clone());
        let failure = expect_failure(&gateway, call.build()).await;
        assert!(
            matches!(&failure, ForwardFailure::Blocked(m) if m.contains("LLM_SETTINGS_LOCAL_PROVIDER_HOSTS")),
            "{base}: {failure:?}"
        );
    }
    let probe = llm_settings_probes::HttpProbe::new(
        llm_settings_probes::ProbeSettings::default()
            .with_local_provider_hosts(Some("127.0.0.2"))
            .unwrap(),
    )
    .unwrap();
    let outcome = support::run(
        &probe,
        support::fake_request(&fake, "ollama", Behaviour::Valid, None),
    )
    .await;
    assert_eq!(
        outcome.failure,
        Some(llm_settings_domain::FailureClass::BlockedByPolicy),
        "{outcome:?}"
    );
    assert!(outcome
        .message
        .contains("LLM_SETTINGS_LOCAL_PROVIDER_HOSTS"));
    assert_eq!(fake.received().len(), received, "nothing was sent");

    // Cloud providers never use the local providers' list.
    let gateway = gateway_with("", Some("127.0.0.0/8"), short_limits());
    let call = fake_call(&fake, "openai", Behaviour::Valid, false, vec![]);
    let failure = expect_failure(&gateway, call.build()).await;
    assert!(matches!(failure, ForwardFailure::Blocked(_)), "{failure:?}");
    assert_eq!(fake.received().len(), received);
}

#[tokio::test]
async fn no_first_byte_in_time_is_a_timeout() {
    let fake = FakeProvider::start().await;
    let limits = GatewaySettings {
        first_byte_timeout: Duration::from_millis(400),
        ..short_limits()
    };
    let gateway = gateway_for(&fake, limits);
    let started = Instant::now();
    let failure = expect_failure(&gateway, openai_call(fake.stall_headers_url()).build()).await;
    assert_eq!(
        failure,
        ForwardFailure::Timeout("no answer within 400 ms".into())
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(fake.received().len(), 1, "the request was sent");
}

#[tokio::test]
async fn silence_after_the_headers_ends_the_stream() {
    let fake = FakeProvider::start().await;
    let limits = GatewaySettings {
        idle_timeout: Duration::from_millis(400),
        ..short_limits()
    };
    let gateway = gateway_for(&fake, limits);
    let mut response = expect_ok(&gateway, openai_call(fake.stall_body_url()).build()).await;
    assert_eq!(response.status, 200);
    let started = Instant::now();
    let failure = response.body.next().await.unwrap().unwrap_err();
    assert_eq!(failure.0, "the provider sent nothing for 400 ms");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(response.body.next().await.is_none(), "the stream ends");
}

#[tokio::test]
async fn the_total_limit_ends_a_long_stream() {
    let fake = FakeProvider::start_with_chunk_delay(Duration::from_millis(250)).await;
    let limits = GatewaySettings {
        total_timeout: Duration::from_millis(800),
        ..short_limits()
    };
    let gateway = gateway_for(&fake, limits);
    let call = fake_call(&fake, "openai", Behaviour::Valid, true, vec![]);
    let response = expect_ok(&gateway, call.build()).await;
    let (body, failure) = read_all(response.body).await;
    assert!(!body.is_empty(), "some chunks arrived first");
    assert_eq!(
        failure.unwrap().0,
        "the answer did not end within the gateway's total limit"
    );
}

#[tokio::test]
async fn a_connection_that_never_completes_is_a_timeout() {
    let Some(hole) = Unconnectable::start().await else {
        eprintln!("this system completes every loopback connection; skipped");
        return;
    };
    let limits = GatewaySettings {
        connect_timeout: Duration::from_millis(300),
        ..short_limits()
    };
    let gateway = gateway_with(&hole.address().to_string(), None, limits);
    let started = Instant::now();
    let failure = expect_failure(&gateway, openai_call(format!("{}/v1", hole.uri())).build()).await;
    assert_eq!(
        failure,
        ForwardFailure::Timeout("no connection within 300 ms".into())
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gateway = gateway_with(&format!("127.0.0.1:{port}"), None, short_limits());
    let failure = expect_failure(
        &gateway,
        openai_call(format!("http://127.0.0.1:{port}/v1")).build(),
    )
    .await;
    assert!(
        matches!(failure, ForwardFailure::Unreachable(_)),
        "{failure:?}"
    );
}
