//! The fake's answers, provider by provider, with each provider's real body shapes: who is
//! calling (the credential picks the behaviour) and what the route answers.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::reply::ResponseTemplate;
use crate::server::Shared;
use crate::{
    chat, sigv4, Behaviour, ReceivedRequest as Request, GOOGLE_TOKEN_AUDIENCE, HUGE_BODY_BYTES,
    REDIRECT_TARGET, RETRY_AFTER_SECS, SERVICE_ACCOUNT_PUBLIC_KEY, SLOW_DELAY, STALL_BODY_PATH,
    STALL_HEADERS_PATH, TOKEN_PATH,
};

/// Page size of the paginated lists, small so that pagination is exercised.
const PAGE: usize = 2;

/// Which provider's dialect a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    OpenAi,
    DeepSeek,
    Xai,
    Mistral,
    Groq,
    Compatible,
    OpenRouter,
    Anthropic,
    Gemini,
    Ollama,
    Azure,
    Bedrock,
    Vertex,
    GoogleToken,
    Redirected,
}

impl Flavour {
    pub(crate) const ALL: [Flavour; 15] = [
        Self::OpenAi,
        Self::DeepSeek,
        Self::Xai,
        Self::Mistral,
        Self::Groq,
        Self::Compatible,
        Self::OpenRouter,
        Self::Anthropic,
        Self::Gemini,
        Self::Ollama,
        Self::Azure,
        Self::Bedrock,
        Self::Vertex,
        Self::GoogleToken,
        Self::Redirected,
    ];

    pub(crate) fn of_provider(provider: &str) -> Option<Self> {
        Some(match provider {
            "openai" => Self::OpenAi,
            "deepseek_cloud" => Self::DeepSeek,
            "xai" => Self::Xai,
            "mistral" => Self::Mistral,
            "groq" => Self::Groq,
            "openai_compatible" => Self::Compatible,
            "openrouter" => Self::OpenRouter,
            "anthropic" => Self::Anthropic,
            "gemini" => Self::Gemini,
            "ollama" | "deepseek_local" => Self::Ollama,
            "azure" => Self::Azure,
            "amazon-bedrock" => Self::Bedrock,
            "google-vertex" => Self::Vertex,
            _ => return None,
        })
    }

    /// Path prefix standing in for the provider's base URL.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Self::OpenAi => "/openai/v1",
            Self::DeepSeek => "/deepseek",
            Self::Xai => "/xai/v1",
            Self::Mistral => "/mistral/v1",
            Self::Groq => "/groq/openai/v1",
            Self::Compatible => "/compatible/v1",
            Self::OpenRouter => "/openrouter/api/v1",
            Self::Anthropic => "/anthropic",
            Self::Gemini => "/gemini",
            Self::Ollama => "/ollama",
            Self::Azure => "/azure",
            Self::Bedrock => "/bedrock",
            Self::Vertex => "/vertex",
            Self::GoogleToken => "/google",
            Self::Redirected => "",
        }
    }

    /// What a request to this flavour's `rest` of the path (after its prefix) asks for.
    fn route(self, method: &str, rest: &str) -> Option<Kind> {
        let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let kind = match (self, method, segments.as_slice()) {
            (Self::GoogleToken | Self::Redirected, ..) => return None,
            (Self::OpenRouter, "GET", ["key"]) => Kind::Models,
            (Self::OpenRouter, "GET", ["models", _, _, "endpoints"]) => Kind::Models,
            (Self::Anthropic, "GET", ["v1", "models"]) => Kind::Models,
            (Self::Anthropic, "POST", ["v1", "messages"]) => Kind::Chat,
            (Self::Gemini, "GET", ["v1beta", "models"]) => Kind::Models,
            (Self::Gemini, "POST", ["v1beta" | "v1", "models", model]) if is_generate(model) => {
                Kind::Chat
            }
            (Self::Ollama, "GET", ["api", "tags"]) => Kind::Models,
            (Self::Ollama, "POST", ["v1", "chat", "completions"]) => Kind::Chat,
            (Self::Azure, "GET", ["openai", "models"]) => Kind::Models,
            (Self::Azure, "POST", ["openai", "deployments", _, "chat", "completions"]) => {
                Kind::Chat
            }
            (Self::Bedrock, "GET", ["foundation-models"]) => Kind::Models,
            (Self::Bedrock, "POST", ["model", _, "converse" | "invoke"]) => Kind::Chat,
            (Self::Vertex, "GET", ["v1beta1", "publishers", "google", "models"]) => Kind::Models,
            (
                Self::Vertex,
                "POST",
                ["v1" | "v1beta1", "projects", _, "locations", _, "publishers", "google", "models", model],
            ) if is_generate(model) => Kind::Chat,
            (Self::Anthropic | Self::Gemini | Self::Ollama | Self::Azure, ..)
            | (Self::Bedrock | Self::Vertex, ..) => return None,
            (_, "GET", ["models"]) => Kind::Models,
            (_, "POST", ["chat", "completions"]) => Kind::Chat,
            _ => return None,
        };
        Some(kind)
    }

    pub(crate) fn models(self) -> &'static [&'static str] {
        match self {
            Self::OpenAi | Self::Compatible => {
                &["gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small"]
            }
            Self::DeepSeek => &["deepseek-chat", "deepseek-reasoner"],
            Self::Xai => &["grok-4", "grok-3-mini"],
            Self::Mistral => &["mistral-large-latest", "mistral-small-latest"],
            Self::Groq => &["llama-3.3-70b-versatile", "llama-3.1-8b-instant"],
            Self::OpenRouter => &["anthropic/claude-sonnet-4.5", "openai/gpt-4o"],
            Self::Anthropic => &[
                "claude-opus-4-1",
                "claude-opus-4-0",
                "claude-sonnet-4-0",
                "claude-3-7-sonnet-latest",
                "claude-sonnet-4-5",
            ],
            Self::Gemini | Self::Vertex => &[
                "gemini-2.0-flash",
                "gemini-2.5-pro",
                "text-embedding-004",
                "gemini-2.5-flash",
            ],
            Self::Ollama => &["llama3.1:latest", "deepseek-r1:latest", "qwen2.5:7b"],
            Self::Azure => &["gpt-4o", "gpt-4o-mini", "text-embedding-3-large"],
            Self::Bedrock => &[
                "amazon.titan-text-express-v1",
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
                "meta.llama3-8b-instruct-v1:0",
            ],
            Self::GoogleToken | Self::Redirected => &[],
        }
    }
}

pub(crate) fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(request: &Request) -> Option<&str> {
    header(request, "authorization").and_then(|v| v.strip_prefix("Bearer "))
}

pub(crate) fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub(crate) fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// What a route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// What a key test calls (model lists, key lookups, Azure's deployment check).
    Models,
    /// A completion, whole or streamed.
    Chat,
}

/// `gemini-2.5-pro:generateContent` or `…:streamGenerateContent`.
fn is_generate(model: &str) -> bool {
    model.ends_with(":generateContent") || model.ends_with(":streamGenerateContent")
}

/// The answer to any request the fake receives.
pub(crate) fn respond(request: &Request, shared: &Shared) -> ResponseTemplate {
    let path = request.url.path();
    let method = request.method.as_str();
    if path.starts_with(STALL_HEADERS_PATH) {
        return ResponseTemplate::no_answer();
    }
    if path.starts_with(STALL_BODY_PATH) {
        return ResponseTemplate::stalled();
    }
    if path == TOKEN_PATH && method == "POST" {
        return token_endpoint(request);
    }
    if path == REDIRECT_TARGET && method == "GET" {
        return json_response(200, json!({ "redirect": "followed" }));
    }
    let routed = Flavour::ALL.into_iter().find_map(|f| {
        let rest = path
            .strip_prefix(f.prefix())
            .filter(|r| r.starts_with('/'))?;
        f.route(method, rest).map(|kind| (f, kind))
    });
    let Some((flavour, kind)) = routed else {
        return json_response(
            404,
            json!({ "error": "the fake provider has no such route" }),
        );
    };
    let (behaviour, key) = match caller(flavour, request) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    match kind {
        Kind::Models => answer(flavour, behaviour, &key, || success(flavour, request)),
        Kind::Chat => answer(flavour, behaviour, &key, || {
            chat::success(flavour, request, shared)
        }),
    }
}

/// The behaviour the request's credential selects (and the key, for errors that echo it), or
/// the provider's answer to a request it refuses before looking at the key.
fn caller(f: Flavour, request: &Request) -> Result<(Behaviour, String), ResponseTemplate> {
    let owned = |b: Behaviour, key: &str| Ok((b, key.to_owned()));
    match f {
        Flavour::Bedrock => sigv4::verify(request)
            .map(|b| (b, String::new()))
            .map_err(sigv4::Rejection::response),
        Flavour::Vertex => {
            let behaviour = bearer(request)
                .and_then(|t| t.strip_prefix("fake-vertex-token-"))
                .and_then(Behaviour::from_name);
            match behaviour {
                None => Err(google_error(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials.",
                    None,
                )),
                Some(_) if header(request, "x-goog-user-project").is_none() => Err(google_error(
                    403,
                    "PERMISSION_DENIED",
                    "No quota project was given.",
                    Some(
                        json!([{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "USER_PROJECT_DENIED" }]),
                    ),
                )),
                Some(b) => owned(b, ""),
            }
        }
        Flavour::Anthropic => {
            let key = header(request, "x-api-key").unwrap_or_default();
            let b = Behaviour::of_key(key);
            if b == Behaviour::Valid && header(request, "anthropic-version").is_none() {
                return Err(anthropic_error(
                    400,
                    "invalid_request_error",
                    "anthropic-version: header is required",
                ));
            }
            owned(b, key)
        }
        Flavour::Gemini => {
            if query(request, "key").is_some() {
                return Err(google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "This fake refuses API keys in the URL.",
                    None,
                ));
            }
            let key = header(request, "x-goog-api-key").unwrap_or_default();
            owned(Behaviour::of_key(key), key)
        }
        Flavour::Azure => {
            if query(request, "api-version").is_none() {
                return Err(json_response(
                    404,
                    json!({ "error": { "code": "404", "message": "Resource not found" } }),
                ));
            }
            let key = header(request, "api-key").unwrap_or_default();
            owned(Behaviour::of_key(key), key)
        }
        // The model catalogue is public: no key needed.
        Flavour::OpenRouter if request.url.path().ends_with("/endpoints") => {
            owned(Behaviour::Valid, "")
        }
        Flavour::Ollama => match bearer(request) {
            None => owned(Behaviour::Valid, ""),
            Some(key) => owned(Behaviour::of_key(key), key),
        },
        _ => {
            let key = bearer(request).unwrap_or_default();
            owned(Behaviour::of_key(key), key)
        }
    }
}

/// The answer of a flavour for a behaviour; `success` makes the valid key's answer.
fn answer(
    f: Flavour,
    b: Behaviour,
    key: &str,
    success: impl FnOnce() -> ResponseTemplate,
) -> ResponseTemplate {
    match b {
        Behaviour::Valid => success(),
        Behaviour::Slow => success().set_delay(SLOW_DELAY),
        Behaviour::Redirect => {
            ResponseTemplate::new(302).insert_header("location", REDIRECT_TARGET)
        }
        Behaviour::Html => ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><html><head><title>Welcome</title></head><body>It works!</body></html>",
            "text/html",
        ),
        Behaviour::Huge => huge(),
        _ => error(f, b, key),
    }
}

fn huge() -> ResponseTemplate {
    let entry = r#"{"id":"padding-model-0000000000","object":"model"},"#;
    let mut body = String::with_capacity(HUGE_BODY_BYTES + entry.len() + 32);
    body.push_str(r#"{"object":"list","data":["#);
    while body.len() < HUGE_BODY_BYTES {
        body.push_str(entry);
    }
    body.push_str(r#"{"id":"last"}]}"#);
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// One page of `items` after `offset`, and the offset of the next page.
fn page<'a>(items: &'a [&'a str], offset: usize) -> (&'a [&'a str], Option<usize>) {
    let start = offset.min(items.len());
    let end = (start + PAGE).min(items.len());
    (&items[start..end], (end < items.len()).then_some(end))
}

fn success(f: Flavour, request: &Request) -> ResponseTemplate {
    let models = f.models();
    match f {
        Flavour::OpenAi
        | Flavour::DeepSeek
        | Flavour::Xai
        | Flavour::Mistral
        | Flavour::Groq
        | Flavour::Compatible => {
            let data: Vec<Value> = models
                .iter()
                .map(|id| json!({ "id": id, "object": "model", "created": 1_700_000_000, "owned_by": "fake" }))
                .collect();
            json_response(200, json!({ "object": "list", "data": data }))
        }
        Flavour::OpenRouter => openrouter_success(request),
        Flavour::Anthropic | Flavour::Gemini | Flavour::Vertex => paged_success(f, request),
        Flavour::Ollama => {
            let list: Vec<Value> = models
                .iter()
                .map(|name| json!({ "name": name, "model": name, "size": 4_920_753_328_u64 }))
                .collect();
            json_response(200, json!({ "models": list }))
        }
        Flavour::Azure => {
            let data: Vec<Value> = models
                .iter()
                .map(|id| json!({ "id": id, "object": "model", "status": "succeeded" }))
                .collect();
            json_response(200, json!({ "object": "list", "data": data }))
        }
        Flavour::Bedrock => {
            let list: Vec<Value> = models
                .iter()
                .map(|id| json!({ "modelId": id, "modelArn": format!("arn:aws:bedrock:us-east-1::foundation-model/{id}"), "providerName": "Fake" }))
                .collect();
            json_response(200, json!({ "modelSummaries": list }))
        }
        Flavour::GoogleToken | Flavour::Redirected => json_response(200, json!({})),
    }
}

/// OpenRouter's key description, or its per-model lookup.
fn openrouter_success(request: &Request) -> ResponseTemplate {
    let models = Flavour::OpenRouter.models();
    if request.url.path().ends_with("/key") {
        return json_response(
            200,
            json!({ "data": {
                "label": "sk-or-v1-fak...e00",
                "limit": null,
                "usage": 1.25,
                "limit_remaining": null,
                "is_free_tier": false
            }}),
        );
    }
    let path = request.url.path();
    let known = models
        .iter()
        .any(|m| path.contains(&format!("/models/{m}/endpoints")));
    if known {
        json_response(200, json!({ "data": { "id": "model", "endpoints": [] } }))
    } else {
        json_response(
            404,
            json!({ "error": { "code": 404, "message": "Model not found" } }),
        )
    }
}

/// The paginated model lists of Anthropic, Gemini and Vertex AI.
fn paged_success(f: Flavour, request: &Request) -> ResponseTemplate {
    let models = f.models();
    match f {
        Flavour::Anthropic => {
            let offset = query(request, "after_id")
                .and_then(|after| models.iter().position(|m| *m == after).map(|i| i + 1))
                .unwrap_or(0);
            let (items, next) = page(models, offset);
            let data: Vec<Value> = items
                .iter()
                .map(|id| json!({ "type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z" }))
                .collect();
            json_response(
                200,
                json!({
                    "data": data,
                    "has_more": next.is_some(),
                    "first_id": items.first(),
                    "last_id": items.last(),
                }),
            )
        }
        Flavour::Gemini | Flavour::Vertex => {
            let offset = query(request, "pageToken")
                .and_then(|t| t.strip_prefix("page-").and_then(|n| n.parse().ok()))
                .unwrap_or(0);
            let (items, next) = page(models, offset);
            let (list_key, prefix) = if f == Flavour::Gemini {
                ("models", "models/")
            } else {
                ("publisherModels", "publishers/google/models/")
            };
            let list: Vec<Value> = items
                .iter()
                .map(|id| json!({ "name": format!("{prefix}{id}"), "displayName": id }))
                .collect();
            let mut body = json!({ list_key: list });
            if let Some(next) = next {
                body["nextPageToken"] = json!(format!("page-{next}"));
            }
            json_response(200, body)
        }
        _ => json_response(200, json!({})),
    }
}

fn retry(template: ResponseTemplate) -> ResponseTemplate {
    template.insert_header("retry-after", RETRY_AFTER_SECS.to_string().as_str())
}

fn openai_error(status: u16, message: &str, kind: &str, code: Option<&str>) -> ResponseTemplate {
    json_response(
        status,
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } }),
    )
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    json_response(
        status,
        json!({ "type": "error", "error": { "type": kind, "message": message } }),
    )
}

fn google_error(
    status: u16,
    code: &str,
    message: &str,
    details: Option<Value>,
) -> ResponseTemplate {
    let mut error = json!({ "code": status, "message": message, "status": code });
    if let Some(details) = details {
        error["details"] = details;
    }
    json_response(status, json!({ "error": error }))
}

fn aws_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    json_response(status, json!({ "message": message })).insert_header(
        "x-amzn-errortype",
        format!("{kind}:http://internal.amazon.com/coral/com.amazon.coral.service/").as_str(),
    )
}

fn error(f: Flavour, b: Behaviour, key: &str) -> ResponseTemplate {
    use Behaviour::*;
    match f {
        Flavour::OpenAi
        | Flavour::Compatible
        | Flavour::Groq
        | Flavour::DeepSeek
        | Flavour::Xai
        | Flavour::Mistral
        | Flavour::OpenRouter => openai_family_error(f, b, key),
        Flavour::Anthropic => match b {
            Invalid => anthropic_error(401, "authentication_error", "invalid x-api-key"),
            Forbidden => anthropic_error(403, "permission_error", "Your API key does not have permission to use the specified resource."),
            Quota => anthropic_error(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."),
            RateLimited => retry(anthropic_error(429, "rate_limit_error", "Number of requests has exceeded your per-minute rate limit")),
            Overloaded => anthropic_error(529, "overloaded_error", "Overloaded"),
            _ => anthropic_error(500, "api_error", "Internal server error"),
        },
        Flavour::Gemini | Flavour::Vertex => match b {
            Invalid => google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                "metadata": { "service": "generativelanguage.googleapis.com" }
            }]))),
            Forbidden => google_error(403, "PERMISSION_DENIED", "Permission denied on resource project.", Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "googleapis.com"
            }]))),
            Quota => google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details.", Some(json!([{
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{ "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model_per_day", "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier" }]
            }]))),
            RateLimited => google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", Some(json!([{
                "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{RETRY_AFTER_SECS}s")
            }]))),
            Overloaded => google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", None),
            _ => google_error(500, "INTERNAL", "An internal error has occurred.", None),
        },
        Flavour::Ollama => {
            let ollama = |status: u16, error: &str| json_response(status, json!({ "error": error }));
            match b {
                Invalid => ollama(401, "unauthorized"),
                Forbidden => ollama(403, "forbidden"),
                Quota => ollama(402, "insufficient credits"),
                RateLimited => retry(ollama(429, "too many requests")),
                Overloaded => ollama(503, "server busy, please try again.  maximum pending requests exceeded"),
                _ => ollama(500, "llama runner process has terminated"),
            }
        }
        Flavour::Azure => {
            let azure = |status: u16, code: &str, message: &str| json_response(status, json!({ "error": { "code": code, "message": message } }));
            match b {
                Invalid => azure(401, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."),
                Forbidden => azure(403, "PermissionDenied", "Principal does not have access to API/Operation."),
                Quota => azure(403, "403", "Out of call volume quota for OpenAI API. Quota will be replenished in 1 day."),
                RateLimited => retry(azure(429, "429", "Requests to the ChatCompletions_Create Operation have exceeded call rate limit. Please retry after 7 seconds.")),
                Overloaded => azure(503, "ServiceUnavailable", "The service is temporarily unable to process your request."),
                _ => azure(500, "InternalServerError", "The server had an error while processing your request."),
            }
        }
        Flavour::Bedrock => match b {
            Invalid => aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid."),
            Forbidden => aws_error(403, "AccessDeniedException", "User: arn:aws:iam::000000000000:user/fake is not authorized to perform: bedrock:ListFoundationModels"),
            Quota => aws_error(400, "ServiceQuotaExceededException", "You have exceeded the service quota for this account."),
            // Bedrock gives no Retry-After.
            RateLimited => aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again."),
            Overloaded => aws_error(503, "ServiceUnavailableException", "Service Unavailable"),
            _ => aws_error(500, "InternalServerException", "Internal Server Error"),
        },
        Flavour::GoogleToken | Flavour::Redirected => json_response(500, json!({})),
    }
}

/// Errors of the OpenAI-style providers, each in its own words.
fn openai_family_error(f: Flavour, b: Behaviour, key: &str) -> ResponseTemplate {
    use Behaviour::*;
    match f {
        Flavour::OpenAi | Flavour::Compatible => match b {
            Invalid => openai_error(401, &format!("Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys."), "invalid_request_error", Some("invalid_api_key")),
            Forbidden => openai_error(403, "Country, region, or territory not supported", "request_forbidden", Some("unsupported_country_region_territory")),
            Quota => openai_error(429, "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", Some("insufficient_quota")),
            RateLimited => retry(openai_error(429, "Rate limit reached for requests", "requests", Some("rate_limit_exceeded")))
                .insert_header("x-ratelimit-reset-requests", format!("{RETRY_AFTER_SECS}s").as_str()),
            Overloaded => openai_error(503, "The engine is currently overloaded, please try again later", "server_error", None),
            _ => openai_error(500, "The server had an error while processing your request.", "server_error", None),
        },
        Flavour::Groq => match b {
            Invalid => openai_error(401, "Invalid API Key", "invalid_request_error", Some("invalid_api_key")),
            Forbidden => openai_error(403, "Forbidden", "permission_error", Some("permission_denied")),
            Quota => openai_error(429, "You exceeded your current quota.", "insufficient_quota", Some("insufficient_quota")),
            RateLimited => retry(openai_error(429, "Rate limit reached for model on requests per minute (RPM)", "requests", Some("rate_limit_exceeded"))),
            Overloaded => openai_error(503, "Service Unavailable", "internal_server_error", Some("service_unavailable")),
            _ => openai_error(500, "Internal Server Error", "internal_server_error", None),
        },
        Flavour::DeepSeek => {
            let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            match b {
                Invalid => openai_error(401, &format!("Authentication Fails, Your api key: ****{tail} is invalid"), "authentication_error", Some("invalid_request_error")),
                Forbidden => openai_error(403, "Permission denied", "permission_error", None),
                Quota => openai_error(402, "Insufficient Balance", "unknown_error", Some("invalid_request_error")),
                RateLimited => retry(openai_error(429, "Rate Limit Reached", "rate_limit_error", None)),
                Overloaded => openai_error(503, "Server Overloaded", "server_error", None),
                _ => openai_error(500, "Server Error", "server_error", None),
            }
        }
        Flavour::Xai => {
            let xai = |status: u16, code: &str, error: &str| json_response(status, json!({ "code": code, "error": error }));
            match b {
                Invalid => xai(400, "Client specified an invalid argument", &format!("Incorrect API key provided: {key}. You can obtain an API key from https://console.x.ai.")),
                Forbidden => xai(403, "The caller does not have permission to execute the specified operation", "Your API key does not have permission to list models."),
                Quota => xai(403, "The caller does not have permission to execute the specified operation", "Your newly created team doesn't have any credits yet. You can purchase credits on https://console.x.ai."),
                RateLimited => retry(xai(429, "Some resource has been exhausted", "Too many requests")),
                Overloaded => xai(503, "The service is currently unavailable", "Service unavailable"),
                _ => xai(500, "Internal error", "Internal server error"),
            }
        }
        Flavour::Mistral => {
            let mistral = |status: u16, message: &str| json_response(status, json!({ "message": message, "request_id": "fake-request" }));
            match b {
                Invalid => mistral(401, "Unauthorized"),
                Forbidden => mistral(403, "Forbidden"),
                Quota => json_response(402, json!({ "object": "error", "message": "Payment required", "type": "invalid_request_error", "code": null })),
                RateLimited => retry(mistral(429, "Requests rate limit exceeded")),
                Overloaded => mistral(503, "Service unavailable"),
                _ => mistral(500, "Internal server error"),
            }
        }
        Flavour::OpenRouter => {
            let or = |status: u16, message: &str| json_response(status, json!({ "error": { "code": status, "message": message } }));
            match b {
                Invalid => or(401, "User not found."),
                Forbidden => or(403, "Key is disabled"),
                Quota => or(402, "Insufficient credits. Add more using https://openrouter.ai/credits"),
                RateLimited => retry(or(429, "Rate limit exceeded")),
                Overloaded => or(503, "No available provider"),
                _ => or(500, "Internal Server Error"),
            }
        }
        _ => openai_error(500, "Internal Server Error", "server_error", None),
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    scope: String,
}

/// The Google OAuth token endpoint: verifies the service account's signed assertion.
fn token_endpoint(request: &Request) -> ResponseTemplate {
    let oauth_error = |error: &str, description: &str| {
        json_response(
            400,
            json!({ "error": error, "error_description": description }),
        )
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return oauth_error("unsupported_grant_type", "Invalid grant_type");
    }
    let Some(assertion) = field("assertion") else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    let Ok(key) = DecodingKey::from_rsa_pem(SERVICE_ACCOUNT_PUBLIC_KEY.as_bytes()) else {
        return json_response(500, json!({ "error": "internal_failure" }));
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[GOOGLE_TOKEN_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let Ok(token) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) else {
        return oauth_error("invalid_grant", "Invalid JWT Signature.");
    };
    if !token
        .claims
        .scope
        .contains("https://www.googleapis.com/auth/cloud-platform")
    {
        return oauth_error("invalid_scope", "Invalid OAuth scope.");
    }
    let behaviour = token
        .claims
        .iss
        .split_once('@')
        .and_then(|(name, _)| Behaviour::from_name(name))
        .unwrap_or(Behaviour::Invalid);
    if behaviour == Behaviour::Invalid {
        return oauth_error("invalid_grant", "Invalid grant: account not found");
    }
    json_response(
        200,
        json!({
            "access_token": format!("fake-vertex-token-{}", behaviour.name()),
            "expires_in": 3599,
            "token_type": "Bearer"
        }),
    )
}
