//! One domain and one store behind five APIs: a key saved through one surface is what every
//! surface that reaches the same owner shows, and no surface reaches another owner's data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use common::{admin_of, bearer, send, send_raw, superadmin, user, Harness};
use llm_settings_http::app;

const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzYx4f";
const ANTHROPIC_KEY: &str = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyzcdef";
const OTHER_OPENAI_KEY: &str = "sk-proj-zyxwvutsrqponmlkjihgfedcba9876543210Qw7e";

fn last4(mask: &Value) -> String {
    let s = mask.as_str().unwrap();
    s[s.len() - 4..].to_owned()
}

#[actix_web::test]
async fn a_key_saved_on_the_settings_document_is_listed_by_the_byok_api() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    let req = TestRequest::put()
        .uri("/api/settings")
        .insert_header(bearer(&me))
        .set_json(json!({"ai": {"providers": {"openai": {"apiKey": OPENAI_KEY, "model": "gpt-4o-mini"}}}}));
    let (status, doc) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let mask = &doc["data"]["ai"]["providers"]["openai"]["apiKey"];

    let req = TestRequest::get()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&me));
    let (status, listed) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    let configs = listed["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0]["provider"], "openai");
    assert_eq!(configs[0]["api_key_configured"], true);
    assert_eq!(configs[0]["api_key_last_4"], "Yx4f");
    assert_eq!(last4(mask), "Yx4f");
    assert_eq!(configs[0]["model"], "gpt-4o-mini");
    assert_eq!(configs[0]["is_default"], true);
    assert_eq!(doc["data"]["ai"]["provider"], "openai");

    // And the other way round: a key saved on the BYOK API is in the document.
    let req = TestRequest::post()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&me))
        .set_json(json!({"provider": "anthropic", "api_key": ANTHROPIC_KEY, "is_default": true}));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::CREATED);
    let req = TestRequest::get()
        .uri("/api/settings")
        .insert_header(bearer(&me));
    let (_, doc) = send(&svc, req.to_request()).await;
    assert_eq!(doc["data"]["ai"]["provider"], "anthropic");
    assert_eq!(
        doc["data"]["ai"]["providers"]["anthropic"]["apiKey"],
        "sk-a...cdef"
    );
}

#[actix_web::test]
async fn a_global_key_saved_on_the_provider_keys_api_is_the_admin_apis_global_config() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/api/v1/settings/providers/anthropic")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"api_key": ANTHROPIC_KEY}));
    let (_, status_body) = send(&svc, req.to_request()).await;
    assert_eq!(status_body["key_hint"], "sk-...cdef");

    let req = TestRequest::get()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()));
    let (status, config) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["provider"], "anthropic");
    assert_eq!(config["instance_id"], Value::Null);
    assert_eq!(
        last4(&config["api_key_masked"]),
        last4(&status_body["key_hint"])
    );

    // Not visible in any instance's scope.
    let req = TestRequest::get()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(("X-Instance-Id", "acme"));
    assert_eq!(send_raw(&svc, req.to_request()).await.1, "null");

    // A key changed on the admin API is the provider keys API's key too.
    let rotated = "sk-ant-api03-rotatedrotatedrotatedrotatedrotated9999";
    let req = TestRequest::patch()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .set_json(json!({"api_key": rotated}));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::OK);
    let req = TestRequest::get()
        .uri("/api/v1/settings/providers")
        .insert_header(bearer(&superadmin()));
    let (_, statuses) = send(&svc, req.to_request()).await;
    let anthropic = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "anthropic")
        .unwrap();
    assert_eq!(anthropic["key_hint"], "sk-...9999");
    let req = TestRequest::post()
        .uri("/api/v1/settings/providers/anthropic/test")
        .insert_header(bearer(&superadmin()));
    send(&svc, req.to_request()).await;
    assert_eq!(h.probed()[0].key.as_deref(), Some(rotated));
}

#[actix_web::test]
async fn an_instance_key_set_on_the_provider_configuration_api_is_the_admin_apis_instance_config() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/v1/llm-provider")
        .insert_header(bearer(&admin_of("acme")))
        .set_json(json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::CREATED);
    let req = TestRequest::put()
        .uri("/v1/llm-provider/openai")
        .insert_header(bearer(&admin_of("acme")))
        .set_json(json!({"credentials": {"api_key": OTHER_OPENAI_KEY}}));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::OK);

    let req = TestRequest::get()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(("X-Instance-Id", "acme"));
    let (status, config) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["provider"], "openai");
    assert_eq!(config["instance_id"], "acme");
    assert_eq!(config["api_key_masked"], "sk-...Qw7e");

    for scope in [None, Some("beta")] {
        let mut req = TestRequest::get()
            .uri("/llm-config/")
            .insert_header(bearer(&superadmin()));
        if let Some(i) = scope {
            req = req.insert_header(("X-Instance-Id", i));
        }
        assert_eq!(
            send_raw(&svc, req.to_request()).await.1,
            "null",
            "{scope:?}"
        );
    }

    // Set on the admin API for an instance, listed by that instance's provider configuration.
    let req = TestRequest::post()
        .uri("/llm-config/")
        .insert_header(bearer(&superadmin()))
        .insert_header(("X-Instance-Id", "beta"))
        .set_json(json!({"provider": "google", "model": "gemini-2.5-pro", "api_key": "AIzaSyD-abcdefghijklmnopqrstuvwxyz0123"}));
    let (status, created) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["provider"], "gemini");
    let req = TestRequest::get()
        .uri("/v1/llm-provider")
        .insert_header(bearer(&admin_of("beta")));
    let (_, listed) = send(&svc, req.to_request()).await;
    assert_eq!(
        listed,
        json!([{"provider": "google", "enabled": true, "credentials": {"api_key": "AIza***"}}])
    );
}

#[actix_web::test]
async fn no_surface_reaches_another_users_or_instances_data() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let alice = user("alice");
    let bob = user("bob");

    let req = TestRequest::put()
        .uri("/api/settings")
        .insert_header(bearer(&alice))
        .set_json(json!({"ai": {"providers": {"openai": {"apiKey": OPENAI_KEY}}}, "general": {"theme": "dark"}}));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::OK);
    let req = TestRequest::get()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&alice));
    let (_, listed) = send(&svc, req.to_request()).await;
    let alice_id = listed["configs"][0]["id"].as_i64().unwrap();
    let req = TestRequest::post()
        .uri("/v1/llm-provider")
        .insert_header(bearer(&admin_of("acme")))
        .set_json(json!({"provider": "anthropic", "credentials": {"api_key": ANTHROPIC_KEY}}));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::CREATED);

    // Bob sees none of it on the user surfaces.
    let req = TestRequest::get()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&bob));
    assert_eq!(send(&svc, req.to_request()).await.1, json!({"configs": []}));
    let req = TestRequest::get()
        .uri("/api/settings")
        .insert_header(bearer(&bob));
    let (_, doc) = send(&svc, req.to_request()).await;
    assert_eq!(doc["data"]["ai"]["providers"], json!({}));
    assert_eq!(doc["data"]["general"], json!({}));
    for req in [
        TestRequest::get().uri(&format!("/users/me/llm-settings/{alice_id}")),
        TestRequest::patch()
            .uri(&format!("/users/me/llm-settings/{alice_id}"))
            .set_json(json!({"model": "gpt-4o-mini"})),
        TestRequest::delete().uri(&format!("/users/me/llm-settings/{alice_id}")),
        TestRequest::post().uri(&format!("/users/me/llm-settings/{alice_id}/set-default")),
    ] {
        let (status, _) = send(&svc, req.insert_header(bearer(&bob)).to_request()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Alice's mask does not make her key Bob's to test.
    let req = TestRequest::post()
        .uri("/api/settings/test-provider")
        .insert_header(bearer(&bob))
        .set_json(json!({"apiKey": "sk-p...Yx4f", "model": "gpt-4o", "baseUrl": "https://api.openai.com/v1"}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["ok"], false);
    assert!(h.probed().is_empty(), "nothing was sent to a provider");

    // Users and instance admins are kept off the global and other instances' surfaces.
    for (token, req) in [
        (
            bob.clone(),
            TestRequest::get().uri("/api/v1/settings/providers"),
        ),
        (bob.clone(), TestRequest::get().uri("/v1/llm-provider")),
        (bob.clone(), TestRequest::get().uri("/llm-config/")),
        (
            admin_of("beta"),
            TestRequest::get().uri("/api/v1/settings/providers"),
        ),
        (
            admin_of("beta"),
            TestRequest::get()
                .uri("/llm-config/")
                .insert_header(("X-Instance-Id", "acme")),
        ),
    ] {
        let (status, _) = send(&svc, req.insert_header(bearer(&token)).to_request()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let req = TestRequest::get()
        .uri("/v1/llm-provider/anthropic")
        .insert_header(bearer(&admin_of("beta")));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::NOT_FOUND);

    // The superadmin's own user surfaces are their own, and the global keys hold no user's or
    // instance's key.
    let req = TestRequest::get()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&superadmin()));
    assert_eq!(send(&svc, req.to_request()).await.1, json!({"configs": []}));
    let req = TestRequest::get()
        .uri("/api/v1/settings/providers")
        .insert_header(bearer(&superadmin()));
    let (_, statuses) = send(&svc, req.to_request()).await;
    assert!(statuses
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["is_configured"] == false));
}

#[actix_web::test]
async fn the_document_lists_every_surface_under_its_own_tag() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let (status, doc) = send(&svc, TestRequest::get().uri("/openapi.json").to_request()).await;
    assert_eq!(status, StatusCode::OK);
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for (path, method, tag) in [
        ("/users/me/llm-settings", "get", "User LLM settings"),
        ("/llm-config/", "get", "Admin AI configuration"),
        ("/llm-config/", "post", "Admin AI configuration"),
        ("/llm-config/", "patch", "Admin AI configuration"),
        ("/llm-config/", "delete", "Admin AI configuration"),
        (
            "/llm-config/test-connection",
            "post",
            "Admin AI configuration",
        ),
        (
            "/api/v1/settings/providers/{provider}",
            "post",
            "Provider keys",
        ),
        ("/api/v1/settings/providers", "get", "Provider keys"),
        (
            "/api/v1/settings/providers/{provider}/test",
            "post",
            "Provider keys",
        ),
        ("/api/v1/settings/task-assignments", "post", "Provider keys"),
        ("/api/v1/settings/task-assignments", "get", "Provider keys"),
        (
            "/v1/llm-provider/{provider}",
            "put",
            "Provider configuration",
        ),
        ("/v1/llm-provider", "post", "Provider configuration"),
        ("/v1/llm-provider", "get", "Provider configuration"),
        (
            "/v1/llm-provider/{provider}",
            "get",
            "Provider configuration",
        ),
        (
            "/v1/llm-provider/{provider}",
            "delete",
            "Provider configuration",
        ),
        ("/api/settings", "get", "Application settings"),
        ("/api/settings", "put", "Application settings"),
        (
            "/api/settings/test-provider",
            "post",
            "Application settings",
        ),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["tags"], json!([tag]), "{method} {path}");
        assert!(tags.contains(&tag), "{tag} is declared");
    }
}

#[actix_web::test]
async fn a_key_sent_in_the_wrong_place_never_comes_back() {
    const PLANTED: &str = "sk-proj-PLANTEDsecretVALUE0123456789abcdef";
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let root = superadmin();
    let admin = admin_of("acme");
    let me = user("u1");
    let requests = [
        (
            root.clone(),
            TestRequest::post()
                .uri("/llm-config/")
                .set_json(json!({"provider": PLANTED, "model": "m", "api_key": PLANTED})),
        ),
        (
            root.clone(),
            TestRequest::get()
                .uri("/llm-config/")
                .insert_header(("X-Instance-Id", format!(" {PLANTED}"))),
        ),
        (
            root.clone(),
            TestRequest::post()
                .uri(&format!("/api/v1/settings/providers/{PLANTED}"))
                .set_json(json!({"api_key": "sk-0123456789abcdef0123456789"})),
        ),
        (
            root.clone(),
            TestRequest::post()
                .uri("/api/v1/settings/providers/openai")
                .set_json(json!({"api_key": PLANTED, PLANTED: 1})),
        ),
        (
            root.clone(),
            TestRequest::post()
                .uri("/api/v1/settings/task-assignments")
                .set_json(
                    json!({"assignments": [{"task": PLANTED, "provider": PLANTED, "model": "m"}]}),
                ),
        ),
        (
            admin.clone(),
            TestRequest::put()
                .uri(&format!("/v1/llm-provider/{PLANTED}"))
                .set_json(json!({"enabled": true})),
        ),
        (
            admin.clone(),
            TestRequest::post()
                .uri("/v1/llm-provider")
                .set_json(json!({"provider": PLANTED, "credentials": {}})),
        ),
        (
            admin.clone(),
            TestRequest::post()
                .uri("/v1/llm-provider")
                .set_json(json!({"provider": "openai", "credentials": {PLANTED: PLANTED}})),
        ),
        (
            admin.clone(),
            TestRequest::post()
                .uri("/v1/llm-provider")
                .set_json(json!({"provider": "openai", "enabled": PLANTED, "credentials": {}})),
        ),
        (
            me.clone(),
            TestRequest::put()
                .uri("/api/settings")
                .set_json(json!({"ai": {"providers": {PLANTED: {"apiKey": PLANTED}}}})),
        ),
        (
            me.clone(),
            TestRequest::put()
                .uri("/api/settings")
                .set_json(json!({"ai": {"provider": PLANTED, "temperature": PLANTED}})),
        ),
        (
            me.clone(),
            TestRequest::put()
                .uri("/api/settings")
                .set_json(json!({"ai": {"providers": {"openai": {PLANTED: 1}}}})),
        ),
        (
            me.clone(),
            TestRequest::post()
                .uri("/api/settings/test-provider")
                .set_json(json!({"apiKey": PLANTED, "provider": PLANTED})),
        ),
        (
            me.clone(),
            TestRequest::post()
                .uri("/api/settings/test-provider")
                .set_json(json!({"apiKey": PLANTED, "baseUrl": PLANTED})),
        ),
    ];
    for (token, req) in requests {
        let (status, text) = send_raw(&svc, req.insert_header(bearer(&token)).to_request()).await;
        assert!(status.is_client_error(), "{status}: {text}");
        assert!(!text.contains("PLANTED"), "{status}: {text}");
    }
}
