//! A fake LLM provider for tests: one HTTP/1.1 server on 127.0.0.1 that speaks every probe
//! shape of the catalog (OpenAI-style, OpenRouter, Anthropic, Gemini, Ollama, Azure OpenAI,
//! Bedrock, Vertex AI with its Google token endpoint) with each provider's real success and
//! error bodies, and answers the completion calls the gateway forwards — whole, or streamed
//! chunk by chunk with a pause between chunks. It records every request it receives and
//! whether the client of a streamed answer stayed to its end.
//!
//! What happens is chosen by the credential, so the same server serves every test:
//!
//! | credential | answer |
//! |---|---|
//! | [`Behaviour::Valid`] | the model list (paginated for Anthropic, Gemini and Vertex), or the completion [`completion_text`] |
//! | [`Behaviour::Invalid`] (and any unknown key) | the provider's "bad key" error (401 for most) |
//! | [`Behaviour::Forbidden`] | the provider's permission error |
//! | [`Behaviour::Quota`] | the provider's quota / balance error |
//! | [`Behaviour::RateLimited`] | 429 with a retry hint of [`RETRY_AFTER_SECS`] |
//! | [`Behaviour::Overloaded`] | 529 (Anthropic) or 503 |
//! | [`Behaviour::ServerError`] | 500 |
//! | [`Behaviour::Slow`] | the valid answer after [`SLOW_DELAY`] |
//! | [`Behaviour::Redirect`] | 302 to [`REDIRECT_TARGET`] |
//! | [`Behaviour::Huge`] | a 200 JSON body of [`HUGE_BODY_BYTES`] |
//! | [`Behaviour::Html`] | a 200 HTML page instead of JSON |
//!
//! API keys are [`Behaviour::key`]; Bedrock access key ids are [`Behaviour::access_key_id`]
//! with [`BEDROCK_SECRET_ACCESS_KEY`] (the SigV4 signature over method, path, query, signed
//! headers and body is verified); Vertex service accounts are
//! [`Behaviour::service_account_json`] (the JWT is verified, and the file's `token_uri`
//! points at a dead address, so a client that follows it fails). Invalid-key errors echo
//! the key, as some providers do, so tests can prove it never leaks further.
//!
//! # Completion routes (under [`FakeProvider::base_url`] of the provider)
//!
//! | provider | route | streamed when |
//! |---|---|---|
//! | OpenAI-style (`openai`, `deepseek_cloud`, `xai`, `mistral`, `groq`, `openrouter`, `openai_compatible`) | `POST {base}/chat/completions` | `"stream": true` (SSE, ending `data: [DONE]`) |
//! | `ollama`, `deepseek_local` | `POST {base}/v1/chat/completions` | `"stream": true` |
//! | `anthropic` | `POST {base}/v1/messages` (needs `anthropic-version`) | `"stream": true` (Anthropic's SSE events) |
//! | `gemini` | `POST {base}/v1beta/models/{m}:generateContent`, `…:streamGenerateContent` | the stream method (SSE with `alt=sse`, else a JSON array) |
//! | `azure` | `POST {endpoint}/openai/deployments/`[`AZURE_DEPLOYMENT`]`/chat/completions?api-version=…` | `"stream": true`; an empty `messages` is a 400, another deployment a 404 |
//! | `amazon-bedrock` | `POST {base}/model/{id}/converse`, `…/invoke` | never |
//! | `google-vertex` | `POST {base}/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent` (or `:streamGenerateContent`) | as Gemini |
//!
//! Streamed answers send [`COMPLETION_PIECES`] one chunk each, [`DEFAULT_CHUNK_DELAY`] apart
//! (change it with [`FakeProvider::set_chunk_delay`], or per request with the
//! [`CHUNK_DELAY_HEADER`] header); [`FakeProvider::streams`] tells whether each client stayed
//! to the end. For timeouts: [`FakeProvider::stall_headers_url`] (the request is read and
//! never answered), [`FakeProvider::stall_body_url`] (headers, then silence),
//! [`SilentServer`] (a TCP server that never writes and counts closed connections) and
//! [`Unconnectable`] (a port whose connection attempts never complete).
//!
//! ```no_run
//! # async fn demo() {
//! use llm_settings_fake_provider::{Behaviour, FakeProvider};
//! let fake = FakeProvider::start().await;
//! let base = fake.base_url("openai"); // http://127.0.0.1:PORT/openai/v1
//! let key = Behaviour::RateLimited.key();
//! // LLM_SETTINGS_PROBE_ALLOW_HOSTS=fake.allow_hosts()
//! // … call the gateway, then:
//! let seen = fake.received();
//! let last = seen.last().and_then(|r| r.header("authorization"));
//! # let _ = (base, key, last);
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

mod chat;
mod reply;
mod responders;
mod server;
mod sigv4;
mod silent;

use responders::Flavour;
pub use silent::{SilentServer, Unconnectable};

/// Seconds of every rate-limit hint the fake gives.
pub const RETRY_AFTER_SECS: u64 = 7;
/// How long [`Behaviour::Slow`] waits before answering.
pub const SLOW_DELAY: Duration = Duration::from_secs(5);
/// Size of the body of [`Behaviour::Huge`] (more than a probe's 1 MiB cap).
pub const HUGE_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Path that [`Behaviour::Redirect`] points to; a probe that follows redirects requests it.
pub const REDIRECT_TARGET: &str = "/redirected";
/// The Bedrock secret access key that goes with every [`Behaviour::access_key_id`].
pub const BEDROCK_SECRET_ACCESS_KEY: &str = "fakeSecretAccessKey/for+tests0000000000000";
/// Region the fake Bedrock expects in signatures.
pub const BEDROCK_REGION: &str = "us-east-1";
/// The Azure deployment that exists; any other name is a 404 `DeploymentNotFound`.
pub const AZURE_DEPLOYMENT: &str = "gpt-4o-prod";
/// Project the fake Vertex service accounts belong to.
pub const VERTEX_PROJECT: &str = "fake-project";
/// JWT audience the fake token endpoint requires (Google's token URL).
pub const GOOGLE_TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
/// Path of the fake Google token endpoint.
pub const TOKEN_PATH: &str = "/google/token";
/// Paths under this prefix are read and never answered.
pub const STALL_HEADERS_PATH: &str = "/stall/headers";
/// Paths under this prefix answer 200 with SSE headers, then never send a byte of body.
pub const STALL_BODY_PATH: &str = "/stall/body";
/// Pause between two chunks of a streamed completion, unless changed.
pub const DEFAULT_CHUNK_DELAY: Duration = Duration::from_millis(300);
/// Request header that sets the pause between chunks of this answer, in milliseconds.
pub const CHUNK_DELAY_HEADER: &str = "x-fake-chunk-delay-ms";
/// The completion, one piece per streamed chunk.
pub const COMPLETION_PIECES: [&str; 6] = ["Hello", " from", " the", " fake", " provider", "."];

/// The test service account's private key (a throwaway key made for these tests only).
const SERVICE_ACCOUNT_KEY: &str = include_str!("fixtures/service_account_key.pem");
/// Its public half, used to verify assertions.
const SERVICE_ACCOUNT_PUBLIC_KEY: &str = include_str!("fixtures/service_account_pub.pem");

/// What the fake does for a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Accepted: the model list.
    Valid,
    /// Rejected as a bad key.
    Invalid,
    /// Accepted, but without permission.
    Forbidden,
    /// Accepted, but the account has no quota or credit left.
    Quota,
    /// Rate limited with a retry hint.
    RateLimited,
    /// The provider is overloaded.
    Overloaded,
    /// The provider fails internally.
    ServerError,
    /// The model list, after [`SLOW_DELAY`].
    Slow,
    /// A redirect to [`REDIRECT_TARGET`].
    Redirect,
    /// A body larger than a probe accepts.
    Huge,
    /// An HTML page instead of JSON.
    Html,
}

impl Behaviour {
    /// Every behaviour.
    pub const ALL: [Behaviour; 11] = [
        Self::Valid,
        Self::Invalid,
        Self::Forbidden,
        Self::Quota,
        Self::RateLimited,
        Self::Overloaded,
        Self::ServerError,
        Self::Slow,
        Self::Redirect,
        Self::Huge,
        Self::Html,
    ];

    /// Short lower-case name, used inside the credentials.
    pub fn name(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Forbidden => "forbidden",
            Self::Quota => "quota",
            Self::RateLimited => "rate-limited",
            Self::Overloaded => "overloaded",
            Self::ServerError => "server-error",
            Self::Slow => "slow",
            Self::Redirect => "redirect",
            Self::Huge => "huge",
            Self::Html => "html",
        }
    }

    /// The API key that selects this behaviour, e.g. `fake-key-valid`.
    pub fn key(self) -> String {
        format!("fake-key-{}", self.name())
    }

    /// The Bedrock access key id that selects this behaviour, e.g. `AKIAFAKEVALID`.
    pub fn access_key_id(self) -> String {
        format!(
            "AKIAFAKE{}",
            self.name().replace('-', "").to_ascii_uppercase()
        )
    }

    /// A Vertex service-account key file whose account selects this behaviour.
    pub fn service_account_json(self) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": VERTEX_PROJECT,
            "private_key_id": "fake-key-id",
            "private_key": SERVICE_ACCOUNT_KEY,
            "client_email": format!("{}@{VERTEX_PROJECT}.iam.gserviceaccount.com", self.name()),
            "client_id": "100000000000000000000",
            "auth_uri": "http://127.0.0.1:9/auth",
            // A client that trusts this field instead of Google's fixed URL fails to connect.
            "token_uri": "http://127.0.0.1:9/token-uri-must-be-ignored",
        })
        .to_string()
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The behaviour an API key selects; unknown keys are invalid.
    pub fn of_key(key: &str) -> Self {
        key.strip_prefix("fake-key-")
            .and_then(Self::from_name)
            .unwrap_or(Self::Invalid)
    }

    /// The behaviour a Bedrock access key id selects; unknown ids are invalid.
    pub fn of_access_key_id(id: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|b| b.access_key_id() == id)
            .unwrap_or(Self::Invalid)
    }
}

/// Model ids the fake lists for a provider (catalog id), in list order.
pub fn models(provider: &str) -> &'static [&'static str] {
    Flavour::of_provider(provider).map_or(&[], Flavour::models)
}

/// The whole text of every completion: [`COMPLETION_PIECES`] joined.
pub fn completion_text() -> String {
    chat::completion_text()
}

/// One request the fake received, as it arrived.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: http::Method,
    /// `http://127.0.0.1:PORT` with the path and query as sent (still percent-encoded).
    pub url: url::Url,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The path as sent.
    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// The query string as sent.
    pub fn query(&self) -> Option<&str> {
        self.url.query()
    }

    /// A header's value, when it is text (the first one of a repeated header).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, when it is.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// How a streamed answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Still sending.
    InProgress,
    /// Every chunk was sent.
    Completed,
    /// The client closed the connection before the last chunk.
    ClientWentAway,
}

/// One streamed answer of the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The request's path.
    pub path: String,
    pub chunks_total: usize,
    pub chunks_sent: usize,
    pub end: StreamEnd,
}

/// A running fake provider; stops when dropped. It runs on a thread of its own (as wiremock
/// does), so it answers whatever the test's runtime is doing.
#[derive(Debug)]
pub struct FakeProvider {
    address: SocketAddr,
    shared: Arc<server::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FakeProvider {
    /// Starts the server on 127.0.0.1 with a free port and [`DEFAULT_CHUNK_DELAY`].
    pub async fn start() -> Self {
        Self::start_with_chunk_delay(DEFAULT_CHUNK_DELAY).await
    }

    /// Starts the server with this pause between streamed chunks.
    #[allow(clippy::expect_used)] // Test support: a machine without loopback cannot test.
    pub async fn start_with_chunk_delay(delay: Duration) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .expect("the fake provider binds 127.0.0.1");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(server::Shared::new(format!("http://{address}"), delay));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        server::spawn_thread(listener, Arc::clone(&shared), stopped)
            .expect("the fake provider starts its thread");
        Self {
            address,
            shared,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.shared.uri.clone()
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The value of `LLM_SETTINGS_PROBE_ALLOW_HOSTS` that lets probes reach the fake.
    pub fn allow_hosts(&self) -> String {
        self.address().to_string()
    }

    /// The base URL to configure for a provider (catalog id or alias of the catalog's
    /// spelling), e.g. `http://127.0.0.1:PORT/openai/v1` for `openai`. For Azure it is the
    /// `endpoint`; for Bedrock and Vertex it replaces the regional host.
    pub fn base_url(&self, provider: &str) -> String {
        let prefix = Flavour::of_provider(provider).map_or("/unknown-provider", Flavour::prefix);
        format!("{}{prefix}", self.uri())
    }

    /// The fake Google token endpoint (for Vertex AI).
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.uri())
    }

    /// A base URL under which every request is read and never answered (first-byte
    /// timeouts).
    pub fn stall_headers_url(&self) -> String {
        format!("{}{STALL_HEADERS_PATH}", self.uri())
    }

    /// A base URL under which every request gets a 200 with SSE headers and then no body
    /// (idle timeouts).
    pub fn stall_body_url(&self) -> String {
        format!("{}{STALL_BODY_PATH}", self.uri())
    }

    /// Every request the fake has received, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.shared.requests()
    }

    /// Every request the fake has received, oldest first (as [`FakeProvider::received`]).
    pub async fn requests(&self) -> Vec<ReceivedRequest> {
        self.received()
    }

    /// Every streamed answer so far, oldest first, with how it ended.
    pub fn streams(&self) -> Vec<StreamRecord> {
        self.shared.streams()
    }

    /// Changes the pause between streamed chunks for the answers that follow.
    pub fn set_chunk_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.chunk_delay_ms.store(ms, Ordering::Relaxed);
    }
}
