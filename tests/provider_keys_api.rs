//! Black-box tests of the provider keys API (`/api/v1/settings`, seed 002) against the real
//! binary, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use llm_settings_domain::SecretHints;
use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{assert_absent, on_both_stores, Backend, Reply, Service};

const ANTHROPIC_KEY: &str = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyzABCDEFcdef";
const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyz9876";
/// A planted key; it must never come back out.
const PLANTED: &str = "sk-proj-PLANTEDproviderKEYS0123456789-QWERTYUIOPasdfghjkl-zxcv";
const FORBIDDEN_DETAIL: &str = "managing global settings needs the superadmin role";

on_both_stores!(
    seed_save_example,
    invalid_provider_is_400,
    empty_key_is_422,
    listing_shows_hints_only,
    connection_tests,
    connection_test_through_a_base_url,
    task_assignments,
    authorization,
    planted_key_never_leaks,
);

async fn start(backend: Backend, fake: &FakeProvider) -> Service {
    Service::start(
        backend,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &fake.allow_hosts())],
    )
    .await
}

fn root(svc: &Service) -> String {
    svc.token("root", "read write", &["superadmin"], None)
}

async fn save(svc: &Service, provider: &str, body: Value) -> Reply {
    svc.call(
        "POST",
        &format!("/api/v1/settings/providers/{provider}"),
        &root(svc),
        Some(body),
    )
    .await
}

async fn test_key(svc: &Service, provider: &str) -> Reply {
    svc.call(
        "POST",
        &format!("/api/v1/settings/providers/{provider}/test"),
        &root(svc),
        None,
    )
    .await
}

async fn seed_save_example(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;

    // The seed's request and its 200 ProviderStatus, exactly.
    let r = save(&svc, "anthropic", json!({"api_key": ANTHROPIC_KEY})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"provider": "anthropic", "is_configured": true, "is_active": true, "key_hint": "sk-...cdef"})
    );
    assert!(!r.text.contains("0123456789"));

    // The hint sent back keeps the key; a look-alike hint is refused (422, not stored).
    let r = save(&svc, "anthropic", json!({"api_key": "sk-...cdef"})).await;
    assert_eq!(
        (r.status, r.body["key_hint"].clone()),
        (200, json!("sk-...cdef"))
    );
    let r = save(&svc, "anthropic", json!({"api_key": "sk-...zzzz"})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "api_key"]));

    // Saving again updates the key.
    let r = save(&svc, "anthropic", json!({"api_key": OPENAI_KEY})).await;
    assert_eq!(
        (r.status, r.body["key_hint"].clone()),
        (200, json!("sk-...9876"))
    );
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root(&svc), None)
        .await;
    let anthropic = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "anthropic")
        .cloned()
        .unwrap();
    assert_eq!(anthropic["key_hint"], "sk-...9876");
}

async fn invalid_provider_is_400(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    for provider in ["xyz", "google", "azure", "OpenAI", "deepseek_cloud"] {
        let r = save(&svc, provider, json!({"api_key": OPENAI_KEY})).await;
        assert_eq!(r.status, 400, "{provider}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"detail": format!("Invalid provider: {provider}")})
        );
    }
    let r = test_key(&svc, "xyz").await;
    assert_eq!(
        (r.status, r.body.clone()),
        (400, json!({"detail": "Invalid provider: xyz"}))
    );
    // Nothing was stored.
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root(&svc), None)
        .await;
    assert!(r
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["is_configured"] == false));
}

async fn empty_key_is_422(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let cases = [
        (
            json!({"api_key": ""}),
            json!(["body", "api_key"]),
            "value_error",
        ),
        (
            json!({"api_key": "   "}),
            json!(["body", "api_key"]),
            "value_error",
        ),
        (json!({}), json!(["body", "api_key"]), "missing"),
        (
            json!({"api_key": null}),
            json!(["body", "api_key"]),
            "value_error",
        ),
        (
            json!({"api_key": 12}),
            json!(["body", "api_key"]),
            "value_error",
        ),
        (
            json!({"api_key": OPENAI_KEY, "extra": 1}),
            json!(["body", "extra"]),
            "extra_forbidden",
        ),
    ];
    for (body, loc, kind) in cases {
        let r = save(&svc, "openai", body.clone()).await;
        assert_eq!(r.status, 422, "{body} → {}", r.text);
        let detail = r.body["detail"].as_array().unwrap();
        assert_eq!(detail.len(), 1, "{}", r.text);
        assert_eq!(detail[0]["loc"], loc, "{body} → {}", r.text);
        assert_eq!(detail[0]["type"], kind, "{body} → {}", r.text);
        assert!(detail[0]["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The body is validated before the provider, as FastAPI does.
    let r = save(&svc, "xyz", json!({"api_key": ""})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    // A body that is not JSON is a body error too.
    let r = svc
        .send(
            "POST",
            "/api/v1/settings/providers/openai",
            Some(&root(&svc)),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.body["detail"].is_array());
    assert!(!svc.logs().contains("status=500"));
}

async fn listing_shows_hints_only(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root(&svc), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_array().unwrap().len(), 5);
    assert!(r
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["is_configured"] == false && s["key_hint"] == Value::Null));

    save(&svc, "anthropic", json!({"api_key": ANTHROPIC_KEY})).await;
    save(&svc, "openai", json!({"api_key": OPENAI_KEY})).await;
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root(&svc), None)
        .await;
    assert_eq!(r.status, 200);
    // A bare array, one status per provider of the seed, in its order.
    assert_eq!(
        r.body,
        json!([
            {"provider": "openai", "is_configured": true, "is_active": true, "key_hint": "sk-...9876"},
            {"provider": "gemini", "is_configured": false, "is_active": false, "key_hint": null},
            {"provider": "anthropic", "is_configured": true, "is_active": true, "key_hint": "sk-...cdef"},
            {"provider": "openrouter", "is_configured": false, "is_active": false, "key_hint": null},
            {"provider": "ollama", "is_configured": false, "is_active": false, "key_hint": null},
        ])
    );
    assert!(!r.text.contains("0123456789"), "{}", r.text);
}

/// Connection tests of stored keys. Keys of this API carry no base URL, so they run against
/// a local Ollama, whose default address is on this machine.
async fn connection_tests(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;

    // No key stored.
    let r = test_key(&svc, "openai").await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "no API key is stored for provider openai and none was given"})
    );

    let valid = Behaviour::Valid.key();
    let r = save(
        &svc,
        "ollama",
        json!({"api_key": valid, "base_url": fake.base_url("ollama")}),
    )
    .await;
    let hint = SecretHints::of(&valid).lead3_last4;
    assert_eq!(
        r.body,
        json!({"provider": "ollama", "is_configured": true, "is_active": true, "key_hint": hint})
    );
    let before = fake.requests().await.len();
    let r = test_key(&svc, "ollama").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["provider"], "ollama");
    assert_eq!(r.body["success"], true, "{}", r.text);
    assert_eq!(r.body["model"], "llama3.1");
    assert_eq!(r.body["model_available"], true);
    assert_eq!(r.body["failure"], Value::Null);
    assert!(r.body["latency_ms"].is_u64());
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        fake.requests().await.len() > before,
        "the test reached the provider"
    );

    // A rejected key: 200 with success false and its class.
    let r = save(&svc, "ollama", json!({"api_key": PLANTED})).await;
    assert_eq!(r.status, 200);
    let r = test_key(&svc, "ollama").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["success"].clone(), r.body["failure"].clone()),
        (json!(false), json!("invalid_credentials"))
    );
    // The fake echoes the rejected key; the service does not.
    assert_absent(PLANTED, r.text.as_bytes(), "the failed test's response");

    // The hint sent back keeps the working key.
    save(&svc, "ollama", json!({"api_key": valid})).await;
    let r = save(&svc, "ollama", json!({"api_key": hint})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = test_key(&svc, "ollama").await;
    assert_eq!(r.body["success"], true, "{}", r.text);

    assert_absent(PLANTED, svc.logs().as_bytes(), "the service log");
    assert_absent(PLANTED, &svc.stored_bytes(), "the database");
}

async fn task_assignments(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let path = "/api/v1/settings/task-assignments";
    let r = svc.call("GET", path, &root(&svc), None).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"assignments": []}))
    );

    let r = svc
        .call(
            "POST",
            path,
            &root(&svc),
            Some(json!({"assignments": [
                {"task": "summarize", "provider": "anthropic", "model": "claude-sonnet-4-5"},
                {"task": "classify", "provider": "openai", "model": "gpt-4o-mini"},
            ]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"assignments": [
            {"task": "classify", "provider": "openai", "model": "gpt-4o-mini"},
            {"task": "summarize", "provider": "anthropic", "model": "claude-sonnet-4-5"},
        ]})
    );
    // Each assignment replaces the one of the same task; the others are kept.
    let r = svc
        .call(
            "POST",
            path,
            &root(&svc),
            Some(json!({"assignments": [{"task": "classify", "provider": "ollama", "model": "llama3.1"}]})),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"assignments": [
            {"task": "classify", "provider": "ollama", "model": "llama3.1"},
            {"task": "summarize", "provider": "anthropic", "model": "claude-sonnet-4-5"},
        ]})
    );
    let saved = r.body.clone();
    assert_eq!(svc.call("GET", path, &root(&svc), None).await.body, saved);

    // Bad items are 422 naming the item; nothing of a refused request is saved.
    let ok = json!({"task": "translate", "provider": "openai", "model": "gpt-4o"});
    let cases = [
        (
            json!({"assignments": [ok, {"task": "", "provider": "openai", "model": "gpt-4o"}]}),
            json!(["body", "assignments", 1, "task"]),
        ),
        (
            json!({"assignments": [{"task": "t", "provider": "xyz", "model": "gpt-4o"}]}),
            json!(["body", "assignments", 0, "provider"]),
        ),
        (
            json!({"assignments": [{"task": "t", "provider": "openai", "model": ""}]}),
            json!(["body", "assignments", 0, "model"]),
        ),
        (
            json!({"assignments": [ok, ok]}),
            json!(["body", "assignments", 1, "task"]),
        ),
        (
            json!({"assignments": [{"task": "t", "model": "gpt-4o"}]}),
            json!(["body", "assignments", 0, "provider"]),
        ),
        (json!({}), json!(["body", "assignments"])),
    ];
    for (body, loc) in cases {
        let r = svc
            .call("POST", path, &root(&svc), Some(body.clone()))
            .await;
        assert_eq!(r.status, 422, "{body} → {}", r.text);
        assert_eq!(r.body["detail"][0]["loc"], loc, "{body} → {}", r.text);
    }
    assert_eq!(svc.call("GET", path, &root(&svc), None).await.body, saved);
}

async fn authorization(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    save(&svc, "openai", json!({"api_key": OPENAI_KEY})).await;

    let r = svc
        .send("GET", "/api/v1/settings/providers", None, None, &[])
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body["detail"].is_string(), "{}", r.text);

    let user = svc.user("u1");
    let instance_admin = svc.token("a", "read write", &["admin"], Some("acme"));
    for token in [&user, &instance_admin] {
        for (method, path, body) in [
            ("GET", "/api/v1/settings/providers", None),
            (
                "POST",
                "/api/v1/settings/providers/openai",
                Some(json!({"api_key": ANTHROPIC_KEY})),
            ),
            ("POST", "/api/v1/settings/providers/openai/test", None),
            ("GET", "/api/v1/settings/task-assignments", None),
            (
                "POST",
                "/api/v1/settings/task-assignments",
                Some(json!({"assignments": []})),
            ),
        ] {
            let r = svc.call(method, path, token, body).await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
            assert_eq!(r.body, json!({"detail": FORBIDDEN_DETAIL}));
        }
    }
    // The key is unchanged.
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root(&svc), None)
        .await;
    assert_eq!(r.body[0]["key_hint"], "sk-...9876");
}

async fn planted_key_never_leaks(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let mut texts = Vec::new();
    let r = save(&svc, "openai", json!({"api_key": PLANTED})).await;
    assert_eq!(
        (r.status, r.body["key_hint"].clone()),
        (200, json!("sk-...zxcv"))
    );
    texts.push(r.text);
    let root = root(&svc);
    let requests = [
        ("GET", "/api/v1/settings/providers".to_owned(), None),
        (
            "POST",
            "/api/v1/settings/providers/openai".to_owned(),
            Some(json!({"api_key": PLANTED})),
        ),
        (
            "POST",
            format!("/api/v1/settings/providers/{PLANTED}"),
            Some(json!({"api_key": "sk-0123456789abcdef0123456789"})),
        ),
        (
            "POST",
            format!("/api/v1/settings/providers/{PLANTED}/test"),
            None,
        ),
        (
            "POST",
            "/api/v1/settings/providers/openai".to_owned(),
            Some(json!({"api_key": PLANTED, PLANTED: 1})),
        ),
        (
            "POST",
            "/api/v1/settings/providers/gemini".to_owned(),
            Some(json!({"api_key": [PLANTED]})),
        ),
        (
            "POST",
            "/api/v1/settings/task-assignments".to_owned(),
            Some(json!({"assignments": [{"task": PLANTED, "provider": PLANTED, "model": "m"}]})),
        ),
        (
            "POST",
            "/api/v1/settings/task-assignments".to_owned(),
            Some(json!({"assignments": [{"task": "t", "provider": PLANTED, "model": "m"}]})),
        ),
        ("GET", "/api/v1/settings/task-assignments".to_owned(), None),
        // A path no route matches is answered without repeating it.
        (
            "GET",
            format!("/api/v1/settings/providers/{PLANTED}/nothing-here"),
            None,
        ),
    ];
    for (method, path, body) in requests {
        let r = svc.call(method, &path, &root, body).await;
        assert!(r.status < 500, "{method}: {}", r.text);
        texts.push(r.text);
    }
    for (i, text) in texts.iter().enumerate() {
        assert_absent(PLANTED, text.as_bytes(), &format!("response {i}"));
    }
    assert_absent(PLANTED, svc.logs().as_bytes(), "the service log");
    assert_absent(PLANTED, &svc.stored_bytes(), "the database");
    assert!(
        svc.logs().contains("request finished"),
        "request logging is on"
    );
}

/// A key saved with an optional base URL is tested there (the fake provider stands in for the
/// provider's gateway); a bad base URL is a FastAPI-style 422 like every body error.
async fn connection_test_through_a_base_url(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let root = svc.token("root", "read write", &["superadmin"], None);
    let body = json!({"api_key": Behaviour::Valid.key(), "base_url": fake.base_url("anthropic")});
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/anthropic",
            &root,
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_configured"], true);
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/anthropic/test",
            &root,
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["success"].clone()),
        (200, json!(true)),
        "{}",
        r.text
    );

    let bad = json!({"api_key": Behaviour::Valid.key(), "base_url": "file:///etc/passwd"});
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/openai",
            &root,
            Some(bad),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "base_url"]));
}
