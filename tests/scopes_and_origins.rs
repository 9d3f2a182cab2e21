//! Black-box tests of the rules every surface enforces, against the real binary on SQLite and
//! on Postgres: scopes apply whatever the role (`read` to read, `write` to change or test), a
//! stored key is only ever sent to its own origin (scheme, host and port), and a mask handed
//! out by the native API keeps the stored key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{assert_absent, error_message, on_both_stores, Backend, Reply, Service};

on_both_stores!(
    read_scoped_and_scopeless_tokens_change_nothing,
    a_stored_key_never_leaves_its_origin,
    the_native_mask_sent_back_keeps_the_stored_key,
);

const ANTHROPIC_KEY: &str = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdXXXX";
const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzYx4f";
const OTHER_OPENAI_KEY: &str = "sk-proj-zyxwvutsrqponmlkjihgfedcba9876543210Qw7e";

/// A local port nothing listens on (bound once by the OS, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts the service allowed to reach the fake and `extra_port` on 127.0.0.1.
async fn start(backend: Backend, fake: &FakeProvider, extra_port: Option<u16>) -> Service {
    let mut allow = fake.allow_hosts();
    if let Some(port) = extra_port {
        allow.push_str(&format!(",127.0.0.1:{port}"));
    }
    Service::start(backend, &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &allow)]).await
}

fn instance_header(instance: Option<&str>) -> Vec<(&str, &str)> {
    instance.map(|i| ("X-Instance-Id", i)).into_iter().collect()
}

/// Asserts a 403 in the surface's error shape whose message names one of `missing` (a
/// token without any scope may be refused for the `read` its operation needs first).
fn assert_refused(r: &Reply, what: &str, missing: &[&str]) {
    assert_eq!(r.status, 403, "{what}: {}", r.text);
    let message = error_message(&r.body);
    assert!(
        missing.iter().any(|m| message.contains(m)),
        "{what}: the refusal names {missing:?}: {}",
        r.text
    );
    let path = what.split_whitespace().nth(1).unwrap_or_default();
    let shape_ok = if path.starts_with("/llm-config") {
        r.body["error_code"] == "forbidden" && r.body.as_object().unwrap().len() == 2
    } else if path.starts_with("/api/v1/settings") {
        r.body.as_object().unwrap().len() == 1
    } else if path.starts_with("/v1/llm-provider") {
        r.body["error"]["code"] == "FORBIDDEN" && r.body.as_object().unwrap().len() == 1
    } else {
        true
    };
    assert!(shape_ok, "{what}: the surface's error shape: {}", r.text);
}

/// Everything the write operations below could change, as a superadmin / the instance's admin
/// sees it.
async fn snapshot(svc: &Service) -> Vec<Value> {
    let root = svc.token("root", "read write", &["superadmin"], None);
    let admin = svc.token("admin-acme", "read write", &["admin"], Some("acme"));
    let mut seen = Vec::new();
    for instance in [None, Some("acme")] {
        let r = svc
            .send(
                "GET",
                "/llm-config/",
                Some(&root),
                None,
                &instance_header(instance),
            )
            .await;
        seen.push(r.body);
    }
    for path in [
        "/api/v1/settings/providers",
        "/api/v1/settings/task-assignments",
        "/global/llm-settings",
        "/instances/acme/llm-settings",
    ] {
        seen.push(svc.call("GET", path, &root, None).await.body);
    }
    seen.push(svc.call("GET", "/v1/llm-provider", &admin, None).await.body);
    seen
}

async fn read_scoped_and_scopeless_tokens_change_nothing(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake, None).await;
    let root = svc.token("root", "read write", &["superadmin"], None);
    let admin = svc.token("admin-acme", "read write", &["admin"], Some("acme"));
    let openai_url = fake.base_url("openai");
    let anthropic_url = fake.base_url("anthropic");
    let valid = Behaviour::Valid.key();

    // What the refused writes would act on: an admin config globally and for acme, a global
    // provider key, a task assignment and acme's provider configuration.
    for instance in [None, Some("acme")] {
        let r = svc
            .send(
                "POST",
                "/llm-config/",
                Some(&root),
                Some(&json!({"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": valid, "base_url": anthropic_url})),
                &instance_header(instance),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/openai",
            &root,
            Some(json!({"api_key": valid, "base_url": openai_url})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/task-assignments",
            &root,
            Some(json!({"assignments": [{"task": "summarize", "provider": "openai", "model": "gpt-4o-mini"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc
        .call(
            "POST",
            "/v1/llm-provider",
            &admin,
            Some(json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = snapshot(&svc).await;
    let probes_before = fake.received().len();

    let admin_writes = |instance: Option<&'static str>| {
        let suffix = instance.map_or(String::new(), |i| format!(" (X-Instance-Id: {i})"));
        vec![
            (
                "POST",
                "/llm-config/",
                Some(json!({"provider": "openai", "model": "gpt-4o", "api_key": OTHER_OPENAI_KEY})),
                instance,
                suffix.clone(),
            ),
            (
                "PATCH",
                "/llm-config/",
                Some(json!({"model": "claude-opus-4-1"})),
                instance,
                suffix.clone(),
            ),
            ("DELETE", "/llm-config/", None, instance, suffix.clone()),
            (
                "POST",
                "/llm-config/test-connection",
                None,
                instance,
                suffix,
            ),
        ]
    };
    let provider_key_writes = || {
        vec![
            (
                "POST",
                "/api/v1/settings/providers/openai",
                Some(json!({"api_key": OTHER_OPENAI_KEY})),
            ),
            ("POST", "/api/v1/settings/providers/openai/test", None),
            (
                "POST",
                "/api/v1/settings/task-assignments",
                Some(
                    json!({"assignments": [{"task": "summarize", "provider": "gemini", "model": "gemini-2.0-flash"}]}),
                ),
            ),
        ]
    };
    let provider_config_writes = || {
        vec![
            (
                "POST",
                "/v1/llm-provider",
                Some(json!({"provider": "anthropic", "credentials": {"api_key": ANTHROPIC_KEY}})),
            ),
            (
                "PUT",
                "/v1/llm-provider/openai",
                Some(json!({"enabled": false})),
            ),
            ("DELETE", "/v1/llm-provider/openai", None),
        ]
    };

    for scope in ["read", ""] {
        // What the token lacks for a write: `write`, and without any scope `read` too.
        let lacking: &[&str] = if scope.is_empty() {
            &["`write` scope", "`read` scope"]
        } else {
            &["`write` scope"]
        };
        let superadmin = svc.token("root", scope, &["superadmin"], None);
        let superadmin_acme = svc.token("root", scope, &["superadmin"], Some("acme"));
        let instance_admin = svc.token("admin-acme", scope, &["admin"], Some("acme"));
        // The superadmin lacks only the `write` scope.
        for instance in [None, Some("acme")] {
            for (method, path, body, instance, suffix) in admin_writes(instance) {
                let r = svc
                    .send(
                        method,
                        path,
                        Some(&superadmin),
                        body.as_ref(),
                        &instance_header(instance),
                    )
                    .await;
                assert_refused(
                    &r,
                    &format!("{method} {path}{suffix} scope {scope:?}"),
                    lacking,
                );
            }
        }
        for (method, path, body) in provider_key_writes() {
            let r = svc.call(method, path, &superadmin, body).await;
            assert_refused(&r, &format!("{method} {path} scope {scope:?}"), lacking);
        }
        for token in [&superadmin_acme, &instance_admin] {
            for (method, path, body) in provider_config_writes() {
                let r = svc.call(method, path, token, body).await;
                assert_refused(&r, &format!("{method} {path} scope {scope:?}"), lacking);
            }
        }
        // An instance admin is not a superadmin, whatever its scopes.
        for (method, path, body, instance, suffix) in admin_writes(Some("acme")) {
            let r = svc
                .send(
                    method,
                    path,
                    Some(&instance_admin),
                    body.as_ref(),
                    &instance_header(instance),
                )
                .await;
            assert_refused(
                &r,
                &format!("{method} {path}{suffix}"),
                &["superadmin role"],
            );
        }
        for (method, path, body) in provider_key_writes() {
            let r = svc.call(method, path, &instance_admin, body).await;
            assert_refused(&r, &format!("{method} {path}"), &["superadmin role"]);
        }
    }
    assert_eq!(
        snapshot(&svc).await,
        before,
        "a refused write changed something"
    );
    assert_eq!(
        fake.received().len(),
        probes_before,
        "a refused connection test reached the provider"
    );

    // Reads work with `read`, and need it.
    let readers = [
        ("GET", "/llm-config/", None),
        ("GET", "/llm-config/", Some("acme")),
        ("GET", "/api/v1/settings/providers", None),
        ("GET", "/api/v1/settings/task-assignments", None),
    ];
    let superadmin_read = svc.token("root", "read", &["superadmin"], None);
    let superadmin_none = svc.token("root", "", &["superadmin"], None);
    for (method, path, instance) in readers {
        let r = svc
            .send(
                method,
                path,
                Some(&superadmin_read),
                None,
                &instance_header(instance),
            )
            .await;
        assert_eq!(r.status, 200, "{method} {path} {instance:?}: {}", r.text);
        let r = svc
            .send(
                method,
                path,
                Some(&superadmin_none),
                None,
                &instance_header(instance),
            )
            .await;
        assert_refused(&r, &format!("{method} {path}"), &["`read` scope"]);
    }
    for token_of in [
        |svc: &Service, scope: &str| svc.token("admin-acme", scope, &["admin"], Some("acme")),
        |svc: &Service, scope: &str| svc.token("root", scope, &["superadmin"], Some("acme")),
    ] {
        for path in ["/v1/llm-provider", "/v1/llm-provider/openai"] {
            let r = svc.call("GET", path, &token_of(&svc, "read"), None).await;
            assert_eq!(r.status, 200, "GET {path}: {}", r.text);
            let r = svc.call("GET", path, &token_of(&svc, ""), None).await;
            assert_refused(&r, &format!("GET {path}"), &["`read` scope"]);
        }
    }
    let r = svc
        .call(
            "GET",
            "/v1/llm-provider/openai",
            &svc.token("a", "read", &["admin"], Some("acme")),
            None,
        )
        .await;
    assert_eq!(
        r.body["credentials"]["api_key"], "sk-proj-***",
        "{}",
        r.text
    );
}

/// The same fake endpoint for `provider` on another port, and over https on the same port.
fn elsewhere(fake: &FakeProvider, provider: &str, other_port: u16) -> [String; 2] {
    let own = fake.base_url(provider);
    let port = fake.address().port();
    [
        own.replace(&format!(":{port}/"), &format!(":{other_port}/")),
        own.replacen("http://", "https://", 1),
    ]
}

/// The number of requests the fake provider has received.
fn calls(fake: &FakeProvider) -> usize {
    fake.received().len()
}

/// Asserts a 400 whose message says the stored key stays at its origin, naming `field`.
fn assert_key_required(r: &Reply, what: &str, field: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text);
    let message = error_message(&r.body);
    assert!(
        message.contains(field) && message.contains("stored key is only sent to"),
        "{what}: the refusal names {field} and why: {}",
        r.text
    );
}

async fn a_stored_key_never_leaves_its_origin(backend: Backend) {
    let fake = FakeProvider::start().await;
    let other_port = closed_port();
    let svc = start(backend, &fake, Some(other_port)).await;
    let valid = Behaviour::Valid.key();
    let own = fake.base_url("openai");
    let targets = elsewhere(&fake, "openai", other_port);
    let mut responses = Vec::new();

    // The native API.
    let me = svc.user("origin-user");
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings",
            &me,
            Some(json!({"provider": "openai", "api_key": valid, "base_url": own})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let hint = r.body["api_key_last_4"].as_str().unwrap().to_owned();
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings/test",
            &me,
            Some(json!({"provider": "openai"})),
        )
        .await;
    assert_eq!(
        r.body["success"], true,
        "the stored key works at its origin: {}",
        r.text
    );
    for target in &targets {
        let before = calls(&fake);
        for (method, path, body) in [
            (
                "POST",
                "/users/me/llm-settings/test".to_owned(),
                json!({"provider": "openai", "base_url": target}),
            ),
            (
                "POST",
                "/users/me/llm-settings/test".to_owned(),
                json!({"provider": "openai", "base_url": target, "api_key": hint}),
            ),
            (
                "PATCH",
                format!("/users/me/llm-settings/{id}"),
                json!({"base_url": target}),
            ),
            (
                "PATCH",
                format!("/users/me/llm-settings/{id}"),
                json!({"base_url": target, "api_key": hint}),
            ),
            (
                "POST",
                "/users/me/llm-settings".to_owned(),
                json!({"provider": "openai", "base_url": target}),
            ),
        ] {
            let r = svc.call(method, &path, &me, Some(body.clone())).await;
            assert_key_required(&r, &format!("{method} {path} {body}"), "base_url");
            assert_eq!(r.body["error_code"], "validation_error");
            responses.push(r.text);
        }
        assert_eq!(calls(&fake), before, "a refused request reached a provider");
    }
    let r = svc
        .call("GET", &format!("/users/me/llm-settings/{id}"), &me, None)
        .await;
    assert_eq!(r.body["base_url"], own, "{}", r.text);
    // With the key in the request, the other origin may be tried (nothing listens there).
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings/test",
            &me,
            Some(json!({"provider": "openai", "base_url": targets[0], "api_key": valid})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["success"].clone(), r.body["failure"].clone()),
        (json!(false), json!("unreachable")),
        "{}",
        r.text
    );

    // The admin API.
    let root = svc.token("root", "read write", &["superadmin"], None);
    let r = svc
        .call(
            "POST",
            "/llm-config/",
            &root,
            Some(json!({"provider": "openai", "model": "gpt-4o-mini", "api_key": valid, "base_url": own})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let masked = r.body["api_key_masked"].as_str().unwrap().to_owned();
    for target in &targets {
        let before = calls(&fake);
        for body in [
            json!({"base_url": target}),
            json!({"base_url": target, "api_key": masked}),
            json!({"base_url": target, "model": "gpt-4o"}),
        ] {
            let r = svc
                .call("PATCH", "/llm-config/", &root, Some(body.clone()))
                .await;
            assert_key_required(&r, &format!("PATCH /llm-config/ {body}"), "base_url");
            responses.push(r.text);
        }
        assert_eq!(calls(&fake), before);
    }
    let before = calls(&fake);
    let r = svc
        .call("POST", "/llm-config/test-connection", &root, None)
        .await;
    assert_eq!(
        r.body["success"], true,
        "still at its own origin: {}",
        r.text
    );
    assert_eq!(calls(&fake), before + 1);
    let last = fake.received().last().cloned().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {valid}").as_str())
    );

    // The provider keys API: the handed-out hint keeps the stored key, so it cannot carry it
    // elsewhere either.
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/anthropic",
            &root,
            Some(json!({"api_key": valid, "base_url": fake.base_url("anthropic")})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let key_hint = r.body["key_hint"].as_str().unwrap().to_owned();
    for target in elsewhere(&fake, "anthropic", other_port) {
        let before = calls(&fake);
        let r = svc
            .call(
                "POST",
                "/api/v1/settings/providers/anthropic",
                &root,
                Some(json!({"api_key": key_hint, "base_url": target})),
            )
            .await;
        assert!(matches!(r.status, 400 | 422), "{}", r.text);
        let text = r.text.clone();
        assert!(
            text.contains("base_url") && text.contains("stored key is only sent to"),
            "the refusal names base_url and why: {text}"
        );
        assert_eq!(calls(&fake), before);
        let r = svc
            .call(
                "POST",
                "/api/v1/settings/providers/anthropic/test",
                &root,
                None,
            )
            .await;
        assert_eq!(
            r.body["success"], true,
            "the key stayed at its origin: {}",
            r.text
        );
        assert_eq!(
            fake.received().last().unwrap().header("x-api-key"),
            Some(valid.as_str())
        );
        responses.push(text);
    }
    // With the key, the stored endpoint may move.
    let target = &elsewhere(&fake, "anthropic", other_port)[0];
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/anthropic",
            &root,
            Some(json!({"api_key": valid, "base_url": target})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/anthropic/test",
            &root,
            None,
        )
        .await;
    assert_eq!(r.body["failure"], "unreachable", "{}", r.text);

    // The settings document: a masked apiKey sent back with another baseUrl.
    let doc_user = svc.user("origin-doc");
    let r = svc
        .call(
            "PUT",
            "/api/settings",
            &doc_user,
            Some(json!({"ai": {"providers": {"openai": {"apiKey": valid, "baseUrl": own}}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let document = svc.call("GET", "/api/settings", &doc_user, None).await;
    let mask = document.body["data"]["ai"]["providers"]["openai"]["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    for target in &targets {
        let before = calls(&fake);
        let r = svc
            .call(
                "PUT",
                "/api/settings",
                &doc_user,
                Some(json!({"ai": {"providers": {"openai": {"apiKey": mask, "baseUrl": target}}}})),
            )
            .await;
        assert_key_required(&r, &format!("PUT /api/settings to {target}"), "base");
        assert_eq!(r.body["ok"], false);
        responses.push(r.text);
        for body in [
            json!({"apiKey": mask, "baseUrl": target}),
            json!({"apiKey": mask, "baseUrl": target, "provider": "openai"}),
        ] {
            let r = svc
                .call(
                    "POST",
                    "/api/settings/test-provider",
                    &doc_user,
                    Some(body.clone()),
                )
                .await;
            assert_key_required(&r, &format!("test-provider {body}"), "base");
            assert_eq!(r.body["ok"], false);
            responses.push(r.text);
        }
        assert_eq!(calls(&fake), before, "a refused request reached a provider");
        assert_eq!(
            svc.call("GET", "/api/settings", &doc_user, None).await.body,
            document.body
        );
    }
    let r = svc
        .call(
            "POST",
            "/api/settings/test-provider",
            &doc_user,
            Some(json!({"apiKey": mask, "baseUrl": own})),
        )
        .await;
    assert_eq!(r.body["data"]["connected"], true, "{}", r.text);
    let r = svc
        .call(
            "POST",
            "/api/settings/test-provider",
            &doc_user,
            Some(json!({"apiKey": valid, "baseUrl": targets[0], "provider": "openai"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["connected"], false, "{}", r.text);

    for (i, text) in responses.iter().enumerate() {
        assert_absent(&valid, text.as_bytes(), &format!("refusal {i}"));
    }
}

async fn the_native_mask_sent_back_keeps_the_stored_key(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake, None).await;
    let me = svc.user("mask-user");
    let valid = Behaviour::Valid.key();
    const BASE: &str = "/users/me/llm-settings";
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "openai", "api_key": valid, "base_url": fake.base_url("openai")})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let hint = r.body["api_key_last_4"].as_str().unwrap().to_owned();
    assert!(!hint.is_empty() && valid.ends_with(&hint), "{}", r.text);

    let bearer = format!("Bearer {valid}");
    let tested_with_stored_key = |r: &Reply| {
        assert_eq!(r.body["success"], true, "{}", r.text);
        let last = fake.received().last().cloned().unwrap();
        assert_eq!(last.header("authorization"), Some(bearer.as_str()));
    };
    for (method, path, body) in [
        ("PATCH", format!("{BASE}/{id}"), json!({"api_key": hint})),
        (
            "PATCH",
            format!("{BASE}/{id}"),
            json!({"api_key": hint, "model": "gpt-4o"}),
        ),
        (
            "POST",
            BASE.to_owned(),
            json!({"provider": "openai", "api_key": hint}),
        ),
    ] {
        let r = svc.call(method, &path, &me, Some(body.clone())).await;
        assert!(matches!(r.status, 200 | 201), "{method} {body}: {}", r.text);
        assert_eq!(r.body["api_key_last_4"], hint, "{}", r.text);
        let r = svc.call("GET", &format!("{BASE}/{id}"), &me, None).await;
        assert_eq!(r.body["api_key_last_4"], hint);
        assert_eq!(r.body["api_key_configured"], true);
        // The next test still sends the original key.
        let r = svc
            .call(
                "POST",
                &format!("{BASE}/test"),
                &me,
                Some(json!({"provider": "openai"})),
            )
            .await;
        tested_with_stored_key(&r);
    }
    // Testing with the hint uses the stored key as well.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "openai", "api_key": hint})),
        )
        .await;
    tested_with_stored_key(&r);
    let r = svc.call("GET", BASE, &me, None).await;
    assert_eq!(r.body["configs"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["configs"][0]["model"], "gpt-4o");
}
