//! The provider configuration API (`/v1/llm-provider`, seed 003) over the real store and cipher.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use common::{admin_of, bearer, send, send_raw, superadmin, token, user, Harness};
use llm_settings_http::app;

const OPENAI_KEY: &str = "sk-0123456789abcdef0123456789abcdef";

fn create(token: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri("/v1/llm-provider")
        .insert_header(bearer(token))
        .set_json(body)
}

fn put(token: &str, provider: &str, body: Value) -> TestRequest {
    TestRequest::put()
        .uri(&format!("/v1/llm-provider/{provider}"))
        .insert_header(bearer(token))
        .set_json(body)
}

#[actix_web::test]
async fn the_seed_update_examples() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let admin = admin_of("acme");
    let (status, body) = send(
        &svc,
        create(
            &admin,
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***"}})
    );

    // The curl example: enabled and empty credentials.
    let (status, body) = send(
        &svc,
        put(
            &admin,
            "openai",
            json!({"enabled": true, "credentials": {}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***"}})
    );

    // Enable/disable a provider.
    let (status, body) = send(
        &svc,
        put(&admin, "openai", json!({"enabled": false})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["enabled"], false);
    let (_, body) = send(
        &svc,
        put(&admin, "openai", json!({"enabled": true})).to_request(),
    )
    .await;
    assert_eq!(body["enabled"], true);

    // Update credentials.
    let (status, body) = send(
        &svc,
        put(
            &admin,
            "openai",
            json!({"credentials": {"api_key": "sk-new-api-key", "organization": "org-new-org-id"}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***", "organization": "org-new-org-id"}})
    );
    assert!(!body.to_string().contains("new-api-key"));
}

#[actix_web::test]
async fn a_provider_without_configuration_is_the_seed_404() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let admin = admin_of("acme");
    let expected = json!({"error": {"code": "NOT_FOUND", "message": "No configuration found for provider: openai"}});
    for req in [
        put(&admin, "openai", json!({"enabled": false})),
        TestRequest::get()
            .uri("/v1/llm-provider/openai")
            .insert_header(bearer(&admin)),
        TestRequest::delete()
            .uri("/v1/llm-provider/openai")
            .insert_header(bearer(&admin)),
    ] {
        let (status, body) = send(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, expected);
    }
}

#[actix_web::test]
async fn every_provider_takes_its_own_credential_fields() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let admin = admin_of("acme");
    let cases = [
        (
            json!({"provider": "google", "credentials": {"api_key": "AIzaSyD-abcdefghijklmnopqrstuvwxyz0123"}}),
            json!({"provider": "google", "enabled": true, "credentials": {"api_key": "AIza***"}}),
        ),
        (
            json!({"provider": "anthropic", "enabled": false, "credentials": {"api_key": "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz"}}),
            json!({"provider": "anthropic", "enabled": false, "credentials": {"api_key": "sk-ant-***"}}),
        ),
        (
            json!({"provider": "azure", "credentials": {
                "api_key": "0123456789abcdef0123456789abcdef",
                "endpoint": "https://acme.openai.azure.com/",
                "deployment": "gpt-4o-prod",
                "api_version": "2024-10-21"}}),
            json!({"provider": "azure", "enabled": true, "credentials": {
                "api_key": "***",
                "endpoint": "https://acme.openai.azure.com",
                "deployment": "gpt-4o-prod",
                "api_version": "2024-10-21"}}),
        ),
        (
            json!({"provider": "amazon-bedrock", "credentials": {
                "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "region": "us-east-1"}}),
            json!({"provider": "amazon-bedrock", "enabled": true, "credentials": {
                "access_key_id": "***",
                "secret_access_key": "***",
                "region": "us-east-1"}}),
        ),
        (
            json!({"provider": "google-vertex", "credentials": {
                "service_account_json": {"type": "service_account", "client_email": "svc@acme.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"},
                "project_id": "acme-prod",
                "location": "europe-west4"}}),
            json!({"provider": "google-vertex", "enabled": true, "credentials": {
                "service_account_json": "***",
                "project_id": "acme-prod",
                "location": "europe-west4"}}),
        ),
        (
            json!({"provider": "xai", "credentials": {"api_key": "xai-0123456789abcdefghijklmnopqrstuvwxyz"}}),
            json!({"provider": "xai", "enabled": true, "credentials": {"api_key": "xai-***"}}),
        ),
    ];
    for (request, expected) in &cases {
        let (status, body) = send(&svc, create(&admin, request.clone()).to_request()).await;
        assert_eq!(status, StatusCode::CREATED, "{request} → {body}");
        assert_eq!(&body, expected);
    }
    let req = TestRequest::get()
        .uri("/v1/llm-provider")
        .insert_header(bearer(&admin));
    let (status, listed) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), cases.len());
    for (_, expected) in &cases {
        assert!(listed.contains(expected), "{expected} not listed");
    }
    let (_, text) = send_raw(
        &svc,
        TestRequest::get()
            .uri("/v1/llm-provider")
            .insert_header(bearer(&admin))
            .to_request(),
    )
    .await;
    for secret in [
        "EXAMPLEKEY",
        "PRIVATE KEY",
        "0123456789abcdef0123",
        "abcdefghijklmnop",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }

    // One provider by name, in this surface's spelling.
    let req = TestRequest::get()
        .uri("/v1/llm-provider/google")
        .insert_header(bearer(&admin));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, cases[0].1);

    // Removing an optional field, keeping a secret by sending its mask back.
    let (status, body) = send(
        &svc,
        put(
            &admin,
            "azure",
            json!({"credentials": {"api_key": "***", "api_version": null}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["credentials"].get("api_version"), None);
    assert_eq!(body["credentials"]["api_key"], "***");
}

#[actix_web::test]
async fn bad_providers_and_credentials_are_refused_clearly() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let admin = admin_of("acme");
    for provider in ["gemini", "ollama", "nope"] {
        let (status, body) = send(
            &svc,
            put(&admin, provider, json!({"enabled": true})).to_request(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{provider}");
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unknown provider"));
    }
    let cases = [
        (
            json!({"provider": "gemini", "credentials": {"api_key": OPENAI_KEY}}),
            "provider",
        ),
        (
            json!({"provider": "azure", "credentials": {"api_key": OPENAI_KEY}}),
            "endpoint",
        ),
        (json!({"provider": "openai", "credentials": {}}), "api_key"),
        (
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY, "apikey": "sk-typo"}}),
            "credentials.apikey",
        ),
        (
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY, "organization": {"x": 1}}}),
            "credentials.organization",
        ),
        (
            json!({"provider": "openai", "credentials": {"api_key": 42}}),
            "credentials.api_key",
        ),
        (
            json!({"provider": "openai", "credentials": {"api_key": "sk-***"}}),
            "api_key",
        ),
        (
            json!({"provider": "azure", "credentials": {"api_key": OPENAI_KEY, "endpoint": "ftp://x"}}),
            "endpoint",
        ),
        (json!({"provider": "openai", "enabled": "yes"}), "enabled"),
    ];
    for (request, field) in cases {
        let (status, body) = send(&svc, create(&admin, request.clone()).to_request()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request} → {body}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{body}");
        assert_eq!(body["error"]["field"], field, "{request} → {body}");
        assert!(!body.to_string().contains("sk-typo"), "{body}");
    }
    let (status, _) = send(
        &svc,
        create(
            &admin,
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = send(
        &svc,
        create(
            &admin,
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "CONFLICT");
}

#[actix_web::test]
async fn delete_removes_a_provider() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let admin = admin_of("acme");
    send(
        &svc,
        create(
            &admin,
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
        )
        .to_request(),
    )
    .await;
    let req = TestRequest::delete()
        .uri("/v1/llm-provider/openai")
        .insert_header(bearer(&admin));
    let (status, text) = send_raw(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(text.is_empty());
    let req = TestRequest::get()
        .uri("/v1/llm-provider")
        .insert_header(bearer(&admin));
    assert_eq!(send(&svc, req.to_request()).await.1, json!([]));
}

#[actix_web::test]
async fn only_admins_of_the_tokens_instance_reach_it() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let no_instance = [
        user("u1"),
        superadmin(),
        token("a", "read write", &["admin"], None),
    ];
    for t in no_instance {
        let req = TestRequest::get()
            .uri("/v1/llm-provider")
            .insert_header(bearer(&t));
        let (status, body) = send(&svc, req.to_request()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            json!({"error": {"code": "FORBIDDEN", "message": "this API acts on the instance named in the token's `instance` claim; the token has none"}})
        );
    }
    let plain_user = token("u1", "read write", &[], Some("acme"));
    let (status, body) = send(
        &svc,
        create(
            &plain_user,
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "FORBIDDEN");

    // A superadmin with an instance claim manages that instance.
    let root_acme = token("root", "", &["superadmin"], Some("acme"));
    let (status, _) = send(
        &svc,
        create(
            &root_acme,
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let req = TestRequest::get()
        .uri("/v1/llm-provider/openai")
        .insert_header(bearer(&admin_of("acme")));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::OK);
    // Another instance's admin sees nothing of it.
    let req = TestRequest::get()
        .uri("/v1/llm-provider/openai")
        .insert_header(bearer(&admin_of("beta")));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &svc,
        TestRequest::get().uri("/v1/llm-provider").to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
