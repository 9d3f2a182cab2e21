//! Black-box tests across the API surfaces, against the real binary on SQLite and on Postgres:
//! a key saved through one surface is what every surface reaching the same owner shows, and no
//! surface reaches another user's or instance's data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use llm_settings_fake_provider::FakeProvider;
use support::{assert_absent, on_both_stores, Backend, Reply, Service};

const OPENAI_KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzYx4f";
const ANTHROPIC_KEY: &str = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyzcdef";
const OTHER_OPENAI_KEY: &str = "sk-proj-zyxwvutsrqponmlkjihgfedcba9876543210Qw7e";
const GEMINI_KEY: &str = "AIzaSyD-abcdefghijklmnopqrstuvwxyz0123";

on_both_stores!(
    a_key_saved_on_the_settings_document_is_listed_by_the_byok_api,
    a_key_saved_on_the_byok_api_appears_masked_in_the_settings_document,
    a_global_key_saved_on_the_provider_keys_api_is_the_admin_apis_global_config,
    an_instance_key_set_on_the_provider_configuration_api_is_the_admin_apis_instance_config,
    an_instance_admin_never_sees_another_instance_through_the_admin_api,
    no_surface_reaches_another_users_or_instances_data,
);

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

fn admin_of(svc: &Service, instance: &str) -> String {
    svc.token(
        &format!("admin-{instance}"),
        "read write",
        &["admin"],
        Some(instance),
    )
}

/// `GET /llm-config/` with `token`, in the scope of `instance` (global without one).
async fn admin_config(svc: &Service, token: &str, instance: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = instance.map(|i| ("X-Instance-Id", i)).into_iter().collect();
    svc.send("GET", "/llm-config/", Some(token), None, &headers)
        .await
}

fn last4(mask: &Value) -> String {
    let s = mask.as_str().unwrap();
    s[s.len() - 4..].to_owned()
}

async fn a_key_saved_on_the_settings_document_is_listed_by_the_byok_api(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    let r = svc
        .call(
            "PUT",
            "/api/settings",
            &me,
            Some(json!({"ai": {"providers": {"openai": {"apiKey": OPENAI_KEY, "model": "gpt-4o-mini"}}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mask = r.body["data"]["ai"]["providers"]["openai"]["apiKey"].clone();
    assert_eq!(mask, "sk-p...Yx4f");

    let r = svc.call("GET", "/users/me/llm-settings", &me, None).await;
    assert_eq!(r.status, 200);
    let configs = r.body["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 1, "{}", r.text);
    assert_eq!(configs[0]["provider"], "openai");
    assert_eq!(configs[0]["api_key_configured"], true);
    assert_eq!(configs[0]["api_key_last_4"], "Yx4f");
    assert_eq!(last4(&mask), "Yx4f");
    assert_eq!(configs[0]["model"], "gpt-4o-mini");
    assert_eq!(configs[0]["is_default"], true);
    assert_absent(OPENAI_KEY, r.text.as_bytes(), "the BYOK list");

    // A key changed on the document is the BYOK API's key too.
    let r = svc
        .call(
            "PUT",
            "/api/settings",
            &me,
            Some(json!({"ai": {"providers": {"openai": {"apiKey": OTHER_OPENAI_KEY}}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc.call("GET", "/users/me/llm-settings", &me, None).await;
    assert_eq!(r.body["configs"][0]["api_key_last_4"], "Qw7e");
}

async fn a_key_saved_on_the_byok_api_appears_masked_in_the_settings_document(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let me = svc.user("u1");
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings",
            &me,
            Some(json!({"provider": "anthropic", "api_key": ANTHROPIC_KEY, "is_default": true})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["api_key_last_4"], "cdef");

    let r = svc.call("GET", "/api/settings", &me, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["ai"]["provider"], "anthropic");
    assert_eq!(
        r.body["data"]["ai"]["providers"],
        json!({"anthropic": {"apiKey": "sk-a...cdef", "model": "claude-sonnet-4-5", "baseUrl": "https://api.anthropic.com"}})
    );
    assert_absent(ANTHROPIC_KEY, r.text.as_bytes(), "the settings document");

    // Deleted on the BYOK API, gone from the document.
    let list = svc.call("GET", "/users/me/llm-settings", &me, None).await;
    let config_id = list.body["configs"][0]["id"].as_i64().unwrap();
    let r = svc
        .call(
            "DELETE",
            &format!("/users/me/llm-settings/{config_id}"),
            &me,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = svc.call("GET", "/api/settings", &me, None).await;
    assert_eq!(r.body["data"]["ai"]["providers"], json!({}));
}

async fn a_global_key_saved_on_the_provider_keys_api_is_the_admin_apis_global_config(
    backend: Backend,
) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let root = superadmin(&svc);
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/anthropic",
            &root,
            Some(json!({"api_key": ANTHROPIC_KEY})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let status = r.body.clone();
    assert_eq!(status["key_hint"], "sk-...cdef");

    // Without `X-Instance-Id`: the global configuration is that key.
    let r = admin_config(&svc, &root, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["provider"], "anthropic");
    assert_eq!(r.body["instance_id"], Value::Null);
    assert_eq!(r.body["api_key_masked"], "sk-...cdef");
    assert_eq!(last4(&r.body["api_key_masked"]), last4(&status["key_hint"]));
    // It is no instance's configuration.
    let r = admin_config(&svc, &root, Some("acme")).await;
    assert_eq!((r.status, r.text.as_str()), (200, "null"));

    // A key changed on the admin API is the provider keys API's key too.
    let r = svc
        .send(
            "PATCH",
            "/llm-config/",
            Some(&root),
            Some(&json!({"api_key": "sk-ant-api03-rotatedrotatedrotatedrotatedrotated9999"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root, None)
        .await;
    let anthropic = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "anthropic")
        .cloned()
        .unwrap();
    assert_eq!(
        anthropic,
        json!({"provider": "anthropic", "is_configured": true, "is_active": true, "key_hint": "sk-...9999"})
    );
    // Deleted on the admin API, gone from the provider keys API.
    assert_eq!(
        svc.send("DELETE", "/llm-config/", Some(&root), None, &[])
            .await
            .status,
        204
    );
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root, None)
        .await;
    assert!(r
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["is_configured"] == false));
}

async fn an_instance_key_set_on_the_provider_configuration_api_is_the_admin_apis_instance_config(
    backend: Backend,
) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let root = superadmin(&svc);
    let acme = admin_of(&svc, "acme");
    let r = svc
        .call(
            "POST",
            "/v1/llm-provider",
            &acme,
            Some(json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = svc
        .call(
            "PUT",
            "/v1/llm-provider/openai",
            &acme,
            Some(json!({"credentials": {"api_key": OTHER_OPENAI_KEY}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // With that `X-Instance-Id`: the instance's key.
    let r = admin_config(&svc, &root, Some("acme")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["provider"], "openai");
    assert_eq!(r.body["instance_id"], "acme");
    assert_eq!(r.body["api_key_masked"], "sk-...Qw7e");
    // Not the global configuration, not another instance's.
    for scope in [None, Some("beta")] {
        let r = admin_config(&svc, &root, scope).await;
        assert_eq!((r.status, r.text.as_str()), (200, "null"), "{scope:?}");
    }

    // And the other way round: set on the admin API for an instance, listed by that
    // instance's provider configuration, in its own spelling.
    let r = svc
        .send(
            "POST",
            "/llm-config/",
            Some(&root),
            Some(&json!({"provider": "google", "model": "gemini-2.5-pro", "api_key": GEMINI_KEY})),
            &[("X-Instance-Id", "beta")],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["provider"], "gemini");
    let r = svc
        .call("GET", "/v1/llm-provider", &admin_of(&svc, "beta"), None)
        .await;
    assert_eq!(
        r.body,
        json!([{"provider": "google", "enabled": true, "credentials": {"api_key": "AIza***"}}])
    );
    // Acme's list is still only its own (vendor prefix and stars).
    let r = svc.call("GET", "/v1/llm-provider", &acme, None).await;
    assert_eq!(
        r.body,
        json!([{"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-proj-***"}}])
    );
}

async fn an_instance_admin_never_sees_another_instance_through_the_admin_api(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let acme = admin_of(&svc, "acme");
    let beta = admin_of(&svc, "beta");
    let r = svc
        .call(
            "POST",
            "/v1/llm-provider",
            &beta,
            Some(json!({"provider": "anthropic", "credentials": {"api_key": ANTHROPIC_KEY}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Acme's provider-configuration token reaches beta's config through no admin API call.
    for scope in [Some("beta"), Some("acme"), None] {
        let headers: Vec<(&str, &str)> = scope.map(|i| ("X-Instance-Id", i)).into_iter().collect();
        for (method, path, body) in [
            ("GET", "/llm-config/", None),
            (
                "PATCH",
                "/llm-config/",
                Some(json!({"model": "claude-opus-4-1"})),
            ),
            ("POST", "/llm-config/test-connection", None),
            ("DELETE", "/llm-config/", None),
        ] {
            let r = svc
                .send(method, path, Some(&acme), body.as_ref(), &headers)
                .await;
            assert_eq!(r.status, 403, "{method} {path} {scope:?}: {}", r.text);
            assert_eq!(r.body["error_code"], "forbidden");
            assert_absent("cdef", r.text.as_bytes(), "a refused response");
        }
    }
    // Nor through its own API.
    assert_eq!(
        svc.call("GET", "/v1/llm-provider", &acme, None).await.body,
        json!([])
    );
    let r = svc
        .call("GET", "/v1/llm-provider/anthropic", &acme, None)
        .await;
    assert_eq!(r.status, 404);

    // A superadmin with `X-Instance-Id: beta` sees it, unchanged.
    let r = admin_config(&svc, &superadmin(&svc), Some("beta")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["provider"], "anthropic");
    assert_eq!(r.body["instance_id"], "beta");
    assert_eq!(r.body["api_key_masked"], "sk-...cdef");
    assert_eq!(r.body["model"], "claude-sonnet-4-5");
}

async fn no_surface_reaches_another_users_or_instances_data(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let alice = svc.user("alice");
    let bob = svc.user("bob");
    let root = superadmin(&svc);

    // Alice's keys on both user surfaces, an instance key, and a global key.
    let r = svc
        .call(
            "PUT",
            "/api/settings",
            &alice,
            Some(json!({"ai": {"providers": {"openai": {"apiKey": OPENAI_KEY}}}, "general": {"theme": "dark"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings",
            &alice,
            Some(json!({"provider": "anthropic", "api_key": ANTHROPIC_KEY})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let alice_id = r.body["id"].as_i64().unwrap();
    let r = svc
        .call(
            "POST",
            "/v1/llm-provider",
            &admin_of(&svc, "acme"),
            Some(json!({"provider": "xai", "credentials": {"api_key": "xai-0123456789abcdefghijklmnopqrstuvwxyz"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = svc
        .call(
            "POST",
            "/api/v1/settings/providers/gemini",
            &root,
            Some(json!({"api_key": GEMINI_KEY})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Bob sees none of it on the user surfaces.
    assert_eq!(
        svc.call("GET", "/users/me/llm-settings", &bob, None)
            .await
            .body,
        json!({"configs": []})
    );
    let r = svc.call("GET", "/api/settings", &bob, None).await;
    assert_eq!(r.body["data"]["ai"]["providers"], json!({}));
    assert_eq!(r.body["data"]["ai"]["provider"], Value::Null);
    assert_eq!(r.body["data"]["general"], json!({}));
    // Alice's ids are not found for Bob, and nothing changes.
    for (method, path, body) in [
        ("GET", format!("/users/me/llm-settings/{alice_id}"), None),
        (
            "PATCH",
            format!("/users/me/llm-settings/{alice_id}"),
            Some(json!({"model": "claude-opus-4-1"})),
        ),
        ("DELETE", format!("/users/me/llm-settings/{alice_id}"), None),
        (
            "POST",
            format!("/users/me/llm-settings/{alice_id}/set-default"),
            None,
        ),
    ] {
        let r = svc.call(method, &path, &bob, body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    // Alice's masks do not make her keys Bob's to test, and nothing reaches a provider.
    let requests_before = fake.requests().await.len();
    let r = svc
        .call(
            "POST",
            "/api/settings/test-provider",
            &bob,
            Some(json!({"apiKey": "sk-p...Yx4f", "model": "gpt-4o", "baseUrl": "https://api.openai.com/v1"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["ok"].clone()),
        (400, json!(false)),
        "{}",
        r.text
    );
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings/test",
            &bob,
            Some(json!({"provider": "anthropic"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (404, json!("provider_not_configured"))
    );
    assert_eq!(fake.requests().await.len(), requests_before);

    // Users, even with an instance claim, are kept off the global and instance surfaces.
    let bob_in_acme = svc.token("bob", "read write", &[], Some("acme"));
    for token in [&bob, &bob_in_acme] {
        for (path, instance) in [
            ("/llm-config/", None),
            ("/llm-config/", Some("acme")),
            ("/api/v1/settings/providers", None),
            ("/api/v1/settings/task-assignments", None),
            ("/v1/llm-provider", None),
            ("/v1/llm-provider/xai", None),
        ] {
            let headers: Vec<(&str, &str)> =
                instance.map(|i| ("X-Instance-Id", i)).into_iter().collect();
            let r = svc.send("GET", path, Some(token), None, &headers).await;
            assert_eq!(r.status, 403, "{path} {instance:?}: {}", r.text);
        }
    }
    // Instance admins are kept off the global keys.
    let r = svc
        .call(
            "GET",
            "/api/v1/settings/providers",
            &admin_of(&svc, "beta"),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = svc
        .call("GET", "/v1/llm-provider/xai", &admin_of(&svc, "beta"), None)
        .await;
    assert_eq!(r.status, 404);

    // The superadmin's own user surfaces are their own; the global keys hold no user's or
    // instance's key; the global configuration is the global key.
    assert_eq!(
        svc.call("GET", "/users/me/llm-settings", &root, None)
            .await
            .body,
        json!({"configs": []})
    );
    let r = svc
        .call("GET", "/api/v1/settings/providers", &root, None)
        .await;
    let configured: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["is_configured"] == true)
        .map(|s| s["provider"].as_str().unwrap())
        .collect();
    assert_eq!(configured, ["gemini"]);
    let r = admin_config(&svc, &root, None).await;
    assert_eq!(r.body["provider"], "gemini");
    let r = admin_config(&svc, &root, Some("acme")).await;
    assert_eq!(r.body["provider"], "xai");

    // Alice still has everything.
    let r = svc
        .call("GET", "/users/me/llm-settings", &alice, None)
        .await;
    assert_eq!(r.body["configs"].as_array().unwrap().len(), 2);
    let r = svc.call("GET", "/api/settings", &alice, None).await;
    assert_eq!(r.body["data"]["general"], json!({"theme": "dark"}));
}
