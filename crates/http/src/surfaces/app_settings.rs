//! The application settings API, `/api/settings`: the calling user's settings as one document.
//!
//! `ai.provider` is the user's default provider and `ai.providers` their provider configs
//! (keys masked first-4…last-4) — the same configs the user BYOK API lists. Everything else
//! (`ai.systemPrompt`, `ai.temperature` …, `stt`, `general`, `onboarding`, any other section)
//! is the user's settings document, deep-merged on update. Responses are
//! `{"ok": true, "data": …}`; errors `{"ok": false, "error": "…"}`.

use std::collections::BTreeMap;

use actix_web::web::{Data, Json};
use actix_web::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_actix_web::scope::Scope;

use llm_settings_domain::document;
use llm_settings_domain::{
    Actor, BaseUrl, ConfigPatch, ConnectionTest, Error as DomainError, FailureClass, ModelName,
    Owner, Patch, ProviderConfig, ProviderId, SecretValue, UpsertRequest,
};

use super::double_option;
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::error::{ApiError, Surface};
use crate::AppState;

const SURFACE: Surface = Surface::AppSettings;
/// Tag of this surface in the OpenAPI document.
pub const TAG: &str = "Application settings";

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
    utoipa_actix_web::scope("/api/settings")
        .app_data(SURFACE)
        .service(get_settings)
        .service(update_settings)
        .service(test_provider)
}

/// `{"ok": true, "data": Settings}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsResponse {
    #[schema(example = true)]
    pub ok: bool,
    #[schema(value_type = Object, example = json!({
        "ai": {
            "provider": "openai",
            "providers": {
                "openai": {"apiKey": "sk-p...Yx4f", "model": "gpt-4o", "baseUrl": "https://api.openai.com/v1"},
                "anthropic": {"apiKey": "sk-a...Mn3k", "model": "claude-sonnet-4-20250514", "baseUrl": "https://api.anthropic.com"}
            },
            "systemPrompt": "You are a helpful assistant.",
            "temperature": 0.7,
            "maxTokens": 4096,
            "thinkingEnabled": false,
            "planMode": false
        },
        "stt": {"activeModel": "vosk-model-small-en-us-0.15", "sampleRate": 16000},
        "general": {"theme": "dark"},
        "onboarding": {"completed": true}
    }))]
    pub data: Value,
}

/// One provider entry of a settings update; only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderEntryPatch {
    /// A new key, or the masked key as shown to keep the stored one (`""` changes nothing,
    /// `null` removes an optional key).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Password, example = "sk-p...Yx4f")]
    pub api_key: Option<Option<SecretValue>>,
    /// Model override; `null` or `""` returns to the provider's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = "gpt-4o-mini")]
    pub model: Option<Option<String>>,
    /// Endpoint override; `null`, `""` or the provider's default URL means the default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = "https://api.openai.com/v1")]
    pub base_url: Option<Option<String>>,
}

/// The `ai` section of a settings update.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AiPatch {
    /// The default provider; it must be configured (already, or in this update).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = "openai")]
    pub provider: Option<Option<String>>,
    /// Provider entries by provider id; `null` for an entry deletes that provider's config.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<BTreeMap<String, ProviderEntryPatch>>)]
    pub providers: Option<Option<BTreeMap<String, Option<ProviderEntryPatch>>>>,
    /// `systemPrompt`, `temperature` (0–2), `maxTokens` (positive), `thinkingEnabled`,
    /// `planMode` and any other field.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: Map<String, Value>,
}

/// A partial settings document, deep-merged into the stored one.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"ai": {"temperature": 0.9, "providers": {"openai": {"model": "gpt-4o-mini"}}}}))]
pub struct SettingsPatch {
    /// `null` resets the generation settings to their defaults (provider configs are kept).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<AiPatch>)]
    pub ai: Option<Option<AiPatch>>,
    /// `stt`, `general`, `onboarding` and any other section; `null` removes a section.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub sections: Map<String, Value>,
}

/// Test-provider body (an `AIProviderConfig`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestProviderRequest {
    /// Provider API key; the masked key as shown is replaced by the stored key.
    #[schema(value_type = String, format = Password, example = "sk-p...Yx4f")]
    pub api_key: Option<SecretValue>,
    /// Model id to test with.
    #[schema(example = "gpt-4o")]
    pub model: Option<String>,
    /// Provider base URL.
    #[schema(example = "https://api.openai.com/v1")]
    pub base_url: Option<String>,
    /// The provider id. Optional: without it the provider is the one whose endpoint
    /// `baseUrl` is, or the one whose stored key `apiKey` masks.
    #[schema(example = "openai")]
    pub provider: Option<String>,
}

/// Whether the provider answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestProviderResult {
    #[schema(example = true)]
    pub connected: bool,
    /// Why it did not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Invalid API key")]
    pub error: Option<String>,
}

/// `{"ok": true, "data": {"connected", "error"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestProviderResponse {
    #[schema(example = true)]
    pub ok: bool,
    pub data: TestProviderResult,
}

/// Error body of this surface.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsError {
    #[schema(example = false)]
    pub ok: bool,
    #[schema(example = "ai.temperature must be a number from 0 to 2")]
    pub error: String,
}

fn fail(e: DomainError) -> ApiError {
    ApiError::domain(SURFACE, e)
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::new(SURFACE, "validation_error", message).with_field(field)
}

/// The user's settings: the document with their provider configs in `ai`.
async fn render(state: &AppState, actor: &Actor, owner: &Owner) -> Result<Value, ApiError> {
    let mut doc = state
        .service
        .settings_document(actor, owner)
        .await
        .map_err(fail)?;
    let configs = state
        .service
        .list_configs(actor, owner)
        .await
        .map_err(fail)?;
    let default = configs
        .iter()
        .find(|c| c.is_default)
        .map(|c| c.provider.to_string());
    let providers: Map<String, Value> = configs
        .iter()
        .map(|c| {
            (
                c.provider.to_string(),
                json!({
                    "apiKey": c.primary_hints().map(|h| h.first4_last4.clone()),
                    "model": c.effective_model(),
                    "baseUrl": c.effective_base_url(),
                }),
            )
        })
        .collect();
    if !doc.get("ai").is_some_and(Value::is_object) {
        doc["ai"] = json!({});
    }
    if let Some(ai) = doc.get_mut("ai").and_then(Value::as_object_mut) {
        ai.insert("provider".into(), json!(default));
        ai.insert("providers".into(), Value::Object(providers));
    }
    Ok(doc)
}

/// What a settings update does to one provider's config.
#[derive(Debug)]
enum EntryChange {
    Remove,
    Upsert(ConfigPatch),
}

/// Turns one provider entry into config changes, validating every value.
fn entry_change(provider: ProviderId, entry: ProviderEntryPatch) -> Result<ConfigPatch, ApiError> {
    let spec = provider.spec();
    let at = |field: &str| format!("ai.providers.{}.{field}", spec.id);
    let mut patch = ConfigPatch::default();
    match entry.api_key {
        None => {}
        Some(Some(key)) if key.expose().is_empty() => {}
        Some(key) => {
            let field = spec.primary_secret().ok_or_else(|| {
                invalid(at("apiKey"), format!("provider {} has no API key", spec.id))
            })?;
            patch.secrets.insert(field.name.to_owned(), key);
        }
    }
    patch.model = match entry.model {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(m)) if m.is_empty() => Patch::Clear,
        Some(Some(m)) => Patch::Set(
            ModelName::parse(m)
                .map_err(|e| invalid(at("model"), format!("{}: {e}", at("model"))))?,
        ),
    };
    patch.base_url = match entry.base_url {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(u)) if u.is_empty() => Patch::Clear,
        Some(Some(u)) => {
            let url = BaseUrl::parse_field("baseUrl", &u)
                .map_err(|e| invalid(at("baseUrl"), format!("{}: {e}", at("baseUrl"))))?;
            let is_default = spec
                .default_base_url
                .and_then(|d| BaseUrl::parse(d).ok())
                .is_some_and(|d| d == url);
            if is_default {
                Patch::Clear
            } else {
                Patch::Set(url)
            }
        }
    };
    Ok(patch)
}

fn is_empty(patch: &ConfigPatch) -> bool {
    patch.secrets.is_empty()
        && patch.settings.is_empty()
        && patch.model.is_keep()
        && patch.base_url.is_keep()
        && patch.enabled.is_none()
}

/// Everything a settings update will do, checked before anything is written.
#[derive(Debug)]
struct Plan {
    entries: Vec<(ProviderId, EntryChange)>,
    default: Option<ProviderId>,
    document: Option<Value>,
}

fn plan(
    state: &AppState,
    body: SettingsPatch,
    configs: &[ProviderConfig],
) -> Result<Plan, ApiError> {
    let catalog = state.service.catalog();
    let mut doc = body.sections;
    let mut entries: Vec<(ProviderId, EntryChange)> = Vec::new();
    let mut default = None;
    match body.ai {
        None => {}
        Some(None) => {
            doc.insert("ai".into(), Value::Null);
        }
        Some(Some(ai)) => {
            match ai.providers {
                None => {}
                Some(None) => {
                    return Err(invalid(
                        "ai.providers",
                        "ai.providers cannot be null; set one provider's entry to null to remove that provider",
                    ))
                }
                Some(Some(providers)) => {
                    for (name, entry) in providers {
                        let provider = catalog.resolve(&name).map_err(|_| {
                            invalid(
                                format!("ai.providers.{}", super::shown_name(&name)),
                                format!("ai.providers.{}: unknown provider", super::shown_name(&name)),
                            )
                        })?;
                        if entries.iter().any(|(p, _)| *p == provider) {
                            return Err(invalid(
                                format!("ai.providers.{}", super::shown_name(&name)),
                                format!("provider {provider} is given twice in ai.providers"),
                            ));
                        }
                        let change = match entry {
                            None => EntryChange::Remove,
                            Some(entry) => EntryChange::Upsert(entry_change(provider, entry)?),
                        };
                        entries.push((provider, change));
                    }
                }
            }
            match ai.provider {
                None => {}
                Some(None) => {
                    return Err(invalid(
                        "ai.provider",
                        "ai.provider cannot be null; name the provider to use by default",
                    ))
                }
                Some(Some(name)) => {
                    let provider = catalog.resolve(&name).map_err(|_| {
                        invalid(
                            "ai.provider",
                            format!("ai.provider: unknown provider {}", super::shown_name(&name)),
                        )
                    })?;
                    default = Some(provider);
                }
            }
            if !ai.other.is_empty() {
                doc.insert("ai".into(), Value::Object(ai.other));
            }
        }
    }
    let document = (!doc.is_empty()).then_some(Value::Object(doc));
    if let Some(doc) = &document {
        document::validate(doc).map_err(fail)?;
    }

    // Checks the domain would make after earlier entries were written.
    for (provider, change) in &entries {
        let exists = configs.iter().any(|c| c.provider == *provider);
        if let EntryChange::Upsert(patch) = change {
            let key = provider.spec().primary_secret().filter(|f| f.required);
            if let Some(key) = key.filter(|_| !exists) {
                if !matches!(patch.secrets.get(key.name), Some(Some(_))) {
                    return Err(invalid(
                        format!("ai.providers.{provider}.apiKey"),
                        format!(
                            "ai.providers.{provider}.apiKey is required to add provider {provider}"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(provider) = default {
        let removed = entries
            .iter()
            .any(|(p, c)| *p == provider && matches!(c, EntryChange::Remove));
        let configured = configs.iter().any(|c| c.provider == provider)
            || entries.iter().any(|(p, _)| *p == provider);
        if removed || !configured {
            return Err(invalid(
                "ai.provider",
                format!("ai.provider: provider {provider} is not configured; add it under ai.providers first"),
            ));
        }
    }
    Ok(Plan {
        entries,
        default,
        document,
    })
}

/// Return the current settings; API keys show only their first and last four characters.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = SettingsResponse),
        (status = 401, description = "Missing or invalid token", body = SettingsError),
        (status = 403, description = "The token lacks the `read` scope", body = SettingsError),
    )
)]
#[get("")]
async fn get_settings(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<SettingsResponse>, ApiError> {
    let owner = actor.user_owner();
    let data = render(&state, &actor, &owner).await?;
    Ok(Json(SettingsResponse { ok: true, data }))
}

/// Update settings by deep merge: only the fields sent change, nested objects are merged.
///
/// Provider entries change the user's provider configs (a masked key sent back unchanged
/// keeps the stored key; a `null` entry deletes that provider's config); `ai.provider` sets
/// the default provider. Known fields are type-checked and unknown sections kept.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The updated settings (keys masked)", body = SettingsResponse),
        (status = 400, description = "A field has the wrong type or value", body = SettingsError),
        (status = 401, description = "Missing or invalid token", body = SettingsError),
        (status = 403, description = "The token lacks the `write` scope", body = SettingsError),
    )
)]
#[put("")]
async fn update_settings(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    JsonBody(body): JsonBody<SettingsPatch>,
) -> Result<Json<SettingsResponse>, ApiError> {
    let owner = actor.user_owner();
    let configs = state
        .service
        .list_configs(&actor, &owner)
        .await
        .map_err(fail)?;
    let plan = plan(&state, body, &configs)?;
    for (provider, change) in plan.entries {
        let current = configs.iter().find(|c| c.provider == provider);
        let make_default = plan.default == Some(provider) && !current.is_some_and(|c| c.is_default);
        match change {
            EntryChange::Remove => {
                if let Some(config) = current {
                    state
                        .service
                        .delete_config(&actor, &owner, config.id)
                        .await
                        .map_err(fail)?;
                }
            }
            EntryChange::Upsert(patch)
                if current.is_some() && is_empty(&patch) && !make_default => {}
            EntryChange::Upsert(changes) => {
                let request = UpsertRequest {
                    provider,
                    changes,
                    make_default,
                };
                state
                    .service
                    .upsert_config(&actor, &owner, request)
                    .await
                    .map_err(fail)?;
            }
        }
    }
    if let Some(provider) = plan.default {
        let config = state
            .service
            .find_config(&actor, &owner, provider)
            .await
            .map_err(fail)?;
        if let Some(config) = config.filter(|c| !c.is_default) {
            state
                .service
                .set_default(&actor, &owner, config.id)
                .await
                .map_err(fail)?;
        }
    }
    if let Some(doc) = plan.document {
        state
            .service
            .update_settings_document(&actor, &owner, doc)
            .await
            .map_err(fail)?;
    }
    let data = render(&state, &actor, &owner).await?;
    Ok(Json(SettingsResponse { ok: true, data }))
}

/// The provider a test is about: named, or found by endpoint, or by the stored key it masks.
fn infer_provider(
    state: &AppState,
    body: &TestProviderRequest,
    base_url: Option<&BaseUrl>,
    configs: &[ProviderConfig],
) -> Result<ProviderId, ApiError> {
    let catalog = state.service.catalog();
    if let Some(name) = &body.provider {
        return catalog.resolve(name).map_err(|_| {
            invalid(
                "provider",
                format!("unknown provider {}", super::shown_name(name)),
            )
        });
    }
    if let Some(url) = base_url {
        if let Some(c) = configs
            .iter()
            .find(|c| c.effective_base_url() == Some(url.as_str()))
        {
            return Ok(c.provider);
        }
        let by_default: Vec<ProviderId> = catalog
            .providers()
            .filter(|p| {
                p.spec()
                    .default_base_url
                    .and_then(|d| BaseUrl::parse(d).ok())
                    .is_some_and(|d| d == *url)
            })
            .collect();
        if let Some(p) = by_default.first() {
            return Ok(*p);
        }
        let host = url.host();
        let by_host: Vec<ProviderId> = catalog
            .providers()
            .filter(|p| p.spec().default_host().as_deref() == Some(host.as_str()))
            .collect();
        if let Some(p) = by_host
            .iter()
            .find(|p| configs.iter().any(|c| c.provider == **p))
            .or(by_host.first())
        {
            return Ok(*p);
        }
    }
    if let Some(key) = &body.api_key {
        if let Some(c) = configs.iter().find(|c| {
            c.primary_hints()
                .is_some_and(|h| h.first4_last4 == key.expose())
        }) {
            return Ok(c.provider);
        }
    }
    Err(invalid(
        "provider",
        "cannot tell which provider to test: baseUrl is not a known provider endpoint and apiKey is not a stored key; add \"provider\"",
    ))
}

fn failure_text(class: Option<FailureClass>, message: String) -> String {
    match class {
        Some(FailureClass::InvalidCredentials) => "Invalid API key".to_owned(),
        _ => message,
    }
}

/// Test connectivity to an AI provider with a lightweight request.
///
/// A masked `apiKey` (as shown by `GET /api/settings`) is replaced by the stored key.
#[utoipa::path(
    tag = TAG,
    security(("bearer" = [])),
    request_body = TestProviderRequest,
    responses(
        (status = 200, description = "The test ran; see `connected`", body = TestProviderResponse),
        (status = 400, description = "Invalid body, unknown provider, or a masked key that matches no stored key", body = SettingsError),
        (status = 401, description = "Missing or invalid token", body = SettingsError),
        (status = 403, description = "The token lacks the `write` scope", body = SettingsError),
        (status = 404, description = "No key given and none stored", body = SettingsError),
    )
)]
#[post("/test-provider")]
async fn test_provider(
    state: Data<AppState>,
    Authenticated(actor): Authenticated,
    JsonBody(body): JsonBody<TestProviderRequest>,
) -> Result<Json<TestProviderResponse>, ApiError> {
    let owner = actor.user_owner();
    let base_url = body
        .base_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| BaseUrl::parse_field("baseUrl", u))
        .transpose()
        .map_err(fail)?;
    let model = body
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .map(ModelName::parse)
        .transpose()
        .map_err(fail)?;
    let configs = state
        .service
        .list_configs(&actor, &owner)
        .await
        .map_err(fail)?;
    let provider = infer_provider(&state, &body, base_url.as_ref(), &configs)?;
    let spec = provider.spec();
    let stored = configs.iter().find(|c| c.provider == provider);
    let effective = stored
        .and_then(|c| c.effective_base_url())
        .or(spec.default_base_url);
    let mut test = ConnectionTest::stored(provider);
    test.base_url = base_url.filter(|u| Some(u.as_str()) != effective);
    test.model = model;
    if let Some(key) = body.api_key.filter(|k| !k.expose().is_empty()) {
        let field = spec.primary_secret().map_or("api_key", |f| f.name);
        test.secrets.insert(field.to_owned(), key);
    }
    let result = state
        .service
        .test_connection(&actor, &owner, test)
        .await
        .map_err(fail)?;
    let outcome = result.outcome;
    Ok(Json(TestProviderResponse {
        ok: true,
        data: TestProviderResult {
            connected: outcome.success,
            error: (!outcome.success).then(|| failure_text(outcome.failure, outcome.message)),
        },
    }))
}
