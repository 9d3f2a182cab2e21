//! A planted key never appears in an outcome or in any log line of a failed probe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_settings_fake_provider::{Behaviour, FakeProvider, BEDROCK_REGION, VERTEX_PROJECT};
use support::{probe_for, request, run};

const PLANTED: &str = "sk-planted-SECRET-9f8e7d6c5b4a";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_key_never_reaches_outcomes_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let fake = FakeProvider::start().await;
    let probe = probe_for(&fake, Duration::from_millis(1500));
    let key = &[("api_key", PLANTED)][..];

    // A server that accepts and never answers, for the timeout case.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let silent_probe = support::probe_with(&silent_addr.to_string(), Duration::from_millis(300));

    let mut requests = Vec::new();
    for provider in [
        "openai",
        "deepseek_cloud",
        "xai",
        "mistral",
        "groq",
        "openai_compatible",
        "openrouter",
        "anthropic",
        "gemini",
        "ollama",
    ] {
        requests.push(request(
            provider,
            Some(fake.base_url(provider)),
            key,
            &[],
            Some("m"),
        ));
    }
    requests.push(request(
        "azure",
        None,
        key,
        &[("endpoint", &fake.base_url("azure")), ("deployment", "d")],
        None,
    ));
    requests.push(request(
        "amazon-bedrock",
        Some(fake.base_url("amazon-bedrock")),
        &[
            ("access_key_id", &Behaviour::Valid.access_key_id()),
            ("secret_access_key", PLANTED),
            ("session_token", PLANTED),
        ],
        &[("region", BEDROCK_REGION)],
        None,
    ));
    let mut account: serde_json::Value =
        serde_json::from_str(&Behaviour::Valid.service_account_json()).unwrap();
    account["private_key"] = serde_json::json!(PLANTED);
    let account = account.to_string();
    requests.push(request(
        "google-vertex",
        Some(fake.base_url("google-vertex")),
        &[("service_account_json", &account)],
        &[("project_id", VERTEX_PROJECT)],
        None,
    ));
    requests.push(request(
        "openai",
        Some("http://10.0.0.1/v1".into()),
        key,
        &[],
        None,
    ));
    requests.push(request(
        "openai",
        Some("http://2130706433/v1".into()),
        key,
        &[],
        None,
    ));

    let mut outcomes = Vec::new();
    for req in requests {
        outcomes.push(run(&probe, req).await);
    }
    outcomes.push(
        run(
            &silent_probe,
            request(
                "openai",
                Some(format!("http://{silent_addr}/v1")),
                key,
                &[],
                None,
            ),
        )
        .await,
    );
    hold.abort();

    for outcome in &outcomes {
        assert!(!outcome.success, "{outcome:?}");
        assert!(!outcome.message.contains(PLANTED), "{outcome:?}");
        assert!(!format!("{outcome:?}").contains(PLANTED));
        assert!(!outcome.message.contains("planted"), "{outcome:?}");
    }
    let classes: std::collections::BTreeSet<_> = outcomes
        .iter()
        .filter_map(|o| o.failure.map(|c| c.as_str()))
        .collect();
    for class in ["invalid_credentials", "blocked_by_policy", "timeout"] {
        assert!(classes.contains(class), "{classes:?}");
    }

    let captured = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        captured.contains("provider probe finished"),
        "the subscriber captured the probe's log lines"
    );
    for line in captured.lines() {
        assert!(!line.contains(PLANTED), "secret in log line: {line}");
        assert!(!line.contains("planted"), "secret in log line: {line}");
    }
    // The fake really received it (so the absence above means something).
    let sent = fake.requests().await;
    assert!(sent.iter().any(|r| r
        .headers
        .get("authorization")
        .is_some_and(|v| v.to_str().unwrap_or_default().contains(PLANTED))));
}
