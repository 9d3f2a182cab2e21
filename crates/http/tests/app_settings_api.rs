//! The application settings API (`/api/settings`, seed 004) over the real store and cipher.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use common::{bearer, send, send_raw, token, user, Harness};
use llm_settings_http::app;

const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzYx4f";
const ANTHROPIC_KEY: &str = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyzMn3k";

/// The seed's GET example, exactly.
fn seed_settings() -> Value {
    json!({
        "ai": {
            "provider": "openai",
            "providers": {
                "openai": {"apiKey": "sk-p...Yx4f", "model": "gpt-4o", "baseUrl": "https://api.openai.com/v1"},
                "anthropic": {"apiKey": "sk-a...Mn3k", "model": "claude-sonnet-4-20250514", "baseUrl": "https://api.anthropic.com"}
            },
            "systemPrompt": "You are a helpful assistant.",
            "temperature": 0.7,
            "maxTokens": 4096,
            "thinkingEnabled": false,
            "planMode": false
        },
        "stt": {"activeModel": "vosk-model-small-en-us-0.15", "sampleRate": 16000},
        "general": {"theme": "dark"},
        "onboarding": {"completed": true}
    })
}

/// The seed's settings with real keys in place of the masks.
fn seed_with_keys() -> Value {
    let mut doc = seed_settings();
    doc["ai"]["providers"]["openai"]["apiKey"] = json!(OPENAI_KEY);
    doc["ai"]["providers"]["anthropic"]["apiKey"] = json!(ANTHROPIC_KEY);
    doc
}

fn put(token: &str, body: Value) -> TestRequest {
    TestRequest::put()
        .uri("/api/settings")
        .insert_header(bearer(token))
        .set_json(body)
}

fn get(token: &str) -> TestRequest {
    TestRequest::get()
        .uri("/api/settings")
        .insert_header(bearer(token))
}

fn test_provider(token: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri("/api/settings/test-provider")
        .insert_header(bearer(token))
        .set_json(body)
}

#[actix_web::test]
async fn a_new_user_gets_the_defaults() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let (status, body) = send(&svc, get(&user("u1")).to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], true);
    assert_eq!(body["data"]["ai"]["provider"], Value::Null);
    assert_eq!(body["data"]["ai"]["providers"], json!({}));
    assert_eq!(body["data"]["ai"]["temperature"], 0.7);
    assert_eq!(body["data"]["ai"]["maxTokens"], 4096);
    assert_eq!(body["data"]["onboarding"]["completed"], false);
}

#[actix_web::test]
async fn get_reproduces_the_seed_example() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    let (status, body) = send(&svc, put(&me, seed_with_keys()).to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"ok": true, "data": seed_settings()}));
    let (status, text) = send_raw(&svc, get(&me).to_request()).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body, json!({"ok": true, "data": seed_settings()}));
    assert!(!text.contains("0123456789"), "no key material: {text}");
}

#[actix_web::test]
async fn put_deep_merges_the_seed_update() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    send(&svc, put(&me, seed_with_keys()).to_request()).await;
    let update =
        json!({"ai": {"temperature": 0.9, "providers": {"openai": {"model": "gpt-4o-mini"}}}});
    let (status, body) = send(&svc, put(&me, update).to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut expected = seed_settings();
    expected["ai"]["temperature"] = json!(0.9);
    expected["ai"]["providers"]["openai"]["model"] = json!("gpt-4o-mini");
    assert_eq!(body, json!({"ok": true, "data": expected}));

    // Unknown sections are kept; nested objects merge.
    let (_, body) = send(
        &svc,
        put(
            &me,
            json!({"general": {"language": "de"}, "custom": {"pinned": [1, 2]}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(
        body["data"]["general"],
        json!({"theme": "dark", "language": "de"})
    );
    assert_eq!(body["data"]["custom"], json!({"pinned": [1, 2]}));
    assert_eq!(body["data"]["ai"]["temperature"], 0.9);
}

#[actix_web::test]
async fn masked_keys_sent_back_keep_the_real_keys() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    send(&svc, put(&me, seed_with_keys()).to_request()).await;
    // The whole document as the client got it, round-tripped.
    let (status, body) = send(&svc, put(&me, seed_settings()).to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], seed_settings());
    let (_, body) = send(
        &svc,
        put(
            &me,
            json!({"ai": {"providers": {"openai": {"apiKey": "sk-p...Yx4f"}}}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(
        body["data"]["ai"]["providers"]["openai"]["apiKey"],
        "sk-p...Yx4f"
    );
    // The stored key is still the real one.
    send(
        &svc,
        test_provider(&me, json!({"apiKey": "sk-p...Yx4f", "model": "gpt-4o", "baseUrl": "https://api.openai.com/v1"})).to_request(),
    )
    .await;
    assert_eq!(h.probed()[0].key.as_deref(), Some(OPENAI_KEY));

    // A mask that is not the stored key's is refused, never stored.
    let (status, body) = send(
        &svc,
        put(
            &me,
            json!({"ai": {"providers": {"openai": {"apiKey": "sk-p...Zz9z"}}}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["ok"], false);
    assert!(body["error"].as_str().unwrap().contains("masked"), "{body}");
}

#[actix_web::test]
async fn provider_entries_map_onto_provider_configs() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    send(&svc, put(&me, seed_with_keys()).to_request()).await;

    // Switch the default provider.
    let (_, body) = send(
        &svc,
        put(&me, json!({"ai": {"provider": "anthropic"}})).to_request(),
    )
    .await;
    assert_eq!(body["data"]["ai"]["provider"], "anthropic");

    // A custom endpoint needs the key again; with it, it is stored.
    let (status, body) = send(
        &svc,
        put(
            &me,
            json!({"ai": {"providers": {"openai": {"baseUrl": "https://gateway.example.com/v1"}}}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(
        &svc,
        put(&me, json!({"ai": {"providers": {"openai": {"baseUrl": "https://gateway.example.com/v1", "apiKey": OPENAI_KEY}}}})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["ai"]["providers"]["openai"]["baseUrl"],
        "https://gateway.example.com/v1"
    );

    // `null` deletes a provider's config; a new provider needs its key.
    let (_, body) = send(
        &svc,
        put(&me, json!({"ai": {"providers": {"openai": null}}})).to_request(),
    )
    .await;
    assert_eq!(
        body["data"]["ai"]["providers"].as_object().unwrap().len(),
        1
    );
    assert_eq!(body["data"]["ai"]["provider"], "anthropic");
    let (status, body) = send(
        &svc,
        put(
            &me,
            json!({"ai": {"providers": {"gemini": {"model": "gemini-2.5-pro"}}}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "ai.providers.gemini.apiKey is required to add provider gemini"
    );
    // A keyless provider needs none.
    let (status, body) = send(
        &svc,
        put(
            &me,
            json!({"ai": {"providers": {"ollama": {"model": "llama3.1"}}}}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["ai"]["providers"]["ollama"],
        json!({"apiKey": null, "model": "llama3.1", "baseUrl": "http://localhost:11434"})
    );
}

#[actix_web::test]
async fn bad_documents_are_refused_before_anything_changes() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    send(&svc, put(&me, seed_with_keys()).to_request()).await;
    let cases = [
        (json!({"ai": {"temperature": 2.5, "providers": {"openai": {"model": "gpt-4.1"}}}}), "ai.temperature must be a number from 0 to 2"),
        (json!({"ai": {"temperature": "hot"}}), "ai.temperature must be a number from 0 to 2"),
        (json!({"ai": {"maxTokens": 0}}), "ai.maxTokens must be a positive integer"),
        (json!({"ai": {"maxTokens": -1, "provider": "anthropic"}}), "ai.maxTokens must be a positive integer"),
        (json!({"ai": {"thinkingEnabled": "yes"}}), "ai.thinkingEnabled must be true or false"),
        (json!({"onboarding": {"completed": 1}}), "onboarding.completed must be true or false"),
        (json!({"stt": []}), "stt must be an object"),
        (json!({"ai": {"providers": {"xyz": {"model": "m"}}}}), "ai.providers.xyz: unknown provider"),
        (json!({"ai": {"provider": "xyz"}}), "ai.provider: unknown provider xyz"),
        (json!({"ai": {"provider": "gemini"}}), "ai.provider: provider gemini is not configured; add it under ai.providers first"),
        (json!({"ai": {"provider": null}}), "ai.provider cannot be null; name the provider to use by default"),
        (json!({"ai": {"providers": null}}), "ai.providers cannot be null; set one provider's entry to null to remove that provider"),
        (json!({"ai": {"providers": {"openai": {"model": "has space"}}}}), "ai.providers.openai.model: model may only contain visible ASCII characters without spaces"),
        (json!({"ai": {"providers": {"openai": {"baseUrl": "ftp://x"}}}}), "ai.providers.openai.baseUrl: baseUrl must use http or https"),
    ];
    for (body, error) in cases {
        let (status, res) = send(&svc, put(&me, body.clone()).to_request()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {res}");
        assert_eq!(res, json!({"ok": false, "error": error}), "{body}");
    }
    for body in [
        json!({"ai": {"providers": {"openai": {"colour": "red"}}}}),
        json!({"ai": {"providers": {"openai": {"apiKey": 5}}}}),
        json!([1, 2]),
        json!("settings"),
    ] {
        let (status, res) = send(&svc, put(&me, body.clone()).to_request()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {res}");
        assert_eq!(res["ok"], false);
        assert!(res["error"].is_string());
    }
    // Nothing of the refused updates was applied.
    let (_, body) = send(&svc, get(&me).to_request()).await;
    assert_eq!(body["data"], seed_settings());
}

#[actix_web::test]
async fn test_provider_reproduces_the_seed_and_restores_masked_keys() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let me = user("u1");
    send(&svc, put(&me, seed_with_keys()).to_request()).await;

    let (status, body) = send(
        &svc,
        test_provider(&me, json!({"apiKey": "sk-p...Yx4f", "model": "gpt-4o", "baseUrl": "https://api.openai.com/v1"})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"ok": true, "data": {"connected": true}}));
    let probed = h.probed();
    assert_eq!(probed[0].provider, "openai");
    assert_eq!(probed[0].key.as_deref(), Some(OPENAI_KEY));
    assert_eq!(probed[0].model.as_deref(), Some("gpt-4o"));

    // Found by the masked key alone, behind an unknown gateway URL is refused for a stored key.
    let (status, body) = send(
        &svc,
        test_provider(&me, json!({"apiKey": "sk-a...Mn3k", "model": "claude-sonnet-4-20250514", "baseUrl": "https://gateway.example.com"})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["ok"], false);

    // A fresh key is tested as given, and a refused key is a 200 with the reason.
    let bad = "sk-ant-api03-a-bad-key-0123456789abcdefghijklmnop";
    let (status, body) = send(
        &svc,
        test_provider(&me, json!({"apiKey": bad, "model": "claude-sonnet-4-20250514", "baseUrl": "https://api.anthropic.com"})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"ok": true, "data": {"connected": false, "error": "Invalid API key"}})
    );
    assert_eq!(h.probed().last().unwrap().provider, "anthropic");

    // An explicit provider wins; a key and URL that name no provider are refused clearly.
    let (status, body) = send(
        &svc,
        test_provider(&me, json!({"apiKey": "gsk_0123456789abcdefghijklmnopqrstuvwxyz", "model": "llama-3.3-70b-versatile", "baseUrl": "https://api.groq.com/openai/v1", "provider": "groq"})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.probed().last().unwrap().provider, "groq");
    let (status, body) = send(
        &svc,
        test_provider(&me, json!({"apiKey": "sk-x...1234", "model": "m", "baseUrl": "https://unknown.example.com/v1"})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["ok"], false);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("cannot tell which provider to test"));
    let (status, body) = send(
        &svc,
        test_provider(
            &me,
            json!({"apiKey": OPENAI_KEY, "model": "gpt-4o", "baseUrl": "not a url"}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"ok": false, "error": "baseUrl is not a valid URL"})
    );
}

#[actix_web::test]
async fn scopes_are_enforced_and_errors_keep_the_envelope() {
    let h = Harness::new().await;
    let svc = test::init_service(app(h.state.clone())).await;
    let (status, body) = send(&svc, TestRequest::get().uri("/api/settings").to_request()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["ok"], false);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("missing bearer token"));

    let reader = token("u1", "read", &[], None);
    let (status, body) = send(
        &svc,
        put(&reader, json!({"general": {"theme": "light"}})).to_request(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"ok": false, "error": "the token lacks the `write` scope"})
    );
    let writer = token("u1", "write", &[], None);
    let (status, _) = send(&svc, get(&writer).to_request()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = send(
        &svc,
        TestRequest::delete()
            .uri("/api/settings")
            .insert_header(bearer(&user("u1")))
            .to_request(),
    )
    .await;
    assert!(status.is_client_error());
    assert_eq!(body["ok"], false);
}
