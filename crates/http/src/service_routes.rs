//! Health, readiness, the OpenAPI document, the docs page and the fallback for unknown paths.

use actix_web::http::header::ContentType;
use actix_web::web::{Data, Json};
use actix_web::{get, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::ErrorCode;

use crate::error::{ApiError, Code};
use crate::{AppState, OpenApiJson};

/// The documented routes of the service itself.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config.service(healthz).service(readyz);
}

/// Health or readiness state.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: String,
}

/// The process is up.
#[utoipa::path(responses((status = 200, description = "Alive", body = HealthResponse)))]
#[get("/healthz")]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// The store is reachable; 503 otherwise.
#[utoipa::path(
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

/// The documented routes (path templates and their methods), to tell an unknown path (404)
/// from a known path asked with another method (405).
#[derive(Debug, Clone, Default)]
pub struct RouteTable(Vec<(Vec<String>, Vec<&'static str>)>);

impl RouteTable {
    /// The routes of a generated document.
    pub fn of(api: &utoipa::openapi::OpenApi) -> Self {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (segments(path), methods)
            })
            .collect();
        Self(routes)
    }

    /// The methods a path answers to, when some template matches it. Where several do, the
    /// one with the most literal segments wins, as in routing (`/effective` before
    /// `/{config_id}`).
    pub fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        let wanted = segments(path);
        let matching = self.0.iter().filter(|(template, _)| {
            template.len() == wanted.len()
                && template
                    .iter()
                    .zip(&wanted)
                    .all(|(t, w)| t.starts_with('{') || t == w)
        });
        let literal = |template: &[String]| template.iter().filter(|t| !t.starts_with('{')).count();
        let best = matching.clone().map(|(t, _)| literal(t)).max()?;
        let mut methods: Vec<&'static str> = Vec::new();
        for (_, found) in matching.filter(|(t, _)| literal(t) == best) {
            methods.extend(
                found
                    .iter()
                    .filter(|m| !methods.contains(m))
                    .copied()
                    .collect::<Vec<_>>(),
            );
        }
        (!methods.is_empty()).then_some(methods)
    }
}

/// The 405 for a request whose path names a route that does not answer its method (also when
/// a parameterized route of another method caught it, as `PATCH /{config_id}` catches
/// `PATCH /effective`).
pub fn method_not_allowed(req: &HttpRequest) -> Option<ApiError> {
    let methods = req
        .app_data::<Data<RouteTable>>()
        .and_then(|table| table.allowed(req.path()))?;
    if methods.contains(&req.method().as_str()) {
        return None;
    }
    let allow = methods.join(", ");
    let shown = crate::surfaces::shown_path(req.path());
    let mut err = ApiError::new(
        Code::MethodNotAllowed,
        format!("{} is not allowed on {shown}; use {allow}", req.method()),
    );
    err.allow = Some(allow);
    Some(err)
}

fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

/// Any path no route matched, answered in the shape of the surface the path belongs to: 405
/// with `Allow` when the path exists for other methods, 404 otherwise.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let shown = crate::surfaces::shown_path(req.path());
    Err(method_not_allowed(&req).unwrap_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no route for {} {shown}", req.method()),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_with_other_methods_are_told_apart() {
        let table = RouteTable::of(&crate::openapi());
        assert_eq!(
            table.allowed("/users/me/llm-settings"),
            Some(vec!["GET", "POST"])
        );
        let by_id = table.allowed("/users/me/llm-settings/12").unwrap();
        assert!(by_id.contains(&"PATCH") && by_id.contains(&"DELETE"));
        assert!(table.allowed("/users/me/llm-settings/12/nope").is_none());
        assert!(table.allowed("/nowhere").is_none());
    }
}
