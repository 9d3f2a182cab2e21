//! The gateway: a call to a provider made with the resolved credential, which never leaves the
//! service. One resolution (one store read, one decryption), the client's request forwarded
//! with the credential injected, the answer streamed back; audited off the request path.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use super::resolve::ResolveRequest;
use super::SettingsService;
use crate::actor::{Actor, Scope};
use crate::audit::{AuditAction, AuditEvent, AuditOutcome, CallStats};
use crate::catalog::ProviderId;
use crate::config::ProviderConfig;
use crate::error::{Error, Result};
use crate::forward::{
    passes_upstream, strip_client_key, ByteStream, ForwardPath, ForwardRequest, ForwardResponse,
    StreamFailure,
};
use crate::owner::{InstanceId, Owner, OwnerKind, UserId};
use crate::ports::{AuditQueue, Clock};
use crate::values::Timestamp;

/// Upstream statuses after which a call with fallback tries the next level of the chain.
const REFUSALS: [u16; 3] = [401, 403, 429];

/// A client's call to a provider through the gateway.
#[derive(Debug)]
pub struct GatewayCall {
    pub provider: ProviderId,
    /// For service tokens: the user the call is made for.
    pub on_behalf_of: Option<UserId>,
    /// For service tokens: the instance the call is made in.
    pub instance: Option<InstanceId>,
    pub method: String,
    pub path: ForwardPath,
    /// The query string as received.
    pub query: Option<String>,
    /// Every header the client sent; only those that may pass are forwarded.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
    /// Retry an upstream 401, 403 or 429 once per remaining level of the chain.
    pub fallback: bool,
}

/// The provider's answer, streaming.
pub struct GatewayAnswer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: ByteStream,
    /// Whose credential answered.
    pub source: OwnerKind,
}

impl std::fmt::Debug for GatewayAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayAnswer")
            .field("status", &self.status)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl SettingsService {
    /// Forwards a call with the credential the resolution rule picks for the caller: a user
    /// token (scope `use`) for its own subject and the instance in its token, or a service
    /// token on behalf of the user and/or instance named in the call.
    pub async fn gateway(&self, actor: &Actor, call: GatewayCall) -> Result<GatewayAnswer> {
        let started = self.ports.clock.now();
        let request = call_target(actor, &call)?;
        let mut audit = CallAudit::new(actor, &request, call.provider, started);
        let answer = self
            .forward_with_fallback(&request, &call, &mut audit)
            .await;
        match answer {
            Ok((response, source)) => Ok(GatewayAnswer {
                status: response.status,
                headers: response.headers,
                body: Box::pin(AuditedBody {
                    inner: response.body,
                    audit: Some(audit.answered(response.status, call.body.len())),
                    queue: self.ports.audit_queue.clone(),
                    clock: self.ports.clock.clone(),
                }),
                source: source.kind(),
            }),
            Err(err) => {
                let event = audit.refused(&err, self.ports.clock.now());
                self.ports.audit_queue.submit(event);
                Err(err)
            }
        }
    }

    /// Resolves, forwards, and on a refusal (when asked) tries the next level of the chain.
    async fn forward_with_fallback(
        &self,
        request: &ResolveRequest,
        call: &GatewayCall,
        audit: &mut CallAudit,
    ) -> Result<(ForwardResponse, Owner)> {
        let resolution = self.resolution(request).await?;
        let mut candidates = std::iter::once(resolution.config)
            .chain(resolution.fallbacks)
            .peekable();
        while let Some(config) = candidates.next() {
            audit.source(&config);
            let response = self.forward_once(&config, call).await?;
            let more = call.fallback && candidates.peek().is_some();
            if more && REFUSALS.contains(&response.status) {
                continue;
            }
            return Ok((response, config.owner));
        }
        Err(Error::Internal("a resolution always has a config".into()))
    }

    async fn forward_once(
        &self,
        config: &ProviderConfig,
        call: &GatewayCall,
    ) -> Result<ForwardResponse> {
        let secrets = self.open_all(config)?;
        let request = ForwardRequest {
            provider: config.provider,
            base_url: config.effective_base_url().map(str::to_owned),
            path: call.path.clone(),
            query: call.query.as_deref().and_then(strip_client_key),
            method: call.method.clone(),
            headers: call
                .headers
                .iter()
                .filter(|(name, _)| passes_upstream(name))
                .cloned()
                .collect(),
            body: call.body.clone(),
            secrets,
            settings: config.settings.clone(),
        };
        self.ports
            .client
            .forward(request)
            .await
            .map_err(Error::Upstream)
    }
}

/// Who the call is for: a user token acts for itself, a service token for whom it names.
fn call_target(actor: &Actor, call: &GatewayCall) -> Result<ResolveRequest> {
    let (user, instance) = if actor.is_service() {
        if call.on_behalf_of.is_none() && call.instance.is_none() {
            return Err(Error::invalid(
                "X-On-Behalf-Of",
                "a service token names the user (X-On-Behalf-Of) or the instance (X-Instance-Id) the call is made for",
            ));
        }
        (call.on_behalf_of.clone(), call.instance.clone())
    } else {
        actor.require_scope(Scope::Use)?;
        let other_user = call
            .on_behalf_of
            .as_ref()
            .is_some_and(|u| *u != actor.subject);
        let other_instance = call.instance.is_some() && call.instance != actor.instance;
        if other_user || other_instance {
            return Err(Error::Forbidden(
                "only a service token may call on behalf of another user or instance".into(),
            ));
        }
        (Some(actor.subject.clone()), actor.instance.clone())
    };
    Ok(ResolveRequest {
        user,
        instance,
        provider: Some(call.provider),
        ..ResolveRequest::default()
    })
}

/// The audit event of one gateway call, filled in as the call goes.
#[derive(Debug, Clone)]
struct CallAudit {
    event: AuditEvent,
    started: Timestamp,
}

impl CallAudit {
    fn new(
        actor: &Actor,
        request: &ResolveRequest,
        provider: ProviderId,
        started: Timestamp,
    ) -> Self {
        let event = AuditEvent {
            on_behalf_of: request.user.clone(),
            instance: request.instance.clone(),
            provider: Some(provider),
            ..AuditEvent::new(
                actor.subject.as_str(),
                request.asked_owner(),
                AuditAction::Gateway,
                AuditOutcome::Success,
                started,
            )
        };
        Self { event, started }
    }

    /// The credential now in use.
    fn source(&mut self, config: &ProviderConfig) {
        self.event.owner = config.owner.clone();
        self.event.config_id = Some(config.id);
    }

    /// The provider answered with `status`; the body is still to come.
    fn answered(mut self, status: u16, request_bytes: usize) -> Self {
        self.event.outcome = if status < 400 {
            AuditOutcome::Success
        } else {
            AuditOutcome::Failure(format!("upstream_{status}"))
        };
        self.event.call = Some(CallStats {
            latency_ms: 0,
            upstream_status: Some(status),
            request_bytes: request_bytes as u64,
            response_bytes: 0,
        });
        self
    }

    /// The call ended before any answer: the error's code is the outcome.
    fn refused(mut self, err: &Error, now: Timestamp) -> AuditEvent {
        self.event.outcome = AuditOutcome::Failure(err.code().to_owned());
        self.event.call = Some(CallStats {
            latency_ms: elapsed_ms(self.started, now),
            ..CallStats::default()
        });
        self.event
    }
}

fn elapsed_ms(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from((to.unix_micros() - from.unix_micros()) / 1000).unwrap_or(0)
}

/// The answer's body, passed through chunk by chunk; when it ends (or the client goes away)
/// the call's audit event is queued with its byte count and duration.
struct AuditedBody {
    inner: ByteStream,
    audit: Option<CallAudit>,
    queue: Arc<dyn AuditQueue>,
    clock: Arc<dyn Clock>,
}

impl AuditedBody {
    fn finish(&mut self, ended: Option<&StreamFailure>, complete: bool) {
        let Some(audit) = self.audit.take() else {
            return;
        };
        let mut event = audit.event;
        if let Some(call) = event.call.as_mut() {
            call.latency_ms = elapsed_ms(audit.started, self.clock.now());
        }
        if ended.is_some() {
            event.outcome = AuditOutcome::Failure("stream_failed".into());
        } else if !complete {
            event.outcome = AuditOutcome::Failure("client_disconnected".into());
        }
        self.queue.submit(event);
    }
}

impl Stream for AuditedBody {
    type Item = std::result::Result<Bytes, StreamFailure>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                let len = chunk.len() as u64;
                if let Some(call) = self.audit.as_mut().and_then(|a| a.event.call.as_mut()) {
                    call.response_bytes += len;
                }
            }
            Poll::Ready(Some(Err(failure))) => {
                let failure = failure.clone();
                self.finish(Some(&failure), true);
            }
            Poll::Ready(None) => self.finish(None, true),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        self.finish(None, false);
    }
}
