//! Small validated values: ids, model names, base URLs, timestamps.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Store-assigned id of a provider config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigId(pub i64);

impl fmt::Display for ConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A provider's model identifier (`gpt-4o`, `anthropic.claude-3-5-sonnet-20240620-v1:0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ModelName(String);

impl ModelName {
    /// Longest accepted model name.
    pub const MAX_LEN: usize = 200;

    /// Accepts 1–200 visible ASCII characters.
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() {
            return Err(Error::invalid("model", "model must not be empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "model",
                format!("model must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "model",
                "model may only contain visible ASCII characters without spaces",
            ));
        }
        Ok(Self(value))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An http(s) endpoint without credentials, query or fragment, kept without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Longest accepted URL.
    pub const MAX_LEN: usize = 2048;

    /// Validates a base URL for the field `base_url`.
    pub fn parse(value: &str) -> Result<Self> {
        Self::parse_field("base_url", value)
    }

    /// Validates a URL, naming `field` in errors.
    pub fn parse_field(field: &str, value: &str) -> Result<Self> {
        let bad = |msg: &str| Error::invalid(field, format!("{field} {msg}"));
        if value.len() > Self::MAX_LEN {
            return Err(bad("is too long"));
        }
        let text = value.trim();
        let Some((scheme, after_scheme)) = text.split_once("://") else {
            return Err(bad("is not a valid URL"));
        };
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(bad("must use http or https"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
            return Err(bad(
                "must be printable ASCII without spaces or backslashes (an international host \
                 name in punycode, other characters percent-encoded)",
            ));
        }
        let authority = after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if !authority.contains('@') && !is_host_and_port(authority) {
            return Err(bad(
                "must name a host of letters, digits, `-` and `_` (or an IP address), and at \
                 most a numeric port",
            ));
        }
        let url = url::Url::parse(text).map_err(|_| bad("is not a valid URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not contain credentials"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("must name a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self(text))
    }

    /// The URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The origin: scheme, lower-cased host and port (the scheme's default port when none is
    /// written), as `scheme://host:port`. Two URLs reach the same server only when their
    /// origins are equal.
    pub fn origin(&self) -> String {
        origin_of(&self.0).unwrap_or_default()
    }

    /// The lower-cased host (IPv6 literals in brackets).
    pub fn host(&self) -> String {
        url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default()
    }
}

/// `host[:port]` as written: dot-separated labels of letters, digits, `-` and `_` (not
/// starting with `-`), or a bracketed IPv6 literal; the port, when written, digits only.
fn is_host_and_port(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((ip, rest)) if !ip.is_empty() => {
                if !ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                ("ip", rest)
            }
            _ => return false,
        },
        None => match authority.find(':') {
            Some(at) => authority.split_at(at),
            None => (authority, ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    port_ok && host.split('.').all(label_ok)
}

/// The origin (`scheme://host:port`) of an http(s) URL, `None` when it is not one.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let port = url.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", url.scheme()))
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A UTC instant with microsecond precision (what both stores keep), shown as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Normalises to UTC and truncates to whole microseconds.
    pub fn new(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let micros = at.nanosecond() / 1_000 * 1_000;
        Self(at.replace_nanosecond(micros).unwrap_or(at))
    }

    /// Microseconds since the Unix epoch (what the stores persist).
    pub fn unix_micros(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000) as i64
    }

    /// Rebuilds from microseconds since the Unix epoch.
    pub fn from_unix_micros(micros: i64) -> Result<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
            .map(Self)
            .map_err(|_| Error::Internal("timestamp out of range".into()))
    }

    /// The instant.
    pub fn as_offset(&self) -> OffsetDateTime {
        self.0
    }

    /// RFC 3339, e.g. `2025-01-05T10:00:00Z` (fraction only when non-zero).
    pub fn to_rfc3339(&self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }

    /// Parses RFC 3339.
    pub fn parse_rfc3339(value: &str) -> Result<Self> {
        OffsetDateTime::parse(value, &Rfc3339)
            .map(Self::new)
            .map_err(|_| Error::invalid("timestamp", "not an RFC 3339 timestamp"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::parse_rfc3339(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert!(ModelName::parse("anthropic.claude-3-5-sonnet-20240620-v1:0").is_ok());
        assert!(ModelName::parse("openrouter/auto").is_ok());
        assert!(ModelName::parse("").is_err());
        assert!(ModelName::parse("gpt 4").is_err());
        assert!(ModelName::parse("x".repeat(201)).is_err());
    }

    #[test]
    fn base_urls() {
        let u = BaseUrl::parse("https://API.example.com/v1/").unwrap();
        assert_eq!(u.as_str(), "https://api.example.com/v1");
        assert_eq!(u.host(), "api.example.com");
        assert_eq!(BaseUrl::parse("http://[::1]:8080").unwrap().host(), "[::1]");
        for good in [
            " HTTPS://Api.Example.com:8443/v1/deployments/a%20b ",
            "http://127.0.0.1:11434",
            "http://ollama_host:11434/",
            "http://xn--bcher-kva.example/v1",
        ] {
            assert!(BaseUrl::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://example.com",
            "file:///etc/passwd",
            "https://user:pw@example.com",
            "https://example.com/?x=1",
            "https://example.com/#frag",
            "not a url",
            "javascript:alert(1)",
            "http:example.com",
            "http://exa*mple.com",
            "http://h%41st.example",
            "http://exa\tmple.com",
            "http://example.com\\path",
            "http://bücher.example",
            "http://example.com.",
            "http://-x.example",
            "http://example.com:8o",
            "http://[zz]/",
        ] {
            let err = BaseUrl::parse(bad).unwrap_err();
            assert_eq!(err.field(), Some("base_url"), "{bad}");
        }
    }

    #[test]
    fn origins_name_scheme_host_and_port() {
        let origin = |u: &str| BaseUrl::parse(u).unwrap().origin();
        assert_eq!(
            origin("https://API.openai.com/v1"),
            "https://api.openai.com:443"
        );
        assert_eq!(
            origin("https://api.openai.com:443/other"),
            origin("https://api.openai.com/v1")
        );
        assert_ne!(
            origin("http://api.openai.com/v1"),
            origin("https://api.openai.com/v1")
        );
        assert_ne!(
            origin("https://api.openai.com:8443/v1"),
            origin("https://api.openai.com/v1")
        );
        assert_eq!(origin("http://[::1]:8080/x"), "http://[::1]:8080");
    }

    #[test]
    fn timestamps_are_utc_micros_and_rfc3339() {
        let t = Timestamp::new(time::macros::datetime!(2025-01-05 12:00:00.123456789 +02:00));
        assert_eq!(t.to_rfc3339(), "2025-01-05T10:00:00.123456Z");
        assert_eq!(Timestamp::from_unix_micros(t.unix_micros()).unwrap(), t);
        let whole = Timestamp::new(time::macros::datetime!(2025-01-05 10:00:00 UTC));
        assert_eq!(
            serde_json::to_string(&whole).unwrap(),
            "\"2025-01-05T10:00:00Z\""
        );
    }
}
