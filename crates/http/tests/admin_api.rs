//! The admin AI configuration API (`/llm-config/`, seed 001) over the real store and cipher.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use common::{admin_of, bearer, send, send_raw, superadmin, user, Harness};
use llm_settings_http::app;

const ANTHROPIC_KEY: &str =
    "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz01XXXX";
const NEW_ANTHROPIC_KEY: &str =
    "sk-ant-api03-NewNewNewKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz01YYYY";
const OPENAI_KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789Yx4f";
const SEED_MODEL: &str = "claude-sonnet-4-20250514";

fn seed_create() -> Value {
    json!({"provider": "anthropic", "model": SEED_MODEL, "api_key": ANTHROPIC_KEY})
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && s.contains('T') && s.len() >= 20)
}

#[actix_web::test]
async fn get_is_json_null_until_a_config_exists() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    for path in ["/llm-config/", "/llm-config"] {
        let req = TestRequest::get()
            .uri(path)
            .insert_header(bearer(&superadmin()));
        let (status, body) = send_raw(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, "null", "{path}");
    }
}

#[actix_web::test]
async fn create_and_get_reproduce_the_seed_example() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(seed_create());
    let (status, created) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["id"].is_string(), "id is a string: {created}");
    assert_eq!(created["provider"], "anthropic");
    assert_eq!(created["model"], SEED_MODEL);
    // Vendor prefix and last four, within the masking budget of 8 revealed characters.
    assert_eq!(created["api_key_masked"], "sk-...XXXX");
    assert_eq!(created["instance_id"], Value::Null);
    assert!(is_rfc3339(&created["created_at"]) && is_rfc3339(&created["updated_at"]));
    assert!(!created.to_string().contains("AbCdEf"));
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "exactly the seed's fields: {keys:?}");

    let req = TestRequest::get()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()));
    let (status, got) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
}

#[actix_web::test]
async fn a_second_create_in_the_same_scope_is_409_but_other_scopes_are_separate() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let create = |instance: Option<&str>| {
        let mut req = TestRequest::post()
            .uri("/llm-config/")
            .insert_header(bearer(&superadmin()))
            .set_json(seed_create());
        if let Some(i) = instance {
            req = req.insert_header(("X-Instance-Id", i));
        }
        req.to_request()
    };
    assert_eq!(send(&svc, create(None)).await.0, StatusCode::CREATED);
    let (status, body) = send(&svc, create(None)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error_code"], "conflict");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("Configuration already exists for this scope"));

    let (status, body) = send(&svc, create(Some("acme"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["instance_id"], "acme");
    assert_eq!(
        send(&svc, create(Some("acme"))).await.0,
        StatusCode::CONFLICT
    );
}

#[actix_web::test]
async fn create_needs_provider_model_and_key() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
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
    ];
    for (body, field) in cases {
        let req = TestRequest::post()
            .uri("/llm-config/")
            .insert_header(bearer(&superadmin()))
            .set_json(&body);
        let (status, res) = send(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {res}");
        assert_eq!(res["field"], field, "{body} → {res}");
        assert!(res["detail"].is_string() && res["error_code"].is_string());
        assert!(!res.to_string().contains("AbCdEf"), "{res}");
    }
    // A provider that needs no key may omit it.
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"provider": "ollama", "model": "llama3.1"}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["api_key_masked"], Value::Null);
}

#[actix_web::test]
async fn patch_updates_model_and_key_and_a_masked_key_keeps_the_stored_one() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"provider": "anthropic", "model": "claude-3-5-haiku-latest", "api_key": ANTHROPIC_KEY}));
    let (_, created) = send(&svc, req.to_request()).await;

    // The seed's example: model and key together.
    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"model": SEED_MODEL, "api_key": NEW_ANTHROPIC_KEY}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], created["id"]);
    assert_eq!(body["model"], SEED_MODEL);
    assert_eq!(body["api_key_masked"], "sk-...YYYY");

    // Sending the mask back (and nothing else) keeps the key.
    let req = TestRequest::patch()
        .uri("/llm-config")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"api_key": "sk-...YYYY"}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["api_key_masked"], "sk-...YYYY");
    let req = TestRequest::post()
        .uri("/llm-config/test-connection")
        .insert_header(bearer(&superadmin()));
    let (status, _) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.probed().last().unwrap().key.as_deref(),
        Some(NEW_ANTHROPIC_KEY)
    );

    // A look-alike mask is refused, never stored.
    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"api_key": "sk-...ZZZZ"}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "masked_key_mismatch");

    // An empty patch changes nothing.
    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({}));
    let (status, same) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["api_key_masked"], "sk-...YYYY");
}

#[actix_web::test]
async fn changing_provider_needs_the_new_key_unless_the_provider_needs_none() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let instance = ("X-Instance-Id", "acme");
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(instance)
        .set_json(seed_create());
    let (_, created) = send(&svc, req.to_request()).await;

    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(instance)
        .set_json(json!({"provider": "openai"}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "api_key");

    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(instance)
        .set_json(json!({"provider": "openai", "api_key": OPENAI_KEY, "model": "gpt-4o"}));
    let (status, moved) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["provider"], "openai");
    assert_eq!(moved["model"], "gpt-4o");
    assert_eq!(moved["api_key_masked"], "sk-...Yx4f");
    assert_eq!(moved["instance_id"], "acme");
    assert_ne!(moved["id"], created["id"]);

    // The old provider's config is gone from the instance.
    let req = TestRequest::get()
        .uri("/v1/llm-provider/anthropic")
        .insert_header(bearer(&admin_of("acme")));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::NOT_FOUND);

    // A keyless provider needs nothing but its name; its default model is used.
    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(instance)
        .set_json(json!({"provider": "ollama"}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["provider"], "ollama");
    assert_eq!(body["model"], "llama3.1");
    assert_eq!(body["api_key_masked"], Value::Null);

    let req = TestRequest::get()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(instance);
    let (_, got) = send(&svc, req.to_request()).await;
    assert_eq!(got, body);
}

#[actix_web::test]
async fn patch_delete_and_test_without_a_config_are_404() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let cases = [
        (
            TestRequest::patch().set_json(json!({"model": SEED_MODEL})),
            "/llm-config/",
            "No configuration found",
        ),
        (
            TestRequest::delete(),
            "/llm-config/",
            "No configuration found",
        ),
        (
            TestRequest::post(),
            "/llm-config/test-connection",
            "No configuration found to test",
        ),
    ];
    for (req, path, detail) in cases {
        let req = req.uri(path).insert_header(bearer(&superadmin()));
        let (status, body) = send(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"detail": detail, "error_code": "not_found"}));
    }
}

#[actix_web::test]
async fn delete_removes_the_configuration() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(seed_create());
    send(&svc, req.to_request()).await;
    let req = TestRequest::delete()
        .uri("/llm-config")
        .insert_header(bearer(&superadmin()));
    let (status, body) = send_raw(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    let req = TestRequest::get()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()));
    assert_eq!(send_raw(&svc, req.to_request()).await.1, "null");
    // A new one may be created again.
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(seed_create());
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::CREATED);
}

#[actix_web::test]
async fn test_connection_reproduces_the_seed_and_reports_failures_as_200() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(seed_create());
    send(&svc, req.to_request()).await;
    for path in [
        "/llm-config/test-connection",
        "/llm-config/test-connection/",
    ] {
        let req = TestRequest::post()
            .uri(path)
            .insert_header(bearer(&superadmin()));
        let (status, body) = send(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["success"], true);
        assert_eq!(body["provider"], "anthropic");
        assert_eq!(body["model"], SEED_MODEL);
        assert_eq!(body["message"], "Connection successful");
    }
    let probed = h.probed();
    assert_eq!(probed.len(), 2);
    assert_eq!(probed[0].key.as_deref(), Some(ANTHROPIC_KEY));
    assert_eq!(probed[0].model.as_deref(), Some(SEED_MODEL));

    let bad = "sk-ant-api03-this-is-a-bad-key-0123456789abcdefghijklmnopqrstuvwxyz";
    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"api_key": bad}));
    send(&svc, req.to_request()).await;
    let req = TestRequest::post()
        .uri("/llm-config/test-connection")
        .insert_header(bearer(&superadmin()));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], false);
    assert_eq!(body["failure"], "invalid_credentials");
    assert!(!body.to_string().contains("bad-key"));
}

#[actix_web::test]
async fn only_superadmins_may_call_and_the_instance_header_is_checked() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let (status, body) = send(&svc, TestRequest::get().uri("/llm-config/").to_request()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], "unauthorized");

    for token in [user("u1"), admin_of("acme")] {
        let req = TestRequest::get()
            .uri("/llm-config/")
            .insert_header(bearer(&token))
            .insert_header(("X-Instance-Id", "acme"));
        let (status, body) = send(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error_code"], "forbidden");
        let req = TestRequest::post()
            .uri("/llm-config/")
            .insert_header(bearer(&token))
            .set_json(seed_create());
        assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::FORBIDDEN);
    }

    let long = "i".repeat(300);
    let req = TestRequest::get()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(("X-Instance-Id", long.as_str()));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "X-Instance-Id");
    assert_eq!(body["error_code"], "validation_error");
}
