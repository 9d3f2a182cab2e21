//! Ollama (and DeepSeek run locally): `GET {base}/api/tags`, no key; a key, when given (an
//! Ollama behind an authenticating proxy), is sent as a bearer token.

use super::{ids, join, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let credential = ctx.credential()?;
    let url = join(&ctx.base_url()?, "/api/tags");
    let request = OutboundRequest::get(url).header("accept", "application/json")?;
    let body = ctx.fetch_json(ctx.authorize(&credential, request)?).await?;
    let found = ids(&body, "models", "name")
        .ok_or_else(|| Failure::invalid_response("an Ollama model list"))?;
    let mut models = ctx.model_list(Matching::OllamaTag);
    for id in found {
        models.push(id);
    }
    Ok(Listing::of(models))
}
