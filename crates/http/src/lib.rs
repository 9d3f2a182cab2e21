//! The actix-web transport of the LLM settings service.
//!
//! Every API surface is a thin module over the one [`SettingsService`]; routes are registered
//! once through `utoipa-actix-web`, so the served OpenAPI document is generated from the same
//! registry that routes requests.

pub mod auth;
pub mod body;
pub mod error;
pub mod request_id;
mod service_routes;
pub mod surfaces;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::web::Data;
use actix_web::App;
use async_trait::async_trait;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_actix_web::{AppExt, UtoipaApp};

use llm_settings_domain::SettingsService;

pub use auth::{Authenticator, Claims, TokenIssuer};
pub use error::{ApiError, Surface};

/// Whether the service's dependencies (the store) can serve requests.
#[async_trait]
pub trait Readiness: Send + Sync + 'static {
    /// `Err` with a short reason when not ready.
    async fn check(&self) -> Result<(), String>;
}

/// Everything a request handler needs.
pub struct AppState {
    pub service: SettingsService,
    pub auth: Authenticator,
    pub readiness: Arc<dyn Readiness>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The served OpenAPI document, serialized once per worker.
#[derive(Debug, Clone)]
pub struct OpenApiJson(pub Arc<String>);

/// The tags of the document, one per surface, in display order.
const TAGS: [(&str, &str); 6] = [
    (
        "User LLM settings",
        "The calling user's bring-your-own-key provider configs (`read` scope to list, `write` to change or test).",
    ),
    (
        surfaces::admin::TAG,
        "The active AI configuration of the deployment (global) or of the tenant instance named by `X-Instance-Id`. Role `superadmin`. Keys are shown as `sk-...XXXX`; errors are `{\"detail\", \"error_code\"}`.",
    ),
    (
        surfaces::provider_keys::TAG,
        "Deployment-wide keys of openai, gemini, anthropic, openrouter and ollama, and task → provider + model assignments. Role `superadmin`. Keys are shown as `sk-...cdef`; errors are FastAPI-style `{\"detail\": ...}`, 422 for body errors.",
    ),
    (
        surfaces::provider_config::TAG,
        "Provider configurations of the tenant instance named in the token's `instance` claim. Role `admin` or `superadmin`. Secrets are shown as `sk-***`; errors are `{\"error\": {\"code\", \"message\"}}`.",
    ),
    (
        surfaces::app_settings::TAG,
        "The calling user's application settings document: default provider, provider keys (shown as `sk-p...Yx4f`) and generation settings (`read` / `write` scopes). Responses are `{\"ok\": true, \"data\"}`; errors `{\"ok\": false, \"error\"}`.",
    ),
    ("Service", "Health, readiness and documentation."),
];

/// Registers every documented route. The one registry of the service.
fn routes<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.service(surfaces::native::scope())
        .service(surfaces::admin::scope())
        .service(surfaces::provider_keys::scope())
        .service(surfaces::provider_config::scope())
        .service(surfaces::app_settings::scope())
        .service(service_routes::healthz)
        .service(service_routes::readyz)
}

/// Surface of a documented path, as an operationId prefix (handler names repeat across
/// surfaces; generated clients need ids unique in the whole document).
fn operation_prefix(path: &str) -> &'static str {
    [
        ("/users/me/llm-settings", "user"),
        ("/llm-config", "admin"),
        ("/api/v1/settings", "provider_keys"),
        ("/v1/llm-provider", "provider_config"),
        ("/api/settings", "app_settings"),
    ]
    .iter()
    .find(|(prefix, _)| path.starts_with(prefix))
    .map_or("service", |(_, name)| *name)
}

fn finish(mut api: OpenApi) -> OpenApi {
    for (path, item) in api.paths.paths.iter_mut() {
        let prefix = operation_prefix(path);
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(id) = &op.operation_id {
                op.operation_id = Some(format!("{prefix}_{id}"));
            }
        }
    }
    api.info = InfoBuilder::new()
        .title("LLM Settings Service")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Stores LLM provider credentials (bring your own key) for users, tenant instances and the whole deployment. Keys are encrypted at rest and never returned: responses carry masked hints only.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "JWT with `sub`, `scope` (space-separated `read` `write`), `roles` (`admin`, `superadmin`), optional `instance`, and `exp`.",
                ))
                .build(),
        ),
    );
    api.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                TagBuilder::new()
                    .name(*name)
                    .description(Some(*description))
                    .build()
            })
            .collect(),
    );
    api
}

/// The OpenAPI 3.1 document of every surface, generated from the registered handlers.
pub fn openapi() -> OpenApi {
    let (_, api) = routes(App::new().into_utoipa_app()).split_for_parts();
    finish(api)
}

/// The whole application: every surface, `/openapi.json`, `/docs`, health, request ids.
pub fn app(
    state: Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, api) = routes(App::new().into_utoipa_app().app_data(state)).split_for_parts();
    let api = finish(api);
    let table = service_routes::RouteTable::of(&api);
    let json = api.to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
    app.app_data(Data::new(OpenApiJson(Arc::new(json))))
        .app_data(Data::new(table))
        .service(service_routes::openapi_json)
        .service(service_routes::docs)
        .default_service(actix_web::web::to(service_routes::not_found))
        .wrap(from_fn(request_id::seed_paths))
        .wrap(from_fn(request_id::request_id))
}
