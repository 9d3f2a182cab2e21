//! Bearer-token authentication: verifies a JWT and turns its claims into a domain [`Actor`].

use actix_web::http::header;
use actix_web::web::Data;
use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use llm_settings_domain::{Actor, ErrorCode, InstanceId, Role, Scope, UserId};

use crate::error::ApiError;
use crate::AppState;

/// Seconds of clock skew tolerated on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Why a token was refused; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    MalformedHeader,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token is not valid: it is signed with an algorithm this service does not accept")]
    Algorithm,
    #[error("the token is not valid: wrong issuer")]
    Issuer,
    #[error("the token is not valid: wrong audience")]
    Audience,
    #[error("the token is not valid: the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

impl AuthError {
    /// The reason class, for logs: which kind of refusal, never the token or its claims.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::MalformedHeader => "malformed_header",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::Algorithm => "algorithm",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::MissingClaim(_) => "missing_claim",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// A refused token as a 401, logged with its reason class (never the token).
fn refused(err: &AuthError, message: impl Into<String>) -> ApiError {
    tracing::info!(reason = %err.class(), "bearer token refused (401)");
    ApiError::unauthorized(message)
}

/// Problems with the verification key given by the operator.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("the JWT secret must be at least 32 bytes")]
    WeakSecret,
    #[error("the JWT public key is not a PEM RSA, EC (P-256) or Ed25519 public key")]
    UnsupportedKey,
}

/// The `aud` claim: one audience or several (RFC 7519, section 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Claims of a bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Space-separated scopes: `read`, `write`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// `admin`, `superadmin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// Verifies bearer tokens with one pinned algorithm.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("leeway", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// HS256 with a shared secret of at least 32 bytes.
    pub fn hs256(
        secret: &[u8],
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, AuthSetupError> {
        if secret.len() < 32 {
            return Err(AuthSetupError::WeakSecret);
        }
        Ok(Self::with(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
            issuer,
            audience,
        ))
    }

    /// RS256, ES256 or EdDSA, chosen by the type of the PEM public key.
    pub fn public_key_pem(
        pem: &[u8],
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, AuthSetupError> {
        let (key, alg) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, Algorithm::RS256)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, Algorithm::ES256)
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, Algorithm::EdDSA)
        } else {
            return Err(AuthSetupError::UnsupportedKey);
        };
        Ok(Self::with(key, alg, issuer, audience))
    }

    /// Tolerates `secs` seconds of clock skew on `exp` and `nbf`.
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.validation.leeway = secs;
        self
    }

    fn with(
        key: DecodingKey,
        alg: Algorithm,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        let mut validation = Validation::new(alg);
        validation.leeway = DEFAULT_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        Self { key, validation }
    }

    /// Verifies a token and builds the actor it speaks for.
    pub fn verify(&self, token: &str) -> Result<Actor, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        if jsonwebtoken::decode_header(token).is_err() && header_names_an_algorithm(token) {
            // `alg: none` and other algorithms jsonwebtoken does not even know.
            return Err(AuthError::Algorithm);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => AuthError::Algorithm,
                ErrorKind::InvalidIssuer => AuthError::Issuer,
                ErrorKind::InvalidAudience => AuthError::Audience,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
                ErrorKind::Json(_) => AuthError::Invalid("the token claims are malformed".into()),
                _ => AuthError::Invalid("the token could not be decoded".into()),
            },
        )?;
        actor_of(data.claims)
    }
}

/// Whether the token's header is JSON naming an `alg` (one jsonwebtoken could not accept).
fn header_names_an_algorithm(token: &str) -> bool {
    use base64::Engine;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|h| h.get("alg").is_some_and(serde_json::Value::is_string))
}

fn actor_of(claims: Claims) -> Result<Actor, AuthError> {
    let subject = UserId::parse(claims.sub)
        .map_err(|_| AuthError::Invalid("the `sub` claim is not a valid user id".into()))?;
    let instance = claims
        .instance
        .map(InstanceId::parse)
        .transpose()
        .map_err(|_| {
            AuthError::Invalid("the `instance` claim is not a valid instance id".into())
        })?;
    Ok(Actor::new(
        subject,
        claims.scope.split_whitespace().filter_map(Scope::parse),
        claims.roles.iter().filter_map(|r| Role::parse(r)),
        instance,
    ))
}

/// Mints HS256 tokens (the `token` command and tests).
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer { .. }")
    }
}

impl TokenIssuer {
    /// An issuer for the shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
        }
    }

    /// Signs the claims.
    pub fn mint(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
    }
}

/// Verifies the request's bearer token: the application state and the actor, or a 401.
pub fn authenticate(req: &HttpRequest) -> Result<(Data<AppState>, Actor), ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| refused(&AuthError::Missing, AuthError::Missing.to_string()))?;
    let token = bearer(header.as_bytes()).ok_or_else(|| {
        refused(
            &AuthError::MalformedHeader,
            AuthError::MalformedHeader.to_string(),
        )
    })?;
    verified(req, token)
}

/// Headers in which provider SDKs send their API key; the gateway reads its token from the
/// first one present (the `key` query parameter of Gemini SDKs last).
const SDK_KEY_HEADERS: [&str; 3] = ["x-api-key", "x-goog-api-key", "api-key"];

/// Verifies the token a provider SDK sends where it would send its API key: `Authorization:
/// Bearer`, `x-api-key`, `x-goog-api-key`, `api-key`, or the `key` query parameter.
pub fn authenticate_sdk(req: &HttpRequest) -> Result<(Data<AppState>, Actor), ApiError> {
    let headers = req.headers();
    if let Some(header) = headers.get(header::AUTHORIZATION) {
        let token = bearer(header.as_bytes()).ok_or_else(|| {
            refused(
                &AuthError::MalformedHeader,
                AuthError::MalformedHeader.to_string(),
            )
        })?;
        return verified(req, token);
    }
    let from_header = SDK_KEY_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    let from_query = || {
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.into_owned())
    };
    let token = from_header
        .or_else(from_query)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            refused(
                &AuthError::Missing,
                "missing token: send it as `Authorization: Bearer <token>` or where your provider SDK sends its API key",
            )
        })?;
    verified(req, &token)
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn verified(req: &HttpRequest, token: &str) -> Result<(Data<AppState>, Actor), ApiError> {
    let state = req.app_data::<Data<AppState>>().cloned().ok_or_else(|| {
        ApiError::new(ErrorCode::InternalError, "authentication is not configured")
    })?;
    let actor = match state.auth.verify(token) {
        Ok(actor) => actor,
        Err(e) => {
            // Refused tokens count against the source address; over its budget the answer
            // is 429 instead of 401.
            state
                .limits
                .failed_authentication(req.peer_addr().map(|a| a.ip()))?;
            return Err(refused(&e, e.to_string()));
        }
    };
    Ok((state, actor))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn claims(exp_offset: i64) -> Claims {
        Claims {
            sub: "u1".into(),
            scope: "read write".into(),
            roles: vec!["admin".into(), "wizard".into()],
            instance: Some("acme".into()),
            exp: (now() + exp_offset) as u64,
            nbf: None,
            iss: None,
            aud: None,
        }
    }

    #[test]
    fn a_valid_token_becomes_an_actor() {
        let auth = Authenticator::hs256(SECRET, None, None).unwrap();
        let token = TokenIssuer::hs256(SECRET).mint(&claims(600)).unwrap();
        let actor = auth.verify(&token).unwrap();
        assert_eq!(actor.subject.as_str(), "u1");
        assert!(actor.scopes.contains(&Scope::Write));
        assert_eq!(actor.roles.len(), 1, "unknown roles are ignored");
        assert_eq!(actor.instance.unwrap().as_str(), "acme");
    }

    #[test]
    fn bad_tokens_are_refused_with_a_reason() {
        let auth = Authenticator::hs256(SECRET, None, None).unwrap();
        let expired = TokenIssuer::hs256(SECRET).mint(&claims(-600)).unwrap();
        assert_eq!(auth.verify(&expired).unwrap_err(), AuthError::Expired);
        let forged = TokenIssuer::hs256(b"another-secret-another-secret-00")
            .mint(&claims(600))
            .unwrap();
        assert_eq!(auth.verify(&forged).unwrap_err(), AuthError::BadSignature);
        assert!(matches!(
            auth.verify("not.a.jwt").unwrap_err(),
            AuthError::Invalid(_)
        ));
        // {"alg":"none","typ":"JWT"} . {"sub":"u1","exp":9999999999} . (no signature)
        let none_alg =
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert_eq!(auth.verify(none_alg).unwrap_err(), AuthError::Algorithm);
        let mut early = claims(600);
        early.nbf = Some((now() + 300) as u64);
        let early = TokenIssuer::hs256(SECRET).mint(&early).unwrap();
        assert_eq!(auth.verify(&early).unwrap_err(), AuthError::NotYetValid);
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let auth =
            Authenticator::hs256(SECRET, Some("https://issuer"), Some("llm-settings")).unwrap();
        let mut c = claims(600);
        let issuer = TokenIssuer::hs256(SECRET);
        assert!(matches!(
            auth.verify(&issuer.mint(&c).unwrap()).unwrap_err(),
            AuthError::MissingClaim(claim) if claim == "iss" || claim == "aud"
        ));
        c.iss = Some("https://issuer".into());
        c.aud = Some(Audience::One("llm-settings".into()));
        assert!(auth.verify(&issuer.mint(&c).unwrap()).is_ok());
        c.aud = Some(Audience::Many(vec!["other".into(), "llm-settings".into()]));
        assert!(
            auth.verify(&issuer.mint(&c).unwrap()).is_ok(),
            "an array holding the audience is valid"
        );
        c.aud = Some(Audience::One("other".into()));
        assert_eq!(
            auth.verify(&issuer.mint(&c).unwrap()).unwrap_err(),
            AuthError::Audience
        );
        c.aud = Some(Audience::Many(vec!["other".into()]));
        assert_eq!(
            auth.verify(&issuer.mint(&c).unwrap()).unwrap_err(),
            AuthError::Audience
        );
        c.aud = Some(Audience::One("llm-settings".into()));
        c.iss = Some("https://elsewhere".into());
        assert_eq!(
            auth.verify(&issuer.mint(&c).unwrap()).unwrap_err(),
            AuthError::Issuer
        );
    }

    #[test]
    fn the_leeway_is_a_setting() {
        let token = TokenIssuer::hs256(SECRET).mint(&claims(-20)).unwrap();
        let lenient = Authenticator::hs256(SECRET, None, None).unwrap();
        assert!(
            lenient.verify(&token).is_ok(),
            "20 s late is within the default 30 s"
        );
        let strict = lenient.with_leeway(5);
        assert_eq!(strict.verify(&token).unwrap_err(), AuthError::Expired);
    }

    #[test]
    fn weak_secrets_and_unknown_keys_are_refused_at_setup() {
        assert!(matches!(
            Authenticator::hs256(b"short", None, None),
            Err(AuthSetupError::WeakSecret)
        ));
        assert!(matches!(
            Authenticator::public_key_pem(b"not a pem", None, None),
            Err(AuthSetupError::UnsupportedKey)
        ));
    }
}
