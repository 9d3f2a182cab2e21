//! Failure classes from providers' real error shapes.
//!
//! A provider's body is read only to find machine-readable signals (error type, code, Google
//! status and reason, AWS error type, a few well-known phrases); it is never copied into the
//! message, which is written here from templates.

use llm_settings_domain::FailureClass;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use crate::outbound::Reply;

/// Why a probe failed: a class, a short message of our own, and a retry hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) class: FailureClass,
    pub(crate) message: String,
    pub(crate) retry_after_secs: Option<u64>,
}

impl Failure {
    pub(crate) fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub(crate) fn timeout() -> Self {
        Self::new(
            FailureClass::Timeout,
            "the provider did not answer within the probe deadline",
        )
    }

    pub(crate) fn too_large() -> Self {
        Self::new(
            FailureClass::InvalidResponse,
            "the provider's answer is larger than the probe accepts",
        )
    }

    pub(crate) fn invalid_response(what: &str) -> Self {
        Self::new(
            FailureClass::InvalidResponse,
            format!("the endpoint did not answer with {what}; check the base URL"),
        )
    }

    pub(crate) fn missing(field: &str) -> Self {
        Self::new(
            FailureClass::InvalidCredentials,
            format!("no {field} was given"),
        )
    }
}

/// Machine-readable hints found in an error answer, lower-cased.
#[derive(Debug, Default)]
struct Signals {
    /// Error `type`, `code`, Google `status`, OAuth `error`, AWS error type …
    codes: Vec<String>,
    /// Google `ErrorInfo.reason`s and `QuotaFailure` quota ids.
    reasons: Vec<String>,
    /// Error messages, used only for matching well-known phrases.
    messages: Vec<String>,
    /// Google `RetryInfo.retryDelay` in seconds.
    retry_delay: Option<u64>,
}

impl Signals {
    fn from_reply(reply: &Reply) -> Self {
        let mut s = Self::default();
        if let Some(aws) = reply
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
        {
            s.push_code(aws.split(':').next().unwrap_or(aws));
        }
        let Ok(body) = serde_json::from_slice::<Value>(&reply.body) else {
            return s;
        };
        s.collect(&body);
        if let Some(error) = body.get("error") {
            s.collect(error);
        }
        s
    }

    fn push_code(&mut self, code: &str) {
        if !code.is_empty() {
            self.codes.push(code.to_ascii_lowercase());
        }
    }

    fn collect(&mut self, v: &Value) {
        for key in ["type", "code", "status", "__type", "error"] {
            match v.get(key) {
                Some(Value::String(code)) if key == "error" => {
                    // `{"error": "invalid_grant"}` (OAuth) or `{"error": "Incorrect API key …"}`.
                    if code.contains(' ') {
                        self.messages.push(code.to_ascii_lowercase());
                    } else {
                        self.push_code(code);
                    }
                }
                Some(Value::String(code)) => {
                    let code = code.rsplit('#').next().unwrap_or(code);
                    self.push_code(code);
                }
                _ => {}
            }
        }
        for key in ["message", "Message", "error_description", "detail"] {
            if let Some(Value::String(m)) = v.get(key) {
                self.messages.push(m.to_ascii_lowercase());
            }
        }
        if let Some(Value::Array(details)) = v.get("details") {
            for d in details {
                if let Some(Value::String(reason)) = d.get("reason") {
                    self.reasons.push(reason.to_ascii_lowercase());
                }
                if let Some(Value::String(delay)) = d.get("retryDelay") {
                    self.retry_delay = parse_duration_secs(delay);
                }
                if let Some(Value::Array(violations)) = d.get("violations") {
                    for violation in violations {
                        if let Some(Value::String(id)) = violation.get("quotaId") {
                            self.reasons.push(id.to_ascii_lowercase());
                        }
                    }
                }
            }
        }
    }

    fn code(&self, any: &[&str]) -> bool {
        self.codes.iter().any(|c| any.contains(&c.as_str()))
    }

    fn reason(&self, any: &[&str]) -> bool {
        self.reasons.iter().any(|r| any.contains(&r.as_str()))
    }

    fn reason_contains(&self, part: &str) -> bool {
        self.reasons.iter().any(|r| r.contains(part))
    }

    fn says(&self, phrases: &[&str]) -> bool {
        self.messages
            .iter()
            .any(|m| phrases.iter().any(|p| m.contains(p)))
    }
}

/// Classifies a non-success answer of `provider` (display name, for the message).
pub(crate) fn classify(provider: &str, reply: &Reply) -> Failure {
    let status = reply.status;
    let code = status.as_u16();
    if status.is_redirection() {
        return Failure::new(
            FailureClass::NotFound,
            format!(
                "the endpoint answered with a redirect (HTTP {code}), which probes do not \
                 follow; check the base URL"
            ),
        );
    }
    let s = Signals::from_reply(reply);
    let class = class_of(status, &s);
    let message = match class {
        FailureClass::InvalidCredentials => {
            format!("{provider} rejected the credentials (HTTP {code})")
        }
        FailureClass::PermissionDenied => {
            format!("{provider} accepted the credentials but denied access (HTTP {code})")
        }
        FailureClass::QuotaExhausted => {
            format!("{provider} reports the account's quota or credit is exhausted (HTTP {code})")
        }
        FailureClass::RateLimited => format!("{provider} is rate limiting this key (HTTP {code})"),
        FailureClass::NotFound => format!(
            "{provider} answered not found (HTTP {code}); check the base URL, model or deployment"
        ),
        FailureClass::ProviderOverloaded => {
            format!("{provider} is overloaded or unavailable (HTTP {code}); try again later")
        }
        FailureClass::Timeout => format!("{provider} timed out (HTTP {code})"),
        FailureClass::ProviderError => {
            format!("{provider} answered with an error (HTTP {code})")
        }
        _ => format!("{provider} answered with an unexpected status (HTTP {code})"),
    };
    let retry_after_secs = if class == FailureClass::RateLimited {
        retry_after(&reply.headers).or(s.retry_delay)
    } else {
        None
    };
    let message = match retry_after_secs {
        Some(secs) => format!("{message}; retry after {secs} s"),
        None => message,
    };
    Failure {
        class,
        message,
        retry_after_secs,
    }
}

fn class_of(status: StatusCode, s: &Signals) -> FailureClass {
    use FailureClass::*;
    let code = status.as_u16();

    // Explicit signals first: several providers use 400/403/429 for more than one thing.
    if says_invalid_key(s) {
        return InvalidCredentials;
    }
    if says_quota(s) || code == 402 {
        return QuotaExhausted;
    }
    class_of_rest(code, s)
}

/// Whether the answer says the key itself is wrong.
fn says_invalid_key(s: &Signals) -> bool {
    s.reason(&["api_key_invalid"])
        || s.code(&[
            "invalid_api_key",
            "authentication_error",
            "unauthenticated",
            "invalid_grant",
            "invalid_client",
            "unauthorized_client",
            "unrecognizedclientexception",
            "invalidsignatureexception",
            "incompletesignature",
            "expiredtokenexception",
            "invalidclienttokenid",
            "missingauthenticationtokenexception",
        ])
        || s.says(&[
            "incorrect api key",
            "invalid api key",
            "api key not valid",
            "invalid x-api-key",
            "invalid subscription key",
            "authentication fails",
            "security token included in the request is invalid",
            "signature we calculated does not match",
        ])
}

/// Whether the answer says the account's quota or credit is used up.
fn says_quota(s: &Signals) -> bool {
    s.code(&[
        "insufficient_quota",
        "billing_error",
        "billing_hard_limit_reached",
        "servicequotaexceededexception",
    ]) || s.says(&[
        "insufficient balance",
        "insufficient credits",
        "credit balance is too low",
        "doesn't have any credits",
        "does not have any credits",
        "out of call volume quota",
    ]) || (s.code(&["resource_exhausted"])
        && s.retry_delay.is_none()
        && s.reason_contains("perday"))
}

/// Status and signals after the key and quota checks.
fn class_of_rest(code: u16, s: &Signals) -> FailureClass {
    use FailureClass::*;
    if code == 529 || s.code(&["overloaded_error"]) {
        return ProviderOverloaded;
    }
    if code == 429
        || s.code(&[
            "rate_limit_error",
            "rate_limit_exceeded",
            "throttlingexception",
            "toomanyrequestsexception",
            "resource_exhausted",
        ])
    {
        return RateLimited;
    }
    if s.code(&[
        "permission_error",
        "permission_denied",
        "accessdeniedexception",
        "unsupported_country_region_territory",
    ]) || s.reason(&["api_key_service_blocked", "service_disabled"])
    {
        return PermissionDenied;
    }
    if s.code(&[
        "not_found_error",
        "deploymentnotfound",
        "model_not_found",
        "resourcenotfoundexception",
    ]) {
        return NotFound;
    }
    match code {
        401 => InvalidCredentials,
        403 => PermissionDenied,
        404 | 405 | 410 => NotFound,
        408 => Timeout,
        503 => ProviderOverloaded,
        400..=599 => ProviderError,
        _ => InvalidResponse,
    }
}

/// Seconds from `Retry-After` (seconds or HTTP date), `retry-after-ms`, or OpenAI's
/// `x-ratelimit-reset-requests` / `-tokens` (`1s`, `6m0s`, `20ms`).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = text("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(secs);
        }
        if let Some(secs) = seconds_until_http_date(v) {
            return Some(secs);
        }
    }
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(ceil_secs(ms / 1000.0));
    }
    ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .iter()
        .filter_map(|h| text(h).and_then(parse_duration_secs))
        .max()
}

fn ceil_secs(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        // Bounded: a retry hint of more than a day is treated as a day.
        secs.min(86_400.0).ceil() as u64
    } else {
        0
    }
}

/// Parses `36s`, `1.5s`, `6m0s`, `20ms`, `1h2m` into whole seconds, rounded up.
pub(crate) fn parse_duration_secs(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(split);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let factor = match unit {
            "ms" => 0.001,
            "s" | "" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * factor;
        rest = next;
    }
    Some(ceil_secs(total))
}

fn seconds_until_http_date(text: &str) -> Option<u64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(text, format)
        .ok()?
        .assume_utc();
    let secs = (at - time::OffsetDateTime::now_utc()).as_seconds_f64();
    Some(ceil_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn class(status: u16, body: &str) -> FailureClass {
        classify("P", &reply(status, body)).class
    }

    #[test]
    fn maps_real_provider_error_shapes() {
        use FailureClass::*;
        let gemini_bad_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert_eq!(class(400, gemini_bad_key), InvalidCredentials);
        let xai_bad_key = r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***ab. You can obtain an API key from https://console.x.ai."}"#;
        assert_eq!(class(400, xai_bad_key), InvalidCredentials);
        let openai_quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(class(429, openai_quota), QuotaExhausted);
        let openai_rate = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(class(429, openai_rate), RateLimited);
        assert_eq!(
            class(402, r#"{"error":{"message":"Insufficient Balance"}}"#),
            QuotaExhausted
        );
        assert_eq!(
            class(402, r#"{"error":{"code":402,"message":"x"}}"#),
            QuotaExhausted
        );
        let anthropic_overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(class(529, anthropic_overloaded), ProviderOverloaded);
        let anthropic_credit = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#;
        assert_eq!(class(400, anthropic_credit), QuotaExhausted);
        let anthropic_key = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(class(401, anthropic_key), InvalidCredentials);
        let gemini_denied =
            r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#;
        assert_eq!(class(403, gemini_denied), PermissionDenied);
        let gemini_daily = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#;
        assert_eq!(class(429, gemini_daily), QuotaExhausted);
        let xai_credits = r#"{"code":"The caller does not have permission to execute the specified operation","error":"Your newly created team doesn't have any credits yet."}"#;
        assert_eq!(class(403, xai_credits), QuotaExhausted);
        let azure_deployment = r#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#;
        assert_eq!(class(404, azure_deployment), NotFound);
        assert_eq!(
            class(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#
            ),
            InvalidCredentials
        );
        assert_eq!(class(500, "<html>oops</html>"), ProviderError);
        assert_eq!(class(503, ""), ProviderOverloaded);
        assert_eq!(class(502, ""), ProviderError);
        assert_eq!(class(301, ""), NotFound);
        assert_eq!(class(404, ""), NotFound);
    }

    #[test]
    fn aws_error_type_header_is_read() {
        let mut r = reply(
            403,
            r#"{"message":"The security token included in the request is invalid."}"#,
        );
        r.headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/"),
        );
        assert_eq!(classify("P", &r).class, FailureClass::InvalidCredentials);
        let mut r = reply(403, r#"{"message":"You don't have access to the model."}"#);
        r.headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("AccessDeniedException"),
        );
        assert_eq!(classify("P", &r).class, FailureClass::PermissionDenied);
        let r = reply(
            400,
            r#"{"__type":"com.amazon.coral#ThrottlingException","message":"Rate exceeded"}"#,
        );
        assert_eq!(classify("P", &r).class, FailureClass::RateLimited);
    }

    #[test]
    fn retry_hints() {
        let mut r = reply(429, "{}");
        r.headers
            .insert("retry-after", HeaderValue::from_static("7"));
        let f = classify("P", &r);
        assert_eq!(
            (f.class, f.retry_after_secs),
            (FailureClass::RateLimited, Some(7))
        );
        assert!(f.message.contains("retry after 7 s"));
        let mut r = reply(429, "{}");
        r.headers.insert(
            "x-ratelimit-reset-requests",
            HeaderValue::from_static("6m0s"),
        );
        assert_eq!(classify("P", &r).retry_after_secs, Some(360));
        let gemini = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.2s"}]}}"#;
        assert_eq!(
            classify("P", &reply(429, gemini)).retry_after_secs,
            Some(37)
        );
        assert_eq!(parse_duration_secs("20ms"), Some(1));
        assert_eq!(parse_duration_secs("1h2m"), Some(3720));
        assert_eq!(parse_duration_secs("soon"), None);
        let mut r = reply(429, "{}");
        r.headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(classify("P", &r).retry_after_secs, Some(0));
    }

    #[test]
    fn messages_never_echo_the_body() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-planted-123","code":"invalid_api_key"}}"#;
        let f = classify("OpenAI", &reply(401, body));
        assert!(!f.message.contains("planted"));
        assert!(!f.message.contains("Incorrect"));
    }
}
