//! Black-box tests of using the stored keys, against the real binary on SQLite and on
//! Postgres: service tokens (and the `token` command minting them), the resolve API walking
//! `user → instance → global`, the effective view, the audit trail of resolutions, and the
//! native API on an instance's and the deployment's configs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};

use llm_settings_domain::{AuditAction, AuditOutcome, AuditQuery, AuditScope, Owner};
use support::{assert_absent, error_message, eventually, on_both_stores, Backend, Reply, Service};

on_both_stores!(
    the_token_command_mints_service_tokens_and_refuses_unknown_claims,
    resolve_walks_user_then_instance_then_global,
    resolve_follows_task_assignments_on_every_level,
    resolve_is_for_service_tokens_only,
    a_service_token_manages_nothing,
    the_effective_view_names_the_source_without_the_key,
    resolutions_are_audited_and_the_key_reaches_nothing_else,
    the_native_api_manages_instances_and_the_deployment,
);

const RESOLVE: &str = "/v1/credentials/resolve";
/// Alice's own key: planted, it may only ever come back from the resolve API.
const ALICE_KEY: &str = "sk-proj-ALICEplantedKEY0123456789abcdefghijklmnAl1c";
const ACME_OPENAI_KEY: &str = "sk-proj-ACMEinstanceKEY0123456789abcdefghijklmAcm3";
const ACME_ANTHROPIC_KEY: &str = "sk-ant-api03-ACMEinstanceKEY0123456789abcdefghijAcmA";
const GLOBAL_OPENAI_KEY: &str = "sk-proj-GLOBALdeploymentKEY0123456789abcdefghiGl0b";
const GLOBAL_GEMINI_KEY: &str = "AIzaSyGLOBALgeminiKEY0123456789abcdefGgem";
const ALL_KEYS: [&str; 5] = [
    ALICE_KEY,
    ACME_OPENAI_KEY,
    ACME_ANTHROPIC_KEY,
    GLOBAL_OPENAI_KEY,
    GLOBAL_GEMINI_KEY,
];

fn service_token(svc: &Service) -> String {
    svc.token("billing-backend", "", &["service"], None)
}

fn superadmin(svc: &Service) -> String {
    svc.token("root", "read write", &["superadmin"], None)
}

fn admin_of(svc: &Service, instance: &str) -> String {
    svc.token(
        &format!("admin-{instance}"),
        "read write",
        &["admin"],
        Some(instance),
    )
}

async fn resolve(svc: &Service, token: &str, body: Value) -> Reply {
    svc.call("POST", RESOLVE, token, Some(body)).await
}

/// The config ids of the chain seeded by [`seed_chain`].
struct Chain {
    alice_openai: i64,
    acme_openai: i64,
    acme_anthropic: i64,
    global_openai: i64,
    global_gemini: i64,
}

async fn create(svc: &Service, token: &str, path: &str, body: Value) -> i64 {
    let r = svc.call("POST", path, token, Some(body)).await;
    assert_eq!(r.status, 201, "POST {path}: {}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// Alice has an openai key of her own; instance acme has openai and anthropic keys; the
/// deployment has openai and gemini keys. Each owner's first config is its default.
async fn seed_chain(svc: &Service) -> Chain {
    let alice = svc.token("alice", "read write", &[], Some("acme"));
    let admin = admin_of(svc, "acme");
    let root = superadmin(svc);
    Chain {
        alice_openai: create(
            svc,
            &alice,
            "/users/me/llm-settings",
            json!({"provider": "openai", "api_key": ALICE_KEY, "model": "gpt-4o"}),
        )
        .await,
        acme_openai: create(
            svc,
            &admin,
            "/instances/acme/llm-settings",
            json!({"provider": "openai", "api_key": ACME_OPENAI_KEY, "base_url": "https://gateway.acme.example/v1"}),
        )
        .await,
        acme_anthropic: create(
            svc,
            &admin,
            "/instances/acme/llm-settings",
            json!({"provider": "anthropic", "api_key": ACME_ANTHROPIC_KEY}),
        )
        .await,
        global_openai: create(
            svc,
            &root,
            "/global/llm-settings",
            json!({"provider": "openai", "api_key": GLOBAL_OPENAI_KEY, "model": "gpt-4.1"}),
        )
        .await,
        global_gemini: create(
            svc,
            &root,
            "/global/llm-settings",
            json!({"provider": "gemini", "api_key": GLOBAL_GEMINI_KEY}),
        )
        .await,
    }
}

/// Asserts a 200 resolution from `owner` (`instance` for an instance source) with `key`.
fn assert_resolved(r: &Reply, key: &str, owner: &str, instance: Option<&str>, config_id: i64) {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["credentials"]["api_key"], key, "{}", r.text);
    assert_eq!(r.body["source"]["owner"], owner, "{}", r.text);
    assert_eq!(
        r.body["source"]["instance_id"],
        json!(instance),
        "{}",
        r.text
    );
    assert_eq!(r.body["source"]["config_id"], config_id, "{}", r.text);
    assert!(r.body["source"]["version"].as_i64().unwrap() >= 1);
    assert_eq!(
        r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "a resolution is never cached"
    );
}

/// Asserts a 404 `provider_not_configured` naming the provider and the owners searched.
fn assert_not_configured(r: &Reply, provider: &str, searched: &str) {
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(
        r.body["error_code"], "provider_not_configured",
        "{}",
        r.text
    );
    let detail = error_message(&r.body);
    assert!(
        detail.contains(provider) && detail.contains(searched),
        "the refusal names {provider} and {searched}: {detail}"
    );
}

async fn the_token_command_mints_service_tokens_and_refuses_unknown_claims(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let env = Service::base_env(backend, svc.data_dir.path(), svc.database.as_ref());
    let token = |args: &[&str]| {
        Service::command(&env)
            .arg("token")
            .args(args)
            .output()
            .unwrap()
    };

    let out = token(&[
        "--sub",
        "billing-backend",
        "--role",
        "service",
        "--scope",
        "",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let service = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // The service takes it as a service token: it may resolve, and manage nothing.
    let r = resolve(
        &svc,
        &service,
        json!({"user": "alice", "provider": "openai"}),
    )
    .await;
    assert_not_configured(&r, "openai", "user alice, global");
    let r = svc
        .call("GET", "/users/me/llm-settings", &service, None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        error_message(&r.body).contains("service token"),
        "{}",
        r.text
    );

    // Every accepted role and scope mints a token.
    let out = token(&[
        "--sub",
        "root",
        "--role",
        "admin",
        "--role",
        "superadmin",
        "--instance",
        "acme",
        "--scope",
        "read write use",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        svc.call("GET", "/llm-config/", &root, None).await.status,
        200
    );

    // Unknown roles and scopes are refused, naming the value and what is accepted.
    for (args, named, accepted) in [
        (
            vec!["--sub", "x", "--role", "root"],
            "unknown role \"root\"",
            "admin, superadmin, service",
        ),
        (
            vec!["--sub", "x", "--role", "service", "--role", "Admin"],
            "unknown role \"Admin\"",
            "admin, superadmin, service",
        ),
        (
            vec!["--sub", "x", "--scope", "read admin"],
            "unknown scope \"admin\"",
            "read, write, use",
        ),
        (
            vec!["--sub", "x", "--scope", "read,write"],
            "unknown scope \"read,write\"",
            "read, write, use",
        ),
    ] {
        let out = token(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(out.stdout.is_empty(), "{args:?} printed a token");
        assert!(
            stderr.contains(named) && stderr.contains(accepted),
            "{args:?}: {stderr}"
        );
    }
}

async fn resolve_walks_user_then_instance_then_global(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let chain = seed_chain(&svc).await;
    let service = service_token(&svc);

    // The user's own key wins.
    let r = resolve(
        &svc,
        &service,
        json!({"user": "alice", "instance": "acme", "provider": "openai"}),
    )
    .await;
    assert_resolved(&r, ALICE_KEY, "user", None, chain.alice_openai);
    assert_eq!(r.body["provider"], "openai");
    assert_eq!(r.body["model"], "gpt-4o");
    assert_eq!(r.body["base_url"], "https://api.openai.com/v1");
    assert_eq!(r.body["task"], Value::Null);
    // A user without a key gets the instance's (with its base URL), then the global one.
    let r = resolve(
        &svc,
        &service,
        json!({"user": "bob", "instance": "acme", "provider": "openai"}),
    )
    .await;
    assert_resolved(
        &r,
        ACME_OPENAI_KEY,
        "instance",
        Some("acme"),
        chain.acme_openai,
    );
    assert_eq!(r.body["base_url"], "https://gateway.acme.example/v1");
    for body in [
        json!({"user": "bob", "instance": "other", "provider": "openai"}),
        json!({"user": "bob", "provider": "openai"}),
        json!({"user": "bob", "instance": "acme", "provider": "openai", "sources": ["user", "global"]}),
    ] {
        let r = resolve(&svc, &service, body.clone()).await;
        assert_resolved(&r, GLOBAL_OPENAI_KEY, "global", None, chain.global_openai);
        assert_eq!(r.body["model"], "gpt-4.1", "{body}");
    }
    let r = resolve(
        &svc,
        &service,
        json!({"instance": "acme", "provider": "anthropic"}),
    )
    .await;
    assert_resolved(
        &r,
        ACME_ANTHROPIC_KEY,
        "instance",
        Some("acme"),
        chain.acme_anthropic,
    );
    // The request's model wins over the config's.
    let r = resolve(
        &svc,
        &service,
        json!({"user": "alice", "instance": "acme", "provider": "openai", "model": "o3-mini"}),
    )
    .await;
    assert_eq!(r.body["model"], "o3-mini", "{}", r.text);

    // Without task or provider: the first enabled default along the chain.
    let r = resolve(&svc, &service, json!({"user": "alice", "instance": "acme"})).await;
    assert_resolved(&r, ALICE_KEY, "user", None, chain.alice_openai);
    let r = resolve(&svc, &service, json!({"user": "bob", "instance": "acme"})).await;
    assert_resolved(
        &r,
        ACME_OPENAI_KEY,
        "instance",
        Some("acme"),
        chain.acme_openai,
    );
    let r = resolve(&svc, &service, json!({"user": "bob"})).await;
    assert_resolved(&r, GLOBAL_OPENAI_KEY, "global", None, chain.global_openai);

    // Sources narrow the chain: nothing of bob's own.
    let r = resolve(
        &svc,
        &service,
        json!({"user": "bob", "instance": "acme", "provider": "openai", "sources": ["user"]}),
    )
    .await;
    assert_not_configured(&r, "openai", "user bob");
    assert!(!error_message(&r.body).contains("global"), "{}", r.text);
    let r = resolve(
        &svc,
        &service,
        json!({"user": "bob", "instance": "other", "provider": "anthropic"}),
    )
    .await;
    assert_not_configured(&r, "anthropic", "user bob, instance other, global");

    // A disabled user config falls through to the instance's; enabled again, it wins again.
    let alice = svc.token("alice", "read write", &[], Some("acme"));
    let path = format!("/users/me/llm-settings/{}", chain.alice_openai);
    let r = svc
        .call("PATCH", &path, &alice, Some(json!({"enabled": false})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let asked = json!({"user": "alice", "instance": "acme", "provider": "openai"});
    let r = resolve(&svc, &service, asked.clone()).await;
    assert_resolved(
        &r,
        ACME_OPENAI_KEY,
        "instance",
        Some("acme"),
        chain.acme_openai,
    );
    let r = resolve(&svc, &service, json!({"user": "alice", "instance": "acme"})).await;
    assert_resolved(
        &r,
        ACME_OPENAI_KEY,
        "instance",
        Some("acme"),
        chain.acme_openai,
    );
    let r = svc
        .call("PATCH", &path, &alice, Some(json!({"enabled": true})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = resolve(&svc, &service, asked).await;
    assert_resolved(&r, ALICE_KEY, "user", None, chain.alice_openai);

    // Bad requests.
    for (body, field) in [
        (
            json!({"user": "alice", "task": "summarize", "provider": "openai"}),
            "provider",
        ),
        (json!({"provider": "openai"}), "user"),
        (json!({"user": "alice", "provider": "nope"}), "nope"),
        (
            json!({"user": "alice", "sources": ["user", "team"]}),
            "sources",
        ),
        (json!({"user": " padded"}), "user"),
        (json!({"user": "alice", "instance": "a b"}), "instance"),
        (json!({"user": "alice", "colour": "red"}), "colour"),
    ] {
        let r = resolve(&svc, &service, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.body["error_code"].is_string(), "{}", r.text);
        assert!(
            error_message(&r.body).contains(field),
            "{body}: the refusal names {field}: {}",
            r.text
        );
    }
    assert!(!svc.logs().contains("status=500"));
}

async fn resolve_follows_task_assignments_on_every_level(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let chain = seed_chain(&svc).await;
    let service = service_token(&svc);
    let assignments = |items: Value| Some(json!({ "assignments": items }));
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/task-assignments",
            &superadmin(&svc),
            assignments(json!([
                {"task": "summarize", "provider": "gemini", "model": "gemini-2.0-flash"},
                {"task": "translate", "provider": "openai", "model": "gpt-4.1-mini"},
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc
        .call(
            "PUT",
            "/instances/acme/llm-settings/task-assignments",
            &admin_of(&svc, "acme"),
            assignments(json!([{"task": "summarize", "provider": "anthropic", "model": "claude-3-5-haiku-latest"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let alice = svc.token("alice", "read write", &[], Some("acme"));
    let r = svc
        .call(
            "PUT",
            "/users/me/llm-settings/task-assignments",
            &alice,
            assignments(
                json!([{"task": "summarize", "provider": "openai", "model": "gpt-4o-mini"}]),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"assignments": [{"task": "summarize", "provider": "openai", "model": "gpt-4o-mini"}]})
    );
    let r = svc
        .call(
            "GET",
            "/users/me/llm-settings/task-assignments",
            &alice,
            None,
        )
        .await;
    assert_eq!(
        r.body["assignments"][0]["model"], "gpt-4o-mini",
        "{}",
        r.text
    );

    let summarize = |user: &str, instance: Option<&str>| {
        let mut body = json!({"user": user, "task": "summarize"});
        if let Some(i) = instance {
            body["instance"] = json!(i);
        }
        body
    };
    // The user's assignment.
    let r = resolve(&svc, &service, summarize("alice", Some("acme"))).await;
    assert_resolved(&r, ALICE_KEY, "user", None, chain.alice_openai);
    assert_eq!(
        (&r.body["provider"], &r.body["model"], &r.body["task"]),
        (&json!("openai"), &json!("gpt-4o-mini"), &json!("summarize"))
    );
    // The instance's, for a user without one.
    let r = resolve(&svc, &service, summarize("bob", Some("acme"))).await;
    assert_resolved(
        &r,
        ACME_ANTHROPIC_KEY,
        "instance",
        Some("acme"),
        chain.acme_anthropic,
    );
    assert_eq!(
        (&r.body["provider"], &r.body["model"]),
        (&json!("anthropic"), &json!("claude-3-5-haiku-latest"))
    );
    // The deployment's, outside acme.
    let r = resolve(&svc, &service, summarize("bob", Some("other"))).await;
    assert_resolved(&r, GLOBAL_GEMINI_KEY, "global", None, chain.global_gemini);
    assert_eq!(
        (&r.body["provider"], &r.body["model"]),
        (&json!("gemini"), &json!("gemini-2.0-flash"))
    );
    // A task assigned only globally, for alice: the global assignment picks openai and the
    // model; the credential is still the first openai config along the chain, hers.
    let r = resolve(
        &svc,
        &service,
        json!({"user": "alice", "instance": "acme", "task": "translate"}),
    )
    .await;
    assert_resolved(&r, ALICE_KEY, "user", None, chain.alice_openai);
    assert_eq!(r.body["model"], "gpt-4.1-mini");
    // The request's model wins over the assignment's.
    let mut body = summarize("alice", Some("acme"));
    body["model"] = json!("gpt-4o");
    assert_eq!(resolve(&svc, &service, body).await.body["model"], "gpt-4o");
    // Sources narrow the assignments too.
    let mut body = summarize("alice", Some("acme"));
    body["sources"] = json!(["instance", "global"]);
    let r = resolve(&svc, &service, body).await;
    assert_resolved(
        &r,
        ACME_ANTHROPIC_KEY,
        "instance",
        Some("acme"),
        chain.acme_anthropic,
    );
    // A task nobody assigns.
    let r = resolve(
        &svc,
        &service,
        json!({"user": "alice", "instance": "acme", "task": "classify"}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["error_code"], "task_not_assigned");
    assert!(error_message(&r.body).contains("classify"), "{}", r.text);
}

async fn resolve_is_for_service_tokens_only(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    seed_chain(&svc).await;
    let asked = json!({"user": "alice", "instance": "acme", "provider": "openai"});
    for token in [
        svc.token("alice", "read write use", &[], Some("acme")),
        svc.token("admin-acme", "read write use", &["admin"], Some("acme")),
        svc.token("root", "read write use", &["superadmin"], None),
        svc.token(
            "root",
            "read write use",
            &["admin", "superadmin"],
            Some("acme"),
        ),
    ] {
        let r = resolve(&svc, &token, asked.clone()).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.body["error_code"], "forbidden");
        assert!(
            error_message(&r.body).contains("service role"),
            "{}",
            r.text
        );
        for key in ALL_KEYS {
            assert_absent(key, r.text.as_bytes(), "a refused resolution");
        }
    }
    let r = svc.send("POST", RESOLVE, None, Some(&asked), &[]).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["error_code"], "unauthorized");
    // The service token gets it.
    let r = resolve(&svc, &service_token(&svc), asked).await;
    assert_eq!(r.body["credentials"]["api_key"], ALICE_KEY, "{}", r.text);
}

async fn a_service_token_manages_nothing(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    seed_chain(&svc).await;
    let key = json!({"provider": "openai", "api_key": "sk-proj-SERVICEwrite0123456789abcdefghijklmnSvc1"});
    let before_alice = svc
        .call(
            "GET",
            "/users/me/llm-settings",
            &svc.token("alice", "read write", &[], None),
            None,
        )
        .await
        .body;
    let operations: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", "/users/me/llm-settings", None),
        ("POST", "/users/me/llm-settings", Some(key.clone())),
        (
            "POST",
            "/users/me/llm-settings/test",
            Some(json!({"provider": "openai"})),
        ),
        ("GET", "/users/me/llm-settings/effective", None),
        ("GET", "/users/me/llm-settings/task-assignments", None),
        (
            "PUT",
            "/users/me/llm-settings/task-assignments",
            Some(json!({"assignments": []})),
        ),
        ("GET", "/instances/acme/llm-settings", None),
        ("POST", "/instances/acme/llm-settings", Some(key.clone())),
        ("GET", "/global/llm-settings", None),
        ("POST", "/global/llm-settings", Some(key.clone())),
        ("GET", "/llm-config/", None),
        (
            "POST",
            "/llm-config/",
            Some(
                json!({"provider": "openai", "model": "gpt-4o", "api_key": "sk-proj-x0123456789abcdefghijklmnopq"}),
            ),
        ),
        ("PATCH", "/llm-config/", Some(json!({"model": "gpt-4o"}))),
        ("DELETE", "/llm-config/", None),
        ("POST", "/llm-config/test-connection", None),
        ("GET", "/api/v1/settings/providers", None),
        (
            "POST",
            "/api/v1/settings/providers/openai",
            Some(json!({"api_key": "sk-proj-x0123456789abcdefghijklmnopq"})),
        ),
        ("POST", "/api/v1/settings/providers/openai/test", None),
        ("GET", "/api/v1/settings/task-assignments", None),
        (
            "POST",
            "/api/v1/settings/task-assignments",
            Some(json!({"assignments": []})),
        ),
        ("GET", "/v1/llm-provider", None),
        (
            "POST",
            "/v1/llm-provider",
            Some(
                json!({"provider": "openai", "credentials": {"api_key": "sk-proj-x0123456789abcdefghijklmnopq"}}),
            ),
        ),
        (
            "PUT",
            "/v1/llm-provider/openai",
            Some(json!({"enabled": false})),
        ),
        ("DELETE", "/v1/llm-provider/openai", None),
        ("GET", "/api/settings", None),
        (
            "PUT",
            "/api/settings",
            Some(json!({"ai": {"temperature": 1}})),
        ),
        (
            "POST",
            "/api/settings/test-provider",
            Some(json!({"provider": "openai", "apiKey": "sk-proj-x0123456789abcdefghijklmnopq"})),
        ),
    ];
    // A service token, even one that also claims every other role, scope and an instance.
    for token in [
        svc.token("billing-backend", "", &["service"], Some("acme")),
        svc.token(
            "alice",
            "read write use",
            &["service", "admin", "superadmin"],
            Some("acme"),
        ),
    ] {
        for (method, path, body) in &operations {
            let r = svc.call(method, path, &token, body.clone()).await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
            assert!(
                error_message(&r.body).contains("service token"),
                "{method} {path}: the refusal says why: {}",
                r.text
            );
        }
    }
    // Nothing changed.
    let root = superadmin(&svc);
    let r = svc.call("GET", "/global/llm-settings", &root, None).await;
    assert_eq!(r.body["configs"].as_array().unwrap().len(), 2, "{}", r.text);
    let r = svc
        .call("GET", "/instances/acme/llm-settings", &root, None)
        .await;
    assert_eq!(r.body["configs"][0]["enabled"], true, "{}", r.text);
    let r = svc
        .call(
            "GET",
            "/users/me/llm-settings",
            &svc.token("alice", "read write", &[], None),
            None,
        )
        .await;
    assert_eq!(r.body, before_alice);
}

async fn the_effective_view_names_the_source_without_the_key(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let chain = seed_chain(&svc).await;
    let svc = &svc;
    let effective = |user: &str, instance: Option<&str>, query: &str| {
        let token = svc.token(user, "read", &[], instance);
        let path = format!("/users/me/llm-settings/effective{query}");
        async move { svc.call("GET", &path, &token, None).await }
    };
    let mut texts = Vec::new();
    for (user, instance, query, owner, source_instance, config_id, provider) in [
        (
            "alice",
            Some("acme"),
            "",
            "user",
            None,
            chain.alice_openai,
            "openai",
        ),
        (
            "alice",
            Some("acme"),
            "?provider=openai",
            "user",
            None,
            chain.alice_openai,
            "openai",
        ),
        (
            "bob",
            Some("acme"),
            "",
            "instance",
            Some("acme"),
            chain.acme_openai,
            "openai",
        ),
        (
            "bob",
            Some("acme"),
            "?provider=anthropic",
            "instance",
            Some("acme"),
            chain.acme_anthropic,
            "anthropic",
        ),
        (
            "bob",
            Some("other"),
            "?provider=openai",
            "global",
            None,
            chain.global_openai,
            "openai",
        ),
        (
            "bob",
            None,
            "",
            "global",
            None,
            chain.global_openai,
            "openai",
        ),
        (
            "alice",
            Some("acme"),
            "?provider=gemini",
            "global",
            None,
            chain.global_gemini,
            "gemini",
        ),
    ] {
        let r = effective(user, instance, query).await;
        assert_eq!(r.status, 200, "{user} {instance:?} {query}: {}", r.text);
        let keys: Vec<&str> = r
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["base_url", "model", "provider", "source", "task"],
            "no credential in the view: {}",
            r.text
        );
        assert_eq!(r.body["provider"], provider);
        assert_eq!(
            r.body["source"],
            json!({"owner": owner, "instance_id": source_instance, "config_id": config_id}),
            "{user} {instance:?} {query}"
        );
        texts.push(r.text);
    }
    // Alice's key is not her instance admin's business, nor the deployment's: the view shows
    // whose key, never the key.
    let r = effective("bob", Some("acme"), "?provider=openai").await;
    assert_eq!(r.body["base_url"], "https://gateway.acme.example/v1");
    texts.push(r.text);

    // Nothing fits.
    let r = effective("bob", Some("other"), "?provider=anthropic").await;
    assert_not_configured(&r, "anthropic", "user bob, instance other, global");
    texts.push(r.text);
    // A task assignment of the user's picks provider and model.
    let alice = svc.token("alice", "read write", &[], Some("acme"));
    let r = svc
        .call(
            "PUT",
            "/users/me/llm-settings/task-assignments",
            &alice,
            Some(json!({"assignments": [{"task": "draft", "provider": "anthropic", "model": "claude-opus-4-1"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = effective("alice", Some("acme"), "?task=draft").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["provider"], &r.body["model"], &r.body["task"]),
        (
            &json!("anthropic"),
            &json!("claude-opus-4-1"),
            &json!("draft")
        )
    );
    assert_eq!(r.body["source"]["owner"], "instance");
    texts.push(r.text);
    let r = effective("alice", Some("acme"), "?task=draft&provider=openai").await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Reading needs `read`.
    let r = svc
        .call(
            "GET",
            "/users/me/llm-settings/effective",
            &svc.token("alice", "write", &[], Some("acme")),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(error_message(&r.body).contains("`read` scope"));
    for (i, text) in texts.iter().enumerate() {
        for key in ALL_KEYS {
            assert_absent(key, text.as_bytes(), &format!("effective view {i}"));
        }
    }
}

async fn resolutions_are_audited_and_the_key_reaches_nothing_else(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let chain = seed_chain(&svc).await;
    let service = service_token(&svc);
    let mut texts = Vec::new();

    let answered = resolve(
        &svc,
        &service,
        json!({"user": "alice", "instance": "acme", "provider": "openai"}),
    )
    .await;
    assert_resolved(&answered, ALICE_KEY, "user", None, chain.alice_openai);
    let r = resolve(&svc, &service, json!({"user": "bob", "instance": "acme"})).await;
    assert_resolved(
        &r,
        ACME_OPENAI_KEY,
        "instance",
        Some("acme"),
        chain.acme_openai,
    );
    let r = resolve(
        &svc,
        &service,
        json!({"user": "bob", "instance": "acme", "provider": "openai", "sources": ["user"]}),
    )
    .await;
    assert_eq!(r.status, 404);
    texts.push(r.text);

    // Every other surface that reaches alice's config shows hints only.
    let alice = svc.token("alice", "read write", &[], Some("acme"));
    for path in [
        "/users/me/llm-settings".to_owned(),
        format!("/users/me/llm-settings/{}", chain.alice_openai),
        "/users/me/llm-settings/effective".to_owned(),
        "/api/settings".to_owned(),
    ] {
        let r = svc.call("GET", &path, &alice, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        texts.push(r.text);
    }
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings",
            &alice,
            Some(json!({"provider": "openai", "api_key": ALICE_KEY, "model": "gpt-4o"})),
        )
        .await;
    texts.push(r.text);

    // The audit rows, read from the database: one per resolution, none with a key.
    let store = svc.open_store().await;
    let query = AuditQuery {
        action: Some(AuditAction::Resolve),
        ..AuditQuery::newest(AuditScope::All, 100)
    };
    let rows = eventually("the resolve audit rows", Duration::from_secs(10), || {
        let (store, query) = (store.clone(), query.clone());
        async move {
            let rows = store.query(query).await.unwrap();
            (rows.len() >= 3).then_some(rows)
        }
    })
    .await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    // Newest first.
    let events: Vec<_> = rows.iter().rev().map(|r| &r.event).collect();
    let owner = |o: &Owner| (o.kind().as_str(), o.id().to_owned());
    for event in &events {
        assert_eq!(event.actor, "billing-backend");
        assert_eq!(event.action, AuditAction::Resolve);
        assert_eq!(
            event.instance.as_ref().map(|i| i.to_string()),
            Some("acme".to_owned())
        );
    }
    assert_eq!(events[0].on_behalf_of.as_ref().unwrap().as_str(), "alice");
    assert_eq!(owner(&events[0].owner), ("user", "alice".to_owned()));
    assert_eq!(
        events[0].provider.map(|p| p.to_string()),
        Some("openai".to_owned())
    );
    assert_eq!(events[0].config_id.map(|c| c.0), Some(chain.alice_openai));
    assert_eq!(events[0].outcome, AuditOutcome::Success);
    assert_eq!(events[1].on_behalf_of.as_ref().unwrap().as_str(), "bob");
    assert_eq!(owner(&events[1].owner), ("instance", "acme".to_owned()));
    assert_eq!(events[1].config_id.map(|c| c.0), Some(chain.acme_openai));
    assert_eq!(events[1].outcome, AuditOutcome::Success);
    assert_eq!(events[2].on_behalf_of.as_ref().unwrap().as_str(), "bob");
    assert_eq!(events[2].config_id, None);
    assert_eq!(
        events[2].outcome,
        AuditOutcome::Failure("provider_not_configured".to_owned())
    );
    let all = store
        .query(AuditQuery::newest(AuditScope::All, 1000))
        .await
        .unwrap();
    let audit_text = format!("{all:?}");
    for key in ALL_KEYS {
        assert_absent(key, audit_text.as_bytes(), "the audit trail");
    }

    // The planted key: in the resolve answer, and nowhere else.
    assert!(answered.text.contains(ALICE_KEY));
    for (i, text) in texts.iter().enumerate() {
        assert_absent(ALICE_KEY, text.as_bytes(), &format!("response {i}"));
    }
    assert!(
        svc.logs().contains("request finished"),
        "request logging is on"
    );
    for key in ALL_KEYS {
        assert_absent(key, svc.logs().as_bytes(), "the service log");
        assert_absent(key, &svc.stored_bytes(), "the database");
    }
}

async fn the_native_api_manages_instances_and_the_deployment(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let acme_admin = admin_of(&svc, "acme");
    let root = superadmin(&svc);
    const ACME: &str = "/instances/acme/llm-settings";
    const BETA: &str = "/instances/beta/llm-settings";
    const GLOBAL: &str = "/global/llm-settings";

    // Acme's admin manages acme's configs.
    let id = create(
        &svc,
        &acme_admin,
        ACME,
        json!({"provider": "openai", "api_key": ACME_OPENAI_KEY}),
    )
    .await;
    let r = svc
        .call(
            "PATCH",
            &format!("{ACME}/{id}"),
            &acme_admin,
            Some(json!({"model": "gpt-4.1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["model"], "gpt-4.1");
    let second = create(
        &svc,
        &acme_admin,
        ACME,
        json!({"provider": "anthropic", "api_key": ACME_ANTHROPIC_KEY}),
    )
    .await;
    let r = svc
        .call(
            "POST",
            &format!("{ACME}/{second}/set-default"),
            &acme_admin,
            None,
        )
        .await;
    assert_eq!(r.body["is_default"], true, "{}", r.text);
    // It is acme's configuration on every surface that reaches acme.
    let r = svc
        .send(
            "GET",
            "/llm-config/",
            Some(&root),
            None,
            &[("X-Instance-Id", "acme")],
        )
        .await;
    assert_eq!(r.body["provider"], "anthropic", "{}", r.text);
    let r = svc
        .call("GET", "/v1/llm-provider/openai", &acme_admin, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc.call("GET", ACME, &acme_admin, None).await;
    assert_eq!(r.body["configs"].as_array().unwrap().len(), 2, "{}", r.text);
    let r = svc
        .call("DELETE", &format!("{ACME}/{id}"), &acme_admin, None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    // Not another instance's, nor the deployment's.
    for (method, path, body) in [
        ("GET", BETA.to_owned(), None),
        (
            "POST",
            BETA.to_owned(),
            Some(json!({"provider": "openai", "api_key": ACME_OPENAI_KEY})),
        ),
        ("GET", format!("{BETA}/effective"), None),
        (
            "PUT",
            format!("{BETA}/task-assignments"),
            Some(json!({"assignments": []})),
        ),
    ] {
        let r = svc.call(method, &path, &acme_admin, body).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        assert_eq!(r.body["error_code"], "forbidden");
        assert!(
            error_message(&r.body).contains("admin role for that instance"),
            "{}",
            r.text
        );
    }
    for (method, body) in [
        ("GET", None),
        (
            "POST",
            Some(json!({"provider": "openai", "api_key": GLOBAL_OPENAI_KEY})),
        ),
    ] {
        let r = svc.call(method, GLOBAL, &acme_admin, body).await;
        assert_eq!(r.status, 403, "{method} {GLOBAL}: {}", r.text);
        assert!(
            error_message(&r.body).contains("superadmin role"),
            "{}",
            r.text
        );
    }
    // A read-scoped admin reads and changes nothing.
    let reader = svc.token("admin-acme", "read", &["admin"], Some("acme"));
    assert_eq!(svc.call("GET", ACME, &reader, None).await.status, 200);
    let r = svc
        .call(
            "PATCH",
            &format!("{ACME}/{second}"),
            &reader,
            Some(json!({"model": "x"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        error_message(&r.body).contains("`write` scope"),
        "{}",
        r.text
    );

    // The superadmin manages the deployment's configs, and any instance's.
    let global = create(
        &svc,
        &root,
        GLOBAL,
        json!({"provider": "openai", "api_key": GLOBAL_OPENAI_KEY}),
    )
    .await;
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root, None)
        .await;
    let openai = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "openai")
        .cloned();
    assert_eq!(openai.unwrap()["key_hint"], "sk-...Gl0b", "{}", r.text);
    let r = svc
        .call("GET", &format!("{GLOBAL}/{global}"), &root, None)
        .await;
    assert_eq!(r.body["is_default"], true, "{}", r.text);
    create(
        &svc,
        &root,
        BETA,
        json!({"provider": "gemini", "api_key": GLOBAL_GEMINI_KEY}),
    )
    .await;
    let r = svc.call("GET", BETA, &admin_of(&svc, "beta"), None).await;
    assert_eq!(r.body["configs"][0]["provider"], "gemini", "{}", r.text);
    // Acme's admin does not see beta's config by id either.
    let r = svc
        .call("GET", &format!("{ACME}/{global}"), &acme_admin, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // A plain user (even one with an instance claim) manages neither.
    let user = svc.token("u1", "read write", &[], Some("acme"));
    for path in [ACME, GLOBAL] {
        let r = svc.call("GET", path, &user, None).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(r.body["error_code"], "forbidden");
        assert!(error_message(&r.body).contains("role"), "{}", r.text);
    }
    for key in [
        ACME_OPENAI_KEY,
        ACME_ANTHROPIC_KEY,
        GLOBAL_OPENAI_KEY,
        GLOBAL_GEMINI_KEY,
    ] {
        assert_absent(key, svc.logs().as_bytes(), "the service log");
    }
}
