//! One error type for the transport. Handlers and extractors return [`ApiError`] (domain errors
//! convert with `?`); the surface a request belongs to renders it in its own body shape when the
//! response is written (see [`crate::surface::render_errors`]).
//!
//! The status of every code is decided once, in [`Code::status`], with no catch-all.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use llm_settings_domain::{Error as DomainError, ErrorCode};

/// Every error code the service answers with: the domain's and the transport's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A domain code.
    Domain(ErrorCode),
    /// No or an unacceptable bearer token.
    Unauthorized,
    /// The request body is not the expected JSON document.
    InvalidBody,
    /// A known path asked with another method.
    MethodNotAllowed,
    /// The request body is over the limit.
    PayloadTooLarge,
    /// The request body is not declared as JSON.
    UnsupportedMediaType,
    /// The client did not send its request in time.
    RequestTimeout,
    /// Too many requests for the caller; retry later.
    RateLimited,
}

impl Code {
    /// The HTTP status of the code. The one table of the service.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Domain(code) => match code {
                ErrorCode::ValidationError
                | ErrorCode::MaskedKeyMismatch
                | ErrorCode::UnknownProvider => StatusCode::BAD_REQUEST,
                ErrorCode::ProviderNotConfigured
                | ErrorCode::TaskNotAssigned
                | ErrorCode::NotFound => StatusCode::NOT_FOUND,
                ErrorCode::Conflict => StatusCode::CONFLICT,
                ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::UpstreamBlocked => StatusCode::FORBIDDEN,
                ErrorCode::UpstreamUnreachable | ErrorCode::UpstreamInvalid => {
                    StatusCode::BAD_GATEWAY
                }
                ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::SecretUnreadable | ErrorCode::InternalError => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InvalidBody => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The code as clients see it (a body error is reported as a validation error).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain(code) => code.as_str(),
            Self::Unauthorized => "unauthorized",
            Self::InvalidBody => "validation_error",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl From<ErrorCode> for Code {
    fn from(code: ErrorCode) -> Self {
        Self::Domain(code)
    }
}

/// One item of a FastAPI `loc`: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    /// A field name (or `"body"`).
    Name(String),
    /// A position in a list.
    Index(u64),
}

impl LocItem {
    /// A field path (`assignments[0].task`, `ai.temperature`) as items: names, then list
    /// indices as numbers.
    pub fn path(path: &str) -> Vec<Self> {
        path.split(['.', '[', ']'])
            .filter(|part| !part.is_empty())
            .map(|part| match part.parse::<u64>() {
                Ok(index) => Self::Index(index),
                Err(_) => Self::Name(part.to_owned()),
            })
            .collect()
    }
}

/// What was wrong with a part of the request body (the FastAPI `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A required field is absent.
    Missing,
    /// A field the operation does not know.
    ExtraForbidden,
    /// Any other wrong value, type or syntax.
    ValueError,
}

/// Where in the request body an error is, for surfaces that report body errors as a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyLocation {
    /// Path below `body`.
    pub path: Vec<LocItem>,
    pub kind: FailureKind,
}

/// An error on its way to the client; the surface chooses its body shape.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// The offending field, as a path (`credentials.api_key`, `assignments[1].task`).
    pub field: Option<String>,
    /// Set when the error is about the request body.
    pub body: Option<BodyLocation>,
    /// The methods the path answers to, for 405.
    pub allow: Option<String>,
    /// Seconds after which a refused request may be retried, for 429 (`Retry-After`).
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    /// An error with a code and a message safe to show.
    pub fn new(code: impl Into<Code>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
            body: None,
            allow: None,
            retry_after_secs: None,
        }
    }

    /// A value of the request that breaks a rule, reported as such (400).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    /// A field of the request body that breaks a rule (a body error on every surface).
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self::invalid(message).at(field, FailureKind::ValueError)
    }

    /// What is absent or not the caller's (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// A request body that could not be read as the expected document.
    pub fn invalid_body(
        path: Vec<LocItem>,
        kind: FailureKind,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        let mut err = Self::new(Code::InvalidBody, message);
        err.field = field;
        err.body = Some(BodyLocation { path, kind });
        err
    }

    /// A missing or unacceptable bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthorized, message)
    }

    /// Too many requests of one kind from the caller (429 with `Retry-After`).
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u32) -> Self {
        let mut err = Self::new(Code::RateLimited, message);
        err.retry_after_secs = Some(retry_after_secs);
        err
    }

    /// Names the offending field (not a body error by itself).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Marks the error as one about the field `field` of the request body.
    pub fn at(mut self, field: String, kind: FailureKind) -> Self {
        self.body = Some(BodyLocation {
            path: LocItem::path(&field),
            kind,
        });
        self.field = Some(field);
        self
    }

    /// The status, whatever the surface.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// A response with the status and headers of the error and `body` as JSON.
    pub fn respond(&self, status: StatusCode, body: &impl Serialize) -> HttpResponse {
        let mut res = HttpResponse::build(status);
        if self.code == Code::Unauthorized {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"llm-settings\""),
            ));
        }
        if let Some(value) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            res.insert_header((header::ALLOW, value));
        }
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs));
        }
        res.json(body)
    }
}

impl From<DomainError> for ApiError {
    /// Internal failures are logged here and reach the client only as a generic message (their
    /// text is for operators). Validation failures name their field and count as body errors.
    fn from(err: DomainError) -> Self {
        let kind = err.kind();
        let message = match kind {
            ErrorCode::InternalError | ErrorCode::SecretUnreadable => {
                tracing::error!(code = kind.as_str(), error = %err, "request failed inside the service");
                "the service failed to complete the request; see the server log".to_owned()
            }
            ErrorCode::StoreUnavailable => {
                tracing::warn!(code = kind.as_str(), error = %err, "store unavailable");
                "the settings store is unavailable; retry shortly".to_owned()
            }
            _ => err.to_string(),
        };
        let mut api = Self::new(kind, message);
        api.field = err.field().map(str::to_owned);
        if matches!(
            kind,
            ErrorCode::ValidationError | ErrorCode::MaskedKeyMismatch
        ) {
            api.body = Some(BodyLocation {
                path: api.field.as_deref().map(LocItem::path).unwrap_or_default(),
                kind: FailureKind::ValueError,
            });
        }
        api
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    /// The service's own shape; a surface re-renders it in its shape on the way out.
    fn error_response(&self) -> HttpResponse {
        crate::surface::Shape::ErrorObject.render(self)
    }
}

/// Removes quoted literals from a message: a client may have put a secret where another type
/// was expected, and error messages never repeat secrets.
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
            (
                DomainError::TaskNotAssigned {
                    task: "t".into(),
                    searched: "global".into(),
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
            assert_eq!(ApiError::from(err).status().as_u16(), status);
        }
        for (code, status) in [
            (Code::RateLimited, 429),
            (Code::Domain(ErrorCode::UpstreamBlocked), 403),
            (Code::Domain(ErrorCode::UpstreamUnreachable), 502),
            (Code::Domain(ErrorCode::UpstreamInvalid), 502),
            (Code::Domain(ErrorCode::UpstreamTimeout), 504),
            (Code::UnsupportedMediaType, 415),
            (Code::PayloadTooLarge, 413),
        ] {
            assert_eq!(code.status().as_u16(), status);
        }
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let err = ApiError::from(DomainError::Internal("pool state xyz".into()));
        assert!(!err.message.contains("xyz"));
    }

    #[test]
    fn field_paths_keep_list_indices_as_numbers() {
        assert_eq!(
            LocItem::path("assignments[2].task"),
            vec![
                LocItem::Name("assignments".into()),
                LocItem::Index(2),
                LocItem::Name("task".into())
            ]
        );
    }

    #[test]
    fn literals_are_redacted() {
        assert_eq!(
            redact_literals("invalid type: string \"sk-secret\", expected a boolean"),
            "invalid type: string \"…\", expected a boolean"
        );
    }
}
