//! Amazon Bedrock: `ListFoundationModels` (`GET /foundation-models`) signed with SigV4 for the
//! configured region. A `base_url` replaces the regional host (a VPC endpoint, a test double).

use super::{ids, join, parse_base, Ctx, Listing};
use crate::credentials::{aws_keys, Credential};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let keys = aws_keys(&ctx.fields())?;
    let base = match ctx.request.base_url.as_deref().map(str::trim) {
        Some(base) if !base.is_empty() => parse_base(base)?,
        _ => parse_base(&regional_endpoint("bedrock", keys.region))?,
    };
    let url = join(&base, "/foundation-models");
    let request = OutboundRequest::get(url).header("accept", "application/json")?;
    let request = ctx.authorize(&Credential::SigV4(keys), request)?;
    let body = ctx.fetch_json(request).await?;
    let found = ids(&body, "modelSummaries", "modelId")
        .ok_or_else(|| Failure::invalid_response("a Bedrock model list"))?;
    let mut models = ctx.model_list(Matching::BedrockProfile);
    for id in found {
        models.push(id);
    }
    Ok(Listing::of(models))
}

/// `https://{service}.{region}.amazonaws.com` (`.com.cn` in China); `service` is `bedrock`
/// for the control plane and `bedrock-runtime` for model calls.
pub(crate) fn regional_endpoint(service: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_endpoints() {
        assert_eq!(
            regional_endpoint("bedrock", "cn-north-1"),
            "https://bedrock.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            regional_endpoint("bedrock-runtime", "us-east-1"),
            "https://bedrock-runtime.us-east-1.amazonaws.com"
        );
    }
}
