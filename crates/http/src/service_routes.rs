//! Health, readiness, the OpenAPI document, the docs page and the fallback for unknown paths.

use actix_web::http::header::ContentType;
use actix_web::web::{Data, Json};
use actix_web::{get, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Surface};
use crate::{AppState, OpenApiJson};

/// Health or readiness state.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: String,
}

/// The process is up.
#[utoipa::path(tag = "Service", responses((status = 200, description = "Alive", body = HealthResponse)))]
#[get("/healthz")]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// The store is reachable; 503 otherwise.
#[utoipa::path(
    tag = "Service",
    responses(
        (status = 200, description = "Ready to serve", body = HealthResponse),
        (status = 503, description = "The store is unreachable", body = HealthResponse),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: Data<AppState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(HealthResponse {
            status: "ready".into(),
        }),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable().json(HealthResponse {
                status: "unavailable".into(),
            })
        }
    }
}

/// The OpenAPI 3.1 document.
#[get("/openapi.json")]
pub async fn openapi_json(doc: Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(doc.0.as_str().to_owned())
}

/// Interactive documentation; self-contained, loads nothing from other hosts.
#[get("/docs")]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((
            "content-security-policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ))
        .body(include_str!("docs.html"))
}

/// Any path no route matched, answered in the shape of the surface the path belongs to.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    let surface = [
        ("/users/me/llm-settings", Surface::Native),
        ("/llm-config", Surface::Admin),
        ("/api/v1/settings", Surface::ProviderKeys),
        ("/v1/llm-provider", Surface::ProviderConfig),
        ("/api/settings", Surface::AppSettings),
    ]
    .iter()
    .find(|(prefix, _)| path.starts_with(prefix))
    .map_or(Surface::Service, |(_, s)| *s);
    ApiError::new(
        surface,
        "not_found",
        format!(
            "no route for {} {}",
            req.method(),
            crate::surfaces::shown_path(path)
        ),
    )
    .error_response()
}
