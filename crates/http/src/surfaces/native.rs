//! The native settings API: `/users/me/llm-settings` (the calling user's provider configs, seed
//! 000), and the same operations on an instance's configs (`/instances/{instance_id}/llm-settings`,
//! its admins and superadmins) and on the deployment's (`/global/llm-settings`, superadmins).

use std::collections::BTreeMap;

use actix_web::web::Json;
use actix_web::{delete, get, patch, post, put, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::{
    BaseUrl, ConfigId, ConfigPatch, ConnectionTest, ModelName, ProviderConfig, SecretValue,
    TaskName,
};

use super::tasks::{assignments, TaskAssignmentsRequest, TaskAssignmentsResponse};
use super::{double_option, patch, Answer, Reply};
use crate::body::JsonBody;
use crate::caller::{Caller, FromSegment, PathOwner, Segment};
use crate::error::ApiError;
use crate::naming::ProviderNames;
use crate::surface::{DetailCodeError, NATIVE};

/// The caller, acting on the owner the path names (themselves, an instance, the deployment).
type Me = Caller<PathOwner>;

/// The routes of the calling user's settings: the shared ones and the user's audit trail
/// (fixed paths before `/{config_id}`).
pub fn user_routes(config: &mut ServiceConfig<'_>) {
    config.service(super::audit::audit_events);
    routes(config);
}

/// The routes of this surface (fixed paths before `/{config_id}`).
pub fn routes(config: &mut ServiceConfig<'_>) {
    config
        .service(effective)
        .service(get_task_assignments)
        .service(save_task_assignments)
        .service(delete_task_assignment)
        .service(list_providers)
        .service(test_connection)
        .service(list_configs)
        .service(create_config)
        .service(get_config)
        .service(update_config)
        .service(delete_config)
        .service(set_default);
}

/// A BYOK-capable provider and its display metadata.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "anthropic", "name": "Anthropic", "default_model": "claude-sonnet-4-5", "requires_api_key": true, "default_base_url": "https://api.anthropic.com"}))]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub default_model: Option<String>,
    pub requires_api_key: bool,
    /// The endpoint used when a config sets no `base_url`.
    pub default_base_url: Option<String>,
}

/// The provider list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersResponse {
    pub providers: Vec<ProviderInfo>,
    #[schema(example = "anthropic")]
    pub default_provider: Option<String>,
}

/// The last connection test of a stored key.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastTest {
    #[schema(example = "2025-01-05T10:05:00Z")]
    pub tested_at: String,
    pub success: bool,
    #[schema(example = 420)]
    pub latency_ms: u64,
    /// Failure class when the test failed (`invalid_credentials`, `rate_limited` …).
    #[schema(example = json!(null))]
    pub failure: Option<String>,
    #[schema(example = "Connection OK")]
    pub message: String,
}

/// One provider config of the user. The key itself is never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct LlmSettingsResponse {
    #[schema(example = 12)]
    pub id: i64,
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = true)]
    pub api_key_configured: bool,
    #[schema(example = "abcd")]
    pub api_key_last_4: Option<String>,
    #[schema(example = true)]
    pub is_default: bool,
    /// The model in use: the override, or the provider's default.
    #[schema(example = "claude-sonnet-4-5")]
    pub model: Option<String>,
    #[schema(example = json!(null))]
    pub base_url: Option<String>,
    #[schema(example = "2025-01-05T10:00:00Z")]
    pub created_at: String,
    #[schema(example = "2025-01-05T10:00:00Z")]
    pub updated_at: String,
    #[schema(example = true)]
    pub enabled: bool,
    /// Increases with every change; send it back in PATCH to refuse lost updates.
    #[schema(example = 1)]
    pub version: i64,
    pub last_test: Option<LastTest>,
}

impl From<&ProviderConfig> for LlmSettingsResponse {
    fn from(c: &ProviderConfig) -> Self {
        let hints = c.primary_hints();
        Self {
            id: c.id.0,
            provider: c.provider.to_string(),
            api_key_configured: hints.is_some(),
            api_key_last_4: hints.map(|h| h.last4.clone()),
            is_default: c.is_default,
            model: c.effective_model().map(str::to_owned),
            base_url: c.base_url.as_ref().map(|u| u.as_str().to_owned()),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
            enabled: c.enabled,
            version: c.version,
            last_test: c.last_test.as_ref().map(|t| LastTest {
                tested_at: t.at.to_rfc3339(),
                success: t.success,
                latency_ms: t.latency_ms,
                failure: t.failure.map(|f| f.as_str().to_owned()),
                message: t.message.clone(),
            }),
        }
    }
}

/// The user's configs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigList {
    pub configs: Vec<LlmSettingsResponse>,
}

/// Create-or-update body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConfigRequest {
    /// anthropic, openai, deepseek_cloud, gemini, deepseek_local (or another single-key provider).
    #[schema(example = "anthropic")]
    pub provider: String,
    /// Required unless a key is already stored or the provider needs none. A mask handed out
    /// earlier keeps the stored key.
    #[schema(value_type = Option<String>, format = Password, example = "sk-ant-api03-abc123XYZ")]
    pub api_key: Option<SecretValue>,
    /// Overrides the provider's default model; `null` clears the override.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = "claude-sonnet-4-5")]
    pub model: Option<Option<String>>,
    /// Custom endpoint (e.g. an OpenAI-compatible gateway); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = json!(null))]
    pub base_url: Option<Option<String>>,
    /// When true, marks this as the user's default provider.
    #[schema(example = true)]
    pub is_default: Option<bool>,
    /// Disabled configs are kept but never the default.
    pub enabled: Option<bool>,
}

/// Partial update body; only the fields sent change. `provider` and `is_default` cannot change
/// here (delete and recreate, or `POST /{config_id}/set-default`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfigRequest {
    /// A new key, or a mask handed out earlier to keep the stored one; `null` removes an
    /// optional key.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Password)]
    pub api_key: Option<Option<SecretValue>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = "claude-opus-4-1")]
    pub model: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub base_url: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// The version you read; the update is refused with 409 if the config changed since.
    pub version: Option<i64>,
    /// Refused with a message saying what to do instead (delete and recreate); not documented.
    #[schema(ignore)]
    pub provider: Option<serde_json::Value>,
    /// Refused with a message pointing at `POST /{config_id}/set-default`; not documented.
    #[schema(ignore)]
    pub is_default: Option<serde_json::Value>,
}

impl UpdateConfigRequest {
    /// A config's provider and default flag never change through this operation.
    fn refuse_immutable(&self) -> Result<(), ApiError> {
        if self.provider.is_some() {
            return Err(ApiError::invalid(
                "provider cannot be changed; delete the config and create a new one",
            )
            .with_field("provider"));
        }
        if self.is_default.is_some() {
            return Err(ApiError::invalid(
                "is_default cannot be changed here; use POST /{config_id}/set-default",
            )
            .with_field("is_default"));
        }
        Ok(())
    }
}

/// Test-connection body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestConnectionRequest {
    #[schema(example = "anthropic")]
    pub provider: String,
    /// Overrides the stored key for this test (a mask handed out earlier means the stored key).
    #[schema(value_type = Option<String>, format = Password)]
    pub api_key: Option<SecretValue>,
    /// Overrides the stored base URL; a stored key is only sent to another URL if the key is
    /// in the request.
    pub base_url: Option<String>,
    /// The model whose availability is checked (default: the config's model).
    pub model: Option<String>,
}

/// The outcome of a connection test. A failed test is still a 200 with `success: false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestConnectionResponse {
    #[schema(example = true)]
    pub success: bool,
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = "Connection OK")]
    pub message: String,
    #[schema(example = 420)]
    pub latency_ms: u64,
    /// The model checked, when the provider lists it.
    #[schema(example = "claude-sonnet-4-5")]
    pub model_available: Option<String>,
    /// Failure class (`invalid_credentials`, `quota_exhausted`, `rate_limited`, `timeout` …).
    #[schema(example = json!(null))]
    pub failure: Option<String>,
    /// Seconds to wait before retrying, when the provider rate-limited the test.
    #[schema(example = json!(null))]
    pub retry_after_seconds: Option<u64>,
    /// The model ids the provider listed (the first ones), for choosing a model.
    #[schema(example = json!(["claude-sonnet-4-5", "claude-opus-4-1"]))]
    pub models: Vec<String>,
}

/// List the BYOK-capable providers with display metadata.
#[utoipa::path(responses((status = 200, description = "Providers offered", body = ProvidersResponse)))]
#[get("/providers")]
async fn list_providers(c: Me) -> Json<ProvidersResponse> {
    let providers = NATIVE.names.listed(c.catalog());
    Json(ProvidersResponse {
        default_provider: providers.first().map(|p| p.to_string()),
        providers: providers
            .into_iter()
            .map(|p| {
                let spec = p.spec();
                ProviderInfo {
                    id: spec.id.to_owned(),
                    name: spec.display_name.to_owned(),
                    default_model: spec.default_model.map(str::to_owned),
                    requires_api_key: spec.requires_api_key(),
                    default_base_url: spec.default_base_url.map(str::to_owned),
                }
            })
            .collect(),
    })
}

/// List the caller's provider configs (scope `read`).
#[utoipa::path(responses((status = 200, description = "The caller's configs", body = ConfigList)))]
#[get("")]
async fn list_configs(c: Me) -> Reply<ConfigList> {
    let configs = c.configs().await?;
    let configs = configs.iter().map(LlmSettingsResponse::from).collect();
    Ok(Json(ConfigList { configs }))
}

/// One of the caller's configs (scope `read`).
#[utoipa::path(params(("config_id" = i64, Path, description = "Config id")), responses((status = 200, description = "The config", body = LlmSettingsResponse), (status = 404, description = "No such config for the caller", body = DetailCodeError)) )]
#[get("/{config_id}")]
async fn get_config(c: Me, Segment(id): Segment<ConfigId>) -> Reply<LlmSettingsResponse> {
    let config = c.config(id);
    Ok(Json((&config.await?).into()))
}

/// Create or update the caller's config for a provider (scope `write`). Returns 201.
///
/// There is at most one config per provider per user; posting again for the same provider
/// updates the existing row. Refused with 400 beyond the schema: `is_default: true` with
/// `enabled: false`, no `api_key` for a provider that needs one and has none stored, a value
/// shaped like a mask that is not the one handed out for the stored key.
#[utoipa::path(request_body = CreateConfigRequest, responses((status = 201, description = "Created or updated", body = LlmSettingsResponse)) )]
#[post("")]
async fn create_config(c: Me, JsonBody(body): JsonBody<CreateConfigRequest>) -> Answer {
    let provider = NATIVE.names.provider(c.catalog(), &body.provider)?;
    let mut changes = ConfigPatch {
        model: patch(body.model, ModelName::parse)?,
        base_url: patch(body.base_url, |u| BaseUrl::parse(&u))?,
        enabled: body.enabled,
        ..ConfigPatch::default()
    };
    if let Some(key) = body.api_key {
        changes.secrets.insert("api_key".into(), Some(key));
    }
    let config = c
        .upsert(provider, changes, body.is_default == Some(true))
        .await?;
    Ok(HttpResponse::Created().json(LlmSettingsResponse::from(&config)))
}

/// Partially update one of the caller's configs (scope `write`).
///
/// Refused with 400 beyond the schema: `api_key: null` for a provider that needs a key, a
/// value shaped like a mask that is not the one handed out for the stored key; 409 when
/// `version` is not the stored one.
#[utoipa::path(params(("config_id" = i64, Path, description = "Config id")), request_body = UpdateConfigRequest, responses((status = 200, description = "Updated", body = LlmSettingsResponse), (status = 400, description = "Validation error, or an attempt to change provider / is_default", body = DetailCodeError), (status = 404, description = "No such config for the caller", body = DetailCodeError), (status = 409, description = "The config changed since `version`", body = DetailCodeError)) )]
#[patch("/{config_id}")]
async fn update_config(
    c: Me,
    Segment(id): Segment<ConfigId>,
    JsonBody(body): JsonBody<UpdateConfigRequest>,
) -> Reply<LlmSettingsResponse> {
    body.refuse_immutable()?;
    let patch = ConfigPatch {
        secrets: body
            .api_key
            .map(|k| ("api_key".to_owned(), k))
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        model: patch(body.model, ModelName::parse)?,
        base_url: patch(body.base_url, |u| BaseUrl::parse(&u))?,
        enabled: body.enabled,
        expected_version: body.version,
        ..ConfigPatch::default()
    };
    let config = c.update(id, patch).await?;
    Ok(Json((&config).into()))
}

/// Delete one of the caller's configs (scope `write`). Returns 204.
#[utoipa::path(params(("config_id" = i64, Path, description = "Config id")), responses((status = 204, description = "Deleted"), (status = 404, description = "No such config for the caller", body = DetailCodeError)) )]
#[delete("/{config_id}")]
async fn delete_config(c: Me, Segment(id): Segment<ConfigId>) -> Answer {
    c.delete(id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Make a config the caller's default, clearing the flag on the others (scope `write`).
#[utoipa::path(params(("config_id" = i64, Path, description = "Config id")), responses((status = 200, description = "The new default", body = LlmSettingsResponse), (status = 400, description = "The config is disabled", body = DetailCodeError), (status = 404, description = "No such config for the caller", body = DetailCodeError)) )]
#[post("/{config_id}/set-default")]
async fn set_default(c: Me, Segment(id): Segment<ConfigId>) -> Reply<LlmSettingsResponse> {
    let config = c.set_default(id).await?;
    Ok(Json((&config).into()))
}

/// Validate a provider configuration without saving it (scope `write`).
///
/// Pass `api_key` to test a fresh key, or omit it to test the saved key for that provider.
/// Refused with 400 beyond the schema: a `base_url` of another origin than the stored one
/// without `api_key` (a stored key only goes where it was stored for).
#[utoipa::path(request_body = TestConnectionRequest, responses((status = 200, description = "The test ran; see `success`", body = TestConnectionResponse), (status = 404, description = "No key stored and none given", body = DetailCodeError, example = json!({"detail": "no API key is stored for provider anthropic and none was given", "error_code": "provider_not_configured"}))) )]
#[post("/test")]
async fn test_connection(
    c: Me,
    JsonBody(body): JsonBody<TestConnectionRequest>,
) -> Reply<TestConnectionResponse> {
    let mut test = ConnectionTest::stored(NATIVE.names.provider(c.catalog(), &body.provider)?);
    test.secrets
        .extend(body.api_key.map(|k| ("api_key".to_owned(), k)));
    test.base_url = body.base_url.as_deref().map(BaseUrl::parse).transpose()?;
    test.model = body.model.map(ModelName::parse).transpose()?;
    let result = c.test(test).await?;
    let outcome = result.outcome;
    let message = match (&result.model, outcome.success, outcome.model_available) {
        (_, false, _) => outcome.message,
        (Some(model), true, false) => {
            format!("Connection OK; model {model} is not in the provider's model list")
        }
        _ => "Connection OK".to_owned(),
    };
    Ok(Json(TestConnectionResponse {
        success: outcome.success,
        provider: result.provider.to_string(),
        message,
        latency_ms: outcome.latency_ms,
        model_available: result.model.filter(|_| outcome.model_available),
        failure: outcome.failure.map(|f| f.as_str().to_owned()),
        retry_after_seconds: outcome.retry_after_secs,
        models: outcome.models,
    }))
}

/// Which credential is used: the owner whose config it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveSource {
    /// `user`, `instance` or `global`.
    #[schema(example = "instance")]
    pub owner: String,
    /// The instance, when the config is an instance's.
    #[schema(example = "acme")]
    pub instance_id: Option<String>,
    #[schema(example = 12)]
    pub config_id: i64,
}

/// What a call would use (never the key).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"provider": "openai", "model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1", "source": {"owner": "instance", "instance_id": "acme", "config_id": 12}, "task": "summarize"}))]
pub struct EffectiveResponse {
    pub provider: String,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub source: EffectiveSource,
    /// The task whose assignment picked provider and model.
    pub task: Option<String>,
}

impl From<&llm_settings_domain::ResolvedSource> for EffectiveSource {
    fn from(source: &llm_settings_domain::ResolvedSource) -> Self {
        Self {
            owner: source.owner.kind().as_str().to_owned(),
            instance_id: match &source.owner {
                llm_settings_domain::Owner::Instance(id) => Some(id.to_string()),
                _ => None,
            },
            config_id: source.config_id.0,
        }
    }
}

impl From<llm_settings_domain::Resolution> for EffectiveResponse {
    fn from(r: llm_settings_domain::Resolution) -> Self {
        Self {
            provider: r.provider.to_string(),
            source: (&r.source).into(),
            model: r.model,
            base_url: r.base_url,
            task: r.task.map(|t| t.to_string()),
        }
    }
}

/// Query of the effective view.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EffectiveQuery {
    /// A task whose assignment picks provider and model.
    pub task: Option<String>,
    /// A provider (instead of the default one); not with `task`.
    pub provider: Option<String>,
}

/// What a call for this owner would use — provider, model, endpoint and whose credential
/// (scope `read`), never the key: for the caller, their own key, else their instance's (the
/// token's `instance`), else the deployment's. 404 `provider_not_configured` when nothing
/// fits, `task_not_assigned` when no level assigns the task. `task` and `provider` together
/// are refused with 400 (a task's assignment names the provider).
#[utoipa::path(params(EffectiveQuery), responses((status = 200, description = "What a call would use", body = EffectiveResponse), (status = 404, description = "No enabled config fits, or the task is not assigned", body = DetailCodeError)))]
#[get("/effective")]
async fn effective(c: Me, query: crate::body::Query<EffectiveQuery>) -> Reply<EffectiveResponse> {
    let query = query.into_inner();
    let task = query
        .task
        .map(TaskName::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).with_field("task"))?;
    let provider = query
        .provider
        .map(|p| NATIVE.names.provider(c.catalog(), &p))
        .transpose()?;
    Ok(Json(c.effective(task, provider).await?.into()))
}

/// The owner's task assignments (scope `read`).
#[utoipa::path(responses((status = 200, description = "Every assignment, ordered by task", body = TaskAssignmentsResponse)))]
#[get("/task-assignments")]
async fn get_task_assignments(c: Me) -> Reply<TaskAssignmentsResponse> {
    let assignments = c.tasks().await?;
    Ok(Json(TaskAssignmentsResponse::of(
        assignments,
        &NATIVE.names,
    )))
}

/// Save task → provider + model assignments (scope `write`): each replaces the one with the
/// same task, others are kept; returns every assignment. A task given twice is refused with
/// 400.
#[utoipa::path(request_body = TaskAssignmentsRequest, responses((status = 200, description = "Saved; every assignment", body = TaskAssignmentsResponse), (status = 400, description = "Empty or malformed task, unknown provider, empty model, or a task given twice", body = DetailCodeError)))]
#[put("/task-assignments")]
async fn save_task_assignments(
    c: Me,
    JsonBody(body): JsonBody<TaskAssignmentsRequest>,
) -> Reply<TaskAssignmentsResponse> {
    let assignments = assignments(c.catalog(), &NATIVE.names, body.assignments)?;
    let saved = c.save_tasks(assignments).await?;
    Ok(Json(TaskAssignmentsResponse::of(saved, &NATIVE.names)))
}

/// A task named in the path.
struct TaskSegment(TaskName);

impl FromSegment for TaskSegment {
    const NAME: &'static str = "task";

    fn from_segment(_: &actix_web::HttpRequest, segment: &str) -> Result<Self, ApiError> {
        TaskName::parse(segment)
            .map(Self)
            .map_err(|_| ApiError::not_found("no such task assignment"))
    }
}

/// Remove the owner's assignment of a task (scope `write`). Returns 204.
#[utoipa::path(params(("task" = String, Path, description = "Task name")), responses((status = 204, description = "Removed"), (status = 404, description = "No assignment of this task", body = DetailCodeError)))]
#[delete("/task-assignments/{task}")]
async fn delete_task_assignment(c: Me, Segment(TaskSegment(task)): Segment<TaskSegment>) -> Answer {
    c.delete_task(&task).await?;
    Ok(HttpResponse::NoContent().finish())
}
