//! A planted key never appears in a forwarded call's failure, a Debug print, a log line or an
//! error answer that echoes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_settings_domain::ports::ProviderClient;
use llm_settings_fake_provider::{Behaviour, FakeProvider, SilentServer, BEDROCK_REGION};
use llm_settings_probes::GatewaySettings;
use support::{fake_call, gateway_for, gateway_with, read_all, short_limits, Call};

const PLANTED: &str = "sk-planted-GATEWAY-4d3c2b1a0f9e";

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

fn planted_calls(fake: &FakeProvider) -> Vec<Call<'static>> {
    let with_key = |provider: &'static str, base: String| Call {
        provider,
        base_url: Some(base),
        path: "chat/completions",
        query: None,
        headers: vec![("x-custom", "1")],
        body: br#"{"model":"m","messages":[]}"#.to_vec(),
        secrets: vec![("api_key", PLANTED.to_owned())],
        settings: vec![],
    };
    let mut calls = vec![
        // Providers that echo a rejected key in their error body.
        with_key("openai", fake.base_url("openai")),
        with_key("xai", fake.base_url("xai")),
        // Blocked targets.
        with_key("openai", "http://2130706433/v1".into()),
        with_key("anthropic", "http://localhost:9/v1".into()),
        // A base URL that is not one.
        with_key("openai", "not a url".into()),
    ];
    let mut bedrock = fake_call(fake, "amazon-bedrock", Behaviour::Valid, false, vec![]);
    bedrock.secrets = vec![
        ("access_key_id", Behaviour::Valid.access_key_id()),
        ("secret_access_key", PLANTED.to_owned()),
        ("session_token", PLANTED.to_owned()),
    ];
    bedrock.settings = vec![("region", BEDROCK_REGION.to_owned())];
    calls.push(bedrock);
    let mut account: serde_json::Value =
        serde_json::from_str(&Behaviour::Valid.service_account_json()).unwrap();
    account["private_key"] = serde_json::json!(PLANTED);
    let mut vertex = fake_call(fake, "google-vertex", Behaviour::Valid, false, vec![]);
    vertex.secrets = vec![("service_account_json", account.to_string())];
    calls.push(vertex);
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_key_never_reaches_failures_answers_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let fake = FakeProvider::start().await;
    let gateway = gateway_for(&fake, short_limits());
    let mut seen = Vec::new();
    for call in planted_calls(&fake) {
        let request = call.build();
        seen.push(format!("{request:?}"));
        match gateway.forward(request).await {
            Ok(response) => {
                seen.push(format!("{response:?}"));
                for (name, value) in &response.headers {
                    seen.push(format!("{name}: {}", String::from_utf8_lossy(value)));
                }
                let (body, failure) = read_all(response.body).await;
                seen.push(String::from_utf8_lossy(&body).into_owned());
                seen.push(format!("{failure:?}"));
            }
            Err(failure) => {
                seen.push(failure.to_string());
                seen.push(format!("{failure:?}"));
            }
        }
    }
    // Timeouts, before and after the first byte.
    let silent = SilentServer::start().await.unwrap();
    let slow = gateway_with(
        &silent.address().to_string(),
        None,
        GatewaySettings {
            first_byte_timeout: Duration::from_millis(200),
            ..short_limits()
        },
    );
    let call = Call {
        provider: "openai",
        base_url: Some(silent.uri()),
        path: "chat/completions",
        query: None,
        headers: vec![],
        body: Vec::new(),
        secrets: vec![("api_key", PLANTED.to_owned())],
        settings: vec![],
    };
    let failure = slow.forward(call.build()).await.unwrap_err();
    seen.push(format!("{failure} {failure:?}"));
    seen.push(format!("{gateway:?} {slow:?}"));

    let echoed = seen.iter().any(|s| s.contains("[redacted]"));
    assert!(
        echoed,
        "an error answer echoed the key and was scrubbed: {seen:#?}"
    );
    for text in &seen {
        assert!(!text.contains(PLANTED), "planted key in: {text}");
        assert!(!text.contains("planted"), "planted key in: {text}");
    }
    let captured = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(captured.contains("forwarded call"), "logs were captured");
    for line in captured.lines() {
        assert!(!line.contains("planted"), "secret in log line: {line}");
    }
    // The fake really received it, so its absence above means something.
    assert!(fake.received().iter().any(|r| r
        .header("authorization")
        .is_some_and(|v| v.contains(PLANTED))));
}
