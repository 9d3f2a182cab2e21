//! One error type for the transport, rendered in the error shape of the surface that raised it.
//!
//! The status of every domain error code is decided once, in [`status_for`]; each surface only
//! chooses how the body looks (`{"detail", "error_code"}`, `{"error": {"code", "message"}}`,
//! `{"ok": false, "error"}` …).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

use llm_settings_domain::Error as DomainError;

/// The API surface a request belongs to; decides the shape of error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/users/me/llm-settings`: `{"detail", "error_code"}`.
    Native,
    /// `/llm-config/`: `{"detail", "error_code"}`.
    Admin,
    /// `/api/v1/settings`: FastAPI-style `{"detail": …}`, 422 with a list for body errors.
    ProviderKeys,
    /// `/v1/llm-provider`: `{"error": {"code": "NOT_FOUND", "message"}}`.
    ProviderConfig,
    /// `/api/settings`: `{"ok": false, "error"}`.
    AppSettings,
    /// Health, docs and unknown paths: `{"error": {"code", "message"}}`.
    Service,
}

impl Surface {
    /// The surface registered on the scope that routed this request.
    pub fn of(req: &HttpRequest) -> Self {
        req.app_data::<Surface>().copied().unwrap_or(Self::Service)
    }
}

/// HTTP status of each stable error code. The one table of the service.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "validation_error" | "masked_key_mismatch" | "unknown_provider" | "invalid_body" => {
            StatusCode::BAD_REQUEST
        }
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "not_found" | "provider_not_configured" => StatusCode::NOT_FOUND,
        "conflict" => StatusCode::CONFLICT,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "store_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error on its way to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub surface: Surface,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// The request body could not be read as the expected document.
    pub body_error: bool,
}

impl ApiError {
    /// An error with a code from [`status_for`]'s table.
    pub fn new(surface: Surface, code: &str, message: impl Into<String>) -> Self {
        Self {
            surface,
            code: code.to_owned(),
            message: message.into(),
            field: None,
            body_error: false,
        }
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A domain error. Internal failures are logged here and reach the client only as a
    /// generic message (their text is for operators).
    pub fn domain(surface: Surface, err: DomainError) -> Self {
        let code = err.code();
        let message = match &err {
            DomainError::Internal(_) | DomainError::SecretUnreadable => {
                tracing::error!(code, error = %err, "request failed inside the service");
                "the service failed to complete the request; see the server log".to_owned()
            }
            DomainError::Unavailable(_) => {
                tracing::warn!(code, error = %err, "store unavailable");
                "the settings store is unavailable; retry shortly".to_owned()
            }
            _ => err.to_string(),
        };
        Self {
            surface,
            code: code.to_owned(),
            message,
            field: err.field().map(str::to_owned),
            body_error: false,
        }
    }

    /// A request body that is not the expected JSON document.
    pub fn invalid_body(
        surface: Surface,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            surface,
            code: "invalid_body".to_owned(),
            message: message.into(),
            field,
            body_error: true,
        }
    }

    /// A missing or unacceptable bearer token.
    pub fn unauthorized(surface: Surface, message: impl Into<String>) -> Self {
        Self::new(surface, "unauthorized", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        if self.surface == Surface::ProviderKeys && self.body_error {
            return StatusCode::UNPROCESSABLE_ENTITY;
        }
        status_for(&self.code)
    }

    /// The body in the surface's own shape.
    pub fn body(&self) -> Value {
        let status = self.status();
        match self.surface {
            Surface::Native | Surface::Admin => {
                let mut body = json!({ "detail": self.message, "error_code": self.public_code() });
                if let Some(field) = &self.field {
                    body["field"] = json!(field);
                }
                body
            }
            Surface::ProviderKeys => {
                if self.body_error {
                    let mut loc = vec![json!("body")];
                    loc.extend(self.field.iter().flat_map(|f| field_loc(f)));
                    json!({ "detail": [{ "loc": loc, "msg": self.message, "type": self.fastapi_type() }] })
                } else {
                    json!({ "detail": self.message })
                }
            }
            Surface::ProviderConfig | Surface::Service => {
                let code = status
                    .canonical_reason()
                    .unwrap_or("ERROR")
                    .to_ascii_uppercase()
                    .replace(' ', "_");
                let mut error = json!({ "code": code, "message": self.message });
                if let Some(field) = &self.field {
                    error["field"] = json!(field);
                }
                json!({ "error": error })
            }
            Surface::AppSettings => json!({ "ok": false, "error": self.message }),
        }
    }

    /// The code shown to clients (`invalid_body` is reported as a validation error).
    fn public_code(&self) -> &str {
        if self.body_error {
            "validation_error"
        } else {
            &self.code
        }
    }

    fn fastapi_type(&self) -> &'static str {
        if self.message.contains("missing field") {
            "missing"
        } else if self.message.contains("unknown field") {
            "extra_forbidden"
        } else {
            "value_error"
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status());
        if self.code == "unauthorized" {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"llm-settings\""),
            ));
        }
        res.json(self.body())
    }
}

/// A field path (`assignments[0].task`, `ai.temperature`) as FastAPI `loc` items: names as
/// strings, list indices as numbers.
fn field_loc(path: &str) -> Vec<Value> {
    path.split(['.', '[', ']'])
        .filter(|part| !part.is_empty())
        .map(|part| match part.parse::<u64>() {
            Ok(index) => json!(index),
            Err(_) => json!(part),
        })
        .collect()
}

/// Removes quoted literals from a deserializer message: a client may have put a secret where
/// another type was expected, and error messages never repeat secrets.
pub fn redact_literals(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quote = false;
    for c in message.chars() {
        if c == '"' {
            if in_quote {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_one_table() {
        let cases = [
            (DomainError::invalid("model", "bad"), 400),
            (
                DomainError::MaskedSecretMismatch {
                    field: "api_key".into(),
                },
                400,
            ),
            (DomainError::UnknownProvider("x".into()), 400),
            (
                DomainError::ProviderNotConfigured {
                    provider: "openai".into(),
                },
                404,
            ),
            (DomainError::NotFound("config 1".into()), 404),
            (DomainError::Conflict("x".into()), 409),
            (DomainError::Forbidden("x".into()), 403),
            (DomainError::Unavailable("x".into()), 503),
            (DomainError::Internal("x".into()), 500),
        ];
        for (err, status) in cases {
            assert_eq!(
                ApiError::domain(Surface::Native, err).status().as_u16(),
                status
            );
        }
    }

    #[test]
    fn each_surface_has_its_own_shape() {
        let nf = || DomainError::NotFound("config 3".into());
        assert_eq!(
            ApiError::domain(
                Surface::Native,
                DomainError::ProviderNotConfigured {
                    provider: "openai".into()
                }
            )
            .body()["error_code"],
            "provider_not_configured"
        );
        assert_eq!(
            ApiError::domain(Surface::ProviderConfig, nf()).body(),
            json!({"error": {"code": "NOT_FOUND", "message": "config 3 not found"}})
        );
        assert_eq!(
            ApiError::domain(Surface::AppSettings, nf()).body(),
            json!({"ok": false, "error": "config 3 not found"})
        );
        assert_eq!(
            ApiError::domain(Surface::ProviderKeys, nf()).body(),
            json!({"detail": "config 3 not found"})
        );
        let body = ApiError::invalid_body(
            Surface::ProviderKeys,
            Some("api_key".into()),
            "missing field `api_key`",
        );
        assert_eq!(body.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body.body(),
            json!({"detail": [{"loc": ["body", "api_key"], "msg": "missing field `api_key`", "type": "missing"}]})
        );
    }

    #[test]
    fn fastapi_locations_keep_list_indices_as_numbers() {
        let err = ApiError::invalid_body(
            Surface::ProviderKeys,
            Some("assignments[2].task".into()),
            "task must not be empty",
        );
        assert_eq!(
            err.body()["detail"][0]["loc"],
            json!(["body", "assignments", 2, "task"])
        );
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let err = ApiError::domain(
            Surface::Native,
            DomainError::Internal("pool state xyz".into()),
        );
        assert!(!err.body().to_string().contains("xyz"));
    }

    #[test]
    fn literals_are_redacted() {
        assert_eq!(
            redact_literals("invalid type: string \"sk-secret\", expected a boolean"),
            "invalid type: string \"…\", expected a boolean"
        );
    }
}
