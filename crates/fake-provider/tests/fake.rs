//! The fake answers as documented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use llm_settings_fake_provider::{models, Behaviour, FakeProvider, RETRY_AFTER_SECS};

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
