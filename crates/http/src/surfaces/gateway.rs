//! The gateway, `/v1/gateway/{provider}/{path}`: an application sends the provider's own
//! request (official SDKs work unchanged with their base URL pointed here and the token as
//! their API key); the service resolves the credential, injects it the provider's way,
//! forwards under the outbound rules and streams the answer back. The key never leaves the
//! service. Errors before an answer are in the native shape.

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut, Data, Payload};
use actix_web::{delete, get, patch, post, put, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use utoipa_actix_web::service_config::ServiceConfig;

use llm_settings_domain::{
    ForwardPath, GatewayAnswer, GatewayCall, InstanceId, ProviderId, UserId,
};

use crate::auth::authenticate_sdk;
use crate::caller::INSTANCE_HEADER;
use crate::error::{ApiError, Code};
use crate::limits::Limited;
use crate::metrics::GatewayCallMetrics;
use crate::naming::ProviderNames;
use crate::surface::{DetailCodeError, GATEWAY};
use crate::AppState;

/// The user a service token calls for.
pub const ON_BEHALF_HEADER: &str = "x-on-behalf-of";
/// `true` retries an upstream 401, 403 or 429 with the next level of the chain.
pub const FALLBACK_HEADER: &str = "x-llm-settings-fallback";
/// Whose credential answered: `user`, `instance` or `global`.
pub const SOURCE_HEADER: &str = "x-llm-settings-credential-source";

/// How long a client may take to send a request body to the gateway, at least.
const MIN_BODY_DEADLINE: Duration = Duration::from_secs(30);

/// The routes of this surface: every method on one path.
pub fn routes(config: &mut ServiceConfig<'_>) {
    config
        .service(forward_get)
        .service(forward_post)
        .service(forward_put)
        .service(forward_patch)
        .service(forward_delete);
}

macro_rules! gateway_method {
    ($name:ident, $method:ident) => {
        /// Forward a request to the provider with the resolved credential (see the tag's
        /// description); the answer is the provider's own, streamed.
        #[utoipa::path(
            params(
                ("provider" = String, Path, description = "A provider id of the catalog: openai, anthropic, gemini, deepseek_cloud, openrouter, xai, mistral, groq, ollama, deepseek_local, openai_compatible, azure, amazon-bedrock, google-vertex"),
                ("path" = String, Path, description = "The provider's own path below its base URL (slashes allowed; no `.`/`..`/empty segments, encoded slashes or backslashes)"),
                ("X-On-Behalf-Of" = Option<String>, Header, description = "Service tokens: the user the call is made for"),
                ("X-Instance-Id" = Option<String>, Header, description = "Service tokens: the instance the call is made in"),
                ("X-LLM-Settings-Fallback" = Option<bool>, Header, description = "`true` retries an upstream 401, 403 or 429 with the next level of the chain"),
            ),
            responses(
                (status = 200, description = "The provider's answer, streamed as it arrives (any status the provider answers); `X-LLM-Settings-Credential-Source` names whose credential answered"),
                (status = 400, description = "Malformed path, unknown provider, or a service token naming no user or instance", body = DetailCodeError),
                (status = 401, description = "Missing or invalid token", body = DetailCodeError),
                (status = 403, description = "A user token without the `use` scope, a token acting for someone else, or a target blocked by the outbound policy", body = DetailCodeError),
                (status = 404, description = "No enabled config of the provider along the chain (`provider_not_configured`)", body = DetailCodeError),
                (status = 413, description = "The request body is over the limit", body = DetailCodeError),
                (status = 502, description = "The provider could not be reached", body = DetailCodeError),
                (status = 504, description = "The provider did not answer in time", body = DetailCodeError),
            )
        )]
        #[$method("/{provider}/{path:.*}")]
        async fn $name(req: HttpRequest, payload: Payload) -> Result<HttpResponse, ApiError> {
            forward(req, payload).await
        }
    };
}

gateway_method!(forward_get, get);
gateway_method!(forward_post, post);
gateway_method!(forward_put, put);
gateway_method!(forward_patch, patch);
gateway_method!(forward_delete, delete);

async fn forward(req: HttpRequest, payload: Payload) -> Result<HttpResponse, ApiError> {
    let (state, actor) = authenticate_sdk(&req)?;
    state.limits.admit(Limited::GatewayCall, &actor)?;
    let call = call_of(&req, &state, payload).await?;
    let recorded = GatewayCallMetrics::start(call.provider, call.body.len());
    match state.service.gateway(&actor, call).await {
        Ok(answer) => {
            let received = recorded.answered(answer.source, answer.status);
            Ok(respond(answer, received))
        }
        Err(err) => {
            let err = ApiError::from(err);
            recorded.failed(&err);
            Err(err)
        }
    }
}

/// The client's request as a domain call: provider, checked path, headers, whole body.
async fn call_of(
    req: &HttpRequest,
    state: &Data<AppState>,
    payload: Payload,
) -> Result<GatewayCall, ApiError> {
    let provider = provider_of(req, state)?;
    let path =
        ForwardPath::parse(raw_path(req)).map_err(|e| ApiError::from(e).with_field("path"))?;
    let on_behalf_of = header(req, ON_BEHALF_HEADER, "X-On-Behalf-Of")?
        .map(UserId::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).with_field("X-On-Behalf-Of"))?;
    let instance = header(req, INSTANCE_HEADER, INSTANCE_HEADER)?
        .map(InstanceId::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).with_field(INSTANCE_HEADER))?;
    let fallback = match header(req, FALLBACK_HEADER, "X-LLM-Settings-Fallback")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(
                ApiError::invalid("X-LLM-Settings-Fallback must be true or false")
                    .with_field("X-LLM-Settings-Fallback"),
            )
        }
    };
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let deadline = state.request_timeout.max(MIN_BODY_DEADLINE);
    let body = read_body(req, payload, state.gateway_max_body_bytes, deadline).await?;
    Ok(GatewayCall {
        provider,
        on_behalf_of,
        instance,
        method: req.method().as_str().to_owned(),
        path,
        query: Some(req.query_string().to_owned()).filter(|q| !q.is_empty()),
        headers,
        body,
        fallback,
    })
}

/// A header of the gateway's own, refused when it is not visible ASCII (never ignored, so a
/// mangled `X-On-Behalf-Of` cannot fall back to the token's own subject).
fn header<'r>(
    req: &'r HttpRequest,
    name: &str,
    shown: &'static str,
) -> Result<Option<&'r str>, ApiError> {
    req.headers()
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::invalid(format!("{shown} must be visible ASCII characters"))
                    .with_field(shown)
            })
        })
        .transpose()
}

fn provider_of(req: &HttpRequest, state: &AppState) -> Result<ProviderId, ApiError> {
    let name = req.match_info().get("provider").unwrap_or_default();
    GATEWAY.names.provider(state.service.catalog(), name)
}

/// The provider's path exactly as the client sent it (still percent-encoded), after
/// `/v1/gateway/{provider}/`.
fn raw_path(req: &HttpRequest) -> &str {
    let full = req.uri().path();
    full.splitn(5, '/').nth(4).unwrap_or("")
}

/// Reads the whole body (kept for a fallback retry), refusing one over `limit` with 413.
async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body must be at most {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::invalid("the request body could not be read"))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    actix_web::rt::time::timeout(deadline, read)
        .await
        .map_err(|_| {
            ApiError::new(
                Code::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms",
                    deadline.as_millis()
                ),
            )
        })?
}

/// The provider's answer as it arrives, with the credential's source; `received` counts its
/// bytes.
fn respond(answer: GatewayAnswer, received: metrics::Counter) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut res = HttpResponse::build(status);
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            res.append_header((name, value));
        }
    }
    res.insert_header((SOURCE_HEADER, answer.source.as_str()));
    let body = answer.body.map(move |chunk| {
        let chunk =
            chunk.map_err(|failure| actix_web::error::ErrorBadGateway(failure.to_string()))?;
        received.increment(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        Ok::<_, actix_web::Error>(chunk)
    });
    res.streaming(body)
}
