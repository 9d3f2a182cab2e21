//! Black-box tests of the application settings API (`/api/settings`, seed 004) against the
//! real binary, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use llm_settings_domain::SecretHints;
use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{assert_absent, on_both_stores, Backend, Reply, Service};

const BASE: &str = "/api/settings";
const TEST: &str = "/api/settings/test-provider";
const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzYx4f";
const ANTHROPIC_KEY: &str = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyzMn3k";
/// A planted key; it must never come back out.
const PLANTED: &str = "sk-ant-api03-PLANTEDappSETTINGS0123456789-QWERTYUIOPasdfghjkl-poiu";

on_both_stores!(
    a_new_user_gets_the_defaults,
    get_reproduces_the_seed_example,
    put_deep_merges_the_seed_update,
    masked_round_trip_keeps_the_working_key,
    test_provider_finds_the_provider_and_reports_failures,
    provider_entries_map_onto_provider_configs,
    bad_documents_are_refused_before_anything_changes,
    scopes_and_envelope,
    planted_key_never_leaks,
);

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

async fn start(backend: Backend, fake: &FakeProvider) -> Service {
    Service::start(
        backend,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &fake.allow_hosts())],
    )
    .await
}

async fn put(svc: &Service, token: &str, body: Value) -> Reply {
    svc.call("PUT", BASE, token, Some(body)).await
}

async fn get(svc: &Service, token: &str) -> Reply {
    svc.call("GET", BASE, token, None).await
}

async fn test_provider(svc: &Service, token: &str, body: Value) -> Reply {
    svc.call("POST", TEST, token, Some(body)).await
}

/// The `authorization` header of the last request the fake received.
async fn last_bearer(fake: &FakeProvider) -> Option<String> {
    fake.requests()
        .await
        .last()
        .and_then(|r| r.headers.get("authorization"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn a_new_user_gets_the_defaults(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let r = get(&svc, &svc.user("u1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["ok"], true);
    let ai = &r.body["data"]["ai"];
    assert_eq!(ai["provider"], Value::Null);
    assert_eq!(ai["providers"], json!({}));
    assert_eq!(ai["temperature"], 0.7);
    assert_eq!(ai["maxTokens"], 4096);
    assert_eq!(ai["thinkingEnabled"], false);
    assert_eq!(ai["planMode"], false);
    assert_eq!(r.body["data"]["onboarding"]["completed"], false);
}

async fn get_reproduces_the_seed_example(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    let r = put(&svc, &me, seed_with_keys()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"ok": true, "data": seed_settings()}));
    let r = get(&svc, &me).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"ok": true, "data": seed_settings()}));
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert_absent(key, r.text.as_bytes(), "the GET response");
        assert_absent(key, svc.logs().as_bytes(), "the service log");
        assert_absent(key, &svc.stored_bytes(), "the database");
    }
    assert!(
        !r.text.contains("0123456789"),
        "no key material: {}",
        r.text
    );
}

async fn put_deep_merges_the_seed_update(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    put(&svc, &me, seed_with_keys()).await;

    // The seed's Update Settings body: only those fields change.
    let r = put(
        &svc,
        &me,
        json!({"ai": {"temperature": 0.9, "providers": {"openai": {"model": "gpt-4o-mini"}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut expected = seed_settings();
    expected["ai"]["temperature"] = json!(0.9);
    expected["ai"]["providers"]["openai"]["model"] = json!("gpt-4o-mini");
    assert_eq!(r.body, json!({"ok": true, "data": expected}));
    assert_eq!(get(&svc, &me).await.body["data"], expected);

    // Nested objects merge; unknown sections are kept; `null` removes a field.
    let r = put(
        &svc,
        &me,
        json!({"general": {"language": "de"}, "custom": {"pinned": [1, 2]}, "stt": {"sampleRate": null}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"]["general"],
        json!({"theme": "dark", "language": "de"})
    );
    assert_eq!(r.body["data"]["custom"], json!({"pinned": [1, 2]}));
    assert_eq!(
        r.body["data"]["stt"],
        json!({"activeModel": "vosk-model-small-en-us-0.15"})
    );
    assert_eq!(r.body["data"]["ai"]["temperature"], 0.9);
    assert_eq!(
        r.body["data"]["ai"]["providers"]["anthropic"]["apiKey"],
        "sk-a...Mn3k"
    );
}

/// GET, PUT the same document back, and the real key still works against the provider.
async fn masked_round_trip_keeps_the_working_key(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    let valid = Behaviour::Valid.key();
    let openai_url = fake.base_url("openai");
    let r = put(
        &svc,
        &me,
        json!({"ai": {"provider": "openai", "providers": {"openai": {"apiKey": valid, "model": "gpt-4o", "baseUrl": openai_url}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mask = SecretHints::of(&valid).first4_last4;
    assert_eq!(
        r.body["data"]["ai"]["providers"]["openai"],
        json!({"apiKey": mask, "model": "gpt-4o", "baseUrl": openai_url})
    );

    // The whole document as the client got it, round-tripped.
    let shown = get(&svc, &me).await.body["data"].clone();
    let r = put(&svc, &me, shown.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], shown);
    // And one entry with only its masked key.
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"openai": {"apiKey": mask}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], shown);

    // The seed's Test Provider request shape, with the masked key: the real key is used.
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": mask, "model": "gpt-4o", "baseUrl": openai_url}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"ok": true, "data": {"connected": true}}));
    assert_eq!(last_bearer(&fake).await, Some(format!("Bearer {valid}")));
    // The user BYOK API tests the same stored key.
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings/test",
            &me,
            Some(json!({"provider": "openai"})),
        )
        .await;
    assert_eq!(r.body["success"], true, "{}", r.text);

    // A mask that is not the stored key's is refused and never stored.
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"openai": {"apiKey": "sk-p...Zz9z"}}}}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["ok"], false);
    assert!(
        r.body["error"].as_str().unwrap().contains("masked"),
        "{}",
        r.text
    );
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": mask, "model": "gpt-4o", "baseUrl": openai_url}),
    )
    .await;
    assert_eq!(r.body, json!({"ok": true, "data": {"connected": true}}));
}

async fn test_provider_finds_the_provider_and_reports_failures(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    let valid = Behaviour::Valid.key();

    // Nothing stored and no key given.
    let r = test_provider(
        &svc,
        &me,
        json!({"provider": "gemini", "model": "gemini-2.5-pro"}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["ok"], false);
    assert!(r.body["error"].is_string());

    // A fresh key is tested as given; a refused key is a 200 with the seed's failure body.
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": Behaviour::Invalid.key(), "model": "claude-sonnet-4-20250514", "baseUrl": fake.base_url("anthropic"), "provider": "anthropic"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"ok": true, "data": {"connected": false, "error": "Invalid API key"}})
    );
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": valid, "model": "claude-sonnet-4-20250514", "baseUrl": fake.base_url("anthropic"), "provider": "anthropic"}),
    )
    .await;
    assert_eq!(r.body, json!({"ok": true, "data": {"connected": true}}));
    // Other failure classes keep their own message.
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": Behaviour::Quota.key(), "model": "gpt-4o", "baseUrl": fake.base_url("openai"), "provider": "openai"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["connected"], false);
    let error = r.body["data"]["error"].as_str().unwrap();
    assert!(!error.is_empty() && error != "Invalid API key", "{error}");
    // Nothing was stored by testing.
    assert_eq!(
        get(&svc, &me).await.body["data"]["ai"]["providers"],
        json!({})
    );

    // Found by the stored entry's endpoint, without naming the provider.
    let groq_url = fake.base_url("groq");
    put(
        &svc,
        &me,
        json!({"ai": {"providers": {"groq": {"apiKey": valid, "baseUrl": groq_url}}}}),
    )
    .await;
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": "", "model": "llama-3.3-70b-versatile", "baseUrl": groq_url}),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"ok": true, "data": {"connected": true}}),
        "{}",
        r.text
    );

    // A key and URL that name no provider, or no URL at all, are refused clearly.
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": "sk-x...1234", "model": "m", "baseUrl": "https://unknown.example.com/v1"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["ok"], false);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .starts_with("cannot tell which provider to test"));
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": valid, "model": "gpt-4o", "baseUrl": "not a url"}),
    )
    .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            400,
            json!({"ok": false, "error": "baseUrl is not a valid URL"})
        )
    );
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": valid, "model": "gpt-4o", "provider": "xyz"}),
    )
    .await;
    assert_eq!((r.status, r.body["ok"].clone()), (400, json!(false)));
    // The stored key is never sent to another endpoint unless the key is in the request.
    let mask = SecretHints::of(&valid).first4_last4;
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": mask, "model": "llama-3.3-70b-versatile", "baseUrl": "http://169.254.169.254/openai/v1", "provider": "groq"}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["ok"].clone()),
        (400, json!(false)),
        "{}",
        r.text
    );
    // Blocked targets are a failed test, never a connection.
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": "sk-whatever-0123456789", "model": "gpt-4o", "baseUrl": "http://169.254.169.254/v1", "provider": "openai"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["connected"], false);
    // An unknown field.
    let r = test_provider(&svc, &me, json!({"apiKey": valid, "colour": "red"})).await;
    assert_eq!((r.status, r.body["ok"].clone()), (400, json!(false)));
    assert!(!svc.logs().contains("status=500"));
}

async fn provider_entries_map_onto_provider_configs(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    put(&svc, &me, seed_with_keys()).await;

    // Switch the default provider.
    let r = put(&svc, &me, json!({"ai": {"provider": "anthropic"}})).await;
    assert_eq!(r.body["data"]["ai"]["provider"], "anthropic");

    // A custom endpoint needs the key again; with it, it is stored.
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"openai": {"baseUrl": "https://gateway.example.com/v1"}}}}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["ok"].clone()),
        (400, json!(false)),
        "{}",
        r.text
    );
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"openai": {"baseUrl": "https://gateway.example.com/v1", "apiKey": OPENAI_KEY}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"]["ai"]["providers"]["openai"]["baseUrl"],
        "https://gateway.example.com/v1"
    );
    // `null` or the provider's default URL return to the default.
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"openai": {"baseUrl": null}}}}),
    )
    .await;
    assert_eq!(
        r.body["data"]["ai"]["providers"]["openai"]["baseUrl"],
        "https://api.openai.com/v1"
    );

    // `null` deletes a provider's config; a new provider needs its key.
    let r = put(&svc, &me, json!({"ai": {"providers": {"openai": null}}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"]["ai"]["providers"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["anthropic"]
    );
    assert_eq!(r.body["data"]["ai"]["provider"], "anthropic");
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"gemini": {"model": "gemini-2.5-pro"}}}}),
    )
    .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            400,
            json!({"ok": false, "error": "ai.providers.gemini.apiKey is required to add provider gemini"})
        )
    );
    // A keyless provider needs none.
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"ollama": {"model": "llama3.1"}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"]["ai"]["providers"]["ollama"],
        json!({"apiKey": null, "model": "llama3.1", "baseUrl": "http://localhost:11434"})
    );
    // The user BYOK API lists exactly these configs.
    let r = svc.call("GET", "/users/me/llm-settings", &me, None).await;
    let mut providers: Vec<&str> = r.body["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    providers.sort_unstable();
    assert_eq!(providers, ["anthropic", "ollama"]);
}

async fn bad_documents_are_refused_before_anything_changes(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    put(&svc, &me, seed_with_keys()).await;
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
        let r = put(&svc, &me, body.clone()).await;
        assert_eq!(r.status, 400, "{body} → {}", r.text);
        assert_eq!(r.body, json!({"ok": false, "error": error}), "{body}");
    }
    for body in [
        json!({"ai": {"providers": {"openai": {"colour": "red"}}}}),
        json!({"ai": {"providers": {"openai": {"apiKey": 5}}}}),
        json!([1, 2]),
        json!("settings"),
    ] {
        let r = put(&svc, &me, body.clone()).await;
        assert_eq!(r.status, 400, "{body} → {}", r.text);
        assert_eq!(r.body["ok"], false);
        assert!(r.body["error"].is_string());
    }
    let r = svc
        .send(
            "PUT",
            BASE,
            Some(&me),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["ok"].clone()),
        (400, json!(false)),
        "{}",
        r.text
    );
    // Nothing of the refused updates was applied.
    assert_eq!(get(&svc, &me).await.body["data"], seed_settings());
    assert!(!svc.logs().contains("status=500"));
}

async fn scopes_and_envelope(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let r = svc.send("GET", BASE, None, None, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["ok"], false);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .starts_with("missing bearer token"));
    let r = svc.send("GET", BASE, Some("not-a-jwt"), None, &[]).await;
    assert_eq!((r.status, r.body["ok"].clone()), (401, json!(false)));

    let reader = svc.token("u1", "read", &[], None);
    assert_eq!(get(&svc, &reader).await.status, 200);
    for (method, path, body) in [
        ("PUT", BASE, json!({"general": {"theme": "light"}})),
        (
            "POST",
            TEST,
            json!({"apiKey": Behaviour::Valid.key(), "provider": "openai", "baseUrl": fake.base_url("openai")}),
        ),
    ] {
        let r = svc.call(method, path, &reader, Some(body)).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"ok": false, "error": "the token lacks the `write` scope"})
        );
    }
    let writer = svc.token("u1", "write", &[], None);
    let r = get(&svc, &writer).await;
    assert_eq!((r.status, r.body["ok"].clone()), (403, json!(false)));
    // Nothing changed, and no method outside the seed's.
    assert_eq!(get(&svc, &reader).await.body["data"]["general"], json!({}));
    let r = svc.call("DELETE", BASE, &svc.user("u1"), None).await;
    assert!((400..500).contains(&r.status), "{}", r.text);
    assert_eq!(r.body["ok"], false);
}

async fn planted_key_never_leaks(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("leak-check");
    let anthropic_url = fake.base_url("anthropic");
    let mut texts = Vec::new();
    let r = put(
        &svc,
        &me,
        json!({"ai": {"providers": {"anthropic": {"apiKey": PLANTED, "baseUrl": anthropic_url}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mask = SecretHints::of(PLANTED).first4_last4;
    assert_eq!(
        r.body["data"]["ai"]["providers"]["anthropic"]["apiKey"],
        mask.as_str()
    );
    texts.push(r.text);
    // The fake rejects the planted key and echoes it, as some providers do.
    let r = test_provider(
        &svc,
        &me,
        json!({"apiKey": mask, "model": "claude-sonnet-4-20250514", "baseUrl": anthropic_url}),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"ok": true, "data": {"connected": false, "error": "Invalid API key"}})
    );
    texts.push(r.text);
    let requests = [
        ("GET", BASE, None),
        (
            "PUT",
            BASE,
            Some(json!({"ai": {"providers": {"anthropic": {"apiKey": PLANTED}}}})),
        ),
        (
            "PUT",
            BASE,
            Some(json!({"ai": {"providers": {PLANTED: {"apiKey": PLANTED}}}})),
        ),
        (
            "PUT",
            BASE,
            Some(json!({"ai": {"provider": PLANTED, "temperature": PLANTED}})),
        ),
        (
            "PUT",
            BASE,
            Some(json!({"ai": {"providers": {"anthropic": {PLANTED: 1}}}})),
        ),
        (
            "PUT",
            BASE,
            Some(json!({"ai": {"providers": {"anthropic": {"baseUrl": PLANTED}}}})),
        ),
        (
            "POST",
            TEST,
            Some(json!({"apiKey": PLANTED, "provider": PLANTED})),
        ),
        (
            "POST",
            TEST,
            Some(json!({"apiKey": PLANTED, "baseUrl": PLANTED})),
        ),
        (
            "POST",
            TEST,
            Some(
                json!({"apiKey": PLANTED, "model": "claude-sonnet-4-20250514", "baseUrl": anthropic_url, "provider": "anthropic"}),
            ),
        ),
        ("GET", BASE, None),
    ];
    for (method, path, body) in requests {
        let r = svc.call(method, path, &me, body).await;
        assert!(r.status < 500, "{method} {path}: {}", r.text);
        texts.push(r.text);
    }
    for (i, text) in texts.iter().enumerate() {
        assert_absent(PLANTED, text.as_bytes(), &format!("response {i}"));
    }
    assert_absent(PLANTED, svc.logs().as_bytes(), "the service log");
    assert_absent(PLANTED, &svc.stored_bytes(), "the database");
    assert!(
        svc.logs().contains("request finished"),
        "request logging is on"
    );
}
