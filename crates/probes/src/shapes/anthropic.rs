//! Anthropic: `GET {base}/v1/models` with `x-api-key` and `anthropic-version`, following
//! `has_more` / `after_id` pagination.

use serde_json::Value;

use super::{ids, join, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

const PAGE_SIZE: &str = "1000";

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let credential = ctx.credential()?;
    let endpoint = join(&ctx.base_url()?, "/v1/models");
    let mut models = ctx.model_list(Matching::Exact);
    let mut after: Option<String> = None;
    for _ in 0..ctx.max_pages {
        let mut url = endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", PAGE_SIZE);
            if let Some(after) = &after {
                query.append_pair("after_id", after);
            }
        }
        let request = OutboundRequest::get(url).header("accept", "application/json")?;
        let body = ctx.fetch_json(ctx.authorize(&credential, request)?).await?;
        let page = ids(&body, "data", "id")
            .ok_or_else(|| Failure::invalid_response("an Anthropic model list"))?;
        for id in page {
            models.push(id);
        }
        let has_more = body.get("has_more").and_then(Value::as_bool) == Some(true);
        after = body
            .get("last_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if !has_more || after.is_none() || !models.wants_more() {
            break;
        }
    }
    Ok(Listing::of(models))
}
