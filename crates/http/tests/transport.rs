//! Transport behaviour over mocked domain ports: auth, error shapes, body limits, request ids,
//! health and the generated document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web::Data;
use serde_json::{json, Value};

use llm_settings_domain::ports::{
    MockAuditLog, MockClock, MockConfigRepository, MockProviderProbe, MockSecretCipher,
    MockSettingsDocumentRepository, MockTaskAssignmentRepository,
};
use llm_settings_domain::{Catalog, Error, Ports, SettingsService, Timestamp};
use llm_settings_http::{app, AppState, Authenticator, Claims, Readiness, TokenIssuer};

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

struct Ready(bool);

#[async_trait::async_trait]
impl Readiness for Ready {
    async fn check(&self) -> Result<(), String> {
        if self.0 {
            Ok(())
        } else {
            Err("store down".into())
        }
    }
}

fn state(configs: MockConfigRepository, ready: bool) -> Data<AppState> {
    let mut audit = MockAuditLog::new();
    audit.expect_record().returning(|_| Ok(()));
    let mut clock = MockClock::new();
    clock
        .expect_now()
        .returning(|| Timestamp::from_unix_micros(1_736_071_200_000_000).unwrap());
    let ports = Ports {
        configs: Arc::new(configs),
        tasks: Arc::new(MockTaskAssignmentRepository::new()),
        documents: Arc::new(MockSettingsDocumentRepository::new()),
        audit: Arc::new(audit),
        cipher: Arc::new(MockSecretCipher::new()),
        probe: Arc::new(MockProviderProbe::new()),
        clock: Arc::new(clock),
    };
    Data::new(AppState {
        service: SettingsService::new(ports, Catalog::all()),
        auth: Authenticator::hs256(SECRET, None, None).unwrap(),
        readiness: Arc::new(Ready(ready)),
    })
}

fn token(scope: &str, exp_offset: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    TokenIssuer::hs256(SECRET)
        .mint(&Claims {
            sub: "user-1".into(),
            scope: scope.into(),
            roles: vec![],
            instance: None,
            exp: (now + exp_offset) as u64,
            iss: None,
            aud: None,
        })
        .unwrap()
}

fn bearer(t: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {t}"))
}

async fn call(
    state: Data<AppState>,
    req: TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    let svc = test::init_service(app(state)).await;
    let res = test::call_service(&svc, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, headers, body)
}

#[actix_web::test]
async fn tokens_are_required_and_checked() {
    let cases = [
        (None, "missing bearer token"),
        (
            Some("Basic dXNlcjpwdw==".to_owned()),
            "malformed Authorization header",
        ),
        (
            Some(format!("Bearer {}", token("read", -600))),
            "the token has expired",
        ),
        (
            Some("Bearer abc.def.ghi".to_owned()),
            "the token is not valid",
        ),
    ];
    for (header, expected) in cases {
        let mut req = TestRequest::get().uri("/users/me/llm-settings");
        if let Some(h) = header {
            req = req.insert_header(("authorization", h));
        }
        let (status, headers, body) = call(state(MockConfigRepository::new(), true), req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error_code"], "unauthorized");
        assert!(
            body["detail"].as_str().unwrap().starts_with(expected),
            "{body}"
        );
        assert!(headers.contains_key("www-authenticate"));
    }
    let forged = TokenIssuer::hs256(b"another-secret-another-secret-another")
        .mint(&Claims {
            sub: "user-1".into(),
            scope: "read".into(),
            roles: vec![],
            instance: None,
            exp: 9_999_999_999,
            iss: None,
            aud: None,
        })
        .unwrap();
    let req = TestRequest::get()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&forged));
    let (status, _, body) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "the token signature is invalid");
}

#[actix_web::test]
async fn scopes_are_enforced_with_403() {
    let req = TestRequest::get()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&token("write", 600)));
    let (status, _, body) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error_code"], "forbidden");

    let req = TestRequest::post()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&token("read", 600)))
        .set_json(json!({"provider": "openai", "api_key": "sk-test-0123456789abcdef0123"}));
    let (status, _, _) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn bodies_are_strict_and_errors_name_the_field() {
    let cases = [
        (json!({"provider": "openai", "colour": "red"}), "colour"),
        (json!({"provider": 5}), "provider"),
        (json!({"api_key": "sk-x"}), "provider"),
        (
            json!({"provider": "openai", "is_default": "sk-planted-key-value-123"}),
            "is_default",
        ),
        (
            json!({"provider": "nope", "api_key": "sk-test-0123456789abcdef0123"}),
            "provider",
        ),
        (
            json!({"provider": "openai", "api_key": "sk-test-0123456789abcdef0123", "base_url": "ftp://x"}),
            "base_url",
        ),
    ];
    for (body, field) in cases {
        let req = TestRequest::post()
            .uri("/users/me/llm-settings")
            .insert_header(bearer(&token("read write", 600)))
            .set_json(&body);
        let (status, _, res) = call(state(MockConfigRepository::new(), true), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {res}");
        assert_eq!(res["field"], field, "{res}");
        assert!(!res.to_string().contains("sk-planted"), "{res}");
    }
    let req = TestRequest::post()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&token("read write", 600)))
        .insert_header(("content-type", "application/json"))
        .set_payload("{\"provider\": ");
    let (status, _, res) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(res["detail"]
        .as_str()
        .unwrap()
        .starts_with("malformed JSON"));

    let req = TestRequest::post()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&token("read write", 600)))
        .insert_header(("content-type", "text/plain"))
        .set_payload("provider=openai");
    let (status, _, _) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[actix_web::test]
async fn oversized_bodies_get_413() {
    let huge = json!({"provider": "openai", "api_key": "k".repeat(100 * 1024)});
    let req = TestRequest::post()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&token("read write", 600)))
        .set_json(&huge);
    let (status, _, body) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error_code"], "payload_too_large");
}

#[actix_web::test]
async fn patch_refuses_provider_and_is_default() {
    for body in [
        json!({"provider": "anthropic"}),
        json!({"is_default": true}),
    ] {
        let req = TestRequest::patch()
            .uri("/users/me/llm-settings/3")
            .insert_header(bearer(&token("read write", 600)))
            .set_json(&body);
        let (status, _, res) = call(state(MockConfigRepository::new(), true), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert_eq!(res["error_code"], "validation_error");
    }
}

#[actix_web::test]
async fn store_outages_are_503_and_ids_that_are_not_ids_are_404() {
    let mut configs = MockConfigRepository::new();
    configs
        .expect_list()
        .returning(|_| Err(Error::Unavailable("connection refused".into())));
    let req = TestRequest::get()
        .uri("/users/me/llm-settings")
        .insert_header(bearer(&token("read", 600)));
    let (status, _, body) = call(state(configs, true), req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error_code"], "store_unavailable");
    assert!(!body.to_string().contains("refused"));

    let req = TestRequest::delete()
        .uri("/users/me/llm-settings/not-a-number")
        .insert_header(bearer(&token("read write", 600)));
    let (status, _, _) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn providers_lead_with_the_seed_list() {
    let req = TestRequest::get()
        .uri("/users/me/llm-settings/providers")
        .insert_header(bearer(&token("", 600)));
    let (status, _, body) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        &ids[..4],
        ["anthropic", "openai", "deepseek_cloud", "gemini"]
    );
    assert!(ids.contains(&"deepseek_local"));
    assert!(
        !ids.contains(&"azure"),
        "multi-field providers need the provider configuration API"
    );
    assert_eq!(body["default_provider"], "anthropic");
    assert_eq!(body["providers"][0]["default_model"], "claude-sonnet-4-5");
    assert_eq!(body["providers"][0]["requires_api_key"], true);
}

#[actix_web::test]
async fn request_ids_are_echoed_or_made() {
    let req = TestRequest::get()
        .uri("/healthz")
        .insert_header(("x-request-id", "abc-123"));
    let (status, headers, body) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    assert_eq!(headers.get("x-request-id").unwrap(), "abc-123");
    let req = TestRequest::get()
        .uri("/nowhere")
        .insert_header(("x-request-id", "bad id with spaces"));
    let (status, headers, body) = call(state(MockConfigRepository::new(), true), req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(headers.get("x-request-id").unwrap().len(), 24);
}

#[actix_web::test]
async fn readiness_reflects_the_store() {
    let (status, _, _) = call(
        state(MockConfigRepository::new(), true),
        TestRequest::get().uri("/readyz"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = call(
        state(MockConfigRepository::new(), false),
        TestRequest::get().uri("/readyz"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
}

#[actix_web::test]
async fn docs_and_document_are_served() {
    let (status, _, body) = call(
        state(MockConfigRepository::new(), true),
        TestRequest::get().uri("/openapi.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");
    assert!(body["paths"]["/users/me/llm-settings/{config_id}/set-default"]["post"].is_object());
    let (status, _, body) = call(
        state(MockConfigRepository::new(), true),
        TestRequest::get().uri("/docs"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let html = body.as_str().unwrap();
    assert!(html.contains("/openapi.json"));
    assert!(
        !html.contains("https://"),
        "the docs page loads nothing from other hosts"
    );
}
