//! The outbound ports of a backend that makes no network calls: its application calls the
//! provider itself with the resolved key, so the domain never has to.

use async_trait::async_trait;
use llm_settings_domain::ports::{ProviderClient, ProviderProbe};
use llm_settings_domain::{
    ForwardFailure, ForwardRequest, ForwardResponse, ProbeOutcome, ProbeRequest,
};

/// A [`ProviderProbe`] that accepts every key without calling the provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptingProbe;

#[async_trait]
impl ProviderProbe for AcceptingProbe {
    async fn probe(&self, request: ProbeRequest) -> ProbeOutcome {
        ProbeOutcome {
            success: true,
            latency_ms: 0,
            model_available: true,
            models: request.model.into_iter().collect(),
            failure: None,
            retry_after_secs: None,
            message: "accepted without a network call".into(),
        }
    }
}

/// A [`ProviderClient`] that refuses every gateway call: this backend forwards nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGateway;

#[async_trait]
impl ProviderClient for NoGateway {
    async fn forward(
        &self,
        _request: ForwardRequest,
    ) -> std::result::Result<ForwardResponse, ForwardFailure> {
        Err(ForwardFailure::Invalid(
            "this backend makes no outbound calls".into(),
        ))
    }
}
