//! OpenAI-style `GET {base}/models` with a bearer key: OpenAI, DeepSeek, xAI, Mistral, Groq and
//! OpenAI-compatible endpoints. OpenAI's organization and project headers are sent when set.

use zeroize::Zeroizing;

use super::{ids, join, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let key = ctx.api_key()?;
    let url = join(&ctx.base_url()?, "/models");
    let mut request = OutboundRequest::get(url).header("accept", "application/json")?;
    if let Some(key) = key {
        let bearer = Zeroizing::new(format!("Bearer {key}"));
        request = request.secret_header("authorization", &bearer, "API key")?;
    }
    if let Some(organization) = ctx.setting("organization") {
        request = request.header("openai-organization", organization)?;
    }
    if let Some(project) = ctx.setting("project") {
        request = request.header("openai-project", project)?;
    }
    let body = ctx.fetch_json(request).await?;
    let found = ids(&body, "data", "id")
        .ok_or_else(|| Failure::invalid_response("an OpenAI-style model list"))?;
    let mut models = ctx.model_list(Matching::Exact);
    for id in found {
        models.push(id);
    }
    Ok(Listing::of(models))
}
