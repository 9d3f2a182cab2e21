//! Blocked targets are refused before any connection; allow-listed ones get through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use llm_settings_domain::FailureClass;
use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{fake_request, probe_with, request, run};
use tokio::net::TcpListener;

const DEADLINE: Duration = Duration::from_secs(3);
const PLANTED: &str = "sk-planted-outbound-0123456789";

/// Asserts nobody connected to the listener.
async fn assert_untouched(listener: &TcpListener, target: &str) {
    let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
    assert!(accepted.is_err(), "{target}: a connection was made");
}

#[tokio::test]
async fn loopback_in_every_spelling_is_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = probe_with("", DEADLINE);
    let targets = [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://2130706433:{port}/v1"),
        format!("http://0x7f.1:{port}/v1"),
        format!("http://0177.0.0.1:{port}/v1"),
        format!("http://127.1:{port}/v1"),
        format!("http://[::ffff:127.0.0.1]:{port}/v1"),
        format!("http://[::ffff:7f00:1]:{port}/v1"),
        format!("http://localhost:{port}/v1"),
        format!("http://LOCALHOST:{port}/v1"),
    ];
    for provider in [
        "openai",
        "anthropic",
        "gemini",
        "openrouter",
        "openai_compatible",
    ] {
        for target in &targets {
            let req = request(
                provider,
                Some(target.clone()),
                &[("api_key", PLANTED)],
                &[],
                None,
            );
            let outcome = run(&probe, req).await;
            assert_eq!(
                outcome.failure,
                Some(FailureClass::BlockedByPolicy),
                "{provider} {target}: {outcome:?}"
            );
            assert!(!outcome.message.contains(PLANTED));
            assert_untouched(&listener, target).await;
        }
    }
}

#[tokio::test]
async fn ipv6_loopback_is_refused_before_connecting() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        // No IPv6 loopback on this machine: the address check alone is still exercised.
        let outcome = run(
            &probe_with("", DEADLINE),
            request(
                "openai",
                Some("http://[::1]:9/v1".into()),
                &[("api_key", PLANTED)],
                &[],
                None,
            ),
        )
        .await;
        assert_eq!(outcome.failure, Some(FailureClass::BlockedByPolicy));
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let target = format!("http://[::1]:{port}/v1");
    let outcome = run(
        &probe_with("", DEADLINE),
        request(
            "openai",
            Some(target.clone()),
            &[("api_key", PLANTED)],
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::BlockedByPolicy),
        "{outcome:?}"
    );
    assert_untouched(&listener, &target).await;
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_without_a_connection_attempt() {
    // The token URL is a refused loopback address too, so nothing can leave the machine.
    let probe = llm_settings_probes::HttpProbe::new(
        llm_settings_probes::ProbeSettings {
            timeout: DEADLINE,
            ..Default::default()
        }
        .with_google_token_url("http://127.0.0.1:9/token")
        .unwrap(),
    )
    .unwrap();
    let targets = [
        "http://10.0.0.1/v1",
        "http://172.16.0.1/v1",
        "http://192.168.0.1/v1",
        "http://100.64.0.1/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
    ];
    for target in targets {
        let req = request(
            "openai",
            Some(target.into()),
            &[("api_key", PLANTED)],
            &[],
            None,
        );
        let outcome = run(&probe, req).await;
        assert_eq!(
            outcome.failure,
            Some(FailureClass::BlockedByPolicy),
            "{target}: {outcome:?}"
        );
        // Refused by the address check itself, not after a connection attempt timed out.
        assert!(outcome.latency_ms < 1000, "{target}: {outcome:?}");
    }
    // Bedrock and Vertex overrides, Azure endpoints and local providers go through the same gate.
    let cases = [
        request(
            "amazon-bedrock",
            Some("http://169.254.169.254".into()),
            &[("access_key_id", "AKIAX"), ("secret_access_key", PLANTED)],
            &[("region", "us-east-1")],
            None,
        ),
        request(
            "google-vertex",
            Some("http://10.0.0.1".into()),
            &[(
                "service_account_json",
                &Behaviour::Valid.service_account_json(),
            )],
            &[("project_id", "p-1")],
            None,
        ),
        request(
            "azure",
            None,
            &[("api_key", PLANTED)],
            &[("endpoint", "http://10.0.0.1")],
            None,
        ),
        request(
            "ollama",
            Some("http://169.254.169.254".into()),
            &[],
            &[],
            None,
        ),
        request(
            "deepseek_local",
            Some("http://0.0.0.0:11434".into()),
            &[],
            &[],
            None,
        ),
    ];
    for req in cases {
        let provider = req.provider;
        let outcome = run(&probe, req).await;
        assert_eq!(
            outcome.failure,
            Some(FailureClass::BlockedByPolicy),
            "{provider}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn other_schemes_and_credentials_in_urls_are_refused() {
    let probe = probe_with("127.0.0.0/8", DEADLINE);
    for target in [
        "ftp://127.0.0.1/v1",
        "file:///etc/passwd",
        "http://user:pass@127.0.0.1:9/v1",
        "gopher://127.0.0.1:70/",
    ] {
        let req = request(
            "openai",
            Some(target.into()),
            &[("api_key", PLANTED)],
            &[],
            None,
        );
        let outcome = run(&probe, req).await;
        assert_eq!(
            outcome.failure,
            Some(FailureClass::BlockedByPolicy),
            "{target}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn allow_listed_hosts_get_through_and_nothing_else() {
    let fake = FakeProvider::start().await;
    let port = fake.address().port();
    let req = || fake_request(&fake, "openai", Behaviour::Valid, None);

    let blocked = run(&probe_with("", DEADLINE), req()).await;
    assert_eq!(
        blocked.failure,
        Some(FailureClass::BlockedByPolicy),
        "{blocked:?}"
    );
    assert!(fake.requests().await.is_empty());

    for allow in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        "127.0.0.0/8".to_owned(),
        format!("other.internal, 10.0.0.0/8, 127.0.0.1:{port}"),
    ] {
        let outcome = run(&probe_with(&allow, DEADLINE), req()).await;
        assert!(outcome.success, "{allow}: {outcome:?}");
    }
    let wrong_port = run(&probe_with("127.0.0.1:1", DEADLINE), req()).await;
    assert_eq!(wrong_port.failure, Some(FailureClass::BlockedByPolicy));

    // A host name entry lets that name's private addresses through.
    let mut by_name = req();
    by_name.base_url = Some(format!("http://localhost:{port}/openai/v1"));
    let outcome = run(
        &probe_with(&format!("localhost:{port}"), DEADLINE),
        by_name.clone(),
    )
    .await;
    assert!(outcome.success, "{outcome:?}");
    let outcome = run(&probe_with("localhost:1", DEADLINE), by_name).await;
    assert_eq!(outcome.failure, Some(FailureClass::BlockedByPolicy));
}

#[tokio::test]
async fn local_providers_reach_loopback_without_the_allow_list() {
    let fake = FakeProvider::start().await;
    let probe = probe_with("", DEADLINE);
    for provider in ["ollama", "deepseek_local"] {
        let outcome = run(
            &probe,
            fake_request(&fake, provider, Behaviour::Valid, None),
        )
        .await;
        assert!(
            outcome.success && outcome.model_available,
            "{provider}: {outcome:?}"
        );
    }
    let outcome = run(
        &probe,
        fake_request(&fake, "openai_compatible", Behaviour::Valid, Some("gpt-4o")),
    )
    .await;
    assert_eq!(outcome.failure, Some(FailureClass::BlockedByPolicy));
    let local_compatible =
        llm_settings_probes::HttpProbe::new(llm_settings_probes::ProbeSettings {
            timeout: DEADLINE,
            compatible_is_local: true,
            ..Default::default()
        })
        .unwrap();
    let outcome = run(
        &local_compatible,
        fake_request(&fake, "openai_compatible", Behaviour::Valid, Some("gpt-4o")),
    )
    .await;
    assert!(outcome.success, "{outcome:?}");
}

#[tokio::test]
async fn the_token_url_override_is_checked_too() {
    let fake = FakeProvider::start().await;
    // Allow-listed base for the model list, but the token URL is not on the list.
    let settings = llm_settings_probes::ProbeSettings {
        timeout: DEADLINE,
        allow: llm_settings_probes::AllowList::parse(&format!(
            "localhost:{}",
            fake.address().port()
        ))
        .unwrap(),
        ..Default::default()
    }
    .with_google_token_url(&fake.token_url())
    .unwrap();
    let probe = llm_settings_probes::HttpProbe::new(settings).unwrap();
    let outcome = run(
        &probe,
        fake_request(&fake, "google-vertex", Behaviour::Valid, None),
    )
    .await;
    assert_eq!(
        outcome.failure,
        Some(FailureClass::BlockedByPolicy),
        "{outcome:?}"
    );
    assert!(fake.requests().await.is_empty());
}
