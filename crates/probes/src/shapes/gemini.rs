//! Gemini: `GET {base}/v1beta/models` with the key in the `x-goog-api-key` header (never in
//! the URL), following `nextPageToken`.

use serde_json::Value;

use super::{ids, join, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

const PAGE_SIZE: &str = "1000";

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let credential = ctx.credential()?;
    let endpoint = join(&ctx.base_url()?, "/v1beta/models");
    let mut models = ctx.model_list(Matching::Exact);
    let mut token: Option<String> = None;
    for _ in 0..ctx.max_pages {
        let mut url = endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("pageSize", PAGE_SIZE);
            if let Some(token) = &token {
                query.append_pair("pageToken", token);
            }
        }
        let request = OutboundRequest::get(url).header("accept", "application/json")?;
        let body = ctx.fetch_json(ctx.authorize(&credential, request)?).await?;
        // An account with no model answers `{}`.
        let page = if body.get("models").is_none() && body.is_object() {
            Vec::new()
        } else {
            ids(&body, "models", "name")
                .ok_or_else(|| Failure::invalid_response("a Gemini model list"))?
        };
        for name in page {
            models.push(name.strip_prefix("models/").unwrap_or(name));
        }
        token = body
            .get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if token.is_none() || !models.wants_more() {
            break;
        }
    }
    Ok(Listing::of(models))
}
