//! Buffered requests: how a probe (and a token exchange) talks to the network.
//!
//! Every request goes through the [`Network`]: the URL (already parsed once) passes the
//! policy's static checks, and the pooled client of its class resolves the host and checks
//! every address before connecting. No proxy, no redirects followed, the body read up to a
//! cap, all within the caller's deadline.

use std::time::Duration;

use bytes::Bytes;
use llm_settings_domain::FailureClass;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, USER_AGENT};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use url::Url;

use crate::failure::Failure;
use crate::network::{cause_of, Cause, Network};
use crate::policy::Refusal;

/// The `User-Agent` of every probe request.
const PROBE_USER_AGENT: &str = concat!("llm-settings-probe/", env!("CARGO_PKG_VERSION"));

/// One request a probe shape wants to send.
#[derive(Debug)]
pub(crate) struct OutboundRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
}

impl OutboundRequest {
    /// A `GET` of the URL with no header yet.
    pub(crate) fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// Adds a non-secret header; values that are not valid header text are refused.
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Result<Self, Failure> {
        let value = HeaderValue::from_str(value).map_err(|_| {
            Failure::new(
                FailureClass::InvalidCredentials,
                format!("the {name} value contains characters that cannot be sent"),
            )
        })?;
        self.headers.insert(HeaderName::from_static(name), value);
        Ok(self)
    }
}

/// A provider's answer, body already read (and capped).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Sends buffered requests (a probe's, a token exchange) under the policy and a deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outbound<'a> {
    pub(crate) network: &'a Network,
    pub(crate) local: bool,
    pub(crate) deadline: Instant,
    pub(crate) max_body_bytes: usize,
}

impl Outbound<'_> {
    fn remaining(&self) -> Result<Duration, Failure> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(Failure::timeout())
        } else {
            Ok(left)
        }
    }

    /// The checks that need no DNS (scheme, credentials, IP-literal hosts), for refusing a
    /// target before earlier steps of a probe (a token exchange) are spent on it.
    pub(crate) fn precheck(&self, url: &Url) -> Result<(), Failure> {
        self.network
            .route(url, self.local)
            .map(|_| ())
            .map_err(|refusal| blocked(&refusal))
    }

    /// Checks the target, connects only to checked addresses and reads the capped body.
    pub(crate) async fn send(&self, request: OutboundRequest) -> Result<Reply, Failure> {
        let (client, checked) = self
            .network
            .route(&request.url, self.local)
            .map_err(|refusal| blocked(&refusal))?;
        let remaining = self.remaining()?;
        tracing::debug!(
            target: "llm_settings_probes",
            method = %request.method,
            host = %checked.host,
            port = checked.port,
            path = request.url.path(),
            "sending probe request"
        );
        let mut headers = request.headers;
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT));
        }
        let mut builder = client
            .request(request.method, request.url)
            .headers(headers)
            .timeout(remaining);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let send = tokio::time::timeout(remaining, builder.send());
        let mut response = match send.await {
            Err(_) => return Err(Failure::timeout()),
            Ok(result) => result.map_err(|e| transport_failure(&e))?,
        };
        let status = response.status();
        let headers = response.headers().clone();
        tracing::debug!(
            target: "llm_settings_probes",
            host = %checked.host,
            status = status.as_u16(),
            "provider answered"
        );

        // A success body over the cap is refused; an error body is only cut short, because
        // its status still tells what went wrong.
        let refuse_large = status.is_success();
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if refuse_large && declared.is_some_and(|len| len > self.max_body_bytes as u64) {
            return Err(Failure::too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e))? {
            if body.len() + chunk.len() > self.max_body_bytes {
                if refuse_large {
                    return Err(Failure::too_large());
                }
                let room = self.max_body_bytes - body.len();
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// The failure of a target the policy refused.
fn blocked(refusal: &Refusal) -> Failure {
    Failure::new(FailureClass::BlockedByPolicy, refusal.to_string())
}

/// Maps a transport error onto a failure class, without the error text (which may name the
/// URL or echo provider data).
fn transport_failure(error: &reqwest::Error) -> Failure {
    match cause_of(error) {
        Cause::Refused(refusal) => return blocked(refusal),
        Cause::Unresolvable => {
            return Failure::new(
                FailureClass::Unreachable,
                "the endpoint's host name could not be resolved",
            )
        }
        Cause::Other => {}
    }
    if error.is_timeout() {
        return Failure::timeout();
    }
    if error.is_connect() {
        return Failure::new(
            FailureClass::Unreachable,
            "could not connect to the endpoint (network or TLS failure)",
        );
    }
    if error.is_body() || error.is_decode() {
        return Failure::new(
            FailureClass::InvalidResponse,
            "the connection broke while reading the provider's answer",
        );
    }
    if error.is_request() {
        return Failure::new(
            FailureClass::Unreachable,
            "the request to the endpoint failed before an answer arrived",
        );
    }
    Failure::new(
        FailureClass::ProviderError,
        "the request to the endpoint failed",
    )
}
