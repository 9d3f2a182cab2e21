//! The admin AI configuration API, `/llm-config/`: the active provider config of the whole
//! deployment, or of the tenant instance named by `X-Instance-Id`. Superadmins only.
//!
//! "The" configuration of a scope is its default provider config, so a key saved as the
//! global default through the provider keys API, or as an instance's default through the
//! provider configuration API, is what this surface shows.

use actix_web::web::{Data, Json};
use actix_web::{delete, get, patch, post, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::scope::Scope;

use llm_settings_domain::{
    Actor, ConfigPatch, ConnectionTest, Error as DomainError, InstanceId, ModelName, Owner, Patch,
    ProviderConfig, ProviderId, Role, SecretValue, UpsertRequest,
};

use super::{base_url_patch, double_option, single_key_provider};
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::error::{ApiError, Surface};
use crate::AppState;

const SURFACE: Surface = Surface::Admin;
/// Tag of this surface in the OpenAPI document.
pub const TAG: &str = "Admin AI configuration";
/// Header naming the tenant instance; absent means the global (control-plane) config.
pub const INSTANCE_HEADER: &str = "X-Instance-Id";

/// The routes of this surface.
pub fn scope() -> Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/llm-config")
        .app_data(SURFACE)
        .service(get_config)
        .service(create_config)
        .service(update_config)
        .service(delete_config)
        .service(test_connection)
}

/// The active AI configuration of a scope. The key itself is never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct AiConfigResponse {
    /// Config id (the same config is listed by the other surfaces of its owner).
    #[schema(example = "12")]
    pub id: String,
    #[schema(example = "anthropic")]
    pub provider: String,
    /// The model in use: the one set, or the provider's default.
    #[schema(example = "claude-sonnet-4-20250514")]
    pub model: Option<String>,
    /// Vendor prefix and last four characters; `null` for a provider that needs no key and has none.
    #[schema(example = "sk-...XXXX")]
    pub api_key_masked: Option<String>,
    /// The tenant instance, or `null` for the global config.
    #[schema(example = json!(null))]
    pub instance_id: Option<String>,
    #[schema(example = "2026-02-27T10:00:00Z")]
    pub created_at: String,
    #[schema(example = "2026-02-27T15:00:00Z")]
    pub updated_at: String,
}

impl From<&ProviderConfig> for AiConfigResponse {
    fn from(c: &ProviderConfig) -> Self {
        Self {
            id: c.id.to_string(),
            provider: c.provider.to_string(),
            model: c.effective_model().map(str::to_owned),
            api_key_masked: c.primary_hints().map(|h| h.vendor_last4.clone()),
            instance_id: match &c.owner {
                Owner::Instance(id) => Some(id.to_string()),
                _ => None,
            },
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

/// Create body. All three fields are required (the key only for providers that need one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAiConfigRequest {
    /// LLM provider: anthropic, openai, gemini, deepseek_cloud, openrouter, xai, mistral, groq, ollama …
    #[schema(example = "anthropic")]
    pub provider: String,
    /// Model identifier.
    #[schema(example = "claude-sonnet-4-20250514")]
    pub model: String,
    /// Provider API key (stored encrypted). Only providers that need no key (ollama,
    /// deepseek_local) may omit it.
    #[schema(value_type = String, format = Password, example = "sk-ant-...")]
    pub api_key: Option<SecretValue>,
    /// Optional custom endpoint (a gateway); omitted or `null` means the provider's own.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = json!(null))]
    pub base_url: Option<Option<String>>,
}

/// Update body: any combination of provider, model and key; only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAiConfigRequest {
    /// A different provider moves the configuration to it; that needs the new provider's
    /// `api_key` too (a stored key belongs to its provider) unless it needs none.
    #[schema(example = json!(null))]
    pub provider: Option<String>,
    #[schema(example = "claude-sonnet-4-20250514")]
    pub model: Option<String>,
    /// A new key, or the `api_key_masked` value to keep the stored one.
    #[schema(value_type = Option<String>, format = Password, example = "sk-ant-new-key...")]
    pub api_key: Option<SecretValue>,
    /// A custom endpoint, or `null` for the provider's own. Moving a stored key to another
    /// host needs `api_key` in the same request.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = json!(null))]
    pub base_url: Option<Option<String>>,
}

/// The outcome of a connection test of the stored credentials. A failed test is a 200 with
/// `success: false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AiTestResponse {
    #[schema(example = true)]
    pub success: bool,
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = "claude-sonnet-4-20250514")]
    pub model: Option<String>,
    #[schema(example = "Connection successful")]
    pub message: String,
    #[schema(example = 420)]
    pub latency_ms: u64,
    /// Failure class when the test failed (`invalid_credentials`, `rate_limited` …).
    #[schema(example = json!(null))]
    pub failure: Option<String>,
}

/// Error body of this surface.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminError {
    #[schema(example = "No AI configuration found for this scope")]
    pub detail: String,
    #[schema(example = "not_found")]
    pub error_code: String,
    /// The offending field, for validation errors.
    pub field: Option<String>,
}

fn fail(e: DomainError) -> ApiError {
    ApiError::domain(SURFACE, e)
}

/// The caller must be a superadmin; the domain then authorizes the owner itself.
fn superadmin(actor: &Actor) -> Result<(), ApiError> {
    actor
        .require_role(Role::Superadmin, "the AI configuration API")
        .map_err(fail)
}

/// The scope of the request: the instance in `X-Instance-Id`, or global without the header.
fn scope_owner(req: &HttpRequest) -> Result<Owner, ApiError> {
    let Some(value) = req.headers().get(INSTANCE_HEADER) else {
        return Ok(Owner::Global);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| InstanceId::parse(v).ok())
        .map(Owner::Instance)
        .ok_or_else(|| {
            ApiError::new(
                SURFACE,
                "validation_error",
                format!("{INSTANCE_HEADER} must be 1 to 255 visible characters without surrounding spaces; omit it for the global configuration"),
            )
            .with_field(INSTANCE_HEADER)
        })
}

fn resolve(state: &AppState, name: &str) -> Result<ProviderId, ApiError> {
    let provider = state
        .service
        .catalog()
        .resolve(name)
        .map_err(|e| fail(e).with_field("provider"))?;
    if !single_key_provider(provider) {
        return Err(ApiError::new(
            SURFACE,
            "validation_error",
            format!("provider {provider} needs more than an API key; configure it through the provider configuration API"),
        )
        .with_field("provider"));
    }
    Ok(provider)
}

fn no_config(message: &str) -> ApiError {
    ApiError::new(SURFACE, "not_found", message)
}

async fn active(
    state: &AppState,
    actor: &Actor,
    owner: &Owner,
) -> Result<Option<ProviderConfig>, ApiError> {
    state
        .service
        .default_config(actor, owner)
        .await
        .map_err(fail)
}

/// Return the current AI configuration of the scope with a masked API key, or `null`.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("X-Instance-Id" = Option<String>, Header, description = "Tenant instance; absent means the global (control-plane) config")),
    responses(
        (status = 200, description = "The active configuration, or `null` when there is none", body = Option<AiConfigResponse>),
        (status = 400, description = "Malformed `X-Instance-Id`", body = AdminError),
        (status = 401, description = "Missing or invalid token", body = AdminError),
        (status = 403, description = "Not a superadmin", body = AdminError),
    )
)]
#[get("/")]
async fn get_config(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    superadmin(&actor)?;
    let owner = scope_owner(&req)?;
    let config = active(&state, &actor, &owner).await?;
    Ok(HttpResponse::Ok().json(config.as_ref().map(AiConfigResponse::from)))
}

/// Create the AI configuration of the scope. Returns 201; 409 if the scope already has one.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("X-Instance-Id" = Option<String>, Header, description = "Tenant instance; absent means the global (control-plane) config")),
    request_body = CreateAiConfigRequest,
    responses(
        (status = 201, description = "Created", body = AiConfigResponse),
        (status = 400, description = "Validation error", body = AdminError),
        (status = 401, description = "Missing or invalid token", body = AdminError),
        (status = 403, description = "Not a superadmin", body = AdminError),
        (status = 409, description = "Configuration already exists for this scope", body = AdminError),
    )
)]
#[post("/")]
async fn create_config(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
    JsonBody(body): JsonBody<CreateAiConfigRequest>,
) -> Result<HttpResponse, ApiError> {
    superadmin(&actor)?;
    let owner = scope_owner(&req)?;
    let provider = resolve(&state, &body.provider)?;
    let model = ModelName::parse(body.model).map_err(fail)?;
    if active(&state, &actor, &owner).await?.is_some() {
        return Err(ApiError::new(
            SURFACE,
            "conflict",
            "Configuration already exists for this scope; change it with PATCH or delete it first",
        ));
    }
    let mut changes = ConfigPatch {
        model: Patch::Set(model),
        base_url: base_url_patch(SURFACE, body.base_url)?,
        ..ConfigPatch::default()
    };
    if let Some(key) = body.api_key {
        changes.secrets.insert("api_key".into(), Some(key));
    }
    let request = UpsertRequest {
        provider,
        changes,
        make_default: true,
    };
    let outcome = state
        .service
        .upsert_config(&actor, &owner, request)
        .await
        .map_err(fail)?;
    Ok(HttpResponse::Created().json(AiConfigResponse::from(outcome.config())))
}

/// Update any combination of provider, model or API key of the scope's configuration.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("X-Instance-Id" = Option<String>, Header, description = "Tenant instance; absent means the global (control-plane) config")),
    request_body = UpdateAiConfigRequest,
    responses(
        (status = 200, description = "Updated", body = AiConfigResponse),
        (status = 400, description = "Validation error (e.g. a new provider without its key)", body = AdminError),
        (status = 401, description = "Missing or invalid token", body = AdminError),
        (status = 403, description = "Not a superadmin", body = AdminError),
        (status = 404, description = "No configuration found", body = AdminError),
    )
)]
#[patch("/")]
async fn update_config(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
    JsonBody(body): JsonBody<UpdateAiConfigRequest>,
) -> Result<Json<AiConfigResponse>, ApiError> {
    superadmin(&actor)?;
    let owner = scope_owner(&req)?;
    let target = body
        .provider
        .as_deref()
        .map(|p| resolve(&state, p))
        .transpose()?;
    let model = body.model.map(ModelName::parse).transpose().map_err(fail)?;
    let current = active(&state, &actor, &owner)
        .await?
        .ok_or_else(|| no_config("No configuration found"))?;
    let mut changes = ConfigPatch {
        model: model.map_or(Patch::Keep, Patch::Set),
        base_url: base_url_patch(SURFACE, body.base_url)?,
        ..ConfigPatch::default()
    };
    if let Some(key) = body.api_key {
        changes.secrets.insert("api_key".into(), Some(key));
    }
    let config = match target.filter(|p| *p != current.provider) {
        Some(to) => state
            .service
            .switch_provider(&actor, &owner, current.id, to, changes)
            .await
            .map_err(fail)?,
        None if changes.secrets.is_empty()
            && changes.model.is_keep()
            && changes.base_url.is_keep() =>
        {
            current
        }
        None => state
            .service
            .update_config(&actor, &owner, current.id, changes)
            .await
            .map_err(fail)?,
    };
    Ok(Json((&config).into()))
}

/// Remove the scope's AI configuration. AI features stay off until a new one is created.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("X-Instance-Id" = Option<String>, Header, description = "Tenant instance; absent means the global (control-plane) config")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = AdminError),
        (status = 403, description = "Not a superadmin", body = AdminError),
        (status = 404, description = "No configuration found", body = AdminError),
    )
)]
#[delete("/")]
async fn delete_config(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    superadmin(&actor)?;
    let owner = scope_owner(&req)?;
    let current = active(&state, &actor, &owner)
        .await?
        .ok_or_else(|| no_config("No configuration found"))?;
    state
        .service
        .delete_config(&actor, &owner, current.id)
        .await
        .map_err(fail)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Test the stored credentials by calling the provider's models API.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("X-Instance-Id" = Option<String>, Header, description = "Tenant instance; absent means the global (control-plane) config")),
    responses(
        (status = 200, description = "The test ran; see `success`", body = AiTestResponse),
        (status = 401, description = "Missing or invalid token", body = AdminError),
        (status = 403, description = "Not a superadmin", body = AdminError),
        (status = 404, description = "No configuration found to test", body = AdminError),
    )
)]
#[post("/test-connection")]
async fn test_connection(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
) -> Result<Json<AiTestResponse>, ApiError> {
    superadmin(&actor)?;
    let owner = scope_owner(&req)?;
    let current = active(&state, &actor, &owner)
        .await?
        .ok_or_else(|| no_config("No configuration found to test"))?;
    let result = state
        .service
        .test_connection(&actor, &owner, ConnectionTest::stored(current.provider))
        .await
        .map_err(fail)?;
    let outcome = result.outcome;
    Ok(Json(AiTestResponse {
        success: outcome.success,
        provider: result.provider.to_string(),
        model: result.model,
        message: if outcome.success {
            "Connection successful".to_owned()
        } else {
            outcome.message
        },
        latency_ms: outcome.latency_ms,
        failure: outcome.failure.map(|f| f.as_str().to_owned()),
    }))
}
