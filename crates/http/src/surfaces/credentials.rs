//! The resolve API, `POST /v1/credentials/resolve`: the credential a call on behalf of a user
//! (in an instance) uses, in plaintext, for trusted backends that call providers themselves.
//! Service tokens only; answers carry `Cache-Control: no-store`.

use std::collections::BTreeMap;

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{post, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::{
    InstanceId, ModelName, OwnerKind, ResolveRequest, ResolvedCredential, TaskName, UserId,
};

use super::native::EffectiveSource;
use super::Answer;
use crate::body::JsonBody;
use crate::caller::{Caller, Deployment};
use crate::error::ApiError;
use crate::limits::Limited;
use crate::naming::ProviderNames;
use crate::surface::{DetailCodeError, CREDENTIALS};

/// The routes of this surface.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config.service(resolve);
}

/// Who the call is for and what it asks; at least one of `user` and `instance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "alice", "instance": "acme", "task": "summarize"}))]
pub struct ResolveBody {
    /// The user the call is made for.
    pub user: Option<String>,
    /// The tenant instance the call is made in.
    pub instance: Option<String>,
    /// A task whose assignment (user's, else instance's, else global) names provider and model.
    pub task: Option<String>,
    /// A provider instead of the default one; not with `task`.
    pub provider: Option<String>,
    /// Overrides the model of the assignment and the config.
    pub model: Option<String>,
    /// Which owners to search, in chain order: any of `user`, `instance`, `global` (default all).
    pub sources: Option<Vec<String>>,
}

/// Whose config the credential is, and the version of it that was read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedSource {
    #[serde(flatten)]
    pub config: EffectiveSource,
    #[schema(example = 3)]
    pub version: i64,
}

/// The resolved call: provider, model, endpoint and every credential field in plaintext.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"provider": "openai", "model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1", "credentials": {"api_key": "sk-...", "organization": "org-1"}, "source": {"owner": "instance", "instance_id": "acme", "config_id": 12, "version": 3}, "task": null}))]
pub struct ResolveResponse {
    pub provider: String,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// Every credential field of the config: secret fields in plaintext, others as stored.
    pub credentials: BTreeMap<String, String>,
    pub source: ResolvedSource,
    pub task: Option<String>,
}

impl From<&ResolvedCredential> for ResolveResponse {
    fn from(credential: &ResolvedCredential) -> Self {
        let r = &credential.resolution;
        Self {
            provider: r.provider.to_string(),
            model: r.model.clone(),
            base_url: r.base_url.clone(),
            credentials: credential
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            source: ResolvedSource {
                config: (&r.source).into(),
                version: r.source.version,
            },
            task: r.task.as_ref().map(ToString::to_string),
        }
    }
}

/// A body as the domain's request; every value checked, named in the error.
fn request_of(c: &Caller<Deployment>, body: ResolveBody) -> Result<ResolveRequest, ApiError> {
    let sources = body
        .sources
        .map(|list| {
            list.iter()
                .map(|s| source_kind(s))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(ResolveRequest {
        user: checked(body.user, "user", UserId::parse)?,
        instance: checked(body.instance, "instance", InstanceId::parse)?,
        task: checked(body.task, "task", TaskName::parse)?,
        provider: body
            .provider
            .map(|p| CREDENTIALS.names.provider(c.catalog(), &p))
            .transpose()?,
        model: checked(body.model, "model", ModelName::parse)?,
        sources,
    })
}

/// An optional field checked by `parse`; an error names the field.
fn checked<T>(
    value: Option<String>,
    field: &'static str,
    parse: impl FnOnce(String) -> llm_settings_domain::Result<T>,
) -> Result<Option<T>, ApiError> {
    value
        .map(parse)
        .transpose()
        .map_err(|e| ApiError::from(e).with_field(field))
}

fn source_kind(name: &str) -> Result<OwnerKind, ApiError> {
    match name {
        "user" => Ok(OwnerKind::User),
        "instance" => Ok(OwnerKind::Instance),
        "global" => Ok(OwnerKind::Global),
        _ => Err(
            ApiError::invalid("sources may only name user, instance and global")
                .with_field("sources"),
        ),
    }
}

/// Resolve the credential of a call (service tokens only).
///
/// The chain is `user → instance → global` (each level only when named; `sources` narrows it).
/// With a `task`, the first assignment along the chain names provider and model; without task
/// or provider, the first enabled default does. The credential is the first enabled config of
/// that provider along the chain. Model: the request's, else the assignment's, else the
/// config's, else the provider's default. Audited, answered or refused; the key itself never
/// reaches the audit trail or a log. `Cache-Control: no-store`.
#[utoipa::path(request_body = ResolveBody, responses((status = 200, description = "The credential (plaintext; do not store or log it)", body = ResolveResponse), (status = 400, description = "Neither user nor instance, task with provider, an unknown provider or source, or a malformed id", body = DetailCodeError), (status = 403, description = "Not a service token", body = DetailCodeError), (status = 404, description = "`provider_not_configured` (no enabled config fits; the message names the provider and the owners searched) or `task_not_assigned`", body = DetailCodeError)))]
#[post("/resolve")]
async fn resolve(c: Caller<Deployment>, JsonBody(body): JsonBody<ResolveBody>) -> Answer {
    c.state.limits.admit(Limited::Resolution, &c.actor)?;
    let request = request_of(&c, body)?;
    let credential = c.service().resolve(&c.actor, request).await;
    crate::metrics::resolution(&credential);
    let credential = credential?;
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(ResolveResponse::from(&credential)))
}
