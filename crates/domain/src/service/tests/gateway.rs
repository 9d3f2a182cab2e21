//! The gateway use case over mocked ports: who may call, what is forwarded, fallback, audit.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use super::*;
use crate::chain::{ChainQuery, ChainSnapshot};
use crate::forward::{ForwardFailure, ForwardPath, ForwardResponse, StreamFailure};
use crate::owner::OwnerKind;
use crate::service::{GatewayAnswer, GatewayCall};

const USER_KEY: &str = "sk-user-0123456789abcdefghijklmn";
const ORG_KEY: &str = "sk-org-0123456789abcdefghijklmno";

/// A body of the given chunks.
struct Chunks(Vec<&'static str>);

impl Stream for Chunks {
    type Item = std::result::Result<Bytes, StreamFailure>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0.is_empty() {
            Poll::Ready(None)
        } else {
            let chunk = self.0.remove(0);
            Poll::Ready(Some(Ok(Bytes::from_static(chunk.as_bytes()))))
        }
    }
}

fn answer(status: u16, chunks: Vec<&'static str>) -> ForwardResponse {
    ForwardResponse {
        status,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Box::pin(Chunks(chunks)),
    }
}

/// Alice's own openai key, and her instance's.
fn chain(f: &mut Fixture) {
    let configs = [
        config(1, &user("alice"), "openai", Some(USER_KEY)),
        config(
            2,
            &Owner::Instance(InstanceId::parse("acme").unwrap()),
            "openai",
            Some(ORG_KEY),
        ),
    ];
    f.configs
        .expect_load_chain()
        .returning(move |query: ChainQuery| {
            Ok(ChainSnapshot {
                configs: configs
                    .iter()
                    .filter(|c| query.owners.contains(&c.owner))
                    .cloned()
                    .collect(),
                assignments: vec![],
            })
        });
    f.cipher.expect_open().returning(|_, binding| {
        Ok(SecretValue::new(match binding.owner {
            Owner::User(_) => USER_KEY,
            _ => ORG_KEY,
        }))
    });
}

fn call(fallback: bool) -> GatewayCall {
    GatewayCall {
        provider: provider("openai"),
        on_behalf_of: None,
        instance: None,
        method: "POST".into(),
        path: ForwardPath::parse("/chat/completions").unwrap(),
        query: Some("key=client-key&stream=true".into()),
        headers: vec![
            ("authorization".into(), b"Bearer the-callers-token".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("cookie".into(), b"session=1".to_vec()),
        ],
        body: Bytes::from_static(b"{\"model\":\"gpt-4o\"}"),
        fallback,
    }
}

fn alice(scopes: &[Scope]) -> Actor {
    Actor::new(
        UserId::parse("alice").unwrap(),
        scopes.iter().copied(),
        [],
        Some(InstanceId::parse("acme").unwrap()),
    )
}

fn service_actor() -> Actor {
    Actor::new(UserId::parse("backend").unwrap(), [], [Role::Service], None)
}

async fn drain(answer: GatewayAnswer) -> String {
    let mut body = answer.body;
    let mut out = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_user_call_goes_out_with_the_stored_key_and_none_of_the_callers_credentials() {
    let mut f = Fixture::new();
    chain(&mut f);
    f.client.expect_forward().times(1).returning(|request| {
        assert_eq!(request.secrets["api_key"].expose(), USER_KEY);
        assert_eq!(
            request.base_url.as_deref(),
            Some("https://api.openai.com/v1")
        );
        assert_eq!(request.path.as_str(), "chat/completions");
        assert_eq!(request.query.as_deref(), Some("stream=true"));
        let names: Vec<_> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type"]);
        Ok(answer(200, vec!["{\"id\":", "\"x\"}"]))
    });
    let (svc, events) = f.service();
    let answer = svc
        .gateway(&alice(&[Scope::Use]), call(false))
        .await
        .unwrap();
    assert_eq!((answer.status, answer.source), (200, OwnerKind::User));
    assert!(
        events.lock().unwrap().is_empty(),
        "audited when the body ends"
    );
    assert_eq!(drain(answer).await, "{\"id\":\"x\"}");
    let events = events.lock().unwrap();
    let event = &events[0];
    assert_eq!(event.action, AuditAction::Gateway);
    assert_eq!(event.outcome, AuditOutcome::Success);
    assert_eq!(event.owner, user("alice"));
    let stats = event.call.unwrap();
    assert_eq!(
        (
            stats.upstream_status,
            stats.request_bytes,
            stats.response_bytes
        ),
        (Some(200), 18, 10)
    );
    assert!(!format!("{event:?}").contains(USER_KEY));
}

#[tokio::test]
async fn callers_without_the_right_to_call_send_nothing() {
    let mut f = Fixture::new();
    f.client.expect_forward().never();
    f.configs.expect_load_chain().never();
    let (svc, events) = f.service();
    let err = svc
        .gateway(&alice(&[Scope::Read, Scope::Write]), call(false))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the token lacks the `use` scope");
    let err = svc
        .gateway(&service_actor(), call(false))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("X-On-Behalf-Of"));
    let mut for_bob = call(false);
    for_bob.on_behalf_of = Some(UserId::parse("bob").unwrap());
    let err = svc
        .gateway(&alice(&[Scope::Use]), for_bob)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    assert!(
        events.lock().unwrap().is_empty(),
        "refused before anything was resolved"
    );
}

#[tokio::test]
async fn fallback_retries_a_refusal_with_the_next_level_of_the_chain() {
    let mut f = Fixture::new();
    chain(&mut f);
    let mut seq = mockall::Sequence::new();
    f.client
        .expect_forward()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|request| {
            assert_eq!(request.secrets["api_key"].expose(), USER_KEY);
            Ok(answer(429, vec!["slow down"]))
        });
    f.client
        .expect_forward()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|request| {
            assert_eq!(request.secrets["api_key"].expose(), ORG_KEY);
            assert_eq!(request.body, Bytes::from_static(b"{\"model\":\"gpt-4o\"}"));
            Ok(answer(200, vec!["ok"]))
        });
    let (svc, events) = f.service();
    let mut as_service = call(true);
    as_service.on_behalf_of = Some(UserId::parse("alice").unwrap());
    as_service.instance = Some(InstanceId::parse("acme").unwrap());
    let answer = svc.gateway(&service_actor(), as_service).await.unwrap();
    assert_eq!((answer.status, answer.source), (200, OwnerKind::Instance));
    drop(answer);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].config_id, Some(ConfigId(2)));
    assert_eq!(events[0].on_behalf_of.as_ref().unwrap().as_str(), "alice");
    assert_eq!(
        events[0].outcome,
        AuditOutcome::Failure("client_disconnected".into()),
        "dropped before the body ended"
    );
}

#[tokio::test]
async fn without_fallback_a_refusal_goes_back_to_the_client() {
    let mut f = Fixture::new();
    chain(&mut f);
    f.client
        .expect_forward()
        .times(1)
        .returning(|_| Ok(answer(401, vec!["{\"error\":\"invalid key\"}"])));
    let (svc, events) = f.service();
    let answer = svc
        .gateway(&alice(&[Scope::Use]), call(false))
        .await
        .unwrap();
    assert_eq!(answer.status, 401);
    drain(answer).await;
    assert_eq!(
        events.lock().unwrap()[0].outcome,
        AuditOutcome::Failure("upstream_401".into())
    );
}

#[tokio::test]
async fn no_answer_is_an_upstream_error_and_audited() {
    let mut f = Fixture::new();
    chain(&mut f);
    f.client
        .expect_forward()
        .times(1)
        .returning(|_| Err(ForwardFailure::Timeout("no first byte within 300 s".into())));
    let (svc, events) = f.service();
    let err = svc
        .gateway(&alice(&[Scope::Use]), call(true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_timeout");
    assert_eq!(
        events.lock().unwrap()[0].outcome,
        AuditOutcome::Failure("upstream_timeout".into())
    );
}

#[tokio::test]
async fn a_provider_nobody_configured_is_not_configured() {
    let mut f = Fixture::new();
    chain(&mut f);
    f.client.expect_forward().never();
    let (svc, events) = f.service();
    let mut anthropic = call(false);
    anthropic.provider = provider("anthropic");
    let err = svc
        .gateway(&alice(&[Scope::Use]), anthropic)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "provider_not_configured");
    assert_eq!(events.lock().unwrap()[0].owner, user("alice"));
}
