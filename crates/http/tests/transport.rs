//! What only mocked ports can show: a store outage answers 503 in the surface's shape without
//! its cause, and readiness follows the store. Everything a client can reach is tested over
//! real HTTP on both stores (the top-level `tests/`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web::Data;
use serde_json::Value;

use llm_settings_domain::ports::{
    MockAuditLog, MockAuditQueue, MockClock, MockConfigRepository, MockProviderClient,
    MockProviderProbe, MockSecretCipher, MockSettingsDocumentRepository,
    MockTaskAssignmentRepository,
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
        client: Arc::new(MockProviderClient::new()),
        audit_queue: Arc::new(MockAuditQueue::new()),
        clock: Arc::new(clock),
    };
    Data::new(AppState {
        service: SettingsService::new(ports, Catalog::all()),
        auth: Authenticator::hs256(SECRET, None, None).unwrap(),
        readiness: Arc::new(Ready(ready)),
        request_timeout: std::time::Duration::from_secs(5),
        cors_origins: Default::default(),
        gateway_max_body_bytes: 1 << 20,
        frame_ancestors: Default::default(),
        limits: Default::default(),
        metrics: None,
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
            nbf: None,
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
async fn store_outages_are_503_without_their_cause() {
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
