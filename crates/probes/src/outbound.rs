//! The one way a probe talks to the network.
//!
//! Every request: the URL (already parsed once) passes the [`TargetPolicy`]; a host name is
//! resolved here and every address it resolves to is checked; the HTTP client is then pinned
//! to exactly those addresses through a [`reqwest::dns::Resolve`] that knows no other name, so
//! the connection goes to the address that was checked. No proxy from the environment, no
//! redirects followed, the body read up to a cap, all within the probe's deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use llm_settings_domain::FailureClass;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use url::Url;

use crate::failure::Failure;
use crate::policy::{AllowList, TargetPolicy};

/// The `User-Agent` of every probe request.
const USER_AGENT: &str = concat!("llm-settings-probe/", env!("CARGO_PKG_VERSION"));

/// One request a probe shape wants to send.
#[derive(Debug)]
pub(crate) struct OutboundRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Vec<u8>>,
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

    /// Adds a secret header, marked sensitive so it is never printed.
    pub(crate) fn secret_header(
        mut self,
        name: &'static str,
        value: &str,
        what: &str,
    ) -> Result<Self, Failure> {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            Failure::new(
                FailureClass::InvalidCredentials,
                format!("the {what} contains characters that cannot be sent"),
            )
        })?;
        value.set_sensitive(true);
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

/// Sends requests for one probe under its policy and deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outbound<'a> {
    pub(crate) allow: &'a AllowList,
    pub(crate) local: bool,
    pub(crate) deadline: Instant,
    pub(crate) max_body_bytes: usize,
}

impl Outbound<'_> {
    fn policy(&self) -> TargetPolicy<'_> {
        TargetPolicy {
            allow: self.allow,
            local: self.local,
        }
    }

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
        self.policy()
            .check_url(url)
            .map(|_| ())
            .map_err(|refusal| Failure::new(FailureClass::BlockedByPolicy, refusal.to_string()))
    }

    /// Checks the target, connects only to checked addresses and reads the capped body.
    pub(crate) async fn send(&self, request: OutboundRequest) -> Result<Reply, Failure> {
        let checked = self.policy().check_url(&request.url).map_err(|refusal| {
            tracing::info!(target: "llm_settings_probes", "outbound request refused: {refusal}");
            Failure::new(FailureClass::BlockedByPolicy, refusal.to_string())
        })?;

        let addresses = match checked.literal {
            Some(ip) => vec![SocketAddr::new(ip, checked.port)],
            None => {
                let resolved = self.resolve(&checked.host, checked.port).await?;
                for addr in &resolved {
                    self.policy()
                        .check_address(addr.ip(), checked.host_allowed)
                        .map_err(|refusal| {
                            tracing::info!(
                                target: "llm_settings_probes",
                                host = %checked.host,
                                "outbound request refused after resolution: {refusal}"
                            );
                            Failure::new(FailureClass::BlockedByPolicy, refusal.to_string())
                        })?;
                }
                resolved
            }
        };

        let remaining = self.remaining()?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PinnedResolver {
                host: checked.host.clone(),
                addresses,
            }))
            .connect_timeout(remaining)
            .timeout(remaining)
            .pool_max_idle_per_host(0)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|_| {
                Failure::new(
                    FailureClass::ProviderError,
                    "the HTTP client could not be set up",
                )
            })?;

        tracing::debug!(
            target: "llm_settings_probes",
            method = %request.method,
            host = %checked.host,
            port = checked.port,
            path = request.url.path(),
            "sending probe request"
        );
        let mut builder = client
            .request(request.method, request.url)
            .headers(request.headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| transport_failure(&e))?;
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

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
        let remaining = self.remaining()?;
        let lookup = tokio::net::lookup_host((host, port));
        let resolved = match tokio::time::timeout(remaining, lookup).await {
            Err(_) => return Err(Failure::timeout()),
            Ok(Err(_)) => {
                return Err(Failure::new(
                    FailureClass::Unreachable,
                    "the endpoint's host name could not be resolved",
                ))
            }
            Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
        };
        if resolved.is_empty() {
            return Err(Failure::new(
                FailureClass::Unreachable,
                "the endpoint's host name resolved to no address",
            ));
        }
        Ok(resolved)
    }
}

/// Maps a transport error onto a failure class, without the error text (which may name the
/// URL or echo provider data).
fn transport_failure(error: &reqwest::Error) -> Failure {
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

/// A resolver that answers only for the host that was checked, with the addresses that were
/// checked; any other name fails.
#[derive(Debug)]
struct PinnedResolver {
    host: String,
    addresses: Vec<SocketAddr>,
}

/// Error of the pinned resolver for a name it was not given.
#[derive(Debug, thiserror::Error)]
#[error("host name was not checked by the outbound policy")]
struct UncheckedHost;

impl Resolve for PinnedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let answer: Result<Addrs, Box<dyn std::error::Error + Send + Sync>> =
            if name.as_str().eq_ignore_ascii_case(&self.host) {
                let addrs: Vec<SocketAddr> = self.addresses.clone();
                Ok(Box::new(addrs.into_iter()))
            } else {
                Err(Box::new(UncheckedHost))
            };
        Box::pin(std::future::ready(answer))
    }
}
