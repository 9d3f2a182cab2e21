//! Calls forwarded to a provider with a resolved credential (the gateway): what the outbound
//! port is given and returns, and the rules on what of the client's request passes through.
//!
//! The key never leaves the service: the client's request goes out with the stored credential
//! injected by the outbound adapter (the same one that tests keys, under the same policy), and
//! the answer streams back unbuffered.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;

use crate::catalog::ProviderId;
use crate::error::{Error, Result};
use crate::secret::SecretValue;

/// A response body: chunks as they arrive. An error ends the stream (a limit was hit or the
/// provider went away after the answer started).
pub type ByteStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, StreamFailure>> + Send>>;

/// Why a response body stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StreamFailure(pub String);

/// One request to forward.
pub struct ForwardRequest {
    pub provider: ProviderId,
    /// Where the credential may be used: the config's base URL or the catalog default. `None`
    /// for providers whose endpoint comes from credential fields (Azure `endpoint`, Bedrock
    /// `region`, Vertex `location`): the adapter derives it the provider's way.
    pub base_url: Option<String>,
    /// The path below the base URL, checked by [`ForwardPath::parse`].
    pub path: ForwardPath,
    /// The query string as sent, minus the client's own `key` parameter.
    pub query: Option<String>,
    /// An HTTP method token (`GET`, `POST` …).
    pub method: String,
    /// The client's headers that may pass ([`passes_upstream`]), in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole request body (kept so a refused call can be retried with another credential).
    pub body: Bytes,
    /// The credential's secret fields, opened.
    pub secrets: BTreeMap<String, SecretValue>,
    /// The credential's other fields (organization, endpoint, region …).
    pub settings: BTreeMap<String, String>,
}

impl fmt::Debug for ForwardRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardRequest")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("path", &self.path)
            .field("method", &self.method)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The provider's answer, as it starts arriving.
pub struct ForwardResponse {
    pub status: u16,
    /// The provider's headers that may go back to the client ([`passes_downstream`]).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: ByteStream,
}

impl fmt::Debug for ForwardResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Why nothing came back from the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardFailure {
    /// The outbound policy refused the target (a private address for a cloud provider …);
    /// nothing was sent.
    #[error("the call was blocked by the outbound policy: {0}")]
    Blocked(String),
    /// No connection, or no first byte, within its limit.
    #[error("the provider did not answer in time ({0})")]
    Timeout(String),
    /// The provider could not be reached.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The request could not be built for this provider (a missing region, say).
    #[error("the call could not be made: {0}")]
    Invalid(String),
}

/// A request path below a provider's base URL: segments without `.` or `..`, empty
/// segments, encoded slashes or backslashes, so it cannot climb out of the base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPath(String);

impl ForwardPath {
    /// Longest accepted path.
    pub const MAX_LEN: usize = 4096;

    /// Checks a path as received (still percent-encoded), with or without a leading slash.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid("path", format!("the gateway path {why}"));
        let path = raw.strip_prefix('/').unwrap_or(raw);
        if path.is_empty() {
            return Err(bad("is empty"));
        }
        if path.len() > Self::MAX_LEN {
            return Err(bad("is too long"));
        }
        if path.contains('\\') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad("holds a backslash, a space or a control character"));
        }
        let lower = path.to_ascii_lowercase();
        if ["%2f", "%5c", "%2e", "%00"]
            .iter()
            .any(|e| lower.contains(e))
        {
            return Err(bad("holds an encoded slash, backslash, dot or NUL"));
        }
        if path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(bad("holds an empty, `.` or `..` segment"));
        }
        Ok(Self(path.to_owned()))
    }

    /// The path without a leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Headers that carry a client's credential for some provider SDK: never forwarded.
pub const CLIENT_CREDENTIAL_HEADERS: [&str; 4] =
    ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// Connection-level headers of HTTP/1.1 (RFC 9110 §7.6.1) and friends: never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a client header passes to the provider: not a credential, cookie, host,
/// hop-by-hop, `X-Forwarded-*`/`Forwarded`, content length (recomputed), or one of this
/// service's own `X-LLM-Settings-*` / `X-On-Behalf-Of` / `X-Instance-Id` headers.
pub fn passes_upstream(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(CLIENT_CREDENTIAL_HEADERS.contains(&name.as_str())
        || HOP_BY_HOP.contains(&name.as_str())
        || matches!(
            name.as_str(),
            "cookie"
                | "host"
                | "content-length"
                | "forwarded"
                | "x-real-ip"
                | "x-on-behalf-of"
                | "x-instance-id"
                | "x-request-id"
        )
        || name.starts_with("x-forwarded-")
        || name.starts_with("x-llm-settings-"))
}

/// Whether a provider header passes back to the client: not hop-by-hop, not `Set-Cookie`,
/// not a length the service recomputes.
pub fn passes_downstream(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(HOP_BY_HOP.contains(&name.as_str())
        || matches!(name.as_str(), "set-cookie" | "content-length"))
}

/// The query string without the client's `key` parameter (Gemini SDKs put the API key
/// there); `None` when nothing remains.
pub fn strip_client_key(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split('=').next() != Some("key"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_climb_out_of_the_base() {
        assert_eq!(
            ForwardPath::parse("/chat/completions").unwrap().as_str(),
            "chat/completions"
        );
        assert!(ForwardPath::parse("v1beta/models/gemini-2.5-pro:streamGenerateContent").is_ok());
        for bad in [
            "",
            "/",
            "../secrets",
            "v1/../../admin",
            "v1/./messages",
            "v1//messages",
            "v1/%2e%2e/admin",
            "v1%2Fmessages",
            "v1%5cmessages",
            "v1\\messages",
            "v1/mes sages",
            "v1/%00",
        ] {
            assert_eq!(
                ForwardPath::parse(bad).unwrap_err().field(),
                Some("path"),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_credentials_and_connection_headers_stay_behind() {
        for name in [
            "Authorization",
            "x-api-key",
            "X-Goog-Api-Key",
            "api-key",
            "Cookie",
            "Host",
            "Connection",
            "Transfer-Encoding",
            "X-Forwarded-For",
            "Forwarded",
            "X-On-Behalf-Of",
            "X-LLM-Settings-Fallback",
        ] {
            assert!(!passes_upstream(name), "{name}");
        }
        for name in [
            "content-type",
            "anthropic-version",
            "openai-beta",
            "user-agent",
            "accept",
        ] {
            assert!(passes_upstream(name), "{name}");
        }
        assert!(!passes_downstream("Set-Cookie"));
        assert!(passes_downstream("content-type"));
        assert!(passes_downstream("x-request-id"));
    }

    #[test]
    fn the_key_parameter_is_dropped() {
        assert_eq!(
            strip_client_key("key=abc&alt=sse").as_deref(),
            Some("alt=sse")
        );
        assert_eq!(strip_client_key("key=abc"), None);
        assert_eq!(
            strip_client_key("api-version=2024-10-21").as_deref(),
            Some("api-version=2024-10-21")
        );
    }
}
