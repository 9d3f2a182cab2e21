//! JSON request bodies: declared as JSON, size-limited, read within a deadline, exactly one JSON
//! value, numbers kept exact, strictly typed, and every error names the field.

mod de;
mod numbers;

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use llm_settings_domain::error::shown;

pub use de::{BodyError, ValueDeserializer};

use crate::error::{ApiError, Code, FailureKind, LocItem};
use crate::AppState;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a client may take to send a body when the application sets no deadline.
pub const DEFAULT_BODY_DEADLINE: Duration = Duration::from_secs(5);

/// A JSON body of type `T`. A body not declared as JSON answers 415, one over
/// [`MAX_BODY_BYTES`] 413, one not sent within the request deadline 408; malformed JSON, data
/// after the value, numbers that would change, wrong types and unknown fields answer 400
/// (422 on the FastAPI-style surface) naming the field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let refused = refused_up_front(req);
        let deadline = req
            .app_data::<Data<AppState>>()
            .map_or(DEFAULT_BODY_DEADLINE, |s| s.request_timeout);
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            if let Some(err) = refused {
                return Err(err);
            }
            let bytes = match actix_web::rt::time::timeout(deadline, bytes).await {
                Err(_) => {
                    return Err(ApiError::new(
                        Code::RequestTimeout,
                        format!(
                            "the request body did not arrive within {} ms",
                            deadline.as_millis()
                        ),
                    ))
                }
                Ok(Err(e)) if e.as_response_error().status_code().as_u16() == 413 => {
                    return Err(too_large())
                }
                Ok(Err(_)) => return Err(body_error(vec![], "the request body could not be read")),
                Ok(Ok(bytes)) => bytes,
            };
            if bytes.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            parse(&bytes).map(JsonBody)
        })
    }
}

/// A body refused by its headers alone: declared too big (413), or not declared as JSON (415).
fn refused_up_front(req: &HttpRequest) -> Option<ApiError> {
    let declared_too_big = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES);
    if declared_too_big {
        return Some(too_large());
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        });
    (!is_json).then(|| {
        ApiError::new(
            Code::UnsupportedMediaType,
            "the request body must be JSON: send Content-Type: application/json",
        )
    })
}

fn too_large() -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
    )
}

fn body_error(path: Vec<LocItem>, message: impl Into<String>) -> ApiError {
    let field = (!path.is_empty()).then(|| field_name(&path));
    ApiError::invalid_body(path, FailureKind::ValueError, field, message)
}

/// A path as one field name: `ai.providers.openai`, `assignments[1].task`.
fn field_name(path: &[LocItem]) -> String {
    let mut out = String::new();
    for item in path {
        match item {
            LocItem::Name(name) if out.is_empty() => out.push_str(name),
            LocItem::Name(name) => {
                out.push('.');
                out.push_str(name);
            }
            LocItem::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Only names that may be repeated stay in a path (a key pasted as a name does not).
fn shown_path(path: Vec<LocItem>) -> Vec<LocItem> {
    path.into_iter()
        .map(|item| match item {
            LocItem::Name(name) => LocItem::Name(shown(&name)),
            index => index,
        })
        .collect()
}

/// Parses a body as exactly one JSON value of type `T`, reporting the path of the offending
/// field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(body_error(
            vec![],
            "the request body is empty; send a JSON object",
        ));
    }
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let parsed = Value::deserialize(&mut reader);
    if let Some(path) = numbers::first_inexact(bytes) {
        // Also when the parser gave up on the number (`1e400` is out of its range).
        return Err(inexact_number(path));
    }
    let value = parsed.map_err(|e| {
        let detail = crate::error::redact_literals(&e.to_string());
        body_error(vec![], format!("malformed JSON: {detail}"))
    })?;
    if reader.end().is_err() {
        return Err(body_error(
            vec![],
            "the request body must be one JSON value with nothing after it",
        ));
    }
    serde_path_to_error::deserialize(ValueDeserializer::<BodyError>::new(value))
        .map_err(|e| typed_error(e.path(), e.inner().clone()))
}

/// A number that would change once parsed, named by its path.
fn inexact_number(path: Vec<LocItem>) -> ApiError {
    let path = shown_path(path);
    let name = if path.is_empty() {
        "the body".to_owned()
    } else {
        field_name(&path)
    };
    body_error(
        path,
        format!("{name}: the number cannot be kept exactly; integers must fit in 64 bits and other numbers in 17 significant digits"),
    )
}

/// A type error at `path` as an API error naming the field.
fn typed_error(at: &serde_path_to_error::Path, err: BodyError) -> ApiError {
    use serde_path_to_error::Segment;
    let mut path: Vec<LocItem> = at
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(LocItem::Index(*index as u64)),
            Segment::Map { key } => Some(LocItem::Name(shown(key))),
            Segment::Enum { variant } => Some(LocItem::Name(shown(variant))),
            Segment::Unknown => None,
        })
        .collect();
    if err.kind == FailureKind::ExtraForbidden
        && matches!(at.iter().next_back(), Some(Segment::Map { .. }))
    {
        // The unknown key itself; the error names it only when it may be repeated.
        path.pop();
    }
    if let Some(name) = err.field {
        if path.last() != Some(&LocItem::Name(name.clone())) {
            path.push(LocItem::Name(name));
        }
    }
    let field = (!path.is_empty()).then(|| field_name(&path));
    let message = match &field {
        Some(f) if !err.message.contains(&format!("`{f}`")) => format!("{f}: {}", err.message),
        _ => err.message,
    };
    ApiError::invalid_body(path, err.kind, field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        provider: String,
        is_default: Option<bool>,
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse::<Body>(br#"{"provider": "x", "is_default": "sk-secret"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("is_default"));
        assert!(!err.message.contains("sk-secret"), "{}", err.message);
        let err = parse::<Body>(br#"{"is_default": true}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("provider"));
        assert_eq!(err.body.unwrap().kind, FailureKind::Missing);
        let err = parse::<Body>(br#"{"provider": "x", "colour": 1}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("colour"));
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Body>,
        }
        let err = parse::<Outer>(br#"{"items": [{"provider": "x"}, {}]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("items[1].provider"));
        assert_eq!(
            err.body.unwrap().path,
            vec![
                LocItem::Name("items".into()),
                LocItem::Index(1),
                LocItem::Name("provider".into())
            ]
        );
        let err =
            parse::<Body>(br#"{"provider": "x", "sk-proj-PLANTEDsecretVALUE0123456789abcdef": 1}"#)
                .unwrap_err();
        assert!(!format!("{err:?}").contains("PLANTED"), "{err:?}");
        assert!(err.message.starts_with("unknown field"));
        let err = parse::<Body>(br#"{"provider": "#).unwrap_err();
        assert!(err.message.starts_with("malformed JSON"));
        assert_eq!(err.status().as_u16(), 400);
        assert!(parse::<Body>(b"").is_err());
    }

    #[test]
    fn one_value_and_nothing_after_it() {
        for body in [
            &br#"{"provider": "x"}{"provider": "y"}"#[..],
            br#"{"provider": "x"} garbage"#,
            b"{\"provider\": \"x\"}\0",
        ] {
            let err = parse::<Body>(body).unwrap_err();
            assert_eq!(err.status().as_u16(), 400);
            assert!(err.message.contains("nothing after it"), "{}", err.message);
        }
        assert!(parse::<Body>(b" {\"provider\": \"x\"} \n").is_ok());
    }

    #[test]
    fn numbers_that_would_change_are_refused_naming_the_field() {
        let err = parse::<Value>(br#"{"ai": {"maxTokens": 18446744073709551616}}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("ai.maxTokens"));
        assert_eq!(err.status().as_u16(), 400);
        let err =
            parse::<Value>(br#"{"sk-proj-PLANTED0123456789abcdef012345": 1e999}"#).unwrap_err();
        assert!(!format!("{err:?}").contains("PLANTED"), "{err:?}");
        assert_eq!(
            parse::<Value>(br#"{"t": 0.7, "n": 18446744073709551615}"#).unwrap()["n"],
            serde_json::json!(18446744073709551615u64)
        );
    }
}

/// A query string of type `T`: unknown or malformed parameters answer 400 naming the
/// parameter (its value is never repeated).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The parsed query.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = actix_web::web::Query::<T>::from_query(req.query_string())
            .map(|q| Self(q.into_inner()))
            .map_err(|_| {
                let names: Vec<String> = req
                    .query_string()
                    .split('&')
                    .filter_map(|pair| pair.split('=').next())
                    .filter(|name| !name.is_empty())
                    .map(shown)
                    .collect();
                ApiError::invalid(format!(
                    "the query parameters ({}) are not the ones this operation takes, or a value is malformed",
                    names.join(", ")
                ))
            });
        std::future::ready(parsed)
    }
}
