//! The actix-web transport of the LLM settings service.
//!
//! Every API surface is a thin module over the one [`SettingsService`]; routes are registered
//! once through `utoipa-actix-web`, so the served OpenAPI document is generated from the same
//! registry that routes requests.

pub mod auth;
pub mod body;
pub mod caller;
mod contract;
pub mod cors;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod naming;
pub mod request_id;
mod service_routes;
pub mod surface;
pub mod surfaces;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::web::Data;
use actix_web::App;
use async_trait::async_trait;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::Required;
use utoipa::openapi::{Components, ContentBuilder, InfoBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::ToSchema;
use utoipa_actix_web::{AppExt, UtoipaApp};

use llm_settings_domain::SettingsService;

pub use auth::{Audience, Authenticator, Claims, TokenIssuer};
pub use error::ApiError;
pub use surface::{Surface, SURFACES};

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
    /// How long a client may take to send a request body.
    pub request_timeout: Duration,
    /// Origins whose pages may call the API from a browser.
    pub cors_origins: cors::Origins,
    /// Largest request body the gateway forwards.
    pub gateway_max_body_bytes: usize,
    /// Origins whose pages may frame the settings page (none by default).
    pub frame_ancestors: cors::Origins,
    /// Budgets of connection tests, gateway calls, resolutions and failed authentications.
    pub limits: limits::RateLimits,
    /// The recorder `/metrics` renders on this listener; `None` when metrics are served on a
    /// separate address (or not at all).
    pub metrics: Option<metrics::Scrape>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The served OpenAPI document, serialized once per worker.
#[derive(Debug, Clone)]
pub struct OpenApiJson(pub Arc<String>);

/// Registers every documented route of every surface. The one registry of the service.
fn routes<T>(mut app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    for surface in SURFACES {
        app = if surface.prefix.is_empty() {
            app.configure(surface.routes)
        } else {
            app.service(utoipa_actix_web::scope(surface.prefix).configure(surface.routes))
        };
    }
    app
}

/// The error bodies every operation can answer with, beside those its handler documents.
fn common_errors(surface: &Surface, op: &Operation) -> Vec<(StatusCode, &'static str)> {
    let mut errors = Vec::new();
    if surface.needs_token() {
        errors.push((StatusCode::UNAUTHORIZED, "Missing or invalid bearer token"));
        errors.push((StatusCode::FORBIDDEN, surface.forbidden));
        errors.push((
            StatusCode::TOO_MANY_REQUESTS,
            "Over a rate limit: connection tests, gateway calls or resolutions of the token's subject, or refused tokens from this address; `Retry-After` gives the seconds to wait",
        ));
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    if params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Header))
    {
        errors.push((
            StatusCode::BAD_REQUEST,
            "A query parameter or header is malformed, or a query parameter is unknown (it is named)",
        ));
    }
    if params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path))
    {
        errors.push((
            StatusCode::NOT_FOUND,
            "Nothing of the caller's at this path (a path parameter names nothing)",
        ));
    }
    if op.request_body.is_some() {
        errors.extend([
            (
                surface.shape.body_error_status(),
                "The body is not one JSON document of the expected type (a field is named)",
            ),
            (StatusCode::PAYLOAD_TOO_LARGE, "The body is over 64 KiB"),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The body is not declared as `application/json`",
            ),
        ]);
    }
    errors
}

/// Tags, operation ids, security and the common error responses of each operation, from the
/// surface table.
fn document_operation(surface: &Surface, op: &mut Operation) {
    if let Some(id) = &op.operation_id {
        op.operation_id = Some(format!("{}_{id}", surface.operation_prefix));
    }
    op.tags = Some(vec![surface.tag.to_owned()]);
    for name in surface.prefix_params() {
        let parameters = op.parameters.get_or_insert_with(Vec::new);
        if parameters.iter().all(|p| p.name != name) {
            parameters.insert(
                0,
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some("The tenant instance"))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(255))
                            .pattern(Some(r"^[^\s/]+$")),
                    ))
                    .build(),
            );
        }
    }
    if let Some(parameters) = op.parameters.as_mut() {
        contract::constrain_parameters(surface, parameters);
    }
    if surface.needs_token() {
        op.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
    for (status, description) in common_errors(surface, op) {
        let schema = surface.shape.schema_name(status);
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            );
        }
        let response = response.build();
        op.responses
            .responses
            .entry(status.as_u16().to_string())
            .or_insert_with(|| response.into());
    }
}

fn add_schema<T: ToSchema>(components: &mut Components) {
    let mut schemas = Vec::new();
    T::schemas(&mut schemas);
    components.schemas.extend(schemas);
    components
        .schemas
        .insert(T::name().into_owned(), T::schema());
}

fn finish(mut api: OpenApi) -> OpenApi {
    let components = api.components.get_or_insert_with(Default::default);
    // Reached only through a hand-written schema (`ai.providers` of an update).
    add_schema::<surfaces::app_settings::ProviderEntryPatch>(components);
    let mut body_providers = contract::BodyProviders::default();
    for (path, item) in api.paths.paths.iter_mut() {
        let surface = Surface::of_path(path);
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
            document_operation(surface, op);
            let body = op
                .request_body
                .as_ref()
                .and_then(|b| b.content.get("application/json"));
            if let Some(schema) = body.and_then(|c| c.schema.as_ref()) {
                body_providers.record(surface, schema, components);
            }
        }
    }
    body_providers.apply(components);
    contract::require_response_fields(&mut api);
    api.info = InfoBuilder::new()
        .title("LLM Settings Service")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Stores LLM provider credentials (bring your own key) for users, tenant instances and the whole deployment. Keys are encrypted at rest and never returned: responses carry masked hints only.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    add_schema::<surface::DetailCodeError>(components);
    add_schema::<surface::DetailError>(components);
    add_schema::<surface::ValidationErrorBody>(components);
    add_schema::<surface::ErrorObject>(components);
    add_schema::<surface::OkFalseError>(components);
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
        SURFACES
            .iter()
            .map(|s| {
                TagBuilder::new()
                    .name(s.tag)
                    .description(Some(s.description))
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
        .service(metrics::metrics_route)
        .configure(web::routes)
        .default_service(actix_web::web::to(service_routes::not_found))
        .wrap(from_fn(surface::render_errors))
        .wrap(from_fn(cors::cors))
        .wrap(from_fn(metrics::record_requests))
        .wrap(from_fn(request_id::seed_paths))
        .wrap(from_fn(request_id::request_id))
}
