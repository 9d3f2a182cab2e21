//! Amazon Bedrock: `ListFoundationModels` (`GET /foundation-models`) signed with SigV4 for the
//! configured region. A `base_url` replaces the regional host (a VPC endpoint, a test double).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use llm_settings_domain::FailureClass;

use super::{ids, join, parse_base, Ctx, Listing};
use crate::failure::Failure;
use crate::models::Matching;
use crate::outbound::OutboundRequest;

const SERVICE: &str = "bedrock";

pub(super) async fn probe(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    let access_key_id = ctx.require_secret("access_key_id", "AWS access key id")?;
    let secret_access_key = ctx.require_secret("secret_access_key", "AWS secret access key")?;
    let session_token = ctx.secret("session_token");
    let region = ctx
        .setting("region")
        .ok_or_else(|| Failure::missing("AWS region"))?;
    if !is_region(region) {
        return Err(Failure::new(
            FailureClass::BlockedByPolicy,
            "the AWS region must look like us-east-1",
        ));
    }
    let base = match ctx.request.base_url.as_deref().map(str::trim) {
        Some(base) if !base.is_empty() => parse_base(base)?,
        _ => parse_base(&regional_endpoint(region))?,
    };
    let url = join(&base, "/foundation-models");

    let credentials = Credentials::new(
        access_key_id,
        secret_access_key,
        session_token.map(str::to_owned),
        None,
        "llm-settings-probe",
    );
    let identity = credentials.into();
    let unsignable = || {
        Failure::new(
            FailureClass::InvalidCredentials,
            "the AWS credentials could not be used to sign a request",
        )
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| unsignable())?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|_| unsignable())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|_| unsignable())?
        .into_parts();

    let mut request = OutboundRequest::get(url).header("accept", "application/json")?;
    for (name, value) in instructions.headers() {
        let name =
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| unsignable())?;
        let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| unsignable())?;
        value.set_sensitive(true);
        request.headers.insert(name, value);
    }
    let body = ctx.fetch_json(request).await?;
    let found = ids(&body, "modelSummaries", "modelId")
        .ok_or_else(|| Failure::invalid_response("a Bedrock model list"))?;
    let mut models = ctx.model_list(Matching::BedrockProfile);
    for id in found {
        models.push(id);
    }
    Ok(Listing::of(models))
}

/// `us-east-1`, `eu-central-2`, `ap-southeast-3`, `us-gov-west-1`, `cn-north-1` …
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && region.len() <= 32
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok_and(|n| n > 0)
}

fn regional_endpoint(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://bedrock.{region}.{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-3",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "us-east",
            "evil.com/x",
            "us-east-1.evil.com",
            "US-EAST-1",
            "a-b-c-d-1",
            "us-east-0",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        assert_eq!(
            regional_endpoint("cn-north-1"),
            "https://bedrock.cn-north-1.amazonaws.com.cn"
        );
    }
}
