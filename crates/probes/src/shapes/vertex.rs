//! Vertex AI: the service-account JSON signs a JWT (RS256) that is exchanged for an access
//! token at Google's fixed token URL — never the `token_uri` written inside the JSON — and the
//! token lists publisher models in the configured location. A `base_url` replaces the regional
//! host (a private endpoint, a test double).

use llm_settings_domain::FailureClass;
use serde_json::Value;

use super::{ids, join, parse_base, Ctx, Listing};
use crate::credentials::Credential;
use crate::failure::Failure;
use crate::google::{self, ServiceAccount};
use crate::models::Matching;
use crate::outbound::OutboundRequest;

const PAGE_SIZE: &str = "100";

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let fields = ctx.fields();
    let json = fields.require_secret("service_account_json", "service account JSON")?;
    let account = ServiceAccount::parse(json)?;
    let target = Target::of(ctx.setting("project_id"), ctx.setting("location"), &account)?;
    let base = match ctx.request.base_url.as_deref().map(str::trim) {
        Some(base) if !base.is_empty() => parse_base(base)?,
        _ => parse_base(&regional_endpoint(target.location))?,
    };

    let endpoint = join(&base, "/v1beta1/publishers/google/models");
    ctx.out.precheck(&endpoint)?;

    let token_url = google::token_url(ctx.google_token_url)?;
    let token = google::mint(&ctx.out, &account, &token_url).await?.token;
    let credential = Credential::GoogleToken {
        token: &token,
        project: target.project,
    };

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
        let request = OutboundRequest::get(url).header("accept", "application/json")?;
        let body = ctx.fetch_json(ctx.authorize(&credential, request)?).await?;
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

/// The project and location a Vertex AI credential works in, both checked.
#[derive(Debug)]
pub(crate) struct Target<'a> {
    pub(crate) project: &'a str,
    pub(crate) location: &'a str,
}

impl<'a> Target<'a> {
    /// From the config's settings, else the key file's project; the location defaults to
    /// `us-central1`.
    pub(crate) fn of(
        project: Option<&'a str>,
        location: Option<&'a str>,
        account: &'a ServiceAccount,
    ) -> Result<Self, Failure> {
        let project = project
            .or(account.project_id.as_deref())
            .ok_or_else(|| Failure::missing("Google Cloud project id"))?;
        if !is_project_id(project) {
            return Err(Failure::new(
                FailureClass::NotFound,
                "the Google Cloud project id is not valid",
            ));
        }
        let location = location.unwrap_or(DEFAULT_LOCATION);
        if !is_location(location) {
            return Err(Failure::new(
                FailureClass::BlockedByPolicy,
                "the Vertex AI location must look like us-central1",
            ));
        }
        Ok(Self { project, location })
    }
}

const DEFAULT_LOCATION: &str = "us-central1";

/// `my-project-123`, or a domain-scoped `example.com:my-project`.
fn is_project_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':')
        })
}

/// `us-central1`, `europe-west4`, `global` …: it becomes part of a host name.
pub(crate) fn is_location(location: &str) -> bool {
    !location.is_empty()
        && location.len() <= 40
        && !location.starts_with('-')
        && !location.ends_with('-')
        && location
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `https://{location}-aiplatform.googleapis.com`, or the global endpoint.
pub(crate) fn regional_endpoint(location: &str) -> String {
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
