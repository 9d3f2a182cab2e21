//! The real application over real adapters for the surface tests: an in-memory SQLite store,
//! the XChaCha20-Poly1305 keyring, and a probe that records what it was asked and answers by
//! the key (a key containing `-bad-` is refused as the provider would refuse it).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test;
use actix_web::web::Data;
use serde_json::Value;

use llm_settings_crypto::{KeyId, Keyring};
use llm_settings_domain::ports::{ProviderProbe, SystemClock};
use llm_settings_domain::{
    Catalog, FailureClass, Ports, ProbeOutcome, ProbeRequest, SettingsService,
};
use llm_settings_http::{AppState, Authenticator, Claims, Readiness, TokenIssuer};
use llm_settings_store_sqlite::SqliteStore;

pub const JWT_SECRET: &[u8] = b"surface-tests-secret-surface-tests-secret";

/// One call the probe received, with the key it would have sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub provider: String,
    pub key: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
}

/// A provider double: success for any key but one containing `-bad-`.
#[derive(Debug, Default, Clone)]
pub struct RecordingProbe {
    pub calls: Arc<Mutex<Vec<Probed>>>,
}

#[async_trait::async_trait]
impl ProviderProbe for RecordingProbe {
    async fn probe(&self, request: ProbeRequest) -> ProbeOutcome {
        let primary = request.provider.spec().primary_secret().map(|f| f.name);
        let key = primary
            .and_then(|name| request.secrets.get(name))
            .map(|k| k.expose().to_owned());
        self.calls.lock().unwrap().push(Probed {
            provider: request.provider.to_string(),
            key: key.clone(),
            base_url: request.base_url.clone(),
            model: request.model.clone(),
        });
        if key.as_deref().is_some_and(|k| k.contains("-bad-")) {
            return ProbeOutcome::failed(
                FailureClass::InvalidCredentials,
                120,
                "the provider rejected the credentials",
            );
        }
        ProbeOutcome {
            success: true,
            latency_ms: 42,
            model_available: true,
            models: request.model.clone().into_iter().collect(),
            failure: None,
            retry_after_secs: None,
            message: "Connection OK".into(),
        }
    }
}

struct AlwaysReady;

#[async_trait::async_trait]
impl Readiness for AlwaysReady {
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The application under test and what its probe saw.
pub struct Harness {
    pub state: Data<AppState>,
    pub probe: RecordingProbe,
}

impl Harness {
    /// A fresh application over a fresh in-memory database and a generated master key, with
    /// the recording probe.
    pub async fn new() -> Self {
        let probe = RecordingProbe::default();
        Self::with_probe(probe.clone(), Arc::new(probe)).await
    }

    /// The same over another probe (`recording` then only stands in for the field).
    pub async fn with_probe(recording: RecordingProbe, probe: Arc<dyn ProviderProbe>) -> Self {
        let store = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
        let cipher = Keyring::generate(KeyId::parse("test-key").unwrap()).unwrap();
        let ports = Ports {
            configs: store.clone(),
            tasks: store.clone(),
            documents: store.clone(),
            audit: store,
            cipher: Arc::new(cipher),
            probe,
            clock: Arc::new(SystemClock),
        };
        let state = Data::new(AppState {
            service: SettingsService::new(ports, Catalog::all()),
            auth: Authenticator::hs256(JWT_SECRET, None, None).unwrap(),
            readiness: Arc::new(AlwaysReady),
        });
        Self {
            state,
            probe: recording,
        }
    }

    /// Every probe call so far.
    pub fn probed(&self) -> Vec<Probed> {
        self.probe.calls.lock().unwrap().clone()
    }
}

/// A signed token for `sub` with space-separated scopes, roles and an optional instance.
pub fn token(sub: &str, scope: &str, roles: &[&str], instance: Option<&str>) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    TokenIssuer::hs256(JWT_SECRET)
        .mint(&Claims {
            sub: sub.into(),
            scope: scope.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            instance: instance.map(str::to_owned),
            exp: (now + 600) as u64,
            iss: None,
            aud: None,
        })
        .unwrap()
}

/// A superadmin with no instance.
pub fn superadmin() -> String {
    token("root", "read write", &["superadmin"], None)
}

/// An ordinary user with both scopes.
pub fn user(sub: &str) -> String {
    token(sub, "read write", &[], None)
}

/// An admin of one instance.
pub fn admin_of(instance: &str) -> String {
    token(
        &format!("admin-{instance}"),
        "read write",
        &["admin"],
        Some(instance),
    )
}

/// `Authorization: Bearer …`.
pub fn bearer(t: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {t}"))
}

/// Sends a request (`TestRequest::….to_request()`) and reads status and JSON body
/// (`Value::Null` for an empty body).
pub async fn send<S, R, B>(svc: &S, req: R) -> (StatusCode, Value)
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, text) = send_raw(svc, req).await;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

/// Sends a request and returns the raw body text (for exact `null` checks and leak checks).
pub async fn send_raw<S, R, B>(svc: &S, req: R) -> (StatusCode, String)
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(svc, req).await;
    let status = res.status();
    let bytes = test::read_body(res).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}
