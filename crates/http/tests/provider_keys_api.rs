//! The provider keys API (`/api/v1/settings`, seed 002) over the real store and cipher.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use common::{admin_of, bearer, send, superadmin, user, Harness};
use llm_settings_http::app;

const ANTHROPIC_KEY: &str = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyzABCDEFcdef";
const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyz9876";

fn save(provider: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/api/v1/settings/providers/{provider}"))
        .insert_header(bearer(&superadmin()))
        .set_json(body)
}

#[actix_web::test]
async fn saving_a_key_returns_the_seed_provider_status() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let (status, body) = send(
        &svc,
        save("anthropic", json!({"api_key": ANTHROPIC_KEY})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"provider": "anthropic", "is_configured": true, "is_active": true, "key_hint": "sk-...cdef"})
    );
    // Saving again updates the key; sending the hint back keeps it.
    let (status, body) = send(
        &svc,
        save("anthropic", json!({"api_key": "sk-...cdef"})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key_hint"], "sk-...cdef");
    let req = TestRequest::post()
        .uri("/api/v1/settings/providers/anthropic/test")
        .insert_header(bearer(&superadmin()));
    send(&svc, req.to_request()).await;
    assert_eq!(h.probed()[0].key.as_deref(), Some(ANTHROPIC_KEY));
}

#[actix_web::test]
async fn an_invalid_provider_is_400_with_the_seed_detail() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    for provider in ["xyz", "google", "azure", "OpenAI"] {
        let (status, body) = send(
            &svc,
            save(provider, json!({"api_key": OPENAI_KEY})).to_request(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{provider}");
        assert_eq!(
            body,
            json!({"detail": format!("Invalid provider: {provider}")})
        );
    }
    let req = TestRequest::post()
        .uri("/api/v1/settings/providers/xyz/test")
        .insert_header(bearer(&superadmin()));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"detail": "Invalid provider: xyz"}));
}

#[actix_web::test]
async fn an_empty_or_missing_key_is_422_in_fastapi_shape() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
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
        (
            json!({"api_key": "sk-...zzzz"}),
            json!(["body", "api_key"]),
            "value_error",
        ),
    ];
    for (body, loc, kind) in cases {
        let (status, res) = send(&svc, save("openai", body.clone()).to_request()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {res}");
        let detail = res["detail"].as_array().unwrap();
        assert_eq!(detail.len(), 1);
        assert_eq!(detail[0]["loc"], loc, "{body} → {res}");
        assert_eq!(detail[0]["type"], kind, "{body} → {res}");
        assert!(detail[0]["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The body is validated before the provider, as FastAPI does.
    let (status, _) = send(&svc, save("xyz", json!({"api_key": ""})).to_request()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn listing_shows_every_provider_of_the_surface_with_hints_only() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    send(
        &svc,
        save("anthropic", json!({"api_key": ANTHROPIC_KEY})).to_request(),
    )
    .await;
    send(
        &svc,
        save("openai", json!({"api_key": OPENAI_KEY})).to_request(),
    )
    .await;
    let req = TestRequest::get()
        .uri("/api/v1/settings/providers")
        .insert_header(bearer(&superadmin()));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([
            {"provider": "openai", "is_configured": true, "is_active": true, "key_hint": "sk-...9876"},
            {"provider": "gemini", "is_configured": false, "is_active": false, "key_hint": null},
            {"provider": "anthropic", "is_configured": true, "is_active": true, "key_hint": "sk-...cdef"},
            {"provider": "openrouter", "is_configured": false, "is_active": false, "key_hint": null},
            {"provider": "ollama", "is_configured": false, "is_active": false, "key_hint": null},
        ])
    );
    assert!(!body.to_string().contains("0123456789"));
}

#[actix_web::test]
async fn testing_a_provider_uses_the_stored_key_and_404s_without_one() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/api/v1/settings/providers/openai/test")
        .insert_header(bearer(&superadmin()));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"detail": "no API key is stored for provider openai and none was given"})
    );

    send(
        &svc,
        save("openai", json!({"api_key": OPENAI_KEY})).to_request(),
    )
    .await;
    let req = TestRequest::post()
        .uri("/api/v1/settings/providers/openai/test")
        .insert_header(bearer(&superadmin()));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["provider"], "openai");
    assert_eq!(body["success"], true);
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(h.probed()[0].key.as_deref(), Some(OPENAI_KEY));

    let bad = "sk-proj-this-is-a-bad-key-0123456789abcdefghij";
    send(&svc, save("openai", json!({"api_key": bad})).to_request()).await;
    let req = TestRequest::post()
        .uri("/api/v1/settings/providers/openai/test")
        .insert_header(bearer(&superadmin()));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], false);
    assert_eq!(body["failure"], "invalid_credentials");
}

#[actix_web::test]
async fn task_assignments_are_saved_merged_and_listed() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let post = |body: Value| {
        TestRequest::post()
            .uri("/api/v1/settings/task-assignments")
            .insert_header(bearer(&superadmin()))
            .set_json(body)
            .to_request()
    };
    let (status, body) = send(
        &svc,
        post(json!({"assignments": [
            {"task": "summarize", "provider": "anthropic", "model": "claude-sonnet-4-5"},
            {"task": "classify", "provider": "openai", "model": "gpt-4o-mini"},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"assignments": [
            {"task": "classify", "provider": "openai", "model": "gpt-4o-mini"},
            {"task": "summarize", "provider": "anthropic", "model": "claude-sonnet-4-5"},
        ]})
    );
    let (_, body) = send(
        &svc,
        post(json!({"assignments": [{"task": "classify", "provider": "ollama", "model": "llama3.1"}]})),
    )
    .await;
    assert_eq!(body["assignments"][0]["provider"], "ollama");
    assert_eq!(body["assignments"].as_array().unwrap().len(), 2);

    let req = TestRequest::get()
        .uri("/api/v1/settings/task-assignments")
        .insert_header(bearer(&superadmin()));
    let (status, listed) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed, body);
}

#[actix_web::test]
async fn bad_task_assignments_are_422_naming_the_item() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let ok = json!({"task": "summarize", "provider": "openai", "model": "gpt-4o"});
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
        let req = TestRequest::post()
            .uri("/api/v1/settings/task-assignments")
            .insert_header(bearer(&superadmin()))
            .set_json(&body);
        let (status, res) = send(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {res}");
        assert_eq!(res["detail"][0]["loc"], loc, "{body} → {res}");
    }
    let req = TestRequest::get()
        .uri("/api/v1/settings/task-assignments")
        .insert_header(bearer(&superadmin()));
    assert_eq!(
        send(&svc, req.to_request()).await.1,
        json!({"assignments": []})
    );
}

#[actix_web::test]
async fn only_superadmins_reach_the_global_keys() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let (status, body) = send(
        &svc,
        TestRequest::get()
            .uri("/api/v1/settings/providers")
            .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].is_string());
    for token in [user("u1"), admin_of("acme")] {
        for req in [
            TestRequest::get().uri("/api/v1/settings/providers"),
            TestRequest::post()
                .uri("/api/v1/settings/providers/openai")
                .set_json(json!({"api_key": OPENAI_KEY})),
            TestRequest::get().uri("/api/v1/settings/task-assignments"),
        ] {
            let (status, body) = send(&svc, req.insert_header(bearer(&token)).to_request()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert_eq!(
                body,
                json!({"detail": "managing global settings needs the superadmin role"})
            );
        }
    }
}
