//! The provider configuration API, `/v1/llm-provider`: the provider configs of the tenant
//! instance named in the caller's token (`instance` claim), for its admins and superadmins.
//!
//! Providers use this surface's names (`google` is the catalog's `gemini`); every provider's
//! own credential fields are accepted (Azure endpoint and deployment, Bedrock keys and region,
//! Vertex service account). Secret fields are shown as `sk-***`, other fields as stored.
//! Errors are `{"error": {"code": "NOT_FOUND", "message": "..."}}`.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::web::{Data, Json, Path};
use actix_web::{delete, get, post, put, HttpResponse};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::scope::Scope;

use llm_settings_domain::{
    Actor, ConfigPatch, Error as DomainError, Owner, ProviderConfig, ProviderId, SecretValue,
    UpsertRequest,
};

use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::error::{ApiError, Surface};
use crate::AppState;

const SURFACE: Surface = Surface::ProviderConfig;
/// Tag of this surface in the OpenAPI document.
pub const TAG: &str = "Provider configuration";
/// This surface's provider names and the catalog provider each one is.
pub const PROVIDERS: [(&str, &str); 7] = [
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("google", "gemini"),
    ("google-vertex", "google-vertex"),
    ("azure", "azure"),
    ("amazon-bedrock", "amazon-bedrock"),
    ("xai", "xai"),
];
/// The credential field that may be sent as a JSON object (a service-account file).
const JSON_FIELD: &str = "service_account_json";

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
    utoipa_actix_web::scope("/v1/llm-provider")
        .app_data(SURFACE)
        .service(list_providers)
        .service(create_provider)
        .service(get_provider)
        .service(update_provider)
        .service(delete_provider)
}

/// One credential value as sent: text, a JSON object (only for `service_account_json`), or
/// `null` to remove an optional field. Held as a secret until its field is known.
#[derive(Debug, Clone)]
pub enum CredentialValue {
    /// A string value.
    Text(SecretValue),
    /// A JSON object, kept as its JSON text.
    Object(SecretValue),
    /// `null`: remove the field.
    Null,
}

impl<'de> Deserialize<'de> for CredentialValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = CredentialValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, null, or (for service_account_json) a JSON object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CredentialValue::Text(SecretValue::new(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CredentialValue::Text(SecretValue::new(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CredentialValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CredentialValue::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let object: serde_json::Map<String, serde_json::Value> =
                    Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let text = serde_json::Value::Object(object).to_string();
                Ok(CredentialValue::Object(SecretValue::new(text)))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

/// Credential fields by name.
pub type Credentials = BTreeMap<String, CredentialValue>;

/// Update body: either or both fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProviderRequest {
    /// Whether the provider is enabled.
    #[schema(example = true)]
    pub enabled: Option<bool>,
    /// The credentials to change; fields not sent are kept, `null` removes an optional one,
    /// and a secret sent back as shown (`sk-***`) keeps the stored value.
    #[schema(value_type = Option<Object>, example = json!({"api_key": "sk-new-api-key"}))]
    pub credentials: Option<Credentials>,
}

/// Create body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProviderRequest {
    /// openai, anthropic, google, google-vertex, azure, amazon-bedrock or xai.
    #[schema(example = "openai")]
    pub provider: String,
    /// Whether the provider is enabled (default true).
    #[schema(example = true)]
    pub enabled: Option<bool>,
    /// The provider's credentials: `api_key` and `organization` (openai), `endpoint`,
    /// `deployment`, `api_version` (azure), `access_key_id`, `secret_access_key`,
    /// `session_token`, `region` (amazon-bedrock), `service_account_json`, `project_id`,
    /// `location` (google-vertex).
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"api_key": "sk-api-key", "organization": "org-id"}))]
    pub credentials: Credentials,
}

/// A provider's configuration. Secrets are shown as `sk-***`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderConfigResponse {
    /// The provider to use for LLM access.
    #[schema(example = "openai")]
    pub provider: String,
    /// Whether the provider is enabled.
    #[schema(example = true)]
    pub enabled: bool,
    /// The credentials: secret fields masked, other fields as stored.
    #[schema(example = json!({"api_key": "sk-***"}))]
    pub credentials: BTreeMap<String, String>,
}

impl ProviderConfigResponse {
    fn of(config: &ProviderConfig) -> Self {
        let mut credentials: BTreeMap<String, String> = config
            .secrets
            .iter()
            .map(|(name, s)| (name.clone(), s.hints.prefix_stars.clone()))
            .collect();
        credentials.extend(config.settings.clone());
        Self {
            provider: wire_name(config.provider).to_owned(),
            enabled: config.enabled,
            credentials,
        }
    }
}

/// The error body of this surface.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderError {
    pub error: ProviderErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderErrorDetail {
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    #[schema(example = "No configuration found for provider: openai")]
    pub message: String,
    /// The offending field, for validation errors.
    pub field: Option<String>,
}

fn fail(e: DomainError) -> ApiError {
    ApiError::domain(SURFACE, e)
}

fn wire_name(provider: ProviderId) -> &'static str {
    PROVIDERS
        .iter()
        .find(|(_, id)| *id == provider.as_str())
        .map_or(provider.as_str(), |(wire, _)| wire)
}

fn known_names() -> String {
    PROVIDERS
        .iter()
        .map(|(wire, _)| *wire)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The catalog provider of a surface name, if it is one of the seven and offered here.
fn from_wire(state: &AppState, name: &str) -> Option<ProviderId> {
    PROVIDERS
        .iter()
        .find(|(wire, _)| *wire == name)
        .and_then(|(_, id)| ProviderId::lookup(id))
        .filter(|p| state.service.catalog().offers(*p))
}

/// A provider named in the path: anything else is not a resource here (404).
fn path_provider(state: &AppState, name: &str) -> Result<ProviderId, ApiError> {
    from_wire(state, name).ok_or_else(|| {
        ApiError::new(
            SURFACE,
            "not_found",
            format!(
                "Unknown provider: {}; expected one of {}",
                super::shown_name(name),
                known_names()
            ),
        )
    })
}

/// The instance of the caller's token.
fn instance(actor: &Actor) -> Result<Owner, ApiError> {
    actor.instance_owner().ok_or_else(|| {
        ApiError::new(
            SURFACE,
            "forbidden",
            "this API acts on the instance named in the token's `instance` claim; the token has none",
        )
    })
}

fn not_configured(provider: ProviderId) -> ApiError {
    ApiError::new(
        SURFACE,
        "not_found",
        format!(
            "No configuration found for provider: {}",
            wire_name(provider)
        ),
    )
}

/// Sorts sent credentials into the secret and non-secret fields of the provider; the domain
/// refuses names the provider does not have.
fn credentials_patch(
    provider: ProviderId,
    credentials: Credentials,
) -> Result<ConfigPatch, ApiError> {
    let spec = provider.spec();
    let mut patch = ConfigPatch::default();
    for (name, value) in credentials {
        let Some(field) = spec.field(&name) else {
            let known: Vec<&str> = spec.fields.iter().map(|f| f.name).collect();
            return Err(ApiError::new(
                SURFACE,
                "validation_error",
                format!(
                    "credentials.{}: not a credential field of provider {} (known: {})",
                    super::shown_name(&name),
                    wire_name(provider),
                    known.join(", ")
                ),
            )
            .with_field(format!("credentials.{}", super::shown_name(&name))));
        };
        let secret = field.secret;
        let value = match value {
            CredentialValue::Null => None,
            CredentialValue::Text(v) => Some(v),
            CredentialValue::Object(v) if name == JSON_FIELD => Some(v),
            CredentialValue::Object(_) => {
                return Err(ApiError::new(
                    SURFACE,
                    "validation_error",
                    format!(
                        "credentials.{}: must be a string or null",
                        super::shown_name(&name)
                    ),
                )
                .with_field(format!("credentials.{}", super::shown_name(&name))));
            }
        };
        if secret {
            patch.secrets.insert(name, value);
        } else {
            patch
                .settings
                .insert(name, value.map(|v| v.expose().to_owned()));
        }
    }
    Ok(patch)
}

async fn find(
    state: &AppState,
    actor: &Actor,
    owner: &Owner,
    provider: ProviderId,
) -> Result<ProviderConfig, ApiError> {
    state
        .service
        .find_config(actor, owner, provider)
        .await
        .map_err(fail)?
        .ok_or_else(|| not_configured(provider))
}

/// List the instance's provider configurations.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every configured provider of this API", body = Vec<ProviderConfigResponse>),
        (status = 401, description = "Missing or invalid token", body = ProviderError),
        (status = 403, description = "Not an admin of the token's instance, or no `instance` claim", body = ProviderError),
    )
)]
#[get("")]
async fn list_providers(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Vec<ProviderConfigResponse>>, ApiError> {
    let owner = instance(&actor)?;
    let configs = state
        .service
        .list_configs(&actor, &owner)
        .await
        .map_err(fail)?;
    Ok(Json(
        configs
            .iter()
            .filter(|c| PROVIDERS.iter().any(|(_, id)| *id == c.provider.as_str()))
            .map(ProviderConfigResponse::of)
            .collect(),
    ))
}

/// Create a provider configuration for the instance. Returns 201; 409 if one exists.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    request_body = CreateProviderRequest,
    responses(
        (status = 201, description = "Created", body = ProviderConfigResponse),
        (status = 400, description = "Unknown provider, unknown or missing credential field", body = ProviderError),
        (status = 401, description = "Missing or invalid token", body = ProviderError),
        (status = 403, description = "Not an admin of the token's instance, or no `instance` claim", body = ProviderError),
        (status = 409, description = "The provider is already configured", body = ProviderError),
    )
)]
#[post("")]
async fn create_provider(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    JsonBody(body): JsonBody<CreateProviderRequest>,
) -> Result<HttpResponse, ApiError> {
    let owner = instance(&actor)?;
    let provider = from_wire(&state, &body.provider).ok_or_else(|| {
        ApiError::new(
            SURFACE,
            "validation_error",
            format!(
                "Unknown provider: {}; expected one of {}",
                super::shown_name(&body.provider),
                known_names()
            ),
        )
        .with_field("provider")
    })?;
    let existing = state
        .service
        .find_config(&actor, &owner, provider)
        .await
        .map_err(fail)?;
    if existing.is_some() {
        return Err(ApiError::new(
            SURFACE,
            "conflict",
            format!(
                "A configuration for provider {0} already exists; update it with PUT /v1/llm-provider/{0}",
                wire_name(provider)
            ),
        ));
    }
    let mut changes = credentials_patch(provider, body.credentials)?;
    changes.enabled = body.enabled;
    let request = UpsertRequest {
        provider,
        changes,
        make_default: false,
    };
    let outcome = state
        .service
        .upsert_config(&actor, &owner, request)
        .await
        .map_err(fail)?;
    Ok(HttpResponse::Created().json(ProviderConfigResponse::of(outcome.config())))
}

/// One provider configuration of the instance.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("provider" = String, Path, description = "openai, anthropic, google, google-vertex, azure, amazon-bedrock or xai")),
    responses(
        (status = 200, description = "The configuration", body = ProviderConfigResponse),
        (status = 401, description = "Missing or invalid token", body = ProviderError),
        (status = 403, description = "Not an admin of the token's instance, or no `instance` claim", body = ProviderError),
        (status = 404, description = "No configuration for the provider, or not a provider of this API", body = ProviderError),
    )
)]
#[get("/{provider}")]
async fn get_provider(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    path: Path<String>,
) -> Result<Json<ProviderConfigResponse>, ApiError> {
    let owner = instance(&actor)?;
    let provider = path_provider(&state, &path)?;
    let config = find(&state, &actor, &owner, provider).await?;
    Ok(Json(ProviderConfigResponse::of(&config)))
}

/// Update an existing LLM provider configuration: `enabled`, `credentials`, or both.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("provider" = String, Path, description = "openai, anthropic, google, google-vertex, azure, amazon-bedrock or xai")),
    request_body = UpdateProviderRequest,
    responses(
        (status = 200, description = "OK", body = ProviderConfigResponse),
        (status = 400, description = "Unknown or invalid credential field", body = ProviderError),
        (status = 401, description = "Missing or invalid token", body = ProviderError),
        (status = 403, description = "Not an admin of the token's instance, or no `instance` claim", body = ProviderError),
        (status = 404, description = "Provider not found", body = ProviderError,
            example = json!({"error": {"code": "NOT_FOUND", "message": "No configuration found for provider: openai"}})),
    )
)]
#[put("/{provider}")]
async fn update_provider(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    path: Path<String>,
    JsonBody(body): JsonBody<UpdateProviderRequest>,
) -> Result<Json<ProviderConfigResponse>, ApiError> {
    let owner = instance(&actor)?;
    let provider = path_provider(&state, &path)?;
    let current = find(&state, &actor, &owner, provider).await?;
    let mut patch = credentials_patch(provider, body.credentials.unwrap_or_default())?;
    patch.enabled = body.enabled;
    if patch.enabled.is_none() && patch.secrets.is_empty() && patch.settings.is_empty() {
        return Ok(Json(ProviderConfigResponse::of(&current)));
    }
    let config = state
        .service
        .update_config(&actor, &owner, current.id, patch)
        .await
        .map_err(fail)?;
    Ok(Json(ProviderConfigResponse::of(&config)))
}

/// Delete a provider configuration of the instance. Returns 204.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    params(("provider" = String, Path, description = "openai, anthropic, google, google-vertex, azure, amazon-bedrock or xai")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ProviderError),
        (status = 403, description = "Not an admin of the token's instance, or no `instance` claim", body = ProviderError),
        (status = 404, description = "No configuration for the provider", body = ProviderError),
    )
)]
#[delete("/{provider}")]
async fn delete_provider(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let owner = instance(&actor)?;
    let provider = path_provider(&state, &path)?;
    let current = find(&state, &actor, &owner, provider).await?;
    state
        .service
        .delete_config(&actor, &owner, current.id)
        .await
        .map_err(fail)?;
    Ok(HttpResponse::NoContent().finish())
}
