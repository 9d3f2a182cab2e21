//! A request id on every response and every log line of the request, and the second spelling
//! of the admin API's seed paths.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Uri;
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use rand::Rng;
use tracing::Instrument;

/// Header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the current request (in request extensions).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Whether a client's id may be kept: `[A-Za-z0-9._-]{1,64}`, so it is safe in any log line
/// and header. Anything else is replaced by a fresh id.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn fresh_id() -> String {
    let bytes: [u8; 12] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware: reuses a well-formed incoming `X-Request-Id` or makes one, runs the request in
/// a tracing span carrying it, logs the outcome and echoes the id in the response.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(fresh_id, str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %crate::surfaces::shown_path(req.path()),
    );
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(res)
}

/// Paths that answer under a second spelling: the admin API's seed paths end in a slash
/// (`/llm-config/`) except `test-connection`; both spellings of each reach the one route.
/// Paths registered with a trailing slash, as their seeds write them.
const SLASHED: [&str; 1] = ["/llm-config/"];

/// The registered form of a request path, when it differs: every path answers with or without
/// a trailing slash (`/llm-config` is `/llm-config/`, `/users/me/llm-settings/` is
/// `/users/me/llm-settings`).
fn canonical_path(path: &str) -> Option<String> {
    // The page's paths and gateway paths (the provider's own) are taken as they come.
    if SLASHED.contains(&path) || crate::web::is_page_path(path) || path.starts_with("/v1/gateway/")
    {
        return None;
    }
    if let Some(slashed) = SLASHED.iter().find(|s| s.trim_end_matches('/') == path) {
        return Some((*slashed).to_owned());
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() == path.len() || trimmed.is_empty() {
        return None;
    }
    Some(
        SLASHED
            .iter()
            .find(|s| s.trim_end_matches('/') == trimmed)
            .map_or_else(|| trimmed.to_owned(), |s| (*s).to_owned()),
    )
}

/// Middleware: rewrites a path to its registered form (see [`canonical_path`]) before routing,
/// keeping the query string.
pub async fn seed_paths(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(target) = canonical_path(req.path()) {
        let uri = match req.uri().query() {
            Some(query) => format!("{target}?{query}"),
            None => target,
        };
        if let Ok(uri) = uri.parse::<Uri>() {
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_answer_with_and_without_a_trailing_slash() {
        assert_eq!(
            canonical_path("/llm-config").as_deref(),
            Some("/llm-config/")
        );
        assert_eq!(
            canonical_path("/llm-config//").as_deref(),
            Some("/llm-config/")
        );
        assert_eq!(canonical_path("/llm-config/"), None);
        assert_eq!(
            canonical_path("/llm-config/test-connection/").as_deref(),
            Some("/llm-config/test-connection")
        );
        assert_eq!(
            canonical_path("/users/me/llm-settings/").as_deref(),
            Some("/users/me/llm-settings")
        );
        assert_eq!(canonical_path("/users/me/llm-settings"), None);
        assert_eq!(canonical_path("/"), None);
    }

    #[test]
    fn only_tame_ids_are_reused() {
        assert!(acceptable("abc-123"));
        assert!(acceptable("Req_1.2-x"));
        assert!(acceptable(&"x".repeat(64)));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable("a:b"));
        assert!(!acceptable("é"));
        assert!(!acceptable(&"x".repeat(65)));
        assert_eq!(fresh_id().len(), 24);
    }
}
