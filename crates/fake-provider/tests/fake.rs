//! The fake answers as documented: probe routes, completions whole and streamed, records,
//! and the servers that never answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use llm_settings_fake_provider::{
    completion_text, models, Behaviour, FakeProvider, SilentServer, StreamEnd, Unconnectable,
    CHUNK_DELAY_HEADER, COMPLETION_PIECES, RETRY_AFTER_SECS,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn credentials_round_trip_to_behaviours() {
    for b in Behaviour::ALL {
        assert_eq!(Behaviour::of_key(&b.key()), b);
        assert_eq!(Behaviour::of_access_key_id(&b.access_key_id()), b);
        let sa: serde_json::Value = serde_json::from_str(&b.service_account_json()).unwrap();
        assert!(sa["client_email"].as_str().unwrap().starts_with(b.name()));
    }
    assert_eq!(Behaviour::of_key("sk-anything-else"), Behaviour::Invalid);
    assert!(models("openai").contains(&"gpt-4o"));
    assert!(models("nope").is_empty());
}

#[tokio::test]
async fn openai_style_answers_by_key() {
    let fake = FakeProvider::start().await;
    assert!(fake.uri().starts_with("http://127.0.0.1:"));
    let url = format!("{}/models", fake.base_url("openai"));
    let ok = client()
        .get(&url)
        .bearer_auth(Behaviour::Valid.key())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["data"][0]["id"], "gpt-4o");

    let limited = client()
        .get(&url)
        .bearer_auth(Behaviour::RateLimited.key())
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(
        limited.headers()["retry-after"].to_str().unwrap(),
        RETRY_AFTER_SECS.to_string()
    );

    let redirect = client()
        .get(&url)
        .bearer_auth(Behaviour::Redirect.key())
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    assert_eq!(fake.requests().await.len(), 3);
}

#[tokio::test]
async fn anthropic_paginates() {
    let fake = FakeProvider::start().await;
    let url = format!("{}/v1/models", fake.base_url("anthropic"));
    let page = |after: Option<&str>| {
        let mut req = client()
            .get(&url)
            .header("x-api-key", Behaviour::Valid.key())
            .header("anthropic-version", "2023-06-01");
        if let Some(after) = after {
            req = req.query(&[("after_id", after)]);
        }
        req.send()
    };
    let first: serde_json::Value = page(None).await.unwrap().json().await.unwrap();
    assert_eq!(first["has_more"], true);
    let last_id = first["last_id"].as_str().unwrap().to_owned();
    let second: serde_json::Value = page(Some(&last_id)).await.unwrap().json().await.unwrap();
    assert_ne!(second["data"][0]["id"], first["data"][0]["id"]);
}

#[tokio::test]
async fn completions_answer_by_key_and_are_recorded() {
    let fake = FakeProvider::start().await;
    let url = format!("{}/chat/completions", fake.base_url("openai"));
    let body =
        serde_json::json!({ "model": "gpt-4o", "messages": [{ "role": "user", "content": "Hi" }] });
    let send = |key: String| {
        client()
            .post(&url)
            .query(&[("trace", "1")])
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let ok = send(Behaviour::Valid.key()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let answer: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        completion_text()
    );
    assert_eq!(send(Behaviour::Invalid.key()).await.unwrap().status(), 401);
    let limited = send(Behaviour::RateLimited.key()).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    let seen = fake.received();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path(), "/openai/v1/chat/completions");
    assert_eq!(seen[0].query(), Some("trace=1"));
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {}", Behaviour::Valid.key()).as_str())
    );
    assert_eq!(seen[0].body_json().unwrap(), body);

    let anthropic = client()
        .post(format!("{}/v1/messages", fake.base_url("anthropic")))
        .header("x-api-key", Behaviour::Valid.key())
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({ "model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 200);
    let answer: serde_json::Value = anthropic.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], completion_text());
}

/// Reads a streamed answer, noting when each chunk arrived.
async fn chunks(mut response: reqwest::Response) -> (String, Vec<Duration>) {
    let started = Instant::now();
    let (mut text, mut times) = (String::new(), Vec::new());
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        times.push(started.elapsed());
    }
    (text, times)
}

#[tokio::test]
async fn streams_send_each_piece_after_a_pause() {
    let fake = FakeProvider::start_with_chunk_delay(Duration::from_millis(150)).await;
    let response = client()
        .post(format!("{}/chat/completions", fake.base_url("openai")))
        .bearer_auth(Behaviour::Valid.key())
        .json(&serde_json::json!({ "model": "gpt-4o", "stream": true, "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (text, times) = chunks(response).await;
    assert!(times.len() > COMPLETION_PIECES.len(), "{times:?}");
    assert!(*times.last().unwrap() - times[0] >= Duration::from_millis(600));
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(fake.streams()[0].end, StreamEnd::Completed);

    // Gemini's SSE, with the pause set by the request.
    let response = client()
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            fake.base_url("gemini")
        ))
        .header("x-goog-api-key", Behaviour::Valid.key())
        .header(CHUNK_DELAY_HEADER, "0")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (text, times) = chunks(response).await;
    assert!(
        times.last().unwrap() < &Duration::from_millis(500),
        "{times:?}"
    );
    assert_eq!(text.matches("data: ").count(), COMPLETION_PIECES.len());
}

#[tokio::test]
async fn a_client_that_leaves_is_recorded() {
    let fake = FakeProvider::start_with_chunk_delay(Duration::from_millis(100)).await;
    let mut response = client()
        .post(format!("{}/v1/messages", fake.base_url("anthropic")))
        .header("x-api-key", Behaviour::Valid.key())
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({ "model": "claude", "max_tokens": 8, "stream": true, "messages": [] }))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("event: message_start"));
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.streams()[0].end != StreamEnd::ClientWentAway {
        assert!(Instant::now() < deadline, "{:?}", fake.streams());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stalling_routes_and_silent_servers() {
    let fake = FakeProvider::start().await;
    let never = client()
        .post(format!("{}/chat/completions", fake.stall_headers_url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(never.is_timeout());
    let mut headers_only = client()
        .post(format!("{}/chat/completions", fake.stall_body_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(headers_only.status(), 200);
    let body = tokio::time::timeout(Duration::from_millis(300), headers_only.chunk()).await;
    assert!(body.is_err(), "no body ever comes");
    assert_eq!(fake.received().len(), 2);

    let silent = SilentServer::start().await.unwrap();
    let call = client()
        .get(format!("{}/v1/models", silent.uri()))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(call.unwrap_err().is_timeout());
    let deadline = Instant::now() + Duration::from_secs(3);
    while silent.closed() < 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(silent.accepted(), 1);

    if let Some(hole) = Unconnectable::start().await {
        let attempt = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(hole.address()),
        )
        .await;
        assert!(attempt.is_err(), "the connection never completes");
    }
}

#[tokio::test]
async fn the_fake_answers_while_the_test_runtime_is_blocked() {
    use std::io::{Read, Write};
    let fake = FakeProvider::start().await;
    // A blocking exchange on the test's only runtime thread: the fake runs on its own.
    let mut stream = std::net::TcpStream::connect(fake.address()).unwrap();
    let key = Behaviour::Valid.key();
    write!(
        stream,
        "GET /openai/v1/models HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
        fake.address()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("gpt-4o"));
}
