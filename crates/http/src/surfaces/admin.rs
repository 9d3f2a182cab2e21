//! The admin AI configuration API, `/llm-config/`: the active provider config of the whole
//! deployment, or of the tenant instance named by `X-Instance-Id`. Superadmins only.
//!
//! "The" configuration of a scope is its default provider config, so a key saved as the
//! global default through the provider keys API, or as an instance's default through the
//! provider configuration API, is what this surface shows.

use actix_web::web::Json;
use actix_web::{delete, get, patch, post, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::{
    BaseUrl, ConfigPatch, ConnectionTest, ModelName, Owner, Patch, ProviderConfig, SecretValue,
};

use super::{double_option, patch, Answer, Reply};
use crate::body::JsonBody;
use crate::caller::{Caller, HeaderInstance};
use crate::error::ApiError;
use crate::naming::ProviderNames;
use crate::surface::{DetailCodeError, ADMIN};

/// A superadmin acting on the instance in `X-Instance-Id`, or on global without it.
type Scoped = Caller<HeaderInstance>;

/// The routes of this surface.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config
        .service(get_config)
        .service(create_config)
        .service(update_config)
        .service(delete_config)
        .service(test_connection);
}

/// The scope a request acts on.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct InstanceHeader {
    /// Tenant instance; absent means the global (control-plane) config.
    #[param(rename = "X-Instance-Id")]
    pub instance: Option<String>,
}

/// The active AI configuration of a scope. The key itself is never returned.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "12", "provider": "anthropic", "model": "claude-sonnet-4-20250514", "api_key_masked": "sk-...XXXX", "instance_id": null, "created_at": "2026-02-27T10:00:00Z", "updated_at": "2026-02-27T15:00:00Z"}))]
pub struct AiConfigResponse {
    /// Config id (the same config is listed by the other surfaces of its owner).
    pub id: String,
    pub provider: String,
    /// The model in use: the one set, or the provider's default.
    pub model: Option<String>,
    /// Vendor prefix and last four characters; `null` for a provider that needs no key and has none.
    pub api_key_masked: Option<String>,
    /// The tenant instance, or `null` for the global config.
    pub instance_id: Option<String>,
    pub created_at: String,
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
    #[schema(value_type = String, format = Password, example = "sk-ant-api03-abc123XYZ")]
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
    #[schema(value_type = Option<String>, format = Password, example = "sk-ant-api03-newkey456")]
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

impl Scoped {
    /// The scope's active configuration, or 404 with `message`.
    async fn current(&self, message: &str) -> Result<ProviderConfig, ApiError> {
        let active = self.default_config().await?;
        active.ok_or_else(|| ApiError::not_found(message))
    }
}

/// The request's key, if it carries one, as the config's `api_key` change.
fn with_key(mut changes: ConfigPatch, key: Option<SecretValue>) -> ConfigPatch {
    changes
        .secrets
        .extend(key.map(|k| ("api_key".to_owned(), Some(k))));
    changes
}

/// Return the current AI configuration of the scope with a masked API key, or `null`.
#[utoipa::path(params(InstanceHeader), responses((status = 200, description = "The active configuration, or `null` when there is none", body = Option<AiConfigResponse>), (status = 400, description = "Malformed `X-Instance-Id`", body = DetailCodeError)) )]
#[get("/")]
async fn get_config(c: Scoped) -> Answer {
    let config = c.default_config().await?;
    Ok(HttpResponse::Ok().json(config.as_ref().map(AiConfigResponse::from)))
}

/// Create the AI configuration of the scope. Returns 201; 409 if the scope already has one.
#[utoipa::path(params(InstanceHeader), request_body = CreateAiConfigRequest, responses((status = 201, description = "Created", body = AiConfigResponse), (status = 409, description = "Configuration already exists for this scope", body = DetailCodeError)) )]
#[post("/")]
async fn create_config(c: Scoped, JsonBody(body): JsonBody<CreateAiConfigRequest>) -> Answer {
    let provider = ADMIN.names.provider(c.catalog(), &body.provider)?;
    let model = ModelName::parse(body.model)?;
    let changes = ConfigPatch {
        model: Patch::Set(model),
        base_url: patch(body.base_url, |u| BaseUrl::parse(&u))?,
        ..ConfigPatch::default()
    };
    let config = c.create_active(provider, with_key(changes, body.api_key));
    let config = config.await?;
    Ok(HttpResponse::Created().json(AiConfigResponse::from(&config)))
}

/// Update any combination of provider, model or API key of the scope's configuration.
#[utoipa::path(params(InstanceHeader), request_body = UpdateAiConfigRequest, responses((status = 200, description = "Updated", body = AiConfigResponse), (status = 400, description = "Validation error (e.g. a new provider without its key)", body = DetailCodeError), (status = 404, description = "No configuration found", body = DetailCodeError)) )]
#[patch("/")]
async fn update_config(
    c: Scoped,
    JsonBody(body): JsonBody<UpdateAiConfigRequest>,
) -> Reply<AiConfigResponse> {
    let catalog = c.catalog();
    let target = body
        .provider
        .map(|p| ADMIN.names.provider(catalog, &p))
        .transpose()?;
    let model = body.model.map(ModelName::parse).transpose()?;
    let current = c.current("No configuration found").await?;
    let changes = ConfigPatch {
        model: model.map_or(Patch::Keep, Patch::Set),
        base_url: patch(body.base_url, |u| BaseUrl::parse(&u))?,
        ..ConfigPatch::default()
    };
    let changes = with_key(changes, body.api_key);
    let unchanged =
        changes.secrets.is_empty() && changes.model.is_keep() && changes.base_url.is_keep();
    let config = match target.filter(|p| *p != current.provider) {
        Some(to) => c.switch(current.id, to, changes).await?,
        None if unchanged => current,
        None => c.update(current.id, changes).await?,
    };
    Ok(Json((&config).into()))
}

/// Remove the scope's AI configuration. AI features stay off until a new one is created.
#[utoipa::path(params(InstanceHeader), responses((status = 204, description = "Deleted"), (status = 404, description = "No configuration found", body = DetailCodeError)) )]
#[delete("/")]
async fn delete_config(c: Scoped) -> Answer {
    let current = c.current("No configuration found").await?;
    c.delete(current.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Test the stored credentials by calling the provider's models API.
#[utoipa::path(params(InstanceHeader), responses((status = 200, description = "The test ran; see `success`", body = AiTestResponse), (status = 404, description = "No configuration found to test", body = DetailCodeError)) )]
#[post("/test-connection")]
async fn test_connection(c: Scoped) -> Reply<AiTestResponse> {
    let current = c.current("No configuration found to test").await?;
    let test = ConnectionTest::stored(current.provider);
    let result = c.test(test).await?;
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
