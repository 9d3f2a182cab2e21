//! Black-box tests of the multi-step workflows against the real binary, on SQLite and on
//! Postgres: each is one atomic change, under concurrent clients too — one active config per
//! admin scope, a provider switch in one step, no silent upsert on the provider configuration
//! API, create-or-update that survives a concurrent delete, and a settings document change that
//! lands whole or not at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::Barrier;

use llm_settings_fake_provider::FakeProvider;
use support::{error_message, on_both_stores, Backend, Handle, Reply, Service};

on_both_stores!(
    concurrent_admin_creates_leave_one_active_config,
    admin_provider_switch_is_one_step,
    concurrent_provider_config_creates_conflict,
    byok_create_racing_a_delete_creates_again,
    a_settings_change_invalid_in_its_last_part_changes_nothing,
);

/// Concurrent clients in each race.
const RACERS: usize = 16;

async fn start(backend: Backend, fake: &FakeProvider) -> Service {
    Service::start(
        backend,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &fake.allow_hosts())],
    )
    .await
}

fn superadmin(svc: &Service) -> String {
    svc.token("root", "read write", &["superadmin"], None)
}

/// A distinct, well-formed key per racer; its last four characters name the racer.
fn racer_key(prefix: &str, i: usize) -> String {
    format!("{prefix}0123456789abcdefghijklmnopqrstuv{i:04}")
}

/// Runs `RACERS` requests released at the same moment; returns the replies in racer order.
async fn race<F, Fut>(request: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let barrier = barrier.clone();
        let request = request(i);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            request.await
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

/// The single-key providers the admin API accepts (the catalog has eleven); the racers cycle
/// through them, so at least the first eleven ask for a provider no other racer asks for.
const ADMIN_PROVIDERS: [&str; 11] = [
    "openai",
    "anthropic",
    "gemini",
    "deepseek_cloud",
    "openrouter",
    "xai",
    "mistral",
    "groq",
    "ollama",
    "deepseek_local",
    "openai_compatible",
];

fn admin_create(i: usize) -> Value {
    let provider = ADMIN_PROVIDERS[i % ADMIN_PROVIDERS.len()];
    let mut body = json!({"provider": provider, "model": format!("model-{i}")});
    if !matches!(provider, "ollama" | "deepseek_local") {
        body["api_key"] = json!(racer_key("sk-race-", i));
    }
    if provider == "openai_compatible" {
        body["base_url"] = json!("https://llm.example.com/v1");
    }
    body
}

async fn concurrent_admin_creates_leave_one_active_config(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let root = superadmin(&svc);
    for (instance, list_path) in [
        (None, "/global/llm-settings"),
        (Some("acme"), "/instances/acme/llm-settings"),
    ] {
        let handle = svc.handle();
        let replies = race(|i| {
            let (handle, root) = (handle.clone(), root.clone());
            async move {
                let headers: Vec<(&str, &str)> =
                    instance.map(|i| ("X-Instance-Id", i)).into_iter().collect();
                handle
                    .send(
                        "POST",
                        "/llm-config/",
                        Some(&root),
                        Some(&admin_create(i)),
                        &headers,
                    )
                    .await
            }
        })
        .await;
        let created: Vec<usize> = (0..RACERS).filter(|i| replies[*i].status == 201).collect();
        assert_eq!(
            created.len(),
            1,
            "{instance:?}: exactly one create wins: {:?}",
            replies
                .iter()
                .map(|r| (r.status, &r.text))
                .collect::<Vec<_>>()
        );
        for (i, r) in replies.iter().enumerate() {
            if i == created[0] {
                continue;
            }
            assert_eq!(r.status, 409, "{instance:?} racer {i}: {}", r.text);
            assert_eq!(r.body["error_code"], "conflict", "{}", r.text);
            assert!(
                error_message(&r.body).contains("already"),
                "the refusal says the scope already has a configuration: {}",
                r.text
            );
        }
        let winner = &replies[created[0]].body;
        let winner_provider = ADMIN_PROVIDERS[created[0] % ADMIN_PROVIDERS.len()];
        assert_eq!(winner["provider"], winner_provider);

        // The scope holds exactly one config: the winner's, and it is the default.
        let headers: Vec<(&str, &str)> =
            instance.map(|i| ("X-Instance-Id", i)).into_iter().collect();
        let r = svc
            .send("GET", "/llm-config/", Some(&root), None, &headers)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["id"], winner["id"], "{}", r.text);
        let r = svc.call("GET", list_path, &root, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let configs = r.body["configs"].as_array().unwrap();
        assert_eq!(configs.len(), 1, "{instance:?}: {}", r.text);
        assert_eq!(configs[0]["provider"], winner_provider);
        assert_eq!(configs[0]["is_default"], true);
        assert_eq!(
            configs[0]["id"].to_string(),
            format!("{}", winner["id"].as_str().unwrap())
        );
    }
    assert!(!svc.logs().contains("status=500"));
}

async fn admin_provider_switch_is_one_step(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let root = superadmin(&svc);
    for (instance, list_path) in [
        (None, "/global/llm-settings"),
        (Some("acme"), "/instances/acme/llm-settings"),
    ] {
        let headers: Vec<(&str, &str)> =
            instance.map(|i| ("X-Instance-Id", i)).into_iter().collect();
        let first = json!({"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": racer_key("sk-ant-api03-", 1)});
        let r = svc
            .send("POST", "/llm-config/", Some(&root), Some(&first), &headers)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let old_id = r.body["id"].clone();

        // Readers list the scope while it moves back and forth between two providers: every
        // listing shows exactly one config, and it is the default.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (handle, root, done) = (svc.handle(), root.clone(), done.clone());
            tokio::spawn(async move {
                let mut seen = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || seen == 0 {
                    let r = handle.call("GET", list_path, &root, None).await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    let configs = r.body["configs"].as_array().unwrap();
                    assert_eq!(
                        configs.len(),
                        1,
                        "a listing saw a half-done switch: {}",
                        r.text
                    );
                    assert_eq!(configs[0]["is_default"], true, "{}", r.text);
                    seen += 1;
                }
                seen
            })
        };
        let mut last = Value::Null;
        for round in 0..10 {
            let (provider, key) = if round % 2 == 0 {
                ("openai", racer_key("sk-proj-", round))
            } else {
                ("anthropic", racer_key("sk-ant-api03-", round))
            };
            let r = svc
                .send(
                    "PATCH",
                    "/llm-config/",
                    Some(&root),
                    Some(&json!({"provider": provider, "api_key": key, "model": format!("m-{round}")})),
                    &headers,
                )
                .await;
            assert_eq!(r.status, 200, "round {round}: {}", r.text);
            assert_eq!(r.body["provider"], provider);
            assert_eq!(r.body["model"], format!("m-{round}"));
            last = r.body;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let listings = reader.await.unwrap();
        assert!(listings > 0);

        // The old config is gone; the last provider is the scope's one config and its default.
        assert_ne!(last["id"], old_id);
        let r = svc
            .send("GET", "/llm-config/", Some(&root), None, &headers)
            .await;
        assert_eq!(r.body["id"], last["id"]);
        assert_eq!(r.body["provider"], "anthropic");
        assert_eq!(r.body["api_key_masked"], "sk-...0009");
        let r = svc.call("GET", list_path, &root, None).await;
        let configs = r.body["configs"].as_array().unwrap();
        assert_eq!(configs.len(), 1, "{}", r.text);
        assert_eq!(configs[0]["provider"], "anthropic");
        assert_eq!(configs[0]["is_default"], true);
        assert_eq!(configs[0]["model"], "m-9");
    }
}

async fn concurrent_provider_config_creates_conflict(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = svc.token("admin-acme", "read write", &["admin"], Some("acme"));
    let handle = svc.handle();
    let replies = race(|i| {
        let (handle, admin) = (handle.clone(), admin.clone());
        async move {
            let body =
                json!({"provider": "openai", "credentials": {"api_key": racer_key("sk-proj-", i)}});
            handle
                .call("POST", "/v1/llm-provider", &admin, Some(body))
                .await
        }
    })
    .await;
    let created: Vec<usize> = (0..RACERS).filter(|i| replies[*i].status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one create wins: {:?}",
        replies
            .iter()
            .map(|r| (r.status, &r.text))
            .collect::<Vec<_>>()
    );
    for (i, r) in replies.iter().enumerate() {
        if i != created[0] {
            assert_eq!(r.status, 409, "racer {i}: {}", r.text);
            assert_eq!(r.body["error"]["code"], "CONFLICT", "{}", r.text);
        }
    }
    // The stored key is the winner's: no loser overwrote it after its 409 (or before a 201).
    let winner_last4 = format!("{:04}", created[0]);
    let root = superadmin(&svc);
    let r = svc
        .send(
            "GET",
            "/llm-config/",
            Some(&root),
            None,
            &[("X-Instance-Id", "acme")],
        )
        .await;
    assert_eq!(r.body["provider"], "openai", "{}", r.text);
    assert_eq!(
        r.body["api_key_masked"],
        format!("sk-...{winner_last4}"),
        "{}",
        r.text
    );
    let r = svc.call("GET", "/v1/llm-provider", &admin, None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.text);
    let r = svc
        .call("GET", "/instances/acme/llm-settings", &admin, None)
        .await;
    assert_eq!(
        r.body["configs"][0]["version"], 1,
        "never updated: {}",
        r.text
    );
}

async fn byok_create_racing_a_delete_creates_again(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("racer");
    const BASE: &str = "/users/me/llm-settings";
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "openai", "api_key": racer_key("sk-proj-", 0)})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A deleter removes whatever openai config exists, as fast as it can.
    let deleter = {
        let (handle, me, done) = (svc.handle(), me.clone(), done.clone());
        tokio::spawn(async move {
            let mut deleted = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let list = handle.call("GET", BASE, &me, None).await;
                let Some(id) = list.body["configs"][0]["id"].as_i64() else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let r = handle
                    .call("DELETE", &format!("{BASE}/{id}"), &me, None)
                    .await;
                assert!(matches!(r.status, 204 | 404), "delete: {}", r.text);
                if r.status == 204 {
                    deleted += 1;
                }
            }
            deleted
        })
    };
    let handle = svc.handle();
    let mut answers = Vec::new();
    for round in 1..=60 {
        let body = json!({"provider": "openai", "api_key": racer_key("sk-proj-", round), "model": "gpt-4o-mini"});
        let r = handle.call("POST", BASE, &me, Some(body)).await;
        answers.push((r.status, r.text.clone()));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let deleted = deleter.await.unwrap();
    let failures: Vec<_> = answers.iter().filter(|(s, _)| *s != 201).collect();
    assert!(
        failures.is_empty(),
        "every create-or-update answers 201 ({deleted} deletes raced them): {failures:?}"
    );
    assert!(deleted > 0, "the deletes raced the creates");
    // The last create-or-update is what is stored (or a later delete removed it).
    let r = svc.call("GET", BASE, &me, None).await;
    let configs = r.body["configs"].as_array().unwrap();
    assert!(configs.len() <= 1, "{}", r.text);
    if let Some(config) = configs.first() {
        assert_eq!(config["api_key_last_4"], "0060");
    }
    assert!(!svc.logs().contains("status=500"));
}

const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzYx4f";
const MISTRAL_KEY: &str = "mistral-0123456789abcdefghijklmnopqrstuvwxyzMs7r";
const GEMINI_KEY: &str = "AIzaSyD-abcdefghijklmnopqrstuvwxyz0123";

async fn a_settings_change_invalid_in_its_last_part_changes_nothing(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("atomic");
    let put = |body: Value| {
        let (handle, me): (Handle, String) = (svc.handle(), me.clone());
        async move { handle.call("PUT", "/api/settings", &me, Some(body)).await }
    };
    let r = put(json!({
        "ai": {
            "provider": "openai",
            "providers": {
                "openai": {"apiKey": OPENAI_KEY, "model": "gpt-4o"},
                "mistral": {"apiKey": MISTRAL_KEY},
            },
            "systemPrompt": "be brief",
            "temperature": 0.3,
        },
        "general": {"language": "fr"},
    }))
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = svc.call("GET", "/api/settings", &me, None).await;
    assert_eq!(before.body["data"]["ai"]["provider"], "openai");
    let configs_before = svc.call("GET", "/users/me/llm-settings", &me, None).await;

    // Each change deletes openai, adds gemini, makes it the default and changes the document,
    // then fails on its last part.
    let change = |last: Value| {
        let mut body = json!({
            "ai": {
                "provider": "gemini",
                "providers": {"openai": null, "gemini": {"apiKey": GEMINI_KEY}},
                "systemPrompt": "changed",
            },
            "general": {"language": "de"},
        });
        support_merge(&mut body, &last);
        body
    };
    let cases = [
        (
            change(json!({"onboarding": {"completed": "yes"}})),
            "onboarding.completed",
        ),
        (change(json!({"ai": {"maxTokens": 0}})), "ai.maxTokens"),
        // A mask that matches nothing the service handed out, for another provider (one
        // stored, one not).
        (
            change(json!({"ai": {"providers": {"mistral": {"apiKey": "mist...zzzz"}}}})),
            "looks like a masked key but does not match the stored key",
        ),
        (
            change(json!({"ai": {"providers": {"xai": {"apiKey": "xai-...zzzz"}}}})),
            "looks like a masked key but does not match the stored key",
        ),
    ];
    for (body, named) in cases {
        let r = put(body.clone()).await;
        assert_eq!(r.status, 400, "{body} → {}", r.text);
        assert_eq!(r.body["ok"], false, "{}", r.text);
        let error = error_message(&r.body);
        assert!(
            error.contains(named),
            "{body}: the error names {named}: {error}"
        );
        let after = svc.call("GET", "/api/settings", &me, None).await;
        assert_eq!(after.body, before.body, "{body} left a partial change");
        let configs = svc.call("GET", "/users/me/llm-settings", &me, None).await;
        assert_eq!(configs.body, configs_before.body, "{body} changed a config");
    }
    // The same change without its invalid part lands whole.
    let r = put(change(json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = &r.body["data"];
    assert_eq!(data["ai"]["provider"], "gemini");
    assert!(
        data["ai"]["providers"].get("openai").is_none(),
        "{}",
        r.text
    );
    assert_eq!(data["ai"]["systemPrompt"], "changed");
    assert_eq!(data["general"]["language"], "de");
}

/// Deep-merges `patch` into `target` (objects merged, anything else replaced).
fn support_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                support_merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}
