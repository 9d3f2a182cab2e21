//! What the gateway client adds to a call: the same completion requested from the local fake
//! provider directly with a pooled reqwest client and through [`HttpGateway::forward`],
//! sequentially and with 16 concurrent callers. Run with
//! `cargo run --release -p llm-settings-probes --example forward_overhead`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use llm_settings_domain::ports::ProviderClient;
use llm_settings_domain::{ForwardPath, ForwardRequest, ProviderId, SecretValue};
use llm_settings_fake_provider::{Behaviour, FakeProvider};
use llm_settings_probes::{AllowList, GatewaySettings, HttpGateway, ProbeSettings};

const CALLS: usize = 4000;
const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;

fn request(base: &str) -> ForwardRequest {
    ForwardRequest {
        provider: ProviderId::lookup("openai").unwrap(),
        base_url: Some(base.to_owned()),
        path: ForwardPath::parse("chat/completions").unwrap(),
        query: None,
        method: "POST".into(),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Bytes::from_static(BODY.as_bytes()),
        secrets: [(
            "api_key".to_owned(),
            SecretValue::new(Behaviour::Valid.key()),
        )]
        .into_iter()
        .collect(),
        settings: Default::default(),
    }
}

async fn direct(client: &reqwest::Client, url: &str) {
    let mut response = client
        .post(url)
        .bearer_auth(Behaviour::Valid.key())
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .unwrap();
    while response.chunk().await.unwrap().is_some() {}
}

async fn forwarded(gateway: &HttpGateway, base: &str) {
    let mut response = gateway.forward(request(base)).await.unwrap();
    while response.body.next().await.is_some() {}
}

/// Runs `CALLS` calls with `callers` concurrent callers; returns calls per second and p50.
async fn measure<F, Fut>(callers: usize, call: F) -> (f64, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let call = Arc::clone(&call);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(CALLS / callers);
            for _ in 0..CALLS / callers {
                let t = Instant::now();
                call().await;
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    all.sort();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (rate, all[all.len() / 2])
}

#[tokio::main]
async fn main() {
    let fake = FakeProvider::start().await;
    let base = fake.base_url("openai");
    let url = format!("{base}/chat/completions");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let policy = ProbeSettings {
        allow: AllowList::parse(&fake.allow_hosts()).unwrap(),
        ..ProbeSettings::default()
    };
    let gateway = HttpGateway::new(&policy, GatewaySettings::default()).unwrap();

    for callers in [1, 16] {
        let (c, u) = (client.clone(), url.clone());
        let (direct_rate, direct_p50) = measure(callers, move || {
            let (c, u) = (c.clone(), u.clone());
            async move { direct(&c, &u).await }
        })
        .await;
        let (g, b) = (gateway.clone(), base.clone());
        let (gateway_rate, gateway_p50) = measure(callers, move || {
            let (g, b) = (g.clone(), b.clone());
            async move { forwarded(&g, &b).await }
        })
        .await;
        println!(
            "{callers:>2} callers: direct {direct_rate:>8.0}/s p50 {direct_p50:>9.1?} | \
             gateway client {gateway_rate:>8.0}/s p50 {gateway_p50:>9.1?} | ratio {:.2}",
            gateway_rate / direct_rate
        );
    }
}
