//! Verifies Bedrock requests the way AWS does: the access key id picks the behaviour and the
//! SigV4 signature — over the method, path, query, the headers named in `SignedHeaders` and
//! the body — must match one made with [`BEDROCK_SECRET_ACCESS_KEY`] for [`BEDROCK_REGION`].

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::json;

use crate::reply::ResponseTemplate;
use crate::{Behaviour, ReceivedRequest as Request, BEDROCK_REGION, BEDROCK_SECRET_ACCESS_KEY};

/// Headers the signer adds itself, so they are not handed to it again.
const ADDED_BY_SIGNER: [&str; 4] = [
    "host",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

fn aws_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({ "message": message }))
        .insert_header("x-amzn-errortype", kind)
}

/// Why AWS would refuse a request before looking at it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejection {
    Missing,
    Mismatch,
}

impl Rejection {
    pub(crate) fn response(self) -> ResponseTemplate {
        match self {
            Self::Missing => aws_error(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            Self::Mismatch => aws_error(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
            ),
        }
    }
}

fn missing() -> Rejection {
    Rejection::Missing
}

fn mismatch() -> Rejection {
    Rejection::Mismatch
}

/// The behaviour of a correctly signed request, or the error AWS would answer.
pub(crate) fn verify(request: &Request) -> Result<Behaviour, Rejection> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization").ok_or_else(missing)?;
    let field = |name: &str| {
        authorization
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split([',', ' ']).next())
    };
    let credential = field("Credential")
        .and_then(|c| c.split('/').next())
        .ok_or_else(missing)?;
    let behaviour = Behaviour::of_access_key_id(credential);
    if behaviour == Behaviour::Invalid {
        return Ok(behaviour);
    }
    let signed_names = field("SignedHeaders").ok_or_else(missing)?;
    let amz_date = header("x-amz-date").ok_or_else(missing)?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed_at: SystemTime = time::PrimitiveDateTime::parse(amz_date, format)
        .map_err(|_| mismatch())?
        .assume_utc()
        .into();
    let host = header("host").ok_or_else(mismatch)?;
    let mut url = format!("http://{host}{}", request.url.path());
    if let Some(query) = request.url.query() {
        url.push('?');
        url.push_str(query);
    }
    let mut signed_headers = Vec::new();
    for name in signed_names.split(';') {
        if ADDED_BY_SIGNER.contains(&name) {
            continue;
        }
        signed_headers.push((name, header(name).ok_or_else(mismatch)?));
    }

    let identity = Credentials::new(
        credential,
        BEDROCK_SECRET_ACCESS_KEY,
        header("x-amz-security-token").map(str::to_owned),
        None,
        "fake-provider",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(BEDROCK_REGION)
        .name("bedrock")
        .time(signed_at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| mismatch())?
        .into();
    let signable = SignableRequest::new(
        request.method.as_str(),
        url.as_str(),
        signed_headers.into_iter(),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|_| mismatch())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|_| mismatch())?
        .into_parts();
    let expected = instructions
        .headers()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.to_owned());
    if expected.as_deref() == Some(authorization) {
        Ok(behaviour)
    } else {
        Err(mismatch())
    }
}
