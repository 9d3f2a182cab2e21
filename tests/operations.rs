//! Black-box tests of what an operator relies on, against the real binary on SQLite and
//! Postgres: `/metrics` after a scripted sequence of calls, the rate limits on every surface
//! (429 with `Retry-After` in that surface's error shape), and the local providers' reach
//! (`LLM_SETTINGS_LOCAL_PROVIDER_HOSTS`). Every target is the local fake provider.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{error_message, on_both_stores, Backend, Reply, Service};

on_both_stores!(
    a_scrape_counts_the_scripted_calls,
    the_eleventh_connection_test_in_a_minute_is_refused_on_every_surface,
    refused_tokens_resolutions_and_gateway_calls_have_budgets,
    local_providers_reach_only_the_hosts_the_operator_allows,
);

/// The configured value that stands for the default (the harness turns limits off).
const DEFAULT: &str = "";

async fn start(backend: Backend, fake: &FakeProvider, extra: &[(&str, &str)]) -> Service {
    let allow = fake.allow_hosts();
    let mut env = vec![("LLM_SETTINGS_PROBE_ALLOW_HOSTS", allow.as_str())];
    env.extend_from_slice(extra);
    Service::start(backend, &env).await
}

/// One sample of a scrape: metric name and labels.
type Series = (String, BTreeMap<String, String>);

/// Every sample of a Prometheus text scrape (comments skipped).
fn samples(text: &str) -> Vec<(Series, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = split_labels(labels)
                .into_iter()
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            ((name.to_owned(), labels), value.parse().expect("a number"))
        })
        .collect()
}

/// `a="x",b="y,z"` as its pairs (commas inside quotes kept).
fn split_labels(text: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

/// The value of the sample named `name` with exactly `labels`, if the scrape has it.
fn value(scrape: &[(Series, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    scrape
        .iter()
        .find(|((n, l), _)| n == name && *l == wanted)
        .map(|(_, v)| *v)
}

async fn scrape(svc: &Service) -> (String, Vec<(Series, f64)>) {
    let r = svc.send("GET", "/metrics", None, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let content_type = r.headers["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let parsed = samples(&r.text);
    (r.text, parsed)
}

fn superadmin(svc: &Service, sub: &str) -> String {
    svc.token(sub, "read write", &["superadmin"], None)
}

fn service_token(svc: &Service, sub: &str) -> String {
    svc.token(sub, "", &["service"], None)
}

/// A connection test on the native API with a key in the request, at the fake.
fn native_test(fake: &FakeProvider, behaviour: Behaviour) -> Value {
    json!({"provider": "openai", "api_key": behaviour.key(), "base_url": fake.base_url("openai")})
}

async fn a_scrape_counts_the_scripted_calls(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(
        backend,
        &fake,
        &[("LLM_SETTINGS_RATE_LIMIT_CONNECTION_TESTS", "2/h")],
    )
    .await;
    let alice = svc.token("alice", "read write use", &[], None);
    let service = service_token(&svc, "backend");

    // The script: one save, three lists, a miss on a known route and one on no route, two
    // tests and a third over the budget, two resolutions, one gateway call.
    let body = json!({"provider": "openai", "api_key": Behaviour::Valid.key(), "base_url": fake.base_url("openai")});
    let r = svc
        .call("POST", "/users/me/llm-settings", &alice, Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for _ in 0..3 {
        let r = svc
            .call("GET", "/users/me/llm-settings", &alice, None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = svc
        .call("GET", "/users/me/llm-settings/987654", &alice, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = svc
        .send("GET", "/no/such/place-1234", None, None, &[])
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let test = "/users/me/llm-settings/test";
    let r = svc
        .call(
            "POST",
            test,
            &alice,
            Some(native_test(&fake, Behaviour::Valid)),
        )
        .await;
    assert_eq!(r.body["success"], true, "{}", r.text);
    let r = svc
        .call(
            "POST",
            test,
            &alice,
            Some(native_test(&fake, Behaviour::Invalid)),
        )
        .await;
    assert_eq!(r.body["failure"], "invalid_credentials", "{}", r.text);
    let r = svc
        .call(
            "POST",
            test,
            &alice,
            Some(native_test(&fake, Behaviour::Valid)),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    let resolve = "/v1/credentials/resolve";
    let r = svc
        .call(
            "POST",
            resolve,
            &service,
            Some(json!({"user": "alice", "provider": "openai"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc
        .call(
            "POST",
            resolve,
            &service,
            Some(json!({"user": "bob", "provider": "openai"})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let sent = serde_json::to_vec(&chat).unwrap().len();
    let r = svc
        .call(
            "POST",
            "/v1/gateway/openai/chat/completions",
            &alice,
            Some(chat),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let received = r.text.len();

    let (text, s) = scrape(&svc).await;
    let requests = "llm_settings_http_requests_total";
    let request = |surface, route, method, status| {
        value(
            &s,
            requests,
            &[
                ("surface", surface),
                ("route", route),
                ("method", method),
                ("status", status),
            ],
        )
    };
    let user = "user";
    assert_eq!(
        request(user, "/users/me/llm-settings", "POST", "201"),
        Some(1.0)
    );
    assert_eq!(
        request(user, "/users/me/llm-settings", "GET", "200"),
        Some(3.0)
    );
    assert_eq!(
        request(user, "/users/me/llm-settings/{config_id}", "GET", "404"),
        Some(1.0)
    );
    assert_eq!(request("service", "unmatched", "GET", "404"), Some(1.0));
    assert_eq!(
        request(user, "/users/me/llm-settings/test", "POST", "200"),
        Some(2.0)
    );
    assert_eq!(
        request(user, "/users/me/llm-settings/test", "POST", "429"),
        Some(1.0)
    );
    assert_eq!(
        request("credentials", "/v1/credentials/resolve", "POST", "200"),
        Some(1.0)
    );
    assert_eq!(
        request("gateway", "/v1/gateway/{provider}/{path:.*}", "POST", "200"),
        Some(1.0)
    );
    // Routes are templates: no raw path a client sent becomes a label.
    for raw in ["987654", "place-1234", "chat/completions"] {
        assert!(!text.contains(raw), "{raw} is in the scrape:\n{text}");
    }
    let latency = value(
        &s,
        "llm_settings_http_request_duration_seconds_count",
        &[
            ("surface", user),
            ("route", "/users/me/llm-settings"),
            ("method", "GET"),
        ],
    );
    assert_eq!(latency, Some(3.0));
    assert!(text.contains("llm_settings_http_request_duration_seconds_bucket{"));

    let tests = "llm_settings_connection_tests_total";
    let openai = ("provider", "openai");
    assert_eq!(
        value(&s, tests, &[openai, ("outcome", "success")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, tests, &[openai, ("outcome", "invalid_credentials")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "llm_settings_rate_limited_total",
            &[("limit", "connection_test")]
        ),
        Some(1.0)
    );
    let resolutions = "llm_settings_resolutions_total";
    assert_eq!(
        value(&s, resolutions, &[("outcome", "resolved")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, resolutions, &[("outcome", "provider_not_configured")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "llm_settings_gateway_calls_total",
            &[openai, ("source", "user"), ("status", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "llm_settings_gateway_request_bytes_total", &[openai]),
        Some(sent as f64)
    );
    assert_eq!(
        value(&s, "llm_settings_gateway_response_bytes_total", &[openai]),
        Some(received as f64)
    );
    assert_eq!(
        value(
            &s,
            "llm_settings_gateway_upstream_duration_seconds_count",
            &[openai]
        ),
        Some(1.0)
    );

    let store = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(
        value(
            &s,
            "llm_settings_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("store", store)]
        ),
        Some(1.0)
    );
    let max = value(&s, "llm_settings_store_pool_max_connections", &[]).unwrap();
    let open = value(&s, "llm_settings_store_pool_connections", &[]).unwrap();
    let in_use = value(&s, "llm_settings_store_pool_in_use", &[]).unwrap();
    assert!(max >= 1.0 && open <= max && in_use <= open, "{text}");
    assert!(value(&s, "llm_settings_store_pool_waiting", &[]).is_some());
    assert!(value(&s, "llm_settings_store_pool_wait_seconds_count", &[]).unwrap() >= 1.0);
    assert_eq!(
        value(&s, "llm_settings_audit_writes_failed_total", &[]),
        Some(0.0)
    );
}

/// A 429 with a `Retry-After` of whole seconds, at most `max`.
fn assert_refused(r: &Reply, max: u64, place: &str) {
    assert_eq!(r.status, 429, "{place}: {}", r.text);
    let after: u64 = r.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{place}: Retry-After is not a number of seconds"));
    assert!((1..=max).contains(&after), "{place}: Retry-After {after}");
    assert!(
        error_message(&r.body).contains("too many"),
        "{place}: {}",
        r.text
    );
}

async fn the_eleventh_connection_test_in_a_minute_is_refused_on_every_surface(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(
        backend,
        &fake,
        &[("LLM_SETTINGS_RATE_LIMIT_CONNECTION_TESTS", DEFAULT)],
    )
    .await;
    let ops = superadmin(&svc, "ops");
    // The admin API tests the stored global config: save one first.
    let body = json!({"provider": "openai", "model": "gpt-4o", "api_key": Behaviour::Valid.key(), "base_url": fake.base_url("openai")});
    let r = svc.call("POST", "/llm-config/", &ops, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let native = "/users/me/llm-settings/test";
    for n in 1..=10 {
        let r = svc
            .call(
                "POST",
                native,
                &ops,
                Some(native_test(&fake, Behaviour::Valid)),
            )
            .await;
        assert_eq!(
            (r.status, &r.body["success"]),
            (200, &json!(true)),
            "test {n}: {}",
            r.text
        );
    }
    let probes_sent = fake.received().len();

    // The 11th, on each surface that tests connections, in that surface's own shape.
    let detail_code = |r: &Reply| {
        assert_eq!(r.body["error_code"], "rate_limited", "{}", r.text);
        assert!(r.body["detail"].is_string(), "{}", r.text);
    };
    let r = svc
        .call(
            "POST",
            native,
            &ops,
            Some(native_test(&fake, Behaviour::Valid)),
        )
        .await;
    assert_refused(&r, 60, "native");
    detail_code(&r);
    for path in [
        "/instances/acme/llm-settings/test",
        "/global/llm-settings/test",
    ] {
        let r = svc
            .call(
                "POST",
                path,
                &ops,
                Some(native_test(&fake, Behaviour::Valid)),
            )
            .await;
        assert_refused(&r, 60, path);
        detail_code(&r);
    }
    let r = svc
        .call("POST", "/llm-config/test-connection", &ops, None)
        .await;
    assert_refused(&r, 60, "admin");
    detail_code(&r);
    let r = svc
        .call("POST", "/api/v1/settings/providers/openai/test", &ops, None)
        .await;
    assert_refused(&r, 60, "provider keys");
    assert_eq!(
        r.body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["detail"],
        "FastAPI shape: {}",
        r.text
    );
    let app_test = json!({"provider": "openai", "apiKey": Behaviour::Valid.key(), "baseUrl": fake.base_url("openai")});
    let r = svc
        .call(
            "POST",
            "/api/settings/test-provider",
            &ops,
            Some(app_test.clone()),
        )
        .await;
    assert_refused(&r, 60, "application settings");
    assert_eq!(r.body["ok"], false, "{}", r.text);
    assert!(r.body["error"].is_string(), "{}", r.text);
    assert_eq!(
        fake.received().len(),
        probes_sent,
        "a refused test sends nothing"
    );

    // Another subject has its own budget.
    let bob = svc.user("bob");
    let r = svc
        .call(
            "POST",
            native,
            &bob,
            Some(native_test(&fake, Behaviour::Valid)),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["success"]),
        (200, &json!(true)),
        "{}",
        r.text
    );
    let r = svc
        .call("POST", "/api/settings/test-provider", &bob, Some(app_test))
        .await;
    assert_eq!(
        (r.status, &r.body["data"]["connected"]),
        (200, &json!(true)),
        "{}",
        r.text
    );

    let (_, s) = scrape(&svc).await;
    assert_eq!(
        value(
            &s,
            "llm_settings_rate_limited_total",
            &[("limit", "connection_test")]
        ),
        Some(6.0)
    );
}

async fn refused_tokens_resolutions_and_gateway_calls_have_budgets(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(
        backend,
        &fake,
        &[
            ("LLM_SETTINGS_RATE_LIMIT_FAILED_AUTHENTICATIONS", "3/h"),
            ("LLM_SETTINGS_RATE_LIMIT_RESOLUTIONS", "2/h"),
            ("LLM_SETTINGS_RATE_LIMIT_GATEWAY_CALLS", "1/h"),
        ],
    )
    .await;

    // Refused tokens from one address: 401 three times, then 429 in the provider
    // configuration API's shape; a valid token from the same address still passes.
    let bad = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bm90LWEtc2lnbmF0dXJl";
    for _ in 0..3 {
        let r = svc.call("GET", "/v1/llm-provider", bad, None).await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = svc.call("GET", "/v1/llm-provider", bad, None).await;
    assert_refused(&r, 3600, "provider configuration");
    assert_eq!(r.body["error"]["code"], "TOO_MANY_REQUESTS", "{}", r.text);
    let admin = svc.token("acme-admin", "read write", &["admin"], Some("acme"));
    let r = svc.call("GET", "/v1/llm-provider", &admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Resolutions per service subject.
    let ops = superadmin(&svc, "ops");
    let body = json!({"provider": "openai", "api_key": Behaviour::Valid.key(), "base_url": fake.base_url("openai")});
    let r = svc
        .call("POST", "/global/llm-settings", &ops, Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let backend_a = service_token(&svc, "backend-a");
    let resolve = "/v1/credentials/resolve";
    let ask = || json!({"user": "alice", "provider": "openai"});
    for _ in 0..2 {
        let r = svc.call("POST", resolve, &backend_a, Some(ask())).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = svc.call("POST", resolve, &backend_a, Some(ask())).await;
    assert_refused(&r, 3600, "resolve");
    assert_eq!(r.body["error_code"], "rate_limited", "{}", r.text);
    let backend_b = service_token(&svc, "backend-b");
    let r = svc.call("POST", resolve, &backend_b, Some(ask())).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Gateway calls per subject; a refused call reaches no provider.
    let alice = svc.token("alice", "read write use", &[], None);
    let chat = || json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let call = "/v1/gateway/openai/chat/completions";
    let r = svc.call("POST", call, &alice, Some(chat())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let forwarded = fake.received().len();
    let r = svc.call("POST", call, &alice, Some(chat())).await;
    assert_refused(&r, 3600, "gateway");
    assert_eq!(r.body["error_code"], "rate_limited", "{}", r.text);
    assert_eq!(fake.received().len(), forwarded);
    let carol = svc.token("carol", "read write use", &[], None);
    let r = svc.call("POST", call, &carol, Some(chat())).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let (_, s) = scrape(&svc).await;
    let limited = |limit| value(&s, "llm_settings_rate_limited_total", &[("limit", limit)]);
    assert_eq!(limited("failed_authentication"), Some(1.0));
    assert_eq!(limited("resolution"), Some(1.0));
    assert_eq!(limited("gateway_call"), Some(1.0));
    assert_eq!(
        value(
            &s,
            "llm_settings_gateway_calls_total",
            &[
                ("provider", "openai"),
                ("source", "global"),
                ("status", "200")
            ]
        ),
        Some(2.0)
    );
}

/// `ollama` and `deepseek_local` reach loopback by default; once the operator lists other
/// hosts only, the same loopback target is refused by policy before any connection: the fake
/// provider listening there receives nothing (probe or gateway call).
async fn local_providers_reach_only_the_hosts_the_operator_allows(backend: Backend) {
    let fake = FakeProvider::start().await;
    let ollama_test = |key: &str| json!({"provider": "ollama", "api_key": key, "base_url": fake.base_url("ollama")});
    let test = "/users/me/llm-settings/test";

    // The default: loopback only, so the fake on 127.0.0.1 is reachable.
    let svc = Service::start(backend, &[]).await;
    let me = svc.user("me");
    let r = svc
        .call(
            "POST",
            test,
            &me,
            Some(ollama_test(&Behaviour::Valid.key())),
        )
        .await;
    assert_eq!(r.body["success"], true, "{}", r.text);
    assert!(!fake.received().is_empty());
    drop(svc);

    // The operator allows a private network only: loopback is now outside the list.
    let before = fake.received().len();
    let svc = Service::start(
        backend,
        &[(
            "LLM_SETTINGS_LOCAL_PROVIDER_HOSTS",
            "192.168.77.0/24,ollama.lan",
        )],
    )
    .await;
    let me = svc.token("me", "read write use", &[], None);
    for provider in ["ollama", "deepseek_local"] {
        let mut body = ollama_test(&Behaviour::Valid.key());
        body["provider"] = json!(provider);
        let r = svc.call("POST", test, &me, Some(body)).await;
        assert_eq!(
            (r.status, &r.body["success"], &r.body["failure"]),
            (200, &json!(false), &json!("blocked_by_policy")),
            "{provider}: {}",
            r.text
        );
        assert!(
            r.text.contains("LLM_SETTINGS_LOCAL_PROVIDER_HOSTS"),
            "the refusal names the setting: {}",
            r.text
        );
    }
    // Saving the target is allowed; calling it through the gateway is refused the same way.
    let body = json!({"provider": "ollama", "base_url": fake.base_url("ollama")});
    let r = svc
        .call("POST", "/users/me/llm-settings", &me, Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = svc
        .call(
            "POST",
            "/v1/gateway/ollama/api/chat",
            &me,
            Some(json!({"model": "llama3.1", "messages": []})),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["error_code"]),
        (403, &json!("upstream_blocked")),
        "{}",
        r.text
    );
    assert_eq!(
        fake.received().len(),
        before,
        "nothing was sent to a host outside the list"
    );
}

/// With `LLM_SETTINGS_METRICS_BIND`, `/metrics` moves to its own listener.
#[tokio::test]
async fn metrics_can_have_their_own_address() {
    let svc = Service::start(
        Backend::Sqlite,
        &[("LLM_SETTINGS_METRICS_BIND", "127.0.0.1:0")],
    )
    .await;
    let r = svc.send("GET", "/metrics", None, None, &[]).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("LLM_SETTINGS_METRICS_BIND"), "{}", r.text);
    let logs = svc.logs();
    let address: String = logs
        .split("metrics served at http://")
        .nth(1)
        .expect("the metrics address is logged")
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '/')
        .collect();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("llm_settings_build_info{"), "{text}");
    // The main listener's requests are counted there.
    let request = [
        ("surface", "service"),
        ("route", "/metrics"),
        ("method", "GET"),
        ("status", "404"),
    ];
    assert_eq!(
        value(
            &samples(&text),
            "llm_settings_http_requests_total",
            &request
        ),
        Some(1.0),
        "{text}"
    );
}
