//! A forwarded call's answer body: chunks passed on as they arrive, within the idle and total
//! limits; an error answer has the call's secrets scrubbed (some providers echo the key).

use std::time::Duration;

use bytes::Bytes;
use llm_settings_domain::{ByteStream, StreamFailure};
use tokio::time::Instant;
use zeroize::Zeroizing;

/// What replaces a secret found in an error answer.
const REDACTED: &[u8] = b"[redacted]";
/// Shorter values are not scrubbed (they would match ordinary text).
const MIN_SCRUBBED_LEN: usize = 8;

/// Replaces the call's secrets in a body that arrives in pieces, holding back just enough
/// bytes to catch a secret split across two chunks.
pub(crate) struct Scrubber {
    secrets: Vec<Zeroizing<Vec<u8>>>,
    keep: usize,
    pending: Zeroizing<Vec<u8>>,
}

impl Scrubber {
    /// `None` when no secret is long enough to look for.
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let secrets: Vec<Zeroizing<Vec<u8>>> = secrets
            .into_iter()
            .map(str::trim)
            .filter(|s| s.len() >= MIN_SCRUBBED_LEN)
            .map(|s| Zeroizing::new(s.as_bytes().to_vec()))
            .collect();
        let longest = secrets.iter().map(|s| s.len()).max()?;
        Some(Self {
            secrets,
            keep: longest - 1,
            pending: Zeroizing::new(Vec::new()),
        })
    }

    /// Takes a chunk; returns what can be passed on already.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        self.scrub();
        let ready = self.pending.len().saturating_sub(self.keep);
        let out = Bytes::copy_from_slice(&self.pending[..ready]);
        self.pending.drain(..ready);
        out
    }

    /// The rest, at the end of the body.
    pub(crate) fn finish(&mut self) -> Bytes {
        self.scrub();
        let out = Bytes::copy_from_slice(&self.pending);
        self.pending.clear();
        out
    }

    fn scrub(&mut self) {
        for secret in &self.secrets {
            let mut from = 0;
            while let Some(at) = find(&self.pending[from..], secret) {
                let start = from + at;
                self.pending
                    .splice(start..start + secret.len(), REDACTED.iter().copied());
                from = start + REDACTED.len();
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The state of an answer's body.
pub(crate) struct Body {
    response: Option<reqwest::Response>,
    idle: Duration,
    deadline: Instant,
    scrubber: Option<Scrubber>,
}

impl Body {
    pub(crate) fn new(
        response: reqwest::Response,
        idle: Duration,
        deadline: Instant,
        scrubber: Option<Scrubber>,
    ) -> Self {
        Self {
            response: Some(response),
            idle,
            deadline,
            scrubber,
        }
    }

    /// The stream handed to the caller; dropping it closes the connection.
    pub(crate) fn into_stream(self) -> ByteStream {
        Box::pin(futures_util::stream::unfold(self, |mut body| async move {
            let item = body.next().await?;
            Some((item, body))
        }))
    }

    async fn next(&mut self) -> Option<Result<Bytes, StreamFailure>> {
        loop {
            let response = self.response.as_mut()?;
            let left = self.deadline.saturating_duration_since(Instant::now());
            let wait = self.idle.min(left);
            let failure = match tokio::time::timeout(wait, response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    let chunk = match self.scrubber.as_mut() {
                        Some(scrubber) => scrubber.push(&chunk),
                        None => chunk,
                    };
                    if chunk.is_empty() {
                        continue;
                    }
                    return Some(Ok(chunk));
                }
                Ok(Ok(None)) => {
                    self.response = None;
                    let rest = self.scrubber.take().map(|mut s| s.finish());
                    return rest.filter(|r| !r.is_empty()).map(Ok);
                }
                Ok(Err(_)) => "the provider's answer broke off before its end".to_owned(),
                Err(_) if wait < self.idle => {
                    "the answer did not end within the gateway's total limit".to_owned()
                }
                Err(_) => format!(
                    "the provider sent nothing for {}",
                    crate::gateway::shown(self.idle)
                ),
            };
            self.response = None;
            self.scrubber = None;
            return Some(Err(StreamFailure(failure)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_even_across_chunks() {
        let mut s = Scrubber::new(["sk-planted-0123456789", "short"]).unwrap();
        let mut out = Vec::new();
        for chunk in [
            &b"{\"error\":\"Incorrect API key provided: sk-plan"[..],
            b"ted-0123456789. Try again\", \"short\": 1}",
        ] {
            out.extend_from_slice(&s.push(chunk));
        }
        out.extend_from_slice(&s.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"error\":\"Incorrect API key provided: [redacted]. Try again\", \"short\": 1}"
        );
        assert!(Scrubber::new(["tiny"]).is_none());
    }
}
