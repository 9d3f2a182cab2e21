//! The provider keys API, `/api/v1/settings`: the deployment-wide (global) key of each of five
//! providers, and which provider and model each task uses. Superadmins only.
//!
//! Errors are FastAPI-shaped: `{"detail": "..."}`, and 422 with a list of
//! `{"loc", "msg", "type"}` for anything wrong in the request body.

use std::collections::BTreeSet;

use actix_web::web::{Data, Json, Path};
use actix_web::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::scope::Scope;

use llm_settings_domain::{
    ConfigPatch, ConnectionTest, Error as DomainError, ModelName, Owner, ProviderConfig,
    ProviderId, SecretValue, TaskAssignment, TaskName, UpsertRequest,
};

use super::{base_url_patch, double_option};
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::error::{ApiError, Surface};
use crate::AppState;

const SURFACE: Surface = Surface::ProviderKeys;
/// Tag of this surface in the OpenAPI document.
pub const TAG: &str = "Provider keys";
/// The providers of this surface, in display order.
pub const PROVIDERS: [&str; 5] = ["openai", "gemini", "anthropic", "openrouter", "ollama"];

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
    utoipa_actix_web::scope("/api/v1/settings")
        .app_data(SURFACE)
        .service(list_providers)
        .service(save_provider_key)
        .service(test_provider)
        .service(save_task_assignments)
        .service(get_task_assignments)
}

/// Save-key body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveProviderRequest {
    /// Full API key to store (must not be empty). The `key_hint` handed out keeps the stored key.
    #[schema(value_type = String, format = Password, example = "sk-ant-api03-...")]
    pub api_key: SecretValue,
    /// Optional custom endpoint (a gateway); omitted or `null` means the provider's own.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = json!(null))]
    pub base_url: Option<Option<String>>,
}

/// A provider's key status: never the key, only its hint.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderStatus {
    #[schema(example = "anthropic")]
    pub provider: String,
    /// A usable config is stored (with a key, unless the provider needs none).
    #[schema(example = true)]
    pub is_configured: bool,
    /// The stored config is enabled.
    #[schema(example = true)]
    pub is_active: bool,
    /// First three and last four characters of the stored key.
    #[schema(example = "sk-...cdef")]
    pub key_hint: Option<String>,
}

impl ProviderStatus {
    fn of(provider: ProviderId, config: Option<&ProviderConfig>) -> Self {
        let name = provider.as_str().to_owned();
        match config {
            None => Self {
                provider: name,
                is_configured: false,
                is_active: false,
                key_hint: None,
            },
            Some(c) => Self {
                provider: name,
                is_configured: c.has_primary_secret() || !provider.spec().requires_api_key(),
                is_active: c.enabled,
                key_hint: c.primary_hints().map(|h| h.lead3_last4.clone()),
            },
        }
    }
}

/// The outcome of a connection test of the stored key. A failed test is a 200 with
/// `success: false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderTestResult {
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = true)]
    pub success: bool,
    #[schema(example = "Connection OK")]
    pub message: String,
    #[schema(example = 420)]
    pub latency_ms: u64,
    /// The model whose availability was checked.
    #[schema(example = "claude-sonnet-4-5")]
    pub model: Option<String>,
    #[schema(example = true)]
    pub model_available: bool,
    /// Failure class when the test failed (`invalid_credentials`, `rate_limited` …).
    #[schema(example = json!(null))]
    pub failure: Option<String>,
}

/// One task → provider + model mapping.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskAssignmentItem {
    /// Task name: 1–64 of `A-Z a-z 0-9 _ - . :`.
    #[schema(example = "summarize")]
    pub task: String,
    /// One of openai, gemini, anthropic, openrouter, ollama.
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = "claude-sonnet-4-5")]
    pub model: String,
}

/// Assignments to save; each replaces the one with the same task, others are kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskAssignmentsRequest {
    pub assignments: Vec<TaskAssignmentItem>,
}

/// Every task assignment, ordered by task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskAssignmentsResponse {
    pub assignments: Vec<TaskAssignmentItem>,
}

/// Error body of this surface.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailError {
    #[schema(example = "Invalid provider: xyz")]
    pub detail: String,
}

/// One item of a 422 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationItem {
    /// Where the problem is: `"body"` then the field path.
    #[schema(value_type = Vec<Object>, example = json!(["body", "api_key"]))]
    pub loc: Vec<serde_json::Value>,
    #[schema(example = "api_key must not be empty")]
    pub msg: String,
    #[schema(example = "value_error")]
    #[serde(rename = "type")]
    pub kind: String,
}

/// A 422 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<ValidationItem>,
}

/// Domain errors: field-level validation is a body error (422), everything else keeps its
/// status with a `detail` message.
fn fail(e: DomainError) -> ApiError {
    match &e {
        DomainError::Validation { .. } | DomainError::MaskedSecretMismatch { .. } => {
            ApiError::invalid_body(SURFACE, e.field().map(str::to_owned), e.to_string())
        }
        _ => ApiError::domain(SURFACE, e),
    }
}

fn body_error(field: String, message: impl Into<String>) -> ApiError {
    ApiError::invalid_body(SURFACE, Some(field), message)
}

/// One of this surface's providers, offered by the deployment.
fn surface_provider(state: &AppState, name: &str) -> Option<ProviderId> {
    PROVIDERS
        .contains(&name)
        .then(|| ProviderId::lookup(name))
        .flatten()
        .filter(|p| state.service.catalog().offers(*p))
}

fn provider_in_path(state: &AppState, name: &str) -> Result<ProviderId, ApiError> {
    surface_provider(state, name).ok_or_else(|| {
        let shown = super::shown_name(name);
        ApiError::new(
            SURFACE,
            "validation_error",
            format!("Invalid provider: {shown}"),
        )
    })
}

/// List every provider of this surface with its key status (hints only, no keys).
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One status per provider: openai, gemini, anthropic, openrouter, ollama", body = Vec<ProviderStatus>),
        (status = 401, description = "Missing or invalid token", body = DetailError),
        (status = 403, description = "Not a superadmin", body = DetailError),
    )
)]
#[get("/providers")]
async fn list_providers(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Vec<ProviderStatus>>, ApiError> {
    let configs = state
        .service
        .list_configs(&actor, &Owner::Global)
        .await
        .map_err(fail)?;
    let statuses = PROVIDERS
        .iter()
        .filter_map(|name| surface_provider(&state, name))
        .map(|p| ProviderStatus::of(p, configs.iter().find(|c| c.provider == p)))
        .collect();
    Ok(Json(statuses))
}

/// Save or update a provider's API key: validated non-empty, encrypted, stored, and its hint
/// cached for display.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("provider" = String, Path, description = "One of: openai, gemini, anthropic, openrouter, ollama")),
    request_body = SaveProviderRequest,
    responses(
        (status = 200, description = "Key saved", body = ProviderStatus),
        (status = 400, description = "Invalid provider name", body = DetailError, example = json!({"detail": "Invalid provider: xyz"})),
        (status = 401, description = "Missing or invalid token", body = DetailError),
        (status = 403, description = "Not a superadmin", body = DetailError),
        (status = 422, description = "Empty, missing or malformed api_key", body = ValidationErrorBody),
    )
)]
#[post("/providers/{provider}")]
async fn save_provider_key(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    path: Path<String>,
    JsonBody(body): JsonBody<SaveProviderRequest>,
) -> Result<Json<ProviderStatus>, ApiError> {
    if body.api_key.is_blank() {
        return Err(body_error("api_key".into(), "api_key must not be empty"));
    }
    let provider = provider_in_path(&state, &path)?;
    let mut changes = ConfigPatch {
        base_url: base_url_patch(SURFACE, body.base_url)
            .map_err(|e| body_error("base_url".into(), e.message))?,
        ..ConfigPatch::default()
    };
    changes.secrets.insert("api_key".into(), Some(body.api_key));
    let request = UpsertRequest {
        provider,
        changes,
        make_default: false,
    };
    let outcome = state
        .service
        .upsert_config(&actor, &Owner::Global, request)
        .await
        .map_err(fail)?;
    Ok(Json(ProviderStatus::of(provider, Some(outcome.config()))))
}

/// Test the provider's stored key against the provider.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("provider" = String, Path, description = "One of: openai, gemini, anthropic, openrouter, ollama")),
    responses(
        (status = 200, description = "The test ran; see `success`", body = ProviderTestResult),
        (status = 400, description = "Invalid provider name", body = DetailError),
        (status = 401, description = "Missing or invalid token", body = DetailError),
        (status = 403, description = "Not a superadmin", body = DetailError),
        (status = 404, description = "No key stored for the provider", body = DetailError),
    )
)]
#[post("/providers/{provider}/test")]
async fn test_provider(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    path: Path<String>,
) -> Result<Json<ProviderTestResult>, ApiError> {
    let provider = provider_in_path(&state, &path)?;
    let result = state
        .service
        .test_connection(&actor, &Owner::Global, ConnectionTest::stored(provider))
        .await
        .map_err(fail)?;
    let outcome = result.outcome;
    Ok(Json(ProviderTestResult {
        provider: result.provider.to_string(),
        success: outcome.success,
        message: outcome.message,
        latency_ms: outcome.latency_ms,
        model: result.model,
        model_available: outcome.model_available,
        failure: outcome.failure.map(|f| f.as_str().to_owned()),
    }))
}

fn to_items(assignments: Vec<TaskAssignment>) -> TaskAssignmentsResponse {
    TaskAssignmentsResponse {
        assignments: assignments
            .into_iter()
            .map(|a| TaskAssignmentItem {
                task: a.task.to_string(),
                provider: a.provider.to_string(),
                model: a.model.to_string(),
            })
            .collect(),
    }
}

/// Save task → provider + model mappings; returns every assignment.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    request_body = TaskAssignmentsRequest,
    responses(
        (status = 200, description = "Saved; every assignment", body = TaskAssignmentsResponse),
        (status = 401, description = "Missing or invalid token", body = DetailError),
        (status = 403, description = "Not a superadmin", body = DetailError),
        (status = 422, description = "Empty or malformed task, unknown provider, empty model, or a task given twice", body = ValidationErrorBody),
    )
)]
#[post("/task-assignments")]
async fn save_task_assignments(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    JsonBody(body): JsonBody<TaskAssignmentsRequest>,
) -> Result<Json<TaskAssignmentsResponse>, ApiError> {
    let mut assignments = Vec::with_capacity(body.assignments.len());
    let mut seen = BTreeSet::new();
    for (i, item) in body.assignments.into_iter().enumerate() {
        let at = |field: &str| format!("assignments[{i}].{field}");
        let task = TaskName::parse(item.task).map_err(|e| body_error(at("task"), e.to_string()))?;
        if !seen.insert(task.clone()) {
            return Err(body_error(
                at("task"),
                format!("task {task} is assigned twice"),
            ));
        }
        let provider = surface_provider(&state, &item.provider).ok_or_else(|| {
            body_error(
                at("provider"),
                format!("provider must be one of: {}", PROVIDERS.join(", ")),
            )
        })?;
        let model =
            ModelName::parse(item.model).map_err(|e| body_error(at("model"), e.to_string()))?;
        assignments.push(TaskAssignment {
            task,
            provider,
            model,
        });
    }
    let saved = state
        .service
        .save_task_assignments(&actor, &Owner::Global, assignments)
        .await
        .map_err(fail)?;
    Ok(Json(to_items(saved)))
}

/// Get the current task assignments.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every assignment, ordered by task", body = TaskAssignmentsResponse),
        (status = 401, description = "Missing or invalid token", body = DetailError),
        (status = 403, description = "Not a superadmin", body = DetailError),
    )
)]
#[get("/task-assignments")]
async fn get_task_assignments(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<TaskAssignmentsResponse>, ApiError> {
    let assignments = state
        .service
        .task_assignments(&actor, &Owner::Global)
        .await
        .map_err(fail)?;
    Ok(Json(to_items(assignments)))
}
