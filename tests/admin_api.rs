//! Black-box tests of the admin AI configuration API (`/llm-config/`, seed 001) against the
//! real binary, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use llm_settings_domain::SecretHints;
use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{assert_absent, on_both_stores, Backend, Service};

const BASE: &str = "/llm-config/";
const TEST: &str = "/llm-config/test-connection";
const ANTHROPIC_KEY: &str =
    "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz01XXXX";
const NEW_ANTHROPIC_KEY: &str =
    "sk-ant-api03-NewNewNewKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz01YYYY";
const OPENAI_KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789Yx4f";
const SEED_MODEL: &str = "claude-sonnet-4-20250514";
/// A planted key; it must never come back out.
const PLANTED: &str = "sk-ant-api03-PLANTEDadminKEY0123456789-QWERTYUIOPasdfghjklZXCVBNM-wxyz";

on_both_stores!(
    seed_walkthrough,
    instance_scoping,
    create_validation,
    connection_tests,
    seed_test_connection_example,
    authorization,
    planted_key_never_leaks,
);

fn is_rfc3339_utc(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.ends_with('Z')
        && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

fn seed_create() -> Value {
    json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": ANTHROPIC_KEY})
}

async fn start(backend: Backend, fake: &FakeProvider) -> Service {
    Service::start(
        backend,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &fake.allow_hosts())],
    )
    .await
}

/// A request as a superadmin, in the scope of `instance` (global without one).
async fn admin(
    svc: &Service,
    method: &str,
    path: &str,
    instance: Option<&str>,
    body: Option<Value>,
) -> support::Reply {
    let root = svc.token("root", "read write", &["superadmin"], None);
    let headers: Vec<(&str, &str)> = instance.map(|i| ("X-Instance-Id", i)).into_iter().collect();
    svc.send(method, path, Some(&root), body.as_ref(), &headers)
        .await
}

async fn seed_walkthrough(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;

    // "Returns null if no configuration exists", on both spellings of the path.
    for path in [BASE, "/llm-config"] {
        let r = admin(&svc, "GET", path, None, None).await;
        assert_eq!((r.status, r.text.as_str()), (200, "null"), "{path}");
    }

    // Create AI Configuration → 201 with the Get example's fields, exactly.
    let r = admin(&svc, "POST", BASE, None, Some(seed_create())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.body.clone();
    assert!(created["id"].is_string(), "id is a string: {created}");
    assert_eq!(created["provider"], "anthropic");
    assert_eq!(created["model"], SEED_MODEL);
    // Vendor prefix and last four, within the budget of 8 revealed characters.
    assert_eq!(created["api_key_masked"], "sk-...XXXX");
    assert_eq!(created["instance_id"], Value::Null);
    assert!(is_rfc3339_utc(&created["created_at"]) && is_rfc3339_utc(&created["updated_at"]));
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api_key_masked",
            "created_at",
            "id",
            "instance_id",
            "model",
            "provider",
            "updated_at"
        ]
    );
    assert!(!r.text.contains("AbCdEf"));

    // Get AI Configuration: the same document, on both spellings.
    for path in [BASE, "/llm-config"] {
        let r = admin(&svc, "GET", path, None, None).await;
        assert_eq!((r.status, &r.body), (200, &created), "{path}");
    }

    // 409: configuration already exists for this scope.
    let r = admin(&svc, "POST", "/llm-config", None, Some(seed_create())).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error_code"], "conflict");
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("Configuration already exists for this scope"));

    // Update AI Configuration: the seed's body, model and key together.
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        None,
        Some(json!({"model": SEED_MODEL, "api_key": NEW_ANTHROPIC_KEY})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], created["id"]);
    assert_eq!(r.body["model"], SEED_MODEL);
    assert_eq!(r.body["api_key_masked"], "sk-...YYYY");
    assert_eq!(r.body["created_at"], created["created_at"]);
    assert!(is_rfc3339_utc(&r.body["updated_at"]));
    // Only provided fields are updated: the model alone keeps the key.
    let r = admin(
        &svc,
        "PATCH",
        "/llm-config",
        None,
        Some(json!({"model": "claude-opus-4-1"})),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.body["model"].clone(),
            r.body["api_key_masked"].clone()
        ),
        (200, json!("claude-opus-4-1"), json!("sk-...YYYY"))
    );
    // The mask handed out keeps the stored key; a look-alike is refused and not stored.
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        None,
        Some(json!({"api_key": "sk-...YYYY"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["api_key_masked"].clone()),
        (200, json!("sk-...YYYY"))
    );
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        None,
        Some(json!({"api_key": "sk-...ZZZZ"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (400, json!("masked_key_mismatch"))
    );
    // An empty patch changes nothing.
    let r = admin(&svc, "PATCH", BASE, None, Some(json!({}))).await;
    assert_eq!(
        (r.status, r.body["api_key_masked"].clone()),
        (200, json!("sk-...YYYY"))
    );

    // A different provider needs its own key; with it, the configuration moves.
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        None,
        Some(json!({"provider": "openai"})),
    )
    .await;
    assert_eq!((r.status, r.body["field"].clone()), (400, json!("api_key")));
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        None,
        Some(json!({"provider": "openai", "api_key": OPENAI_KEY, "model": "gpt-4o"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["provider"], "openai");
    assert_eq!(r.body["model"], "gpt-4o");
    assert_eq!(r.body["api_key_masked"], "sk-...Yx4f");
    assert_eq!(r.body["instance_id"], Value::Null);
    assert_ne!(r.body["id"], created["id"]);
    let moved = r.body.clone();
    assert_eq!(admin(&svc, "GET", BASE, None, None).await.body, moved);

    // Delete AI Configuration: 204, then nothing; 404 for everything that needs one.
    let r = admin(&svc, "DELETE", "/llm-config", None, None).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(admin(&svc, "GET", BASE, None, None).await.text, "null");
    let cases = [
        ("DELETE", BASE, None, "No configuration found"),
        (
            "PATCH",
            BASE,
            Some(json!({"model": SEED_MODEL})),
            "No configuration found",
        ),
        ("POST", TEST, None, "No configuration found to test"),
    ];
    for (method, path, body, detail) in cases {
        let r = admin(&svc, method, path, None, body).await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(
            r.body,
            json!({"detail": detail, "error_code": "not_found"}),
            "{method} {path}"
        );
    }
    // A new configuration may be created again.
    let r = admin(&svc, "POST", BASE, None, Some(seed_create())).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn instance_scoping(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let global = admin(&svc, "POST", BASE, None, Some(seed_create())).await;
    assert_eq!(global.status, 201);

    // With the header: the tenant instance's own configuration.
    let r = admin(&svc, "GET", BASE, Some("acme"), None).await;
    assert_eq!((r.status, r.text.as_str()), (200, "null"));
    let r = admin(
        &svc,
        "POST",
        BASE,
        Some("acme"),
        Some(json!({"provider": "openai", "model": "gpt-4o-mini", "api_key": OPENAI_KEY})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["instance_id"], "acme");
    assert_eq!(r.body["api_key_masked"], "sk-...Yx4f");
    let acme = r.body.clone();
    let r = admin(&svc, "POST", BASE, Some("acme"), Some(seed_create())).await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (409, json!("conflict"))
    );
    assert_eq!(
        admin(&svc, "GET", BASE, Some("acme"), None).await.body,
        acme
    );
    assert_eq!(
        admin(&svc, "GET", BASE, Some("beta"), None).await.text,
        "null"
    );
    // Without the header: still the global one.
    assert_eq!(admin(&svc, "GET", BASE, None, None).await.body, global.body);

    // Changing and deleting the instance's configuration leaves the global one alone.
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        Some("acme"),
        Some(json!({"model": "gpt-4o"})),
    )
    .await;
    assert_eq!((r.status, r.body["model"].clone()), (200, json!("gpt-4o")));
    // Moving the instance to a keyless provider needs nothing but its name; the provider's
    // default model is used, and the old provider's config is gone from the instance.
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        Some("acme"),
        Some(json!({"provider": "ollama"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.body["provider"].clone(),
            r.body["model"].clone(),
            r.body["api_key_masked"].clone(),
            r.body["instance_id"].clone()
        ),
        (
            json!("ollama"),
            json!("llama3.1"),
            Value::Null,
            json!("acme")
        )
    );
    assert_eq!(
        admin(&svc, "GET", BASE, Some("acme"), None).await.body,
        r.body
    );
    let acme_admin = svc.token("a", "read write", &["admin"], Some("acme"));
    let r = svc
        .call("GET", "/v1/llm-provider/openai", &acme_admin, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = admin(&svc, "DELETE", BASE, Some("acme"), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        admin(&svc, "GET", BASE, Some("acme"), None).await.text,
        "null"
    );
    assert_eq!(admin(&svc, "GET", BASE, None, None).await.body, global.body);
    let r = admin(&svc, "DELETE", BASE, Some("acme"), None).await;
    assert_eq!(r.status, 404);

    // A malformed instance id is refused, in this surface's error shape.
    let long = "i".repeat(300);
    for bad in [long.as_str(), ""] {
        let r = admin(&svc, "GET", BASE, Some(bad), None).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        assert_eq!(r.body["field"], "X-Instance-Id");
        assert_eq!(r.body["error_code"], "validation_error");
    }
}

async fn create_validation(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let cases = [
        (
            json!({"provider": "anthropic", "api_key": ANTHROPIC_KEY}),
            "model",
        ),
        (
            json!({"model": SEED_MODEL, "api_key": ANTHROPIC_KEY}),
            "provider",
        ),
        (
            json!({"provider": "anthropic", "model": SEED_MODEL}),
            "api_key",
        ),
        (
            json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": ""}),
            "api_key",
        ),
        (
            json!({"provider": "nope", "model": "m", "api_key": ANTHROPIC_KEY}),
            "provider",
        ),
        (
            json!({"provider": "azure", "model": "gpt-4o", "api_key": OPENAI_KEY}),
            "provider",
        ),
        (
            json!({"provider": "anthropic", "model": "has space", "api_key": ANTHROPIC_KEY}),
            "model",
        ),
        (
            json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": ANTHROPIC_KEY, "extra": 1}),
            "extra",
        ),
        (
            json!({"provider": "anthropic", "model": 5, "api_key": ANTHROPIC_KEY}),
            "model",
        ),
    ];
    for (body, field) in cases {
        let r = admin(&svc, "POST", BASE, None, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body} → {}", r.text);
        assert_eq!(r.body["field"], field, "{body} → {}", r.text);
        assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(r.body["error_code"].is_string());
        assert!(!r.text.contains("AbCdEf"), "{}", r.text);
    }
    // A body that is not JSON at all.
    let root = svc.token("root", "read write", &["superadmin"], None);
    let r = svc
        .send(
            "POST",
            BASE,
            Some(&root),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error_code"], "validation_error");
    // Nothing was created by any of them.
    assert_eq!(admin(&svc, "GET", BASE, None, None).await.text, "null");

    // A provider that needs no key may omit it.
    let r = admin(
        &svc,
        "POST",
        BASE,
        None,
        Some(json!({"provider": "ollama", "model": "llama3.1"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["provider"], "ollama");
    assert_eq!(r.body["api_key_masked"], Value::Null);
    assert!(!svc.logs().contains("status=500"));
}

/// Connection tests of stored configurations, against the fake provider as their base URL.
async fn connection_tests(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let valid = Behaviour::Valid.key();
    let before = fake.requests().await.len();

    // The seed's Test Connection response.
    let r = admin(
        &svc,
        "POST",
        BASE,
        None,
        Some(
            json!({"provider": "ollama", "model": "llama3.1", "base_url": fake.base_url("ollama")}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for path in [TEST, "/llm-config/test-connection/"] {
        let r = admin(&svc, "POST", path, None, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["success"], true, "{}", r.text);
        assert_eq!(r.body["provider"], "ollama");
        assert_eq!(r.body["model"], "llama3.1");
        assert_eq!(r.body["message"], "Connection successful");
        assert!(r.body["latency_ms"].is_u64());
        assert_eq!(r.body["failure"], Value::Null);
    }
    assert!(
        fake.requests().await.len() >= before + 2,
        "the tests reached the provider"
    );

    // A rejected key is a 200 with success false and its class, never a 5xx.
    let r = admin(&svc, "PATCH", BASE, None, Some(json!({"api_key": PLANTED}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin(&svc, "POST", TEST, None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["success"].clone(), r.body["failure"].clone()),
        (json!(false), json!("invalid_credentials"))
    );
    assert_eq!(r.body["provider"], "ollama");
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    // The fake echoes a rejected key; the service never passes it on.
    assert_absent(PLANTED, r.text.as_bytes(), "the failed test's response");

    // A working key, then its mask sent back: the stored key is kept and still works.
    let r = admin(&svc, "PATCH", BASE, None, Some(json!({"api_key": valid}))).await;
    let mask = SecretHints::of(&valid).vendor_last4;
    assert_eq!(r.body["api_key_masked"], mask.as_str());
    let r = admin(&svc, "PATCH", BASE, None, Some(json!({"api_key": mask}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin(&svc, "POST", TEST, None, None).await;
    assert_eq!(r.body["success"], true, "{}", r.text);

    // The instance scope tests the instance's own configuration.
    let r = admin(&svc, "POST", TEST, Some("acme"), None).await;
    assert_eq!(
        r.body,
        json!({"detail": "No configuration found to test", "error_code": "not_found"})
    );
    let r = admin(
        &svc,
        "POST",
        BASE,
        Some("acme"),
        Some(json!({"provider": "ollama", "model": "qwen2.5:7b", "api_key": Behaviour::Invalid.key(), "base_url": fake.base_url("ollama")})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = admin(&svc, "POST", TEST, Some("acme"), None).await;
    assert_eq!(
        (
            r.status,
            r.body["success"].clone(),
            r.body["failure"].clone(),
            r.body["model"].clone()
        ),
        (
            200,
            json!(false),
            json!("invalid_credentials"),
            json!("qwen2.5:7b")
        )
    );
    // …and the global one is untouched by it.
    let r = admin(&svc, "POST", TEST, None, None).await;
    assert_eq!(r.body["success"], true, "{}", r.text);

    assert_absent(PLANTED, svc.logs().as_bytes(), "the service log");
    assert_absent(PLANTED, &svc.stored_bytes(), "the database");
}

async fn authorization(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    assert_eq!(
        admin(&svc, "POST", BASE, None, Some(seed_create()))
            .await
            .status,
        201
    );

    // No token, or a bad one.
    for token in [None, Some("not-a-jwt")] {
        let r = svc.send("GET", BASE, token, None, &[]).await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.body["error_code"], "unauthorized");
        assert!(r.body["detail"].is_string());
    }

    // Users and instance admins are not superadmins, with or without the header.
    let user = svc.user("u1");
    let instance_admin = svc.token("a", "read write", &["admin"], Some("acme"));
    for token in [&user, &instance_admin] {
        for instance in [None, Some("acme")] {
            let headers: Vec<(&str, &str)> =
                instance.map(|i| ("X-Instance-Id", i)).into_iter().collect();
            for (method, path, body) in [
                ("GET", BASE, None),
                ("POST", BASE, Some(seed_create())),
                ("PATCH", BASE, Some(json!({"model": "claude-opus-4-1"}))),
                ("DELETE", BASE, None),
                ("POST", TEST, None),
            ] {
                let r = svc
                    .send(method, path, Some(token), body.as_ref(), &headers)
                    .await;
                assert_eq!(r.status, 403, "{method} {path} {instance:?}: {}", r.text);
                assert_eq!(r.body["error_code"], "forbidden");
            }
        }
    }
    // Nothing changed.
    let r = admin(&svc, "GET", BASE, None, None).await;
    assert_eq!(r.body["model"], SEED_MODEL);
    assert_eq!(
        admin(&svc, "GET", BASE, Some("acme"), None).await.text,
        "null"
    );
}

async fn planted_key_never_leaks(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let mut texts = Vec::new();
    let r = admin(
        &svc,
        "POST",
        BASE,
        None,
        Some(json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": PLANTED})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["api_key_masked"], "sk-...wxyz");
    texts.push(r.text);
    let requests = [
        ("GET", None, None),
        ("GET", Some("acme"), None),
        ("PATCH", None, Some(json!({"api_key": PLANTED}))),
        (
            "PATCH",
            None,
            Some(json!({"api_key": PLANTED, "model": "claude-opus-4-1"})),
        ),
        (
            "POST",
            Some("acme"),
            Some(json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": PLANTED})),
        ),
        ("GET", Some("acme"), None),
        // The key pasted into the wrong fields.
        (
            "POST",
            Some("beta"),
            Some(json!({"provider": PLANTED, "model": "m", "api_key": PLANTED})),
        ),
        (
            "POST",
            Some("beta"),
            Some(
                json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": PLANTED, PLANTED: 1}),
            ),
        ),
        (
            "PATCH",
            None,
            Some(json!({"provider": PLANTED, "api_key": PLANTED})),
        ),
        ("POST", None, Some(json!({"provider": "anthropic"}))),
        ("DELETE", Some("acme"), None),
    ];
    for (method, instance, body) in requests {
        let r = admin(&svc, method, BASE, instance, body).await;
        assert!(r.status < 500, "{method} {instance:?}: {}", r.text);
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

/// The seed's Test Connection example, literally: an anthropic config with the seed's model,
/// its key sent to a base URL (the fake provider) instead of the internet.
async fn seed_test_connection_example(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let mut body =
        json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": Behaviour::Valid.key()});
    body["base_url"] = json!(fake.base_url("anthropic"));
    let r = admin(&svc, "POST", BASE, None, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let r = admin(&svc, "POST", TEST, None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["provider"], "anthropic");
    assert_eq!(r.body["model"], SEED_MODEL);
    assert_eq!(r.body["message"], "Connection successful");

    // Pointing the stored key elsewhere needs the key again; clearing the base URL does not.
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        None,
        Some(json!({"base_url": "https://gateway.example.com"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["field"], "base_url");
    let r = admin(&svc, "PATCH", BASE, None, Some(json!({"base_url": null}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin(
        &svc,
        "PATCH",
        BASE,
        None,
        Some(json!({"base_url": "ftp://x"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (400, json!("base_url"))
    );
}
