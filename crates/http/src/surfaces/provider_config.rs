//! The provider configuration API, `/v1/llm-provider`: the provider configs of the tenant
//! instance named in the caller's token (`instance` claim), for its admins and superadmins.
//!
//! Providers use this surface's names (`google` is the catalog's `gemini`); every provider's
//! own credential fields are accepted (Azure endpoint and deployment, Bedrock keys and region,
//! Vertex service account). Secret fields are shown as `sk-***`, other fields as stored.
//! Errors are `{"error": {"code": "NOT_FOUND", "message": "..."}}`.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::web::{Data, Json};
use actix_web::HttpRequest;
use actix_web::{delete, get, post, put, HttpResponse};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::error::shown;
use llm_settings_domain::{ConfigPatch, ErrorCode, ProviderConfig, ProviderId, SecretValue};

use super::{Answer, Reply};
use crate::body::JsonBody;
use crate::caller::{Caller, ClaimInstance, FromSegment, Segment};
use crate::error::{ApiError, Code};
use crate::naming::ProviderNames;
use crate::surface::{ErrorObject, PROVIDER_CONFIG};
use crate::AppState;

/// An admin (or superadmin) acting on the instance named in the token.
type Admin = Caller<ClaimInstance>;

/// The credential field that may be sent as a JSON object (a service-account file).
const JSON_FIELD: &str = "service_account_json";

/// The routes of this surface.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config
        .service(list_providers)
        .service(create_provider)
        .service(get_provider)
        .service(update_provider)
        .service(delete_provider);
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
            provider: PROVIDER_CONFIG.names.wire_name(config.provider).to_owned(),
            enabled: config.enabled,
            credentials,
        }
    }
}

/// The `{provider}` of a request path, in this surface's names; any other name is not a
/// resource here (404).
#[derive(Debug, Clone, Copy)]
pub struct Named(pub ProviderId);

impl FromSegment for Named {
    const NAME: &'static str = "provider";

    fn from_segment(req: &HttpRequest, name: &str) -> Result<Self, ApiError> {
        let state = req.app_data::<Data<AppState>>();
        let catalog = state.map(|s| s.service.catalog());
        let found = catalog.map(|catalog| PROVIDER_CONFIG.names.provider(catalog, name));
        match found {
            Some(Ok(provider)) => Ok(Self(provider)),
            Some(Err(e)) => Err(ApiError::not_found(e.message)),
            None => Err(ApiError::not_found("no such provider")),
        }
    }
}

impl Admin {
    /// The instance's config of a provider, or the seed's 404.
    async fn find(&self, provider: ProviderId) -> Result<ProviderConfig, ApiError> {
        let found = self.config_of(provider);
        found.await?.ok_or_else(|| {
            let name = PROVIDER_CONFIG.names.wire_name(provider);
            ApiError::not_found(format!("No configuration found for provider: {name}"))
        })
    }
}

/// A credential field the provider does not take, or a value of the wrong kind.
fn bad_credential(name: &str, problem: String) -> ApiError {
    let field = format!("credentials.{}", shown(name));
    ApiError::invalid(format!("{field}: {problem}")).with_field(field)
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
            let wire = PROVIDER_CONFIG.names.wire_name(provider);
            let problem = format!(
                "not a credential field of provider {wire} (known: {})",
                known.join(", ")
            );
            return Err(bad_credential(&name, problem));
        };
        let value = match value {
            CredentialValue::Null => None,
            CredentialValue::Text(v) => Some(v),
            CredentialValue::Object(v) if name == JSON_FIELD => Some(v),
            CredentialValue::Object(_) => {
                return Err(bad_credential(&name, "must be a string or null".into()))
            }
        };
        if field.secret {
            patch.secrets.insert(name, value);
        } else {
            patch
                .settings
                .insert(name, value.map(|v| v.expose().to_owned()));
        }
    }
    Ok(patch)
}

/// List the instance's provider configurations.
#[utoipa::path(responses((status = 200, description = "Every configured provider of this API", body = Vec<ProviderConfigResponse>)))]
#[get("")]
async fn list_providers(c: Admin) -> Reply<Vec<ProviderConfigResponse>> {
    let configs = c.configs().await?;
    let covered = configs
        .iter()
        .filter(|c| PROVIDER_CONFIG.names.covers(c.provider));
    Ok(Json(covered.map(ProviderConfigResponse::of).collect()))
}

/// Create a provider configuration for the instance. Returns 201; 409 if one exists.
///
/// Each provider takes its own `credentials` fields (e.g. `api_key` for openai; `api_key`,
/// `endpoint`, `deployment`, `api_version` for azure; `access_key_id`, `secret_access_key`,
/// `session_token`, `region` for amazon-bedrock; `service_account_json`, `project_id`,
/// `location` for google-vertex): a missing required field, or one the provider does not take,
/// is refused with 400 naming it.
#[utoipa::path(request_body = CreateProviderRequest, responses((status = 201, description = "Created", body = ProviderConfigResponse), (status = 400, description = "Unknown provider, unknown or missing credential field", body = ErrorObject), (status = 409, description = "The provider is already configured", body = ErrorObject)) )]
#[post("")]
async fn create_provider(c: Admin, JsonBody(body): JsonBody<CreateProviderRequest>) -> Answer {
    let provider = PROVIDER_CONFIG
        .names
        .provider(c.catalog(), &body.provider)?;
    let mut changes = credentials_patch(provider, body.credentials)?;
    changes.enabled = body.enabled;
    let config = c.create(provider, changes).await.map_err(|err| {
        if err.code == Code::Domain(ErrorCode::Conflict) {
            ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "A configuration for provider {0} already exists; update it with PUT /v1/llm-provider/{0}",
                    PROVIDER_CONFIG.names.wire_name(provider)
                ),
            )
        } else {
            err
        }
    })?;
    Ok(HttpResponse::Created().json(ProviderConfigResponse::of(&config)))
}

/// One provider configuration of the instance.
#[utoipa::path(params(("provider" = String, Path, description = "openai, anthropic, google, google-vertex, azure, amazon-bedrock or xai")), responses((status = 200, description = "The configuration", body = ProviderConfigResponse), (status = 404, description = "No configuration for the provider, or not a provider of this API", body = ErrorObject)) )]
#[get("/{provider}")]
async fn get_provider(
    c: Admin,
    Segment(Named(p)): Segment<Named>,
) -> Reply<ProviderConfigResponse> {
    let config = c.find(p).await?;
    Ok(Json(ProviderConfigResponse::of(&config)))
}

/// Update an existing LLM provider configuration: `enabled`, `credentials`, or both.
///
/// Each provider takes its own `credentials` fields (e.g. `api_key` for openai; `api_key`,
/// `endpoint`, `deployment`, `api_version` for azure; `access_key_id`, `secret_access_key`,
/// `session_token`, `region` for amazon-bedrock; `service_account_json`, `project_id`,
/// `location` for google-vertex): a missing required field, or one the provider does not take,
/// is refused with 400 naming it.
#[utoipa::path(params(("provider" = String, Path, description = "openai, anthropic, google, google-vertex, azure, amazon-bedrock or xai")), request_body = UpdateProviderRequest, responses((status = 200, description = "OK", body = ProviderConfigResponse), (status = 400, description = "Unknown or invalid credential field", body = ErrorObject), (status = 404, description = "Provider not found", body = ErrorObject, example = json!({"error": {"code": "NOT_FOUND", "message": "No configuration found for provider: openai"}}))) )]
#[put("/{provider}")]
async fn update_provider(
    c: Admin,
    Segment(Named(provider)): Segment<Named>,
    JsonBody(body): JsonBody<UpdateProviderRequest>,
) -> Reply<ProviderConfigResponse> {
    let current = c.find(provider).await?;
    let mut patch = credentials_patch(provider, body.credentials.unwrap_or_default())?;
    patch.enabled = body.enabled;
    if patch.enabled.is_none() && patch.secrets.is_empty() && patch.settings.is_empty() {
        return Ok(Json(ProviderConfigResponse::of(&current)));
    }
    let config = c.update(current.id, patch).await?;
    Ok(Json(ProviderConfigResponse::of(&config)))
}

/// Delete a provider configuration of the instance. Returns 204.
#[utoipa::path(params(("provider" = String, Path, description = "openai, anthropic, google, google-vertex, azure, amazon-bedrock or xai")), responses((status = 204, description = "Deleted"), (status = 404, description = "No configuration for the provider", body = ErrorObject)) )]
#[delete("/{provider}")]
async fn delete_provider(c: Admin, Segment(Named(p)): Segment<Named>) -> Answer {
    let current = c.find(p).await?;
    c.delete(current.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
