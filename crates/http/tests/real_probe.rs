//! The settings surfaces over the real HTTP probe, against the local fake provider.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::json;

use common::{bearer, send, superadmin, user, Harness, RecordingProbe};
use llm_settings_fake_provider::{Behaviour, FakeProvider};
use llm_settings_http::app;
use llm_settings_probes::{HttpProbe, ProbeSettings};

async fn harness(fake: &FakeProvider) -> Harness {
    let settings = ProbeSettings::from_values(Some(&fake.allow_hosts()), Some("5000")).unwrap();
    let probe = HttpProbe::new(settings).unwrap();
    Harness::with_probe(RecordingProbe::default(), Arc::new(probe)).await
}

#[actix_web::test]
async fn test_provider_reaches_the_provider_with_the_restored_key() {
    let fake = FakeProvider::start().await;
    let h = harness(&fake).await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    let openai = fake.base_url("openai");
    let anthropic = fake.base_url("anthropic");
    let req = TestRequest::put()
        .uri("/api/settings")
        .insert_header(bearer(&me))
        .set_json(json!({"ai": {"providers": {
            "openai": {"apiKey": Behaviour::Valid.key(), "model": "gpt-4o", "baseUrl": openai},
            "anthropic": {"apiKey": Behaviour::Invalid.key(), "baseUrl": anthropic},
        }}}));
    let (status, doc) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let providers = &doc["data"]["ai"]["providers"];

    let req = TestRequest::post()
        .uri("/api/settings/test-provider")
        .insert_header(bearer(&me))
        .set_json(
            json!({"apiKey": providers["openai"]["apiKey"], "model": "gpt-4o", "baseUrl": openai}),
        );
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"ok": true, "data": {"connected": true}}));

    let req = TestRequest::post()
        .uri("/api/settings/test-provider")
        .insert_header(bearer(&me))
        .set_json(json!({"apiKey": providers["anthropic"]["apiKey"], "model": "claude-sonnet-4-5", "baseUrl": anthropic}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"ok": true, "data": {"connected": false, "error": "Invalid API key"}})
    );
    assert!(!body.to_string().contains("fake-key"));

    let seen = fake.requests().await;
    assert_eq!(seen.len(), 2, "one call per test");
    assert!(seen[0].url.path().starts_with("/openai/"));
    assert_eq!(
        seen[0].headers.get("authorization").unwrap(),
        &format!("Bearer {}", Behaviour::Valid.key())
    );
}

#[actix_web::test]
async fn a_stored_key_is_not_sent_to_an_address_the_policy_refuses() {
    // No allow list: the fake on 127.0.0.1 is off limits for a cloud provider.
    let fake = FakeProvider::start().await;
    let probe = HttpProbe::new(ProbeSettings::default()).unwrap();
    let h = Harness::with_probe(RecordingProbe::default(), Arc::new(probe)).await;
    let svc = test::init_service(app(h.state.clone())).await;
    let req = TestRequest::post()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&user("u1")))
        .set_json(json!({"provider": "openai", "api_key": Behaviour::Valid.key(), "base_url": fake.base_url("openai")}));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::CREATED);
    let req = TestRequest::post()
        .uri("/api/settings/test-provider")
        .insert_header(bearer(&user("u1")))
        .set_json(json!({"provider": "openai"}));
    let (status, body) = send(&svc, req.to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["connected"], false);
    assert!(fake.requests().await.is_empty());
    // The admin surfaces do not reach user configs at all.
    let req = TestRequest::post()
        .uri("/llm-config/test-connection")
        .insert_header(bearer(&superadmin()));
    assert_eq!(send(&svc, req.to_request()).await.0, StatusCode::NOT_FOUND);
}
