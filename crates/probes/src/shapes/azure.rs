//! Azure OpenAI: `GET {endpoint}/openai/models?api-version=…` with `api-key`; when a
//! deployment is named, a deliberately incomplete chat request to it proves it exists (the
//! deployment rejects the empty message list with a 400 without running the model; a missing
//! deployment is a 404).

use llm_settings_domain::FailureClass;
use serde_json::json;

use super::{ids, is_plain_segment, join, parse_base, Ctx, Listing};
use crate::failure::{classify, Failure};
use crate::models::Matching;
use crate::outbound::OutboundRequest;

/// The GA data-plane API version used when the config names none.
pub(crate) const DEFAULT_API_VERSION: &str = "2024-10-21";

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let credential = ctx.credential()?;
    let endpoint = match ctx.request.base_url.as_deref().map(str::trim) {
        Some(base) if !base.is_empty() => parse_base(base)?,
        _ => parse_base(
            ctx.setting("endpoint")
                .ok_or_else(|| Failure::missing("Azure OpenAI endpoint"))?,
        )?,
    };
    let api_version = ctx.setting("api_version").unwrap_or(DEFAULT_API_VERSION);
    if !is_plain_segment(api_version) {
        return Err(Failure::new(
            FailureClass::NotFound,
            "the Azure api_version is not valid",
        ));
    }

    let mut url = join(&endpoint, "/openai/models");
    url.query_pairs_mut()
        .append_pair("api-version", api_version);
    let request = OutboundRequest::get(url).header("accept", "application/json")?;
    let body = ctx.fetch_json(ctx.authorize(&credential, request)?).await?;
    let found = ids(&body, "data", "id")
        .ok_or_else(|| Failure::invalid_response("an Azure OpenAI model list"))?;
    let mut models = ctx.model_list(Matching::Exact);
    for id in found {
        models.push(id);
    }

    let Some(deployment) = ctx.setting("deployment") else {
        return Ok(Listing::of(models));
    };
    if !is_plain_segment(deployment) || deployment.contains(':') {
        return Err(Failure::new(
            FailureClass::NotFound,
            "the Azure deployment name is not valid",
        ));
    }
    let mut url = join(
        &endpoint,
        &format!("/openai/deployments/{deployment}/chat/completions"),
    );
    url.query_pairs_mut()
        .append_pair("api-version", api_version);
    let mut request = OutboundRequest::get(url)
        .header("accept", "application/json")?
        .header("content-type", "application/json")?;
    request.method = reqwest::Method::POST;
    request.body = Some(
        json!({ "messages": [], "max_tokens": 1 })
            .to_string()
            .into_bytes()
            .into(),
    );
    let reply = ctx.out.send(ctx.authorize(&credential, request)?).await?;
    let status = reply.status.as_u16();
    if reply.status.is_success() {
        return Ok(deployment_found(models, deployment));
    }
    let failure = classify(ctx.spec.display_name, &reply);
    if matches!(status, 400 | 422) && failure.class == FailureClass::ProviderError {
        return Ok(deployment_found(models, deployment));
    }
    if failure.class == FailureClass::NotFound && !reply.status.is_redirection() {
        return Err(Failure::new(
            FailureClass::NotFound,
            format!("Azure OpenAI has no deployment named {deployment} at this endpoint"),
        ));
    }
    Err(failure)
}

fn deployment_found(models: crate::models::ModelList, deployment: &str) -> Listing {
    Listing {
        model_available: Some(true),
        summary: Some(format!(
            "{} models listed; deployment {deployment} exists",
            models.total()
        )),
        models,
    }
}
