//! Cross-origin access to the API for applications that embed the settings component: the
//! operator lists the allowed origins (`LLM_SETTINGS_CORS_ORIGINS`, none by default). Tokens go
//! in `Authorization`, never in cookies, so credentials are never allowed.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::HttpResponse;

use crate::web::is_page_path;
use crate::AppState;

/// A list of exact web origins (`scheme://host[:port]`): those allowed to call the API from a
/// browser, or to frame the settings page.
#[derive(Debug, Clone, Default)]
pub struct Origins(pub Vec<String>);

impl Origins {
    /// Parses a comma-separated list of exact origins (`https://app.example.com`).
    pub fn parse(list: Option<&str>) -> Result<Self, String> {
        let mut origins = Vec::new();
        for origin in list.unwrap_or("").split(',').map(str::trim) {
            if origin.is_empty() {
                continue;
            }
            let url = url::Url::parse(origin).map_err(|_| format!("{origin} is not an origin"))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.origin().ascii_serialization() != origin
            {
                return Err(format!(
                    "{origin} is not an origin (scheme://host[:port], no path or trailing slash)"
                ));
            }
            origins.push(origin.to_owned());
        }
        Ok(Self(origins))
    }

    fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }
}

/// Middleware: answers preflights itself (never a handler, never a token) and marks answers
/// to allowed origins.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = req
        .app_data::<Data<AppState>>()
        .zip(origin.as_deref())
        .filter(|(state, origin)| state.cors_origins.allows(origin))
        .map(|(_, origin)| origin.to_owned());
    let page = is_page_path(req.path());
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight && !page {
        let mut res = HttpResponse::NoContent();
        res.insert_header((header::VARY, "Origin"));
        if let Some(origin) = &allowed {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET, POST, PUT, PATCH, DELETE",
                ))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type, x-instance-id",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        }
        return Ok(req.into_response(res.finish()));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    if !page {
        let headers = res.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(value) = allowed.and_then(|o| HeaderValue::from_str(&o).ok()) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
    }
    Ok(res)
}
