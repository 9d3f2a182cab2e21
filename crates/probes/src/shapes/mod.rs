//! One module per request shape of the catalog ([`ProbeShape`]).

use llm_settings_domain::{FailureClass, ProbeRequest, ProbeShape, ProviderSpec};
use serde_json::Value;
use url::Url;

use crate::credentials::{Credential, Fields};
use crate::failure::{classify, Failure};
use crate::models::{Matching, ModelList};
use crate::outbound::{Outbound, OutboundRequest, Reply};

mod anthropic;
mod azure;
pub(crate) mod bedrock;
mod gemini;
mod ollama;
mod openai;
mod openrouter;
pub(crate) mod vertex;

/// Everything a shape needs for one probe.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) out: Outbound<'a>,
    pub(crate) spec: &'static ProviderSpec,
    pub(crate) request: &'a ProbeRequest,
    pub(crate) model: Option<String>,
    pub(crate) max_models: usize,
    pub(crate) max_pages: usize,
    pub(crate) google_token_url: Option<&'a Url>,
}

/// What a successful probe learned.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) models: ModelList,
    /// Set when availability is decided otherwise than by the list (Azure deployment,
    /// OpenRouter's per-model lookup).
    pub(crate) model_available: Option<bool>,
    /// Replaces the usual "N models listed" part of the message.
    pub(crate) summary: Option<String>,
}

impl Listing {
    pub(crate) fn of(models: ModelList) -> Self {
        Self {
            models,
            model_available: None,
            summary: None,
        }
    }
}

/// Runs the shape of the request's provider.
pub(crate) async fn run(ctx: &Ctx<'_>) -> Result<Listing, Failure> {
    match ctx.spec.probe {
        ProbeShape::OpenAiModels => openai::probe(ctx).await,
        ProbeShape::OpenRouterKey => openrouter::probe(ctx).await,
        ProbeShape::Anthropic => anthropic::probe(ctx).await,
        ProbeShape::Gemini => gemini::probe(ctx).await,
        ProbeShape::Ollama => ollama::probe(ctx).await,
        ProbeShape::Azure => azure::probe(ctx).await,
        ProbeShape::Bedrock => bedrock::probe(ctx).await,
        ProbeShape::Vertex => vertex::probe(ctx).await,
    }
}

impl Ctx<'_> {
    /// The credential's fields.
    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            spec: self.spec,
            secrets: &self.request.secrets,
            settings: &self.request.settings,
        }
    }

    /// The credential of the provider (every shape but Vertex AI).
    pub(crate) fn credential(&self) -> Result<Credential<'_>, Failure> {
        Credential::of(&self.fields())
    }

    /// Puts the credential on a request about to be sent.
    pub(crate) fn authorize(
        &self,
        credential: &Credential<'_>,
        mut request: OutboundRequest,
    ) -> Result<OutboundRequest, Failure> {
        let body = request.body.clone().unwrap_or_default();
        credential.apply(&request.method, &request.url, &mut request.headers, &body)?;
        Ok(request)
    }

    /// A non-blank, trimmed non-secret field.
    pub(crate) fn setting(&self, name: &str) -> Option<&str> {
        self.fields().setting(name)
    }

    /// The request's base URL, else the catalog default, parsed once.
    pub(crate) fn base_url(&self) -> Result<Url, Failure> {
        let text = self
            .request
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .or(self.spec.default_base_url)
            .ok_or_else(|| {
                Failure::new(
                    FailureClass::NotFound,
                    format!("{} needs a base URL", self.spec.display_name),
                )
            })?;
        parse_base(text)
    }

    /// A fresh model list for this probe.
    pub(crate) fn model_list(&self, matching: Matching) -> ModelList {
        ModelList::new(self.model.as_deref(), matching, self.max_models)
    }

    /// Sends the request and returns the JSON body of a 2xx answer; any other answer is
    /// classified.
    pub(crate) async fn fetch_json(&self, request: OutboundRequest) -> Result<Value, Failure> {
        let reply = self.out.send(request).await?;
        self.json_of(&reply, "JSON")
    }

    /// The JSON body of a 2xx answer, or the classified failure.
    pub(crate) fn json_of(&self, reply: &Reply, what: &str) -> Result<Value, Failure> {
        if !reply.status.is_success() {
            return Err(classify(self.spec.display_name, reply));
        }
        serde_json::from_slice(&reply.body).map_err(|_| Failure::invalid_response(what))
    }
}

/// Parses a base URL; a query or fragment cannot be extended with a path.
pub(crate) fn parse_base(text: &str) -> Result<Url, Failure> {
    let url = Url::parse(text)
        .map_err(|_| Failure::new(FailureClass::NotFound, "the base URL is not a valid URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Failure::new(
            FailureClass::NotFound,
            "the base URL must not have a query or fragment",
        ));
    }
    Ok(url)
}

/// The base URL with `path` appended to its path (the host part is never re-parsed).
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

/// Whether a value can be used as one URL path segment or host label: ASCII letters, digits
/// and `-`, `_`, `.`, `:` only, never `..`.
pub(crate) fn is_plain_segment(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value != "."
        && !value.contains("..")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The ids found under `list_key[*].id_key` of a JSON body, or `None` when the body does not
/// have that shape.
pub(crate) fn ids<'v>(body: &'v Value, list_key: &str, id_key: &str) -> Option<Vec<&'v str>> {
    let list = body.get(list_key)?.as_array()?;
    Some(
        list.iter()
            .filter_map(|m| m.get(id_key).and_then(Value::as_str))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_appends_to_the_path() {
        let base = parse_base("https://api.openai.com/v1/").unwrap();
        assert_eq!(
            join(&base, "/models").as_str(),
            "https://api.openai.com/v1/models"
        );
        let base = parse_base("https://api.anthropic.com").unwrap();
        assert_eq!(
            join(&base, "/v1/models").as_str(),
            "https://api.anthropic.com/v1/models"
        );
        assert!(parse_base("https://x.test/v1?a=b").is_err());
        assert!(parse_base("not a url").is_err());
    }

    #[test]
    fn plain_segments() {
        assert!(is_plain_segment("gpt-4o_prod.v2"));
        assert!(!is_plain_segment("../admin"));
        assert!(!is_plain_segment("a/b"));
        assert!(!is_plain_segment("a b"));
        assert!(!is_plain_segment(""));
    }
}
