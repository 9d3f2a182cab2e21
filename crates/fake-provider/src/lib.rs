//! A fake LLM provider for tests: one HTTP server on 127.0.0.1 that speaks every probe shape
//! of the catalog (OpenAI-style, OpenRouter, Anthropic, Gemini, Ollama, Azure OpenAI, Bedrock,
//! Vertex AI with its Google token endpoint) with each provider's real success and error
//! bodies.
//!
//! What happens is chosen by the credential, so the same server serves every test:
//!
//! | credential | answer |
//! |---|---|
//! | [`Behaviour::Valid`] | the model list (paginated for Anthropic, Gemini and Vertex) |
//! | [`Behaviour::Invalid`] (and any unknown key) | the provider's "bad key" error |
//! | [`Behaviour::Forbidden`] | the provider's permission error |
//! | [`Behaviour::Quota`] | the provider's quota / balance error |
//! | [`Behaviour::RateLimited`] | 429 with a retry hint of [`RETRY_AFTER_SECS`] |
//! | [`Behaviour::Overloaded`] | 529 (Anthropic) or 503 |
//! | [`Behaviour::ServerError`] | 500 |
//! | [`Behaviour::Slow`] | the model list after [`SLOW_DELAY`] |
//! | [`Behaviour::Redirect`] | 302 to [`REDIRECT_TARGET`] |
//! | [`Behaviour::Huge`] | a 200 JSON body of [`HUGE_BODY_BYTES`] |
//! | [`Behaviour::Html`] | a 200 HTML page instead of JSON |
//!
//! API keys are [`Behaviour::key`]; Bedrock access key ids are [`Behaviour::access_key_id`]
//! with [`BEDROCK_SECRET_ACCESS_KEY`] (the signature is verified); Vertex service accounts are
//! [`Behaviour::service_account_json`] (the JWT is verified, and the file's `token_uri`
//! points at a dead address, so a client that follows it fails). Invalid-key errors echo
//! the key, as some providers do, so tests can prove it never leaks further.
//!
//! ```no_run
//! # async fn demo() {
//! use llm_settings_fake_provider::{Behaviour, FakeProvider};
//! let fake = FakeProvider::start().await;
//! let base = fake.base_url("openai"); // http://127.0.0.1:PORT/openai/v1
//! let key = Behaviour::RateLimited.key();
//! // LLM_SETTINGS_PROBE_ALLOW_HOSTS=fake.allow_hosts()
//! # let _ = (base, key);
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request};

mod responders;
mod sigv4;

use responders::{Flavour, Responder};

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

/// A running fake provider; stops when dropped.
#[derive(Debug)]
pub struct FakeProvider {
    server: MockServer,
}

impl FakeProvider {
    /// Starts the server on 127.0.0.1 with a free port.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        for flavour in Flavour::ALL {
            for (verb, route) in flavour.routes() {
                let mock = if route.contains('(') || route.contains('[') {
                    Mock::given(method(verb)).and(path_regex(route))
                } else {
                    Mock::given(method(verb)).and(path(route))
                };
                server
                    .register(mock.respond_with(Responder { flavour }))
                    .await;
            }
        }
        Self { server }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        *self.server.address()
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

    /// Every request the fake has received, oldest first.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}
