//! Ollama (and DeepSeek run locally): `GET {base}/api/tags`, no key; a key, when given (an
//! Ollama behind an authenticating proxy), is sent as a bearer token.

use zeroize::Zeroizing;

use super::{ids, join, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let key = ctx.api_key()?;
    let url = join(&ctx.base_url()?, "/api/tags");
    let mut request = OutboundRequest::get(url).header("accept", "application/json")?;
    if let Some(key) = key {
        let bearer = Zeroizing::new(format!("Bearer {key}"));
        request = request.secret_header("authorization", &bearer, "API key")?;
    }
    let body = ctx.fetch_json(request).await?;
    let found = ids(&body, "models", "name")
        .ok_or_else(|| Failure::invalid_response("an Ollama model list"))?;
    let mut models = ctx.model_list(Matching::OllamaTag);
    for id in found {
        models.push(id);
    }
    Ok(Listing::of(models))
}
