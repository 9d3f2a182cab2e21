//! Google OAuth for Vertex AI: a service-account key signs a JWT (RS256) that is exchanged for
//! an access token at Google's fixed token URL — never the `token_uri` written inside the key
//! file. Forwarded calls reuse a token until shortly before it expires ([`TokenCache`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use llm_settings_domain::FailureClass;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use url::Url;
use zeroize::{Zeroize, Zeroizing};

use crate::failure::{classify, Failure};
use crate::outbound::{Outbound, OutboundRequest};
use crate::GOOGLE_TOKEN_URL;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// A cached token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// Lifetime assumed when the token answer names none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Most service accounts whose tokens are kept at once.
const MAX_CACHED_ACCOUNTS: usize = 1024;

/// The fields of a service-account key file that are used; `token_uri` is deliberately not.
#[derive(Deserialize)]
pub(crate) struct ServiceAccount {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    pub(crate) project_id: Option<String>,
}

impl Drop for ServiceAccount {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

impl ServiceAccount {
    /// Reads a key file; anything but a service-account key is refused.
    pub(crate) fn parse(json: &str) -> Result<Self, Failure> {
        let account: Self = serde_json::from_str(json).map_err(|_| {
            Failure::new(
                FailureClass::InvalidCredentials,
                "the service account JSON could not be read",
            )
        })?;
        if account
            .kind
            .as_deref()
            .is_some_and(|k| k != "service_account")
        {
            return Err(Failure::new(
                FailureClass::InvalidCredentials,
                "the JSON is not a service account key",
            ));
        }
        Ok(account)
    }

    /// A digest naming this account and key (never the key itself), for the cache.
    fn fingerprint(&self, token_url: &Url) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [
            token_url.as_str(),
            &self.client_email,
            self.private_key_id.as_deref().unwrap_or_default(),
            &self.private_key,
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hash.finalize().into()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// An access token and how long it is valid.
pub(crate) struct AccessToken {
    pub(crate) token: Zeroizing<String>,
    pub(crate) lifetime: Duration,
}

/// The token URL in force: the configured override, else Google's.
pub(crate) fn token_url(configured: Option<&Url>) -> Result<Url, Failure> {
    match configured {
        Some(url) => Ok(url.clone()),
        None => Url::parse(GOOGLE_TOKEN_URL)
            .map_err(|_| Failure::new(FailureClass::NotFound, "the token URL is not valid")),
    }
}

/// Exchanges a signed assertion for an access token at `token_url`.
pub(crate) async fn mint(
    out: &Outbound<'_>,
    account: &ServiceAccount,
    token_url: &Url,
) -> Result<AccessToken, Failure> {
    let assertion = assertion(account)?;
    let form = Zeroizing::new(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish(),
    );
    let mut request = OutboundRequest::get(token_url.clone())
        .header("accept", "application/json")?
        .header("content-type", "application/x-www-form-urlencoded")?;
    request.method = reqwest::Method::POST;
    request.body = Some(form.as_bytes().to_vec().into());
    let reply = out.send(request).await?;
    if !reply.status.is_success() {
        let mut failure = classify("Google's token service", &reply);
        if matches!(failure.class, FailureClass::ProviderError) && reply.status.as_u16() == 400 {
            failure.class = FailureClass::InvalidCredentials;
            failure.message =
                "Google's token service rejected the service account (HTTP 400)".into();
        }
        return Err(failure);
    }
    let mut body: Value = serde_json::from_slice(&reply.body)
        .map_err(|_| Failure::invalid_response("a Google access token"))?;
    let lifetime = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    let token = body
        .get_mut("access_token")
        .and_then(|v| match v.take() {
            Value::String(s) if !s.is_empty() => Some(Zeroizing::new(s)),
            _ => None,
        })
        .ok_or_else(|| Failure::invalid_response("a Google access token"))?;
    Ok(AccessToken { token, lifetime })
}

/// The signed JWT the token endpoint expects.
fn assertion(account: &ServiceAccount) -> Result<Zeroizing<String>, Failure> {
    let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|_| {
        Failure::new(
            FailureClass::InvalidCredentials,
            "the service account's private key could not be read",
        )
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = Claims {
        iss: &account.client_email,
        scope: SCOPE,
        aud: GOOGLE_TOKEN_URL,
        iat: now,
        exp: now + 3600,
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = account.private_key_id.clone();
    let signed = jsonwebtoken::encode(&header, &claims, &key).map_err(|_| {
        Failure::new(
            FailureClass::InvalidCredentials,
            "the service account's private key could not sign a token request",
        )
    })?;
    Ok(Zeroizing::new(signed))
}

/// One account's token, while it is fresh.
struct Cached {
    token: Zeroizing<String>,
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Access tokens of the service accounts forwarded calls used, by a digest of account, key
/// and token URL, so accounts never mix. Concurrent calls of one account mint once.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<[u8; 32], Slot>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accounts = self.slots.lock().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("TokenCache")
            .field("accounts", &accounts)
            .finish()
    }
}

impl TokenCache {
    /// The account's cached token, or a new one minted through `out`.
    pub(crate) async fn token(
        &self,
        out: &Outbound<'_>,
        account: &ServiceAccount,
        token_url: &Url,
    ) -> Result<Zeroizing<String>, Failure> {
        let slot = self.slot(account.fingerprint(token_url));
        let mut cached = slot.lock().await;
        if let Some(fresh) = cached.as_ref().filter(|c| c.refresh_at > Instant::now()) {
            return Ok(fresh.token.clone());
        }
        let minted = mint(out, account, token_url).await?;
        let refresh_at = Instant::now() + minted.lifetime.saturating_sub(REFRESH_MARGIN);
        *cached = Some(Cached {
            token: minted.token.clone(),
            refresh_at,
        });
        Ok(minted.token)
    }

    fn slot(&self, key: [u8; 32]) -> Slot {
        let mut slots = match self.slots.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !slots.contains_key(&key) && slots.len() >= MAX_CACHED_ACCOUNTS {
            // Drop the slots nobody is using; a dropped token is minted again when needed.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        Arc::clone(slots.entry(key).or_default())
    }
}
