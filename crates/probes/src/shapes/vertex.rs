//! Vertex AI: the service-account JSON signs a JWT (RS256) that is exchanged for an access
//! token at Google's fixed token URL — never the `token_uri` written inside the JSON — and the
//! token lists publisher models in the configured location. A `base_url` replaces the regional
//! host (a private endpoint, a test double).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use llm_settings_domain::FailureClass;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use super::{ids, join, parse_base, Ctx, Listing};
use crate::failure::{classify, Failure};
use crate::models::Matching;
use crate::outbound::OutboundRequest;
use crate::GOOGLE_TOKEN_URL;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_LOCATION: &str = "us-central1";
const PAGE_SIZE: &str = "100";

/// The fields of a service-account key file that are used; `token_uri` is deliberately not.
#[derive(Deserialize)]
struct ServiceAccount {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    project_id: Option<String>,
}

impl Drop for ServiceAccount {
    fn drop(&mut self) {
        self.private_key.zeroize();
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

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let json = ctx.require_secret("service_account_json", "service account JSON")?;
    let account: ServiceAccount = serde_json::from_str(json).map_err(|_| {
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
    let project = ctx
        .setting("project_id")
        .or(account.project_id.as_deref())
        .ok_or_else(|| Failure::missing("Google Cloud project id"))?;
    if !is_project_id(project) {
        return Err(Failure::new(
            FailureClass::NotFound,
            "the Google Cloud project id is not valid",
        ));
    }
    let location = ctx.setting("location").unwrap_or(DEFAULT_LOCATION);
    if !is_location(location) {
        return Err(Failure::new(
            FailureClass::BlockedByPolicy,
            "the Vertex AI location must look like us-central1",
        ));
    }
    let base = match ctx.request.base_url.as_deref().map(str::trim) {
        Some(base) if !base.is_empty() => parse_base(base)?,
        _ => parse_base(&regional_endpoint(location))?,
    };

    let endpoint = join(&base, "/v1beta1/publishers/google/models");
    ctx.out.precheck(&endpoint)?;

    let token = access_token(ctx, &account).await?;
    let bearer = Zeroizing::new(format!("Bearer {}", token.as_str()));

    let mut models = ctx.model_list(Matching::Exact);
    let mut page_token: Option<String> = None;
    for _ in 0..ctx.max_pages {
        let mut url = endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("pageSize", PAGE_SIZE);
            if let Some(t) = &page_token {
                query.append_pair("pageToken", t);
            }
        }
        let request = OutboundRequest::get(url)
            .header("accept", "application/json")?
            .header("x-goog-user-project", project)?
            .secret_header("authorization", &bearer, "access token")?;
        let body = ctx.fetch_json(request).await?;
        let page = if body.get("publisherModels").is_none() && body.is_object() {
            Vec::new()
        } else {
            ids(&body, "publisherModels", "name")
                .ok_or_else(|| Failure::invalid_response("a Vertex AI model list"))?
        };
        for name in page {
            models.push(name.rsplit('/').next().unwrap_or(name));
        }
        page_token = body
            .get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if page_token.is_none() || !models.wants_more() {
            break;
        }
    }
    Ok(Listing::of(models))
}

/// Exchanges a signed assertion for an access token at the configured token URL.
async fn access_token(
    ctx: &Ctx<'_>,
    account: &ServiceAccount,
) -> Result<Zeroizing<String>, Failure> {
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
    let assertion = Zeroizing::new(jsonwebtoken::encode(&header, &claims, &key).map_err(|_| {
        Failure::new(
            FailureClass::InvalidCredentials,
            "the service account's private key could not sign a token request",
        )
    })?);
    let form = Zeroizing::new(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish(),
    );
    let token_url = match ctx.google_token_url {
        Some(url) => url.clone(),
        None => parse_base(GOOGLE_TOKEN_URL)?,
    };
    let mut request = OutboundRequest::get(token_url)
        .header("accept", "application/json")?
        .header("content-type", "application/x-www-form-urlencoded")?;
    request.method = reqwest::Method::POST;
    request.body = Some(form.as_bytes().to_vec());
    let reply = ctx.out.send(request).await?;
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
    let token = body
        .get_mut("access_token")
        .and_then(|v| match v.take() {
            Value::String(s) if !s.is_empty() => Some(Zeroizing::new(s)),
            _ => None,
        })
        .ok_or_else(|| Failure::invalid_response("a Google access token"))?;
    Ok(token)
}

/// `my-project-123`, or a domain-scoped `example.com:my-project`.
fn is_project_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':')
        })
}

/// `us-central1`, `europe-west4`, `global` …: it becomes part of a host name.
fn is_location(location: &str) -> bool {
    !location.is_empty()
        && location.len() <= 40
        && !location.starts_with('-')
        && !location.ends_with('-')
        && location
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn regional_endpoint(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_owned()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_projects() {
        assert!(is_location("us-central1"));
        assert!(is_location("global"));
        assert!(!is_location("evil.com/"));
        assert!(!is_location("us-central1.evil"));
        assert!(is_project_id("my-project-123"));
        assert!(!is_project_id("My Project"));
        assert_eq!(
            regional_endpoint("global"),
            "https://aiplatform.googleapis.com"
        );
        assert_eq!(
            regional_endpoint("europe-west4"),
            "https://europe-west4-aiplatform.googleapis.com"
        );
    }
}
