//! The provider keys API, `/api/v1/settings`: the deployment-wide (global) key of each of five
//! providers, and which provider and model each task uses. Superadmins only.
//!
//! Errors are FastAPI-shaped: `{"detail": "..."}`, and 422 with a list of
//! `{"loc", "msg", "type"}` for anything wrong in the request body.

use actix_web::get;
use actix_web::post;
use actix_web::web::{Json, Path};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::error::shown;
use llm_settings_domain::{
    BaseUrl, ConfigPatch, ConnectionTest, ProviderConfig, ProviderId, SecretValue,
};

use super::tasks::{assignments, DeploymentTaskAssignmentsRequest, TaskAssignmentsResponse};
use super::{double_option, patch, Reply};
use crate::body::JsonBody;
use crate::caller::{Caller, Deployment};
use crate::error::ApiError;
use crate::naming::ProviderNames;
use crate::surface::{DetailError, ValidationErrorBody, PROVIDER_KEYS};

/// A caller acting on the deployment's keys (the domain lets only superadmins).
type Global = Caller<Deployment>;

/// The routes of this surface.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config
        .service(list_providers)
        .service(save_provider_key)
        .service(test_provider)
        .service(save_task_assignments)
        .service(get_task_assignments);
}

/// Save-key body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveProviderRequest {
    /// Full API key to store (must not be empty). The `key_hint` handed out keeps the stored key.
    #[schema(value_type = String, format = Password, example = "sk-ant-api03-abc123XYZ")]
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

/// A provider named in the path; anything else is the seed's 400.
fn provider_in_path(c: &Global, name: &str) -> Result<ProviderId, ApiError> {
    PROVIDER_KEYS
        .names
        .provider(c.catalog(), name)
        .map_err(|_| ApiError::invalid(format!("Invalid provider: {}", shown(name))))
}

/// List every provider of this surface with its key status (hints only, no keys).
#[utoipa::path(responses((status = 200, description = "One status per provider: openai, gemini, anthropic, openrouter, ollama", body = Vec<ProviderStatus>)))]
#[get("/providers")]
async fn list_providers(c: Global) -> Reply<Vec<ProviderStatus>> {
    let configs = c.configs().await?;
    let listed = PROVIDER_KEYS.names.listed(c.catalog());
    let status = |p: ProviderId| ProviderStatus::of(p, configs.iter().find(|c| c.provider == p));
    Ok(Json(listed.into_iter().map(status).collect()))
}

/// Save or update a provider's API key: validated non-empty, encrypted, stored, and its hint
/// cached for display.
#[utoipa::path(params(("provider" = String, Path, description = "One of: openai, gemini, anthropic, openrouter, ollama")), request_body = SaveProviderRequest, responses((status = 200, description = "Key saved", body = ProviderStatus), (status = 400, description = "Invalid provider name", body = DetailError, example = json!({"detail": "Invalid provider: xyz"})), (status = 422, description = "Empty, missing or malformed api_key", body = ValidationErrorBody)) )]
#[post("/providers/{provider}")]
async fn save_provider_key(
    c: Global,
    path: Path<String>,
    JsonBody(body): JsonBody<SaveProviderRequest>,
) -> Reply<ProviderStatus> {
    if body.api_key.is_blank() {
        return Err(ApiError::invalid_field(
            "api_key",
            "api_key must not be empty",
        ));
    }
    let provider = provider_in_path(&c, &path)?;
    let base_url = patch(body.base_url, |u| BaseUrl::parse(&u))
        .map_err(|e| ApiError::invalid_field("base_url", e.message))?;
    let mut changes = ConfigPatch {
        base_url,
        ..ConfigPatch::default()
    };
    changes.secrets.insert("api_key".into(), Some(body.api_key));
    let config = c.upsert(provider, changes, false).await?;
    Ok(Json(ProviderStatus::of(provider, Some(&config))))
}

/// Test the provider's stored key against the provider.
#[utoipa::path(params(("provider" = String, Path, description = "One of: openai, gemini, anthropic, openrouter, ollama")), responses((status = 200, description = "The test ran; see `success`", body = ProviderTestResult), (status = 400, description = "Invalid provider name", body = DetailError), (status = 404, description = "No key stored for the provider", body = DetailError)) )]
#[post("/providers/{provider}/test")]
async fn test_provider(c: Global, path: Path<String>) -> Reply<ProviderTestResult> {
    let test = ConnectionTest::stored(provider_in_path(&c, &path)?);
    let result = c.test(test).await?;
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

/// Save task → provider + model mappings; returns every assignment.
#[utoipa::path(request_body = DeploymentTaskAssignmentsRequest, responses((status = 200, description = "Saved; every assignment", body = TaskAssignmentsResponse), (status = 422, description = "Empty or malformed task, unknown provider, empty model, or a task given twice", body = ValidationErrorBody, example = json!({"detail": [{"loc": ["body", "assignments", 1, "task"], "msg": "task summarize is assigned twice", "type": "value_error"}]}))))]
#[post("/task-assignments")]
async fn save_task_assignments(
    c: Global,
    JsonBody(body): JsonBody<DeploymentTaskAssignmentsRequest>,
) -> Reply<TaskAssignmentsResponse> {
    let names = &PROVIDER_KEYS.names;
    let items = body.assignments.into_iter().map(Into::into).collect();
    let assignments = assignments(c.catalog(), names, items)?;
    let saved = c.save_tasks(assignments).await?;
    Ok(Json(TaskAssignmentsResponse::of(saved, names)))
}

/// Get the current task assignments.
#[utoipa::path(responses((status = 200, description = "Every assignment, ordered by task", body = TaskAssignmentsResponse)))]
#[get("/task-assignments")]
async fn get_task_assignments(c: Global) -> Reply<TaskAssignmentsResponse> {
    let assignments = c.tasks().await?;
    Ok(Json(TaskAssignmentsResponse::of(
        assignments,
        &PROVIDER_KEYS.names,
    )))
}
