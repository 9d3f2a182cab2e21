//! OpenRouter: its model list needs no key, so the key is validated with `GET {base}/key`;
//! a key whose credit limit is used up is reported as quota exhausted. The wanted model is
//! then looked up with `GET {base}/models/{author}/{slug}/endpoints`, which needs no key.

use llm_settings_domain::FailureClass;
use serde_json::Value;

use super::{is_plain_segment, join, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let credential = ctx.credential()?;
    let base = ctx.base_url()?;
    let request = OutboundRequest::get(join(&base, "/key")).header("accept", "application/json")?;
    let body = ctx.fetch_json(ctx.authorize(&credential, request)?).await?;
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| Failure::invalid_response("an OpenRouter key description"))?;
    if data
        .get("limit_remaining")
        .and_then(Value::as_f64)
        .is_some_and(|left| left <= 0.0)
    {
        return Err(Failure::new(
            FailureClass::QuotaExhausted,
            "OpenRouter accepted the key but its credit limit is used up",
        ));
    }

    let mut models = ctx.model_list(Matching::Exact);
    let available = match models.wanted().map(str::to_owned) {
        None => None,
        Some(model) if model.starts_with("openrouter/") => {
            // Routers such as `openrouter/auto` are not listed per model.
            models.push(&model);
            Some(true)
        }
        Some(model) => {
            let found = model_exists(ctx, &base, &model).await;
            if found {
                models.push(&model);
            }
            Some(found)
        }
    };
    Ok(Listing {
        models,
        model_available: available,
        summary: Some(
            "OpenRouter's model list is public, so only the requested model was looked up"
                .to_owned(),
        ),
    })
}

/// Whether OpenRouter knows the model; any failure counts as "not seen".
async fn model_exists(ctx: &Ctx<'_>, base: &url::Url, model: &str) -> bool {
    let Some((author, slug)) = model.split_once('/') else {
        return false;
    };
    if !is_plain_segment(author) || !is_plain_segment(slug) {
        return false;
    }
    let url = join(base, &format!("/models/{author}/{slug}/endpoints"));
    let Ok(request) = OutboundRequest::get(url).header("accept", "application/json") else {
        return false;
    };
    match ctx.out.send(request).await {
        Ok(reply) => reply.status.is_success(),
        Err(_) => false,
    }
}
