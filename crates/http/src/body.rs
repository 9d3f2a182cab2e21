//! JSON request bodies: size-limited, strictly typed, and every error names the field.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::{redact_literals, ApiError, Surface};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body of type `T`. Malformed JSON, wrong types and unknown fields answer 400 (422 on
/// the FastAPI-style surface) naming the field; a body over [`MAX_BODY_BYTES`] answers 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let surface = Surface::of(req);
        let content_type_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        let declared_too_big = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > MAX_BODY_BYTES);
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            if declared_too_big {
                return Err(too_large(surface));
            }
            if !content_type_ok {
                return Err(ApiError::new(
                    surface,
                    "unsupported_media_type",
                    "the request body must be application/json",
                ));
            }
            let bytes = bytes.await.map_err(|e| {
                if e.as_response_error().status_code().as_u16() == 413 {
                    too_large(surface)
                } else {
                    ApiError::invalid_body(surface, None, "the request body could not be read")
                }
            })?;
            if bytes.len() > MAX_BODY_BYTES {
                return Err(too_large(surface));
            }
            parse(surface, &bytes).map(JsonBody)
        })
    }
}

fn too_large(surface: Surface) -> ApiError {
    ApiError::new(
        surface,
        "payload_too_large",
        format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
    )
}

/// Parses a body, reporting the path of the offending field.
pub fn parse<T: DeserializeOwned>(surface: Surface, bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_body(
            surface,
            None,
            "the request body is empty; send a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let detail = redact_literals(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid_body(surface, None, format!("malformed JSON: {detail}"));
        }
        if let Some(name) = detail
            .strip_prefix("unknown field `")
            .and_then(|_| missing_or_unknown_field(&detail))
        {
            if crate::surfaces::shown_name(&name) != name {
                // A key pasted as a field name must not come back in the error.
                return ApiError::invalid_body(
                    surface,
                    None,
                    "unknown field (name not shown: it does not look like a field name)",
                );
            }
        }
        let named = missing_or_unknown_field(&detail).map(|name| {
            if path == "." || path == name || path.ends_with(&format!(".{name}")) {
                name
            } else {
                format!("{path}.{name}")
            }
        });
        let field = named.or((path != ".").then_some(path));
        let message = match &field {
            Some(f) if !detail.contains(&format!("`{f}`")) => format!("{f}: {detail}"),
            _ => detail,
        };
        ApiError::invalid_body(surface, field, message)
    })
}

/// The field named by serde's `missing field` / `unknown field` messages.
fn missing_or_unknown_field(detail: &str) -> Option<String> {
    let rest = detail
        .strip_prefix("missing field `")
        .or_else(|| detail.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
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
        let err = parse::<Body>(
            Surface::Native,
            br#"{"provider": "x", "is_default": "sk-secret"}"#,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("is_default"));
        assert!(!err.message.contains("sk-secret"), "{}", err.message);
        let err = parse::<Body>(Surface::Native, br#"{"is_default": true}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("provider"));
        let err = parse::<Body>(Surface::Native, br#"{"provider": "x", "colour": 1}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("colour"));
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Body>,
        }
        let err =
            parse::<Outer>(Surface::Native, br#"{"items": [{"provider": "x"}, {}]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("items[1].provider"));
        let err = parse::<Body>(
            Surface::Native,
            br#"{"provider": "x", "sk-proj-PLANTEDsecretVALUE0123456789abcdef": 1}"#,
        )
        .unwrap_err();
        assert!(!format!("{err:?}").contains("PLANTED"), "{err:?}");
        assert!(err.message.starts_with("unknown field"));
        let err = parse::<Body>(Surface::Native, br#"{"provider": "#).unwrap_err();
        assert!(err.message.starts_with("malformed JSON"));
        assert_eq!(err.status().as_u16(), 400);
        let err = parse::<Body>(Surface::Native, b"").unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
    }
}
