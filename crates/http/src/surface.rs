//! The API surfaces as data: one table says where each surface lives, how the OpenAPI document
//! tags and names its operations, how it writes error bodies and how it names providers. The
//! routes, the tags, the 404/405 fallback, the error rendering and the document all read it.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, FailureKind, LocItem};
use crate::naming::Naming;
use crate::surfaces;

/// How a surface writes its error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"detail", "error_code", "field"?}` ([`DetailCodeError`]).
    DetailCode,
    /// FastAPI: `{"detail": "..."}` ([`DetailError`]), 422 [`ValidationErrorBody`] for body errors.
    FastApi,
    /// `{"error": {"code": "NOT_FOUND", "message", "field"?}}` ([`ErrorObject`]).
    ErrorObject,
    /// `{"ok": false, "error"}` ([`OkFalseError`]).
    OkFalse,
}

/// One API surface.
#[derive(Debug)]
pub struct Surface {
    /// Path prefix of every route of the surface.
    pub prefix: &'static str,
    /// Tag of its operations in the OpenAPI document, and the tag's description.
    pub tag: &'static str,
    pub description: &'static str,
    /// Prefix of its operation ids (handler names repeat across surfaces; generated clients
    /// need ids unique in the whole document).
    pub operation_prefix: &'static str,
    pub shape: Shape,
    /// Why a token may be refused with 403, for the document.
    pub forbidden: &'static str,
    /// How it names providers in paths and bodies.
    pub names: Naming,
    /// Registers its handlers (paths relative to `prefix`).
    pub routes: fn(&mut ServiceConfig<'_>),
}

/// Providers configured with a single API key, as the native and admin APIs name them.
const SINGLE_KEY: Naming = Naming::Catalog {
    single_key: true,
    leading: &["anthropic", "openai", "deepseek_cloud", "gemini"],
};

/// `/users/me/llm-settings` (seed 000).
pub const NATIVE: Surface = Surface {
    prefix: "/users/me/llm-settings",
    tag: "User LLM settings",
    description: "The calling user's bring-your-own-key provider configs (`read` scope to list, `write` to change or test).",
    operation_prefix: "user",
    shape: Shape::DetailCode,
    forbidden: "The token lacks the `read` scope (to read) or `write` scope (to change or test)",
    names: SINGLE_KEY,
    routes: surfaces::native::user_routes,
};

/// `/instances/{instance_id}/llm-settings`: the native operations on an instance's configs.
pub const INSTANCE_SETTINGS: Surface = Surface {
    prefix: "/instances/{instance_id}/llm-settings",
    tag: "Instance LLM settings",
    description: "The native API's operations on a tenant instance's provider configs and task assignments. Role `admin` with that `instance` claim, or `superadmin`; `read` scope to read, `write` to change or test.",
    operation_prefix: "instance",
    shape: Shape::DetailCode,
    forbidden: "Not an admin of this instance nor a superadmin, or the token lacks the `read` scope (to read) or `write` scope (to change or test)",
    names: SINGLE_KEY,
    routes: surfaces::native::routes,
};

/// `/global/llm-settings`: the native operations on the deployment's configs.
pub const GLOBAL_SETTINGS: Surface = Surface {
    prefix: "/global/llm-settings",
    tag: "Global LLM settings",
    description: "The native API's operations on the deployment-wide provider configs and task assignments. Role `superadmin`; `read` scope to read, `write` to change or test.",
    operation_prefix: "global",
    shape: Shape::DetailCode,
    forbidden: "Not a superadmin, or the token lacks the `read` scope (to read) or `write` scope (to change or test)",
    names: SINGLE_KEY,
    routes: surfaces::native::routes,
};

/// `/v1/credentials`: resolution of a call's credential for trusted backends.
pub const CREDENTIALS: Surface = Surface {
    prefix: "/v1/credentials",
    tag: "Credential resolution",
    description: "Which provider, model, endpoint and credential a call on behalf of a user (in an instance) uses, with the credential in plaintext. Role `service` only; errors are `{\"detail\", \"error_code\"}`.",
    operation_prefix: "credentials",
    shape: Shape::DetailCode,
    forbidden: "Not a service token",
    names: Naming::Catalog {
        single_key: false,
        leading: &[],
    },
    routes: surfaces::credentials::routes,
};

/// `/v1/gateway`: calls to providers with the resolved credential.
pub const GATEWAY: Surface = Surface {
    prefix: "/v1/gateway",
    tag: "Gateway",
    description: "Calls a provider with the credential the resolution rule picks, without the key ever leaving the service. Point an official SDK's base URL at `/v1/gateway/{provider}` and pass a token as its API key (any of `Authorization: Bearer`, `x-api-key`, `x-goog-api-key`, `api-key`, or Gemini's `key` parameter): a user token with the `use` scope calls for its own subject (and the instance in its token), a service token for `X-On-Behalf-Of` and/or `X-Instance-Id`. The request's credentials, cookies, `Host`, hop-by-hop and `X-Forwarded-*` headers are dropped; everything else passes untouched, and the answer streams back as it arrives. Errors before the provider answers are `{\"detail\", \"error_code\"}`.",
    operation_prefix: "gateway",
    shape: Shape::DetailCode,
    forbidden: "A user token without the `use` scope, a token acting for someone else, or a target blocked by the outbound policy",
    names: Naming::Catalog {
        single_key: false,
        leading: &[],
    },
    routes: surfaces::gateway::routes,
};

/// `/llm-config/` (seed 001).
pub const ADMIN: Surface = Surface {
    prefix: "/llm-config",
    tag: "Admin AI configuration",
    description: "The active AI configuration of the deployment (global) or of the tenant instance named by `X-Instance-Id`. Role `superadmin`; `read` scope to read, `write` to change or test. Keys are shown as `sk-...XXXX`; errors are `{\"detail\", \"error_code\"}`.",
    operation_prefix: "admin",
    shape: Shape::DetailCode,
    forbidden: "Not a superadmin, or the token lacks the `read` scope (to read) or `write` scope (to change or test)",
    names: SINGLE_KEY,
    routes: surfaces::admin::routes,
};

/// `/api/v1/settings` (seed 002).
pub const PROVIDER_KEYS: Surface = Surface {
    prefix: "/api/v1/settings",
    tag: "Provider keys",
    description: "Deployment-wide keys of openai, gemini, anthropic, openrouter and ollama, and task → provider + model assignments. Role `superadmin`; `read` scope to read, `write` to change or test. Keys are shown as `sk-...cdef`; errors are FastAPI-style `{\"detail\": ...}`, 422 for body errors.",
    operation_prefix: "provider_keys",
    shape: Shape::FastApi,
    forbidden: "Not a superadmin, or the token lacks the `read` scope (to read) or `write` scope (to change or test)",
    names: Naming::Fixed(&[
        ("openai", "openai"),
        ("gemini", "gemini"),
        ("anthropic", "anthropic"),
        ("openrouter", "openrouter"),
        ("ollama", "ollama"),
    ]),
    routes: surfaces::provider_keys::routes,
};

/// `/v1/llm-provider` (seed 003).
pub const PROVIDER_CONFIG: Surface = Surface {
    prefix: "/v1/llm-provider",
    tag: "Provider configuration",
    description: "Provider configurations of the tenant instance named in the token's `instance` claim. Role `admin` or `superadmin`; `read` scope to read, `write` to change. Secrets are shown as `sk-***`; errors are `{\"error\": {\"code\", \"message\"}}`.",
    operation_prefix: "provider_config",
    shape: Shape::ErrorObject,
    forbidden: "Not an admin of the token's instance, no `instance` claim, or the token lacks the `read` scope (to read) or `write` scope (to change)",
    names: Naming::Fixed(&[
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("google", "gemini"),
        ("google-vertex", "google-vertex"),
        ("azure", "azure"),
        ("amazon-bedrock", "amazon-bedrock"),
        ("xai", "xai"),
    ]),
    routes: surfaces::provider_config::routes,
};

/// `/api/settings` (seed 004).
pub const APP_SETTINGS: Surface = Surface {
    prefix: "/api/settings",
    tag: "Application settings",
    description: "The calling user's application settings document: default provider, provider keys (shown as `sk-p...Yx4f`) and generation settings (`read` / `write` scopes). Responses are `{\"ok\": true, \"data\"}`; errors `{\"ok\": false, \"error\"}`.",
    operation_prefix: "app_settings",
    shape: Shape::OkFalse,
    forbidden: "The token lacks the `read` scope (to read) or `write` scope (to change or test)",
    names: Naming::Catalog {
        single_key: false,
        leading: &[],
    },
    routes: surfaces::app_settings::routes,
};

/// `/v1/audit`: the audit trail for administrators.
pub const AUDIT: Surface = Surface {
    prefix: "/v1/audit",
    tag: "Audit trail",
    description: "Who changed, tested, resolved or used which credential, newest first, without any secret. Role `superadmin` (every event, any filter) or `admin` with an `instance` claim (its instance's events); `read` scope. A user reads their own events at `/users/me/llm-settings/audit`. Errors are `{\"detail\", \"error_code\"}`.",
    operation_prefix: "audit",
    shape: Shape::DetailCode,
    forbidden: "Not a superadmin nor an admin with an `instance` claim, or the token lacks the `read` scope",
    names: Naming::Catalog {
        single_key: false,
        leading: &[],
    },
    routes: surfaces::audit::routes,
};

/// Health, readiness, documentation and unknown paths.
pub const SERVICE: Surface = Surface {
    prefix: "",
    tag: "Service",
    description: "Health, readiness and documentation.",
    operation_prefix: "service",
    shape: Shape::ErrorObject,
    forbidden: "",
    names: Naming::Catalog {
        single_key: false,
        leading: &[],
    },
    routes: crate::service_routes::routes,
};

/// Every surface, in the document's order; [`SERVICE`] answers the rest.
pub const SURFACES: [&Surface; 11] = [
    &NATIVE,
    &INSTANCE_SETTINGS,
    &GLOBAL_SETTINGS,
    &CREDENTIALS,
    &GATEWAY,
    &AUDIT,
    &ADMIN,
    &PROVIDER_KEYS,
    &PROVIDER_CONFIG,
    &APP_SETTINGS,
    &SERVICE,
];

impl Surface {
    /// Whether its operations take a bearer token (every API surface; not the service's own
    /// routes).
    pub fn needs_token(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// The surface a request path (or a documented path template) belongs to.
    pub fn of_path(path: &str) -> &'static Surface {
        SURFACES
            .iter()
            .find(|s| !s.prefix.is_empty() && s.owns(path))
            .copied()
            .unwrap_or(&SERVICE)
    }

    /// Whether `path` starts with the prefix, a `{segment}` of the prefix matching any one
    /// segment.
    fn owns(&self, path: &str) -> bool {
        let mut path_segments = path.split('/');
        self.prefix.split('/').all(|expected| {
            path_segments.next().is_some_and(|actual| {
                actual == expected || (expected.starts_with('{') && !actual.is_empty())
            })
        })
    }

    /// The path parameters of the prefix (`instance_id`).
    pub fn prefix_params(&self) -> impl Iterator<Item = &'static str> {
        self.prefix
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }
}

/// Error body of the native and admin APIs.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailCodeError {
    #[schema(example = "No configuration found")]
    pub detail: String,
    /// `validation_error`, `masked_key_mismatch`, `unknown_provider`, `provider_not_configured`,
    /// `not_found`, `conflict`, `forbidden`, `unauthorized`, `store_unavailable` …
    #[schema(example = "not_found")]
    pub error_code: String,
    /// The offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Error body of the provider keys API (FastAPI's `HTTPException`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DetailError {
    #[schema(example = "Invalid provider: xyz")]
    pub detail: String,
}

/// One item of a 422 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationItem {
    /// Where the problem is: `"body"`, then field names and list positions.
    #[schema(example = json!(["body", "assignments", 0, "task"]))]
    pub loc: Vec<LocItem>,
    #[schema(example = "api_key must not be empty")]
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: FailureKind,
}

/// A 422 body of the provider keys API (FastAPI's `RequestValidationError`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<ValidationItem>,
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status in words: `NOT_FOUND`, `BAD_REQUEST`, `FORBIDDEN` …
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    #[schema(example = "No configuration found for provider: openai")]
    pub message: String,
    /// The offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Error body of the provider configuration API and of the service's own routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    pub error: ErrorDetail,
}

/// Error body of the application settings API.
#[derive(Debug, Serialize, ToSchema)]
pub struct OkFalseError {
    #[schema(example = false)]
    pub ok: bool,
    #[schema(example = "ai.temperature must be a number from 0 to 2")]
    pub error: String,
}

impl Shape {
    /// The error as a response in this shape.
    pub fn render(self, err: &ApiError) -> HttpResponse {
        let status = err.status();
        match self {
            Self::DetailCode => err.respond(
                status,
                &DetailCodeError {
                    detail: err.message.clone(),
                    error_code: err.code.as_str().to_owned(),
                    field: err.field.clone(),
                },
            ),
            Self::FastApi => match &err.body {
                Some(at) => {
                    let mut loc = vec![LocItem::Name("body".into())];
                    loc.extend(at.path.iter().cloned());
                    let item = ValidationItem {
                        loc,
                        msg: err.message.clone(),
                        kind: at.kind,
                    };
                    err.respond(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &ValidationErrorBody { detail: vec![item] },
                    )
                }
                None => err.respond(
                    status,
                    &DetailError {
                        detail: err.message.clone(),
                    },
                ),
            },
            Self::ErrorObject => {
                let code = status
                    .canonical_reason()
                    .unwrap_or("ERROR")
                    .to_ascii_uppercase()
                    .replace(' ', "_");
                let error = ErrorDetail {
                    code,
                    message: err.message.clone(),
                    field: err.field.clone(),
                };
                err.respond(status, &ErrorObject { error })
            }
            Self::OkFalse => err.respond(
                status,
                &OkFalseError {
                    ok: false,
                    error: err.message.clone(),
                },
            ),
        }
    }

    /// The status a body error gets in this shape.
    pub fn body_error_status(self) -> StatusCode {
        match self {
            Self::FastApi => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The name of the schema documenting an error of this shape with `status`.
    pub fn schema_name(self, status: StatusCode) -> &'static str {
        match self {
            Self::DetailCode => "DetailCodeError",
            Self::FastApi if status == StatusCode::UNPROCESSABLE_ENTITY => "ValidationErrorBody",
            Self::FastApi => "DetailError",
            Self::ErrorObject => "ErrorObject",
            Self::OkFalse => "OkFalseError",
        }
    }
}

/// Middleware: an [`ApiError`] on its way out is written in the shape of the surface the
/// request's path belongs to.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let shape = Surface::of_path(req.path()).shape;
    // Handlers' and extractors' errors arrive as responses that carry the error.
    let res = next.call(req).await?;
    let shaped = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .map(|e| shape.render(e));
    Ok(match shaped {
        Some(response) => res.into_response(response),
        None => res.map_into_boxed_body(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;
    use llm_settings_domain::Error as DomainError;
    use serde_json::{json, Value};

    async fn body(shape: Shape, err: ApiError) -> (u16, Value) {
        let res = shape.render(&err);
        let status = res.status().as_u16();
        let bytes = to_bytes(res.into_body()).await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[actix_web::test]
    async fn each_surface_has_its_own_shape() {
        let nf = || ApiError::from(DomainError::NotFound("config 3".into()));
        assert_eq!(
            body(Shape::ErrorObject, nf()).await,
            (
                404,
                json!({"error": {"code": "NOT_FOUND", "message": "config 3 not found"}})
            )
        );
        assert_eq!(
            body(Shape::OkFalse, nf()).await,
            (404, json!({"ok": false, "error": "config 3 not found"}))
        );
        assert_eq!(
            body(Shape::FastApi, nf()).await,
            (404, json!({"detail": "config 3 not found"}))
        );
        assert_eq!(
            body(Shape::DetailCode, nf()).await,
            (
                404,
                json!({"detail": "config 3 not found", "error_code": "not_found"})
            )
        );
        let missing = crate::body::parse::<serde_json::Map<String, Value>>(b"[]").unwrap_err();
        assert_eq!(body(Shape::FastApi, missing).await.0, 422);
        let err = ApiError::invalid_field("assignments[2].task", "task must not be empty");
        assert_eq!(
            body(Shape::FastApi, err).await,
            (
                422,
                json!({"detail": [{"loc": ["body", "assignments", 2, "task"], "msg": "task must not be empty", "type": "value_error"}]})
            )
        );
    }

    #[test]
    fn paths_find_their_surface() {
        assert_eq!(Surface::of_path("/llm-config").tag, ADMIN.tag);
        assert_eq!(
            Surface::of_path("/api/v1/settings/providers").tag,
            PROVIDER_KEYS.tag
        );
        assert_eq!(Surface::of_path("/api/settings").tag, APP_SETTINGS.tag);
        assert_eq!(Surface::of_path("/nowhere").tag, SERVICE.tag);
    }
}
