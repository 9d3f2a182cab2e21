//! Black-box tests of the gateway (`/v1/gateway/{provider}/{path}`) against the real binary on
//! SQLite and Postgres, with the local fake provider recording what it receives and streaming
//! server-sent events with a pause between chunks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use llm_settings_fake_provider::{
    completion_text, Behaviour, FakeProvider, StreamEnd, COMPLETION_PIECES,
};
use support::{assert_absent, on_both_stores, Backend, Service};

on_both_stores!(
    openai_sdk_calls_go_out_with_the_stored_key,
    anthropic_and_gemini_sdk_calls_are_rewritten_their_way,
    a_streamed_answer_arrives_chunk_by_chunk,
    the_chain_and_fallback_name_their_source,
    traversal_and_disallowed_targets_send_nothing,
    callers_without_the_right_send_nothing,
    a_client_that_leaves_cancels_the_upstream_call,
    oversized_bodies_are_refused,
    calls_are_audited_and_the_key_never_leaks,
);

const GATEWAY: &str = "/v1/gateway";

async fn start(backend: Backend, fake: &FakeProvider, extra: &[(&str, &str)]) -> Service {
    let allow = fake.allow_hosts();
    let mut env = vec![("LLM_SETTINGS_PROBE_ALLOW_HOSTS", allow.as_str())];
    env.extend_from_slice(extra);
    Service::start(backend, &env).await
}

/// Stores `key` for `provider` on the native API of `owner_path` (`/users/me/llm-settings`,
/// `/instances/acme/llm-settings`, `/global/llm-settings`), pointing at the fake.
async fn store_key(
    svc: &Service,
    fake: &FakeProvider,
    owner_path: &str,
    token: &str,
    provider: &str,
    key: &str,
) {
    let body = json!({"provider": provider, "api_key": key, "base_url": fake.base_url(provider)});
    let r = svc.call("POST", owner_path, token, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

fn user_with_use(svc: &Service, sub: &str, instance: Option<&str>) -> String {
    svc.token(sub, "read write use", &[], instance)
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

async fn openai_sdk_calls_go_out_with_the_stored_key(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake, &[]).await;
    let alice = user_with_use(&svc, "alice", None);
    let key = Behaviour::Valid.key();
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &key,
    )
    .await;

    // What the OpenAI SDK sends with base_url = …/v1/gateway/openai and the token as its key.
    let r = svc
        .send(
            "POST",
            &format!("{GATEWAY}/openai/chat/completions?trace=1"),
            Some(&alice),
            Some(&chat(false)),
            &[
                ("openai-beta", "assistants=v2"),
                ("cookie", "session=abc"),
                ("x-forwarded-for", "10.1.2.3"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(&completion_text()), "{}", r.text);
    assert_eq!(r.headers["x-llm-settings-credential-source"], "user");
    assert!(
        r.headers.get("set-cookie").is_none(),
        "the provider's cookie stays behind"
    );
    assert!(r.headers.get("x-request-id").is_some());

    let received = fake.received();
    let call = received.last().unwrap();
    assert_eq!(call.path(), "/openai/v1/chat/completions");
    assert_eq!(call.query(), Some("trace=1"));
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    assert_eq!(call.header("openai-beta"), Some("assistants=v2"));
    for gone in ["cookie", "x-forwarded-for", "x-on-behalf-of"] {
        assert!(call.header(gone).is_none(), "{gone} was forwarded");
    }
    assert_eq!(
        call.body_json().unwrap(),
        chat(false),
        "the body passes untouched"
    );
    let raw = format!("{:?}", call.headers);
    assert!(
        !raw.contains(&alice),
        "the caller's token reached the provider"
    );
}

async fn anthropic_and_gemini_sdk_calls_are_rewritten_their_way(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake, &[]).await;
    let alice = user_with_use(&svc, "alice", None);
    let key = Behaviour::Valid.key();
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "anthropic",
        &key,
    )
    .await;
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "gemini",
        &key,
    )
    .await;

    // The Anthropic SDK puts its API key in x-api-key.
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    let r = svc
        .send(
            "POST",
            &format!("{GATEWAY}/anthropic/v1/messages"),
            None,
            Some(&body),
            &[("x-api-key", &alice)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call = fake.received().pop().unwrap();
    assert_eq!(call.header("x-api-key"), Some(key.as_str()));
    assert_eq!(
        call.header("anthropic-version"),
        Some("2023-06-01"),
        "a default version is added"
    );

    // The Gemini SDK puts it in the `key` parameter (or x-goog-api-key).
    let body = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let path =
        format!("{GATEWAY}/gemini/v1beta/models/gemini-2.5-flash:generateContent?key={alice}");
    let r = svc.send("POST", &path, None, Some(&body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call = fake.received().pop().unwrap();
    assert_eq!(call.header("x-goog-api-key"), Some(key.as_str()));
    assert_eq!(call.query(), None, "the client's key parameter is dropped");
}

async fn a_streamed_answer_arrives_chunk_by_chunk(backend: Backend) {
    let fake = FakeProvider::start_with_chunk_delay(Duration::from_millis(300)).await;
    let svc = start(backend, &fake, &[]).await;
    let alice = user_with_use(&svc, "alice", None);
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &Behaviour::Valid.key(),
    )
    .await;

    let started = Instant::now();
    let mut res = reqwest::Client::new()
        .post(format!("{}{GATEWAY}/openai/chat/completions", svc.base))
        .bearer_auth(&alice)
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut text = String::new();
    let mut first = None;
    while let Some(chunk) = res.chunk().await.unwrap() {
        first.get_or_insert_with(|| started.elapsed());
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (first, last) = (first.unwrap(), started.elapsed());
    let pause = Duration::from_millis(300) * (COMPLETION_PIECES.len() as u32 - 1);
    assert!(
        last - first >= pause - Duration::from_millis(100),
        "the first chunk came at {first:?}, the last at {last:?}: the answer was buffered"
    );
    assert!(text.contains("data: [DONE]"), "{text}");
}

async fn the_chain_and_fallback_name_their_source(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake, &[]).await;
    let root = svc.token("root", "read write", &["superadmin"], None);
    let alice = svc.user("alice");
    store_key(
        &svc,
        &fake,
        "/global/llm-settings",
        &root,
        "openai",
        &Behaviour::Valid.key(),
    )
    .await;
    store_key(
        &svc,
        &fake,
        "/instances/acme/llm-settings",
        &root,
        "openai",
        &Behaviour::Valid.key(),
    )
    .await;
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &Behaviour::Invalid.key(),
    )
    .await;
    let backend_token = svc.token("billing", "", &["service"], None);
    let path = format!("{GATEWAY}/openai/chat/completions");
    let send = |who: &'static str, instance: Option<&'static str>, fallback: bool| {
        let mut headers = vec![("x-on-behalf-of", who)];
        if let Some(i) = instance {
            headers.push(("x-instance-id", i));
        }
        if fallback {
            headers.push(("x-llm-settings-fallback", "true"));
        }
        let (svc, path, token) = (&svc, &path, &backend_token);
        async move {
            svc.send("POST", path, Some(token), Some(&chat(false)), &headers)
                .await
        }
    };

    // Alice's own (refused) key is used first; the provider's 401 comes back as it is.
    let r = send("alice", Some("acme"), false).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.headers["x-llm-settings-credential-source"], "user");
    assert!(
        !r.text.contains(&Behaviour::Invalid.key()),
        "the provider's echo of the key is scrubbed"
    );
    // With fallback, the next level of the chain answers.
    let r = send("alice", Some("acme"), true).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["x-llm-settings-credential-source"], "instance");
    // A user without a key of their own uses the instance's, then the deployment's.
    let r = send("bob", Some("acme"), false).await;
    assert_eq!(r.headers["x-llm-settings-credential-source"], "instance");
    let r = send("bob", None, false).await;
    assert_eq!(r.headers["x-llm-settings-credential-source"], "global");
    // A change takes effect on the next call: without the global config, bob has nothing.
    let list = svc.call("GET", "/global/llm-settings", &root, None).await;
    let id = list.body["configs"][0]["id"].as_i64().unwrap();
    let r = svc
        .call("DELETE", &format!("/global/llm-settings/{id}"), &root, None)
        .await;
    assert_eq!(r.status, 204);
    let r = send("bob", None, false).await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (404, json!("provider_not_configured"))
    );
}

async fn traversal_and_disallowed_targets_send_nothing(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake, &[]).await;
    let alice = user_with_use(&svc, "alice", None);
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &Behaviour::Valid.key(),
    )
    .await;
    let before = fake.received().len();
    for path in [
        "../admin",
        "v1/../../x",
        "./models",
        "a//b",
        "%2e%2e/admin",
        "models%2Fx",
        "models%5cx",
    ] {
        // Sent byte for byte: an HTTP client library would resolve dot segments itself.
        let (status, body) = raw_get(&svc, &format!("{GATEWAY}/openai/{path}"), &alice).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("\"field\":\"path\""), "{path}: {body}");
    }
    assert_eq!(fake.received().len(), before, "nothing was sent upstream");

    // A cloud provider pointed at a loopback address nobody allowed: blocked by policy.
    let bob = user_with_use(&svc, "bob", None);
    let body = json!({"provider": "openai", "api_key": Behaviour::Valid.key(), "base_url": "http://127.0.0.1:9/v1"});
    assert_eq!(
        svc.call("POST", "/users/me/llm-settings", &bob, Some(body))
            .await
            .status,
        201
    );
    let r = svc
        .send(
            "POST",
            &format!("{GATEWAY}/openai/chat/completions"),
            Some(&bob),
            Some(&chat(false)),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (403, json!("upstream_blocked")),
        "{}",
        r.text
    );
    // An unknown provider is refused before anything happens.
    let r = svc
        .send(
            "GET",
            &format!("{GATEWAY}/nope/models"),
            Some(&alice),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(fake.received().len(), before);
}

/// A GET sent exactly as written, over a plain connection: status and body.
async fn raw_get(svc: &Service, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = svc.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

async fn callers_without_the_right_send_nothing(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake, &[]).await;
    let alice = svc.user("alice");
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &Behaviour::Valid.key(),
    )
    .await;
    let path = format!("{GATEWAY}/openai/chat/completions");
    let service = svc.token("billing", "", &["service"], None);
    let cases = [
        (
            Some(alice.as_str()),
            vec![],
            403,
            "forbidden",
            "the token lacks the `use` scope",
        ),
        (
            Some(service.as_str()),
            vec![],
            400,
            "validation_error",
            "X-On-Behalf-Of",
        ),
        (None, vec![], 401, "unauthorized", "missing token"),
        (Some("not-a-token"), vec![], 401, "unauthorized", "token"),
    ];
    for (token, headers, status, code, reason) in cases {
        let r = svc
            .send("POST", &path, token, Some(&chat(false)), &headers)
            .await;
        assert_eq!(
            (r.status, r.body["error_code"].clone()),
            (status, json!(code)),
            "{}",
            r.text
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains(reason),
            "{}",
            r.text
        );
    }
    let other = user_with_use(&svc, "mallory", None);
    let r = svc
        .send(
            "POST",
            &path,
            Some(&other),
            Some(&chat(false)),
            &[("x-on-behalf-of", "alice")],
        )
        .await;
    assert_eq!(
        r.status, 403,
        "a user token cannot call for someone else: {}",
        r.text
    );
    assert!(fake.received().is_empty(), "nothing was sent upstream");
}

async fn a_client_that_leaves_cancels_the_upstream_call(backend: Backend) {
    let fake = FakeProvider::start_with_chunk_delay(Duration::from_millis(400)).await;
    let svc = start(backend, &fake, &[]).await;
    let alice = user_with_use(&svc, "alice", None);
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &Behaviour::Valid.key(),
    )
    .await;
    let mut res = reqwest::Client::new()
        .post(format!("{}{GATEWAY}/openai/chat/completions", svc.base))
        .bearer_auth(&alice)
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert!(res.chunk().await.unwrap().is_some());
    drop(res);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let streams = fake.streams();
        if streams
            .last()
            .is_some_and(|s| s.end == StreamEnd::ClientWentAway)
        {
            assert!(streams[0].chunks_sent < streams[0].chunks_total);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream stream was not cancelled: {streams:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(
        backend,
        &fake,
        &[("LLM_SETTINGS_GATEWAY_MAX_BODY_BYTES", "1024")],
    )
    .await;
    let alice = user_with_use(&svc, "alice", None);
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &Behaviour::Valid.key(),
    )
    .await;
    let big =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let r = svc
        .send(
            "POST",
            &format!("{GATEWAY}/openai/chat/completions"),
            Some(&alice),
            Some(&big),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (413, json!("payload_too_large")),
        "{}",
        r.text
    );
    assert!(fake.received().is_empty());
}

async fn calls_are_audited_and_the_key_never_leaks(backend: Backend) {
    let fake = FakeProvider::start().await;
    let mut svc = start(backend, &fake, &[]).await;
    let alice = user_with_use(&svc, "alice", None);
    let planted = Behaviour::Valid.key();
    store_key(
        &svc,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &planted,
    )
    .await;
    let mut replies = Vec::new();
    for stream in [false, true] {
        let r = svc
            .send(
                "POST",
                &format!("{GATEWAY}/openai/chat/completions"),
                Some(&alice),
                Some(&chat(stream)),
                &[],
            )
            .await;
        assert_eq!(r.status, 200);
        replies.push(r.text);
    }
    // Audit events are written off the request path; shutting down flushes the queue.
    assert!(svc.terminate(), "clean shutdown");
    let stored = svc.stored_bytes();
    let text = String::from_utf8_lossy(&stored);
    assert!(
        text.matches("gateway").count() >= 2,
        "two gateway audit events"
    );
    assert_absent(&planted, &stored, "the store");
    assert_absent(&planted, svc.logs().as_bytes(), "the service log");
    for reply in &replies {
        assert_absent(&planted, reply.as_bytes(), "a gateway answer");
    }
}

/// The key the fake provider received on the last call, from its `Authorization` header.
fn last_key(fake: &FakeProvider) -> String {
    let received = fake.received();
    let call = received.last().expect("a call reached the provider");
    call.header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .expect("a bearer key")
        .to_owned()
}

/// Two service processes on one Postgres database, both with their chain caches warm: a
/// change, disable or delete made through B is used by B's next call at once, and by A's
/// once the longest cache lifetime (1 s) has passed.
#[tokio::test]
async fn two_processes_see_a_change_at_once_and_within_a_second() {
    let fake = FakeProvider::start().await;
    let a = start(Backend::Postgres, &fake, &[]).await;
    let allow = fake.allow_hosts();
    let b = a
        .start_beside(&[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", allow.as_str())])
        .await;
    let root = a.token("root", "read write", &["superadmin"], None);
    let alice = user_with_use(&a, "alice", None);
    let (first, second, global) = (
        Behaviour::Valid.key(),
        "sk-second-key-0123456789".to_owned(),
        "sk-global-key-0123456789".to_owned(),
    );
    store_key(&a, &fake, "/global/llm-settings", &root, "openai", &global).await;
    store_key(
        &a,
        &fake,
        "/users/me/llm-settings",
        &alice,
        "openai",
        &first,
    )
    .await;
    let mine = a.call("GET", "/users/me/llm-settings", &alice, None).await;
    let id = mine.body["configs"][0]["id"].as_i64().unwrap();
    let config = format!("/users/me/llm-settings/{id}");

    let path = format!("{GATEWAY}/openai/chat/completions");
    // The key and the source header a call through `svc` went out with.
    let call = |svc: &'static str| {
        let (svc, path, alice, fake) = (if svc == "a" { &a } else { &b }, &path, &alice, &fake);
        async move {
            let r = svc
                .send("POST", path, Some(alice), Some(&chat(false)), &[])
                .await;
            let source = r.headers["x-llm-settings-credential-source"]
                .to_str()
                .unwrap()
                .to_owned();
            (last_key(fake), source)
        }
    };
    // Just past the longest time a process may serve a cached chain.
    let past_the_ttl = || tokio::time::sleep(Duration::from_millis(1_200));
    let user = |key: &str| (key.to_owned(), "user".to_owned());
    let from_global = (global.clone(), "global".to_owned());

    // Both caches warm, twice over.
    for _ in 0..2 {
        assert_eq!(call("a").await, user(&first));
        assert_eq!(call("b").await, user(&first));
    }

    // A new key through B.
    let r = b
        .call("PATCH", &config, &alice, Some(json!({"api_key": second})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(call("b").await, user(&second), "B uses the new key at once");
    past_the_ttl().await;
    assert_eq!(call("a").await, user(&second), "A within a second");

    // Disabled through B (both caches warm with the enabled config).
    assert_eq!(call("b").await, user(&second));
    let r = b
        .call("PATCH", &config, &alice, Some(json!({"enabled": false})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        call("b").await,
        from_global,
        "B skips the disabled key at once"
    );
    past_the_ttl().await;
    assert_eq!(call("a").await, from_global, "A within a second");

    // Enabled again, then deleted through B.
    let r = b
        .call("PATCH", &config, &alice, Some(json!({"enabled": true})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(call("b").await, user(&second), "B at once");
    past_the_ttl().await;
    assert_eq!(call("a").await, user(&second), "A within a second");
    let r = b.call("DELETE", &config, &alice, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        call("b").await,
        from_global,
        "B forgets the deleted key at once"
    );
    past_the_ttl().await;
    assert_eq!(call("a").await, from_global, "A within a second");
}
