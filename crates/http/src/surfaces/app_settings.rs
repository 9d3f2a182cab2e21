//! The application settings API, `/api/settings`: the calling user's settings as one document.
//!
//! `ai.provider` is the user's default provider and `ai.providers` their provider configs
//! (keys masked first-4…last-4) — the same configs the user BYOK API lists. Everything else
//! (`ai.systemPrompt`, `ai.temperature` …, `stt`, `general`, `onboarding`, any other section)
//! is the user's settings document, deep-merged on update. Responses are
//! `{"ok": true, "data": …}`; errors `{"ok": false, "error": "…"}`.

use std::collections::BTreeMap;

use actix_web::web::Json;
use actix_web::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::error::shown;
use llm_settings_domain::{
    BaseUrl, Catalog, ConfigPatch, ConnectionTest, FailureClass, ModelName, Patch, ProviderConfig,
    ProviderId, SecretValue, SettingsUpdate, SettingsView,
};

use super::double_option;
use super::Reply;
use crate::body::JsonBody;
use crate::caller::{Caller, OwnUser};
use crate::error::ApiError;
use crate::surface::OkFalseError;

/// The calling user, acting on their own settings.
type Me = Caller<OwnUser>;

/// The routes of this surface.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config
        .service(get_settings)
        .service(update_settings)
        .service(test_provider);
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
    #[schema(value_type = Option<String>, format = Password, example = "sk-proj-abc123Yx4f")]
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
    #[schema(schema_with = provider_entries_schema, required = false)]
    pub providers: Option<Option<BTreeMap<String, Option<ProviderEntryPatch>>>>,
    /// `systemPrompt`, `temperature` (0–2), `maxTokens` (positive), `thinkingEnabled`,
    /// `planMode` and any other field.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: Map<String, Value>,
}

/// `ai.providers` of an update: an object (never `null`) of provider entries, each an entry or
/// `null`.
fn provider_entries_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
    let entry = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(utoipa::openapi::Ref::from_schema_name("ProviderEntryPatch"));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(
            utoipa::openapi::RefOr::T(entry.build().into()),
        )))
        .build()
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
    #[schema(value_type = Option<String>, format = Password, example = "sk-proj-abc123Yx4f")]
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

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid(message).with_field(field)
}

/// The user's settings as this API shows them: the document with their provider configs in
/// `ai` (keys masked first-4…last-4).
fn render(view: SettingsView) -> SettingsResponse {
    let default = view.default_config().map(|c| c.provider.to_string());
    let mut data = view.document;
    let entry = |c: &ProviderConfig| {
        json!({
            "apiKey": c.primary_hints().map(|h| h.first4_last4.clone()),
            "model": c.effective_model(),
            "baseUrl": c.effective_base_url(),
        })
    };
    let providers: Map<String, Value> = view
        .configs
        .iter()
        .map(|c| (c.provider.to_string(), entry(c)))
        .collect();
    if !data.get("ai").is_some_and(Value::is_object) {
        data["ai"] = json!({});
    }
    if let Some(ai) = data.get_mut("ai").and_then(Value::as_object_mut) {
        ai.insert("provider".into(), json!(default));
        ai.insert("providers".into(), Value::Object(providers));
    }
    SettingsResponse { ok: true, data }
}

/// An entry's `model` or `baseUrl`: absent keeps, `null` or `""` returns to the default.
fn entry_patch<T>(
    value: Option<Option<String>>,
    at: String,
    parse: impl FnOnce(String) -> Result<T, llm_settings_domain::Error>,
) -> Result<Patch<T>, ApiError> {
    Ok(match value {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(v)) if v.is_empty() => Patch::Clear,
        Some(Some(v)) => {
            Patch::Set(parse(v).map_err(|e| invalid(at.clone(), format!("{at}: {e}")))?)
        }
    })
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
    patch.model = entry_patch(entry.model, at("model"), ModelName::parse)?;
    let default_url = spec.default_base_url.and_then(|d| BaseUrl::parse(d).ok());
    patch.base_url = match entry_patch(entry.base_url, at("baseUrl"), |u| {
        BaseUrl::parse_field("baseUrl", &u)
    })? {
        Patch::Set(url) if Some(&url) == default_url.as_ref() => Patch::Clear,
        other => other,
    };
    Ok(patch)
}

type Entries = Option<Option<BTreeMap<String, Option<ProviderEntryPatch>>>>;

/// The changes `ai.providers` asks for, one per provider.
fn provider_entries(
    catalog: &Catalog,
    providers: Entries,
) -> Result<Vec<(ProviderId, Option<ConfigPatch>)>, ApiError> {
    let providers = match providers {
        None => return Ok(Vec::new()),
        Some(None) => return Err(invalid(
            "ai.providers",
            "ai.providers cannot be null; set one provider's entry to null to remove that provider",
        )),
        Some(Some(providers)) => providers,
    };
    let mut entries: Vec<(ProviderId, Option<ConfigPatch>)> = Vec::new();
    for (name, entry) in providers {
        let at = format!("ai.providers.{}", shown(&name));
        let provider = catalog
            .resolve(&name)
            .map_err(|_| invalid(at.clone(), format!("{at}: unknown provider")))?;
        if entries.iter().any(|(p, _)| *p == provider) {
            return Err(invalid(
                at,
                format!("provider {provider} is given twice in ai.providers"),
            ));
        }
        let change = entry.map(|e| entry_change(provider, e)).transpose()?;
        entries.push((provider, change));
    }
    Ok(entries)
}

/// The provider `ai.provider` names as the default.
fn default_provider(
    catalog: &Catalog,
    name: Option<Option<String>>,
) -> Result<Option<ProviderId>, ApiError> {
    match name {
        None => Ok(None),
        Some(None) => Err(invalid(
            "ai.provider",
            "ai.provider cannot be null; name the provider to use by default",
        )),
        Some(Some(name)) => catalog.resolve(&name).map(Some).map_err(|_| {
            invalid(
                "ai.provider",
                format!("ai.provider: unknown provider {}", shown(&name)),
            )
        }),
    }
}

/// The update a body asks for; the domain checks and applies it as one unit.
fn settings_update(catalog: &Catalog, body: SettingsPatch) -> Result<SettingsUpdate, ApiError> {
    let mut update = SettingsUpdate::default();
    let mut doc = body.sections;
    match body.ai {
        None => {}
        Some(None) => {
            doc.insert("ai".into(), Value::Null);
        }
        Some(Some(ai)) => {
            update.providers = provider_entries(catalog, ai.providers)?;
            update.default_provider = default_provider(catalog, ai.provider)?;
            if !ai.other.is_empty() {
                doc.insert("ai".into(), Value::Object(ai.other));
            }
        }
    }
    if !doc.is_empty() {
        update.document = Some(Value::Object(doc));
    }
    Ok(update)
}

/// Return the current settings; API keys show only their first and last four characters.
#[utoipa::path(responses((status = 200, description = "The settings", body = SettingsResponse)))]
#[get("")]
async fn get_settings(c: Me) -> Reply<SettingsResponse> {
    Ok(Json(render(c.settings().await?)))
}

/// Update settings by deep merge: only the fields sent change, nested objects are merged.
///
/// Provider entries change the user's provider configs (a masked key sent back unchanged
/// keeps the stored key; a `null` entry deletes that provider's config); `ai.provider` sets
/// the default provider. Known fields are type-checked and unknown sections kept. Everything
/// is checked before anything is written, and the whole change lands at once or not at all.
#[utoipa::path(request_body = SettingsPatch, responses((status = 200, description = "The updated settings (keys masked)", body = SettingsResponse), (status = 400, description = "A field has the wrong type or value", body = OkFalseError), (status = 409, description = "Other writers changed the settings each time this update was retried; send it again", body = OkFalseError)) )]
#[put("")]
async fn update_settings(
    c: Me,
    JsonBody(body): JsonBody<SettingsPatch>,
) -> Reply<SettingsResponse> {
    let update = settings_update(c.catalog(), body)?;
    Ok(Json(render(c.update_settings(update).await?)))
}

/// A provider whose endpoint `url` is: a config's, a default endpoint, or the default host.
fn provider_by_url(
    catalog: &Catalog,
    url: &BaseUrl,
    configs: &[ProviderConfig],
) -> Option<ProviderId> {
    if let Some(c) = configs
        .iter()
        .find(|c| c.effective_base_url() == Some(url.as_str()))
    {
        return Some(c.provider);
    }
    let default_url = |p: &ProviderId| {
        p.spec()
            .default_base_url
            .and_then(|d| BaseUrl::parse(d).ok())
    };
    if let Some(p) = catalog
        .providers()
        .find(|p| default_url(p).as_ref() == Some(url))
    {
        return Some(p);
    }
    let host = url.host();
    let by_host: Vec<ProviderId> = catalog
        .providers()
        .filter(|p| p.spec().default_host().as_deref() == Some(host.as_str()))
        .collect();
    by_host
        .iter()
        .find(|p| configs.iter().any(|c| c.provider == **p))
        .or(by_host.first())
        .copied()
}

/// The provider a test is about: named, or found by endpoint, or by the stored key it masks.
fn infer_provider(
    catalog: &Catalog,
    body: &TestProviderRequest,
    base_url: Option<&BaseUrl>,
    configs: &[ProviderConfig],
) -> Result<ProviderId, ApiError> {
    if let Some(name) = &body.provider {
        return catalog
            .resolve(name)
            .map_err(|_| invalid("provider", format!("unknown provider {}", shown(name))));
    }
    if let Some(p) = base_url.and_then(|url| provider_by_url(catalog, url, configs)) {
        return Ok(p);
    }
    let masks = |c: &&ProviderConfig| {
        let key = body.api_key.as_ref().map(SecretValue::expose);
        c.primary_hints()
            .is_some_and(|h| Some(h.first4_last4.as_str()) == key)
    };
    configs.iter().find(masks).map(|c| c.provider).ok_or_else(|| {
        invalid(
            "provider",
            "cannot tell which provider to test: baseUrl is not a known provider endpoint and apiKey is not a stored key; add \"provider\"",
        )
    })
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
#[utoipa::path(request_body = TestProviderRequest, responses((status = 200, description = "The test ran; see `connected`", body = TestProviderResponse), (status = 400, description = "Invalid body, unknown provider, or a masked key that matches no stored key", body = OkFalseError), (status = 404, description = "No key given and none stored", body = OkFalseError)) )]
#[post("/test-provider")]
async fn test_provider(
    c: Me,
    JsonBody(body): JsonBody<TestProviderRequest>,
) -> Reply<TestProviderResponse> {
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let base_url = non_empty(&body.base_url)
        .map(|u| BaseUrl::parse_field("baseUrl", &u))
        .transpose()?;
    let model = non_empty(&body.model).map(ModelName::parse).transpose()?;
    let configs = c.configs().await?;
    let provider = infer_provider(c.catalog(), &body, base_url.as_ref(), &configs)?;
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
    let outcome = c.test(test).await?.outcome;
    let error = (!outcome.success).then(|| failure_text(outcome.failure, outcome.message));
    let data = TestProviderResult {
        connected: outcome.success,
        error,
    };
    Ok(Json(TestProviderResponse { ok: true, data }))
}
