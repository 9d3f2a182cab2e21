//! Black-box tests of the user BYOK settings API (`/users/me/llm-settings`, seed 000) against
//! the real binary, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use llm_settings_domain::SecretHints;
use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{assert_absent, on_both_stores, Backend, Service};

const BASE: &str = "/users/me/llm-settings";
/// A planted Anthropic-style key; it must never come back out.
const PLANTED: &str = "sk-ant-api03-PLANTEDkeyMaterial0123456789-QWERTYUIOPasdfghjklZXCVBNM-abcd";
const OPENAI_KEY: &str = "sk-proj-0123456789ABCDEFGHIJklmnopqrstuvWXYZ-wxyz";

on_both_stores!(
    seed_walkthrough,
    connection_tests,
    auth_scopes_and_isolation,
    malformed_requests,
    planted_key_never_leaks,
);

fn is_rfc3339_utc(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.ends_with('Z')
        && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

async fn start(backend: Backend, fake: &FakeProvider) -> Service {
    Service::start(
        backend,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &fake.allow_hosts())],
    )
    .await
}

async fn seed_walkthrough(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("user-42");

    // List Providers
    let r = svc
        .call("GET", &format!("{BASE}/providers"), &me, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["default_provider"], "anthropic");
    let first = &r.body["providers"][0];
    assert_eq!(
        (
            first["id"].clone(),
            first["name"].clone(),
            first["default_model"].clone(),
            first["requires_api_key"].clone()
        ),
        (
            json!("anthropic"),
            json!("Anthropic"),
            json!("claude-sonnet-4-5"),
            json!(true)
        )
    );
    let ids: Vec<_> = r.body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    for id in ["anthropic", "openai", "deepseek_cloud", "gemini"] {
        assert!(ids.contains(&id.to_owned()), "{id} missing from {ids:?}");
    }

    // A trailing slash answers too.
    let r = svc.call("GET", &format!("{BASE}/"), &me, None).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"configs": []})));

    // List My LLM Configs (empty)
    let r = svc.call("GET", BASE, &me, None).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"configs": []})));

    // Create or Update Config → 201 LLMSettingsResponse
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "anthropic", "api_key": PLANTED, "is_default": true})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.body.clone();
    assert!(created["id"].is_i64());
    assert_eq!(created["provider"], "anthropic");
    assert_eq!(created["api_key_configured"], true);
    assert_eq!(created["api_key_last_4"], "abcd");
    assert_eq!(created["is_default"], true);
    assert_eq!(created["model"], "claude-sonnet-4-5");
    assert_eq!(created["base_url"], Value::Null);
    assert!(is_rfc3339_utc(&created["created_at"]) && is_rfc3339_utc(&created["updated_at"]));
    assert!(created.get("api_key").is_none());
    let anthropic_id = created["id"].as_i64().unwrap();

    // The list shows the same item.
    let r = svc.call("GET", BASE, &me, None).await;
    assert_eq!(r.body["configs"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["configs"][0]["id"], anthropic_id);
    assert_eq!(r.body["configs"][0]["api_key_last_4"], "abcd");

    // A second provider is not the default.
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "openai", "api_key": OPENAI_KEY, "model": "gpt-4o-mini"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["is_default"], false);
    assert_eq!(r.body["model"], "gpt-4o-mini");
    let openai_id = r.body["id"].as_i64().unwrap();

    // POST again for the same provider updates the existing row (same id and created_at).
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "anthropic", "model": "claude-opus-4-1"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["id"], anthropic_id);
    assert_eq!(r.body["created_at"], created["created_at"]);
    assert_eq!(r.body["api_key_last_4"], "abcd", "the stored key is kept");
    assert_eq!(r.body["model"], "claude-opus-4-1");
    assert_eq!(
        svc.call("GET", BASE, &me, None).await.body["configs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Update Config: partial; null clears the model override.
    let r = svc
        .call(
            "PATCH",
            &format!("{BASE}/{openai_id}"),
            &me,
            Some(json!({"model": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["model"], "gpt-4o");
    assert_eq!(r.body["api_key_last_4"], "wxyz");
    // Cannot change provider or is_default.
    for body in [
        json!({"provider": "anthropic"}),
        json!({"is_default": true}),
    ] {
        let r = svc
            .call("PATCH", &format!("{BASE}/{openai_id}"), &me, Some(body))
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["error_code"], "validation_error");
    }
    // Moving a stored key to another host needs the key again.
    let r = svc
        .call(
            "PATCH",
            &format!("{BASE}/{openai_id}"),
            &me,
            Some(json!({"base_url": "https://gateway.example.com/v1"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (400, json!("base_url"))
    );
    let r = svc
        .call(
            "PATCH",
            &format!("{BASE}/{openai_id}"),
            &me,
            Some(json!({"base_url": "https://gateway.example.com/v1", "api_key": OPENAI_KEY})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["base_url"].clone()),
        (200, json!("https://gateway.example.com/v1"))
    );
    let r = svc
        .call(
            "PATCH",
            &format!("{BASE}/{openai_id}"),
            &me,
            Some(json!({"base_url": null})),
        )
        .await;
    assert_eq!(r.body["base_url"], Value::Null);
    // Stale versions are refused.
    let r = svc
        .call(
            "PATCH",
            &format!("{BASE}/{openai_id}"),
            &me,
            Some(json!({"version": 1, "enabled": true})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (409, json!("conflict"))
    );

    // Set Default Provider clears the flag on the other config.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/{openai_id}/set-default"),
            &me,
            None,
        )
        .await;
    assert_eq!((r.status, r.body["is_default"].clone()), (200, json!(true)));
    let list = svc.call("GET", BASE, &me, None).await.body;
    let defaults: Vec<_> = list["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["is_default"] == true)
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(defaults, [openai_id]);

    // A disabled config cannot be the default; disabling the default clears the flag.
    let r = svc
        .call(
            "PATCH",
            &format!("{BASE}/{openai_id}"),
            &me,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(
        (r.body["enabled"].clone(), r.body["is_default"].clone()),
        (json!(false), json!(false))
    );
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/{openai_id}/set-default"),
            &me,
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    svc.call(
        "PATCH",
        &format!("{BASE}/{openai_id}"),
        &me,
        Some(json!({"enabled": true})),
    )
    .await;
    svc.call(
        "POST",
        &format!("{BASE}/{openai_id}/set-default"),
        &me,
        None,
    )
    .await;

    // GET one config.
    let r = svc
        .call("GET", &format!("{BASE}/{anthropic_id}"), &me, None)
        .await;
    assert_eq!(
        (r.status, r.body["provider"].clone()),
        (200, json!("anthropic"))
    );

    // Delete Config: 204, then 404; deleting the default promotes nothing.
    let r = svc
        .call("DELETE", &format!("{BASE}/{openai_id}"), &me, None)
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    let r = svc
        .call("DELETE", &format!("{BASE}/{openai_id}"), &me, None)
        .await;
    assert_eq!(r.status, 404);
    let list = svc.call("GET", BASE, &me, None).await.body;
    assert_eq!(list["configs"].as_array().unwrap().len(), 1);
    assert_eq!(list["configs"][0]["is_default"], false);
}

async fn connection_tests(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("tester");
    let valid = Behaviour::Valid.key();
    let base_url = fake.base_url("deepseek_cloud");

    // Nothing stored and no key given.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "gemini"})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error_code"], "provider_not_configured");

    // A key in the body, not saved.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "deepseek_cloud", "api_key": valid, "base_url": base_url})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["provider"], "deepseek_cloud");
    assert_eq!(r.body["message"], "Connection OK");
    assert!(r.body["latency_ms"].is_u64());
    assert_eq!(r.body["model_available"], "deepseek-chat");
    assert_eq!(
        svc.call("GET", BASE, &me, None).await.body["configs"],
        json!([])
    );

    // A rejected key is a 200 with success false and its class.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "deepseek_cloud", "api_key": Behaviour::Invalid.key(), "base_url": base_url})),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.body["success"].clone(),
            r.body["failure"].clone()
        ),
        (200, json!(false), json!("invalid_credentials"))
    );

    // The stored key, tested and recorded on the config.
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "deepseek_cloud", "api_key": valid, "base_url": base_url})),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "deepseek_cloud"})),
        )
        .await;
    assert_eq!(r.body["success"], true, "{}", r.text);
    let r = svc.call("GET", &format!("{BASE}/{id}"), &me, None).await;
    assert_eq!(r.body["last_test"]["success"], true);

    // A mask handed out for the stored key means the stored key.
    let mask = SecretHints::of(&valid).first4_last4;
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "deepseek_cloud", "api_key": mask})),
        )
        .await;
    assert_eq!(r.body["success"], true, "{}", r.text);
    // A look-alike mask is refused.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "deepseek_cloud", "api_key": "sk-...zzzz"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (400, json!("masked_key_mismatch"))
    );
    // The stored key is never sent to another URL unless the key is in the request.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "deepseek_cloud", "base_url": "http://169.254.169.254"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (400, json!("base_url"))
    );
    // Blocked targets are a failed test, never a connection.
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "openai", "api_key": "sk-whatever-0123456789", "base_url": "http://169.254.169.254/v1"})),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.body["success"].clone(),
            r.body["failure"].clone()
        ),
        (200, json!(false), json!("blocked_by_policy"))
    );
}

async fn auth_scopes_and_isolation(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let alice = svc.user("alice");
    let bob = svc.user("bob");
    let r = svc
        .call(
            "POST",
            BASE,
            &alice,
            Some(json!({"provider": "openai", "api_key": OPENAI_KEY})),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();

    // No token, a malformed header, a forged or expired token.
    let r = svc.send("GET", BASE, None, None, &[]).await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (401, json!("unauthorized"))
    );
    let r = svc
        .send("GET", BASE, None, None, &[("authorization", "Token abc")])
        .await;
    assert_eq!(r.status, 401);
    let r = svc
        .send(
            "GET",
            BASE,
            Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 401);

    // Scopes.
    let reader = svc.token("alice", "read", &[], None);
    assert_eq!(svc.call("GET", BASE, &reader, None).await.status, 200);
    let r = svc
        .call(
            "POST",
            BASE,
            &reader,
            Some(json!({"provider": "openai", "api_key": OPENAI_KEY})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (403, json!("forbidden"))
    );
    let writer_only = svc.token("alice", "write", &[], None);
    assert_eq!(svc.call("GET", BASE, &writer_only, None).await.status, 403);
    assert_eq!(
        svc.call("DELETE", &format!("{BASE}/{id}"), &reader, None)
            .await
            .status,
        403
    );

    // Another user's ids are 404, never 403, and nothing changes.
    for (method, path, body) in [
        ("GET", format!("{BASE}/{id}"), None),
        (
            "PATCH",
            format!("{BASE}/{id}"),
            Some(json!({"model": "gpt-4o-mini"})),
        ),
        ("DELETE", format!("{BASE}/{id}"), None),
        ("POST", format!("{BASE}/{id}/set-default"), None),
        ("GET", format!("{BASE}/{PLANTED}"), None),
        (
            "PATCH",
            format!("{BASE}/{PLANTED}"),
            Some(json!({"model": "x"})),
        ),
        ("POST", format!("{BASE}/{PLANTED}/set-default"), None),
        ("DELETE", format!("{BASE}/{PLANTED}/extra"), None),
    ] {
        let r = svc.call(method, &path, &bob, body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    assert_eq!(
        svc.call("GET", BASE, &bob, None).await.body,
        json!({"configs": []})
    );
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &bob,
            Some(json!({"provider": "openai"})),
        )
        .await;
    assert_eq!(r.body["error_code"], "provider_not_configured");
    let r = svc.call("GET", &format!("{BASE}/{id}"), &alice, None).await;
    assert_eq!((r.status, r.body["model"].clone()), (200, json!("gpt-4o")));
}

async fn malformed_requests(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("m");
    let cases = [
        (
            json!({"provider": "openai", "api_key": OPENAI_KEY, "colour": 1}),
            "colour",
        ),
        (
            json!({"provider": ["openai"], "api_key": OPENAI_KEY}),
            "provider",
        ),
        (json!({"api_key": OPENAI_KEY}), "provider"),
        (json!({"provider": "openai"}), "api_key"),
        (json!({"provider": "openai", "api_key": ""}), "api_key"),
        (
            json!({"provider": "xyz", "api_key": OPENAI_KEY}),
            "provider",
        ),
        (
            json!({"provider": "openai", "api_key": OPENAI_KEY, "model": "has spaces"}),
            "model",
        ),
        (
            json!({"provider": "openai", "api_key": OPENAI_KEY, "base_url": "file:///etc/passwd"}),
            "base_url",
        ),
        (
            json!({"provider": "openai", "api_key": OPENAI_KEY, "is_default": "yes"}),
            "is_default",
        ),
    ];
    for (body, field) in cases {
        let r = svc.call("POST", BASE, &me, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field, "{body}: {}", r.text);
        assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let r = svc
        .send(
            "POST",
            BASE,
            Some(&me),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 400);
    let huge = json!({"provider": "openai", "api_key": "k".repeat(200_000)});
    let r = svc.call("POST", BASE, &me, Some(huge)).await;
    assert_eq!(r.status, 413);
    let r = svc
        .call("PATCH", &format!("{BASE}/abc"), &me, Some(json!({})))
        .await;
    assert_eq!(r.status, 404);
    // A known path asked with another method is 405 naming the allowed ones.
    let r = svc.call("PUT", BASE, &me, Some(json!({}))).await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (405, json!("method_not_allowed"))
    );
    assert_eq!(r.headers.get("allow").unwrap(), "GET, POST");
    let r = svc
        .call("GET", &format!("{BASE}/nope/nope/nope"), &me, None)
        .await;
    assert_eq!(r.status, 404);
    // Nothing a client sent produced a 500, and nothing was stored.
    assert!(!svc.logs().contains("status=500"));
    assert_eq!(
        svc.call("GET", BASE, &me, None).await.body,
        json!({"configs": []})
    );
}

async fn planted_key_never_leaks(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("leak-check");
    let base_url = fake.base_url("anthropic");
    let mut texts = Vec::new();
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "anthropic", "api_key": PLANTED, "base_url": base_url})),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_i64().unwrap();
    texts.push(r.text);
    for (method, path, body) in [
        ("GET", BASE.to_owned(), None),
        ("GET", format!("{BASE}/{id}"), None),
        (
            "PATCH",
            format!("{BASE}/{id}"),
            Some(json!({"api_key": PLANTED, "model": "claude-opus-4-1"})),
        ),
        (
            "POST",
            format!("{BASE}/test"),
            Some(json!({"provider": "anthropic"})),
        ),
        (
            "POST",
            format!("{BASE}/test"),
            Some(json!({"provider": "anthropic", "api_key": PLANTED, "base_url": base_url})),
        ),
        (
            "POST",
            BASE.to_owned(),
            Some(json!({"provider": "anthropic", "api_key": PLANTED, "is_default": PLANTED})),
        ),
        (
            "POST",
            BASE.to_owned(),
            Some(json!({"provider": PLANTED, "api_key": PLANTED})),
        ),
        (
            "POST",
            BASE.to_owned(),
            Some(json!({"provider": "openai", "api_key": PLANTED, "base_url": PLANTED})),
        ),
        ("POST", format!("{BASE}/{id}/set-default"), None),
        ("GET", format!("{BASE}/{PLANTED}"), None),
        (
            "PATCH",
            format!("{BASE}/{PLANTED}"),
            Some(json!({"model": "x"})),
        ),
        ("POST", format!("{BASE}/{PLANTED}/set-default"), None),
        ("DELETE", format!("{BASE}/{PLANTED}/extra"), None),
    ] {
        let r = svc.call(method, &path, &me, body).await;
        assert!(r.status < 500, "{method} {path}: {}", r.text);
        texts.push(r.text);
    }
    let r = svc
        .call(
            "POST",
            &format!("{BASE}/test"),
            &me,
            Some(json!({"provider": "anthropic"})),
        )
        .await;
    assert_eq!(
        r.body["failure"], "invalid_credentials",
        "the planted key is rejected by the fake"
    );
    texts.push(r.text);
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
