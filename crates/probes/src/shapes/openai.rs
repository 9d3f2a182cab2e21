//! OpenAI-style `GET {base}/models` with a bearer key: OpenAI, DeepSeek, xAI, Mistral, Groq and
//! OpenAI-compatible endpoints. OpenAI's organization and project headers are sent when set.

use super::{ids, join, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let credential = ctx.credential()?;
    let url = join(&ctx.base_url()?, "/models");
    let request = OutboundRequest::get(url).header("accept", "application/json")?;
    let body = ctx.fetch_json(ctx.authorize(&credential, request)?).await?;
    let found = ids(&body, "data", "id")
        .ok_or_else(|| Failure::invalid_response("an OpenAI-style model list"))?;
    let mut models = ctx.model_list(Matching::Exact);
    for id in found {
        models.push(id);
    }
    Ok(Listing::of(models))
}
