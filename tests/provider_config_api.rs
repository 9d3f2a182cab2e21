//! Black-box tests of the provider configuration API (`/v1/llm-provider`, seed 003) against
//! the real binary, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use llm_settings_fake_provider::{Behaviour, FakeProvider, AZURE_DEPLOYMENT};
use support::{assert_absent, on_both_stores, Backend, Reply, Service};

const BASE: &str = "/v1/llm-provider";
const OPENAI_KEY: &str = "sk-0123456789abcdef0123456789abcdef";
/// A planted key; it must never come back out.
const PLANTED: &str = "sk-PLANTEDproviderCONFIG0123456789-QWERTYUIOPasdfghjklZXCVBNM-mnbv";
const NO_INSTANCE: &str =
    "this API acts on the instance named in the token's `instance` claim; the token has none";

on_both_stores!(
    seed_update_examples,
    not_found_is_the_seed_error,
    every_provider_takes_its_own_credentials,
    bad_requests_are_refused_clearly,
    delete_removes_a_provider,
    authorization,
    masked_credentials_keep_the_working_key,
    planted_key_never_leaks,
);

async fn start(backend: Backend, fake: &FakeProvider) -> Service {
    Service::start(
        backend,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &fake.allow_hosts())],
    )
    .await
}

/// An admin of `instance`.
fn admin_of(svc: &Service, instance: &str) -> String {
    svc.token(
        &format!("admin-{instance}"),
        "read write",
        &["admin"],
        Some(instance),
    )
}

async fn create(svc: &Service, token: &str, body: Value) -> Reply {
    svc.call("POST", BASE, token, Some(body)).await
}

async fn put(svc: &Service, token: &str, provider: &str, body: Value) -> Reply {
    svc.call("PUT", &format!("{BASE}/{provider}"), token, Some(body))
        .await
}

async fn seed_update_examples(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = admin_of(&svc, "acme");
    let r = create(
        &svc,
        &admin,
        json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***"}})
    );

    // The curl example: enabled and empty credentials.
    let r = put(
        &svc,
        &admin,
        "openai",
        json!({"enabled": true, "credentials": {}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***"}})
    );

    // Enable/Disable a Provider.
    let r = put(&svc, &admin, "openai", json!({"enabled": false})).await;
    assert_eq!(
        r.body,
        json!({"provider": "openai", "enabled": false, "credentials": {"api_key": "sk-***"}})
    );
    let r = put(&svc, &admin, "openai", json!({"enabled": true})).await;
    assert_eq!((r.status, r.body["enabled"].clone()), (200, json!(true)));

    // Update Credentials → the Success Response.
    let r = put(
        &svc,
        &admin,
        "openai",
        json!({"credentials": {"api_key": "sk-new-api-key", "organization": "org-new-org-id"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***", "organization": "org-new-org-id"}})
    );
    assert!(!r.text.contains("new-api-key"));

    // The same document by name and in the list (a bare array).
    let r = svc
        .call("GET", &format!("{BASE}/openai"), &admin, None)
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            200,
            json!({"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***", "organization": "org-new-org-id"}})
        )
    );
    let r = svc.call("GET", BASE, &admin, None).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            200,
            json!([{"provider": "openai", "enabled": true, "credentials": {"api_key": "sk-***", "organization": "org-new-org-id"}}])
        )
    );
}

async fn not_found_is_the_seed_error(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = admin_of(&svc, "acme");
    let expected = json!({"error": {"code": "NOT_FOUND", "message": "No configuration found for provider: openai"}});
    for (method, body) in [
        ("PUT", Some(json!({"enabled": false}))),
        (
            "PUT",
            Some(json!({"credentials": {"api_key": "sk-new-api-key"}})),
        ),
        ("GET", None),
        ("DELETE", None),
    ] {
        let r = svc
            .call(method, &format!("{BASE}/openai"), &admin, body)
            .await;
        assert_eq!((r.status, &r.body), (404, &expected), "{method}");
    }
    // The list is empty, and an update of a missing provider created nothing.
    let r = svc.call("GET", BASE, &admin, None).await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])));
    // The surface's own spelling of gemini is in the message.
    let r = svc
        .call("GET", &format!("{BASE}/google"), &admin, None)
        .await;
    assert_eq!(
        r.body,
        json!({"error": {"code": "NOT_FOUND", "message": "No configuration found for provider: google"}})
    );
}

async fn every_provider_takes_its_own_credentials(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = admin_of(&svc, "acme");
    let cases = [
        (
            json!({"provider": "google", "credentials": {"api_key": "AIzaSyD-abcdefghijklmnopqrstuvwxyz0123"}}),
            json!({"provider": "google", "enabled": true, "credentials": {"api_key": "AIza***"}}),
        ),
        (
            json!({"provider": "anthropic", "enabled": false, "credentials": {"api_key": "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz"}}),
            json!({"provider": "anthropic", "enabled": false, "credentials": {"api_key": "sk-ant-***"}}),
        ),
        (
            json!({"provider": "azure", "credentials": {
                "api_key": "0123456789abcdef0123456789abcdef",
                "endpoint": "https://acme.openai.azure.com/",
                "deployment": "gpt-4o-prod",
                "api_version": "2024-10-21"}}),
            json!({"provider": "azure", "enabled": true, "credentials": {
                "api_key": "***",
                "endpoint": "https://acme.openai.azure.com",
                "deployment": "gpt-4o-prod",
                "api_version": "2024-10-21"}}),
        ),
        (
            json!({"provider": "amazon-bedrock", "credentials": {
                "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "region": "us-east-1"}}),
            json!({"provider": "amazon-bedrock", "enabled": true, "credentials": {
                "access_key_id": "***",
                "secret_access_key": "***",
                "region": "us-east-1"}}),
        ),
        (
            json!({"provider": "google-vertex", "credentials": {
                "service_account_json": {"type": "service_account", "client_email": "svc@acme.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"},
                "project_id": "acme-prod",
                "location": "europe-west4"}}),
            json!({"provider": "google-vertex", "enabled": true, "credentials": {
                "service_account_json": "***",
                "project_id": "acme-prod",
                "location": "europe-west4"}}),
        ),
        (
            json!({"provider": "xai", "credentials": {"api_key": "xai-0123456789abcdefghijklmnopqrstuvwxyz"}}),
            json!({"provider": "xai", "enabled": true, "credentials": {"api_key": "xai-***"}}),
        ),
    ];
    for (request, expected) in &cases {
        let r = create(&svc, &admin, request.clone()).await;
        assert_eq!(r.status, 201, "{request} → {}", r.text);
        assert_eq!(&r.body, expected);
    }
    let r = svc.call("GET", BASE, &admin, None).await;
    assert_eq!(r.status, 200);
    let listed = r.body.as_array().unwrap();
    assert_eq!(listed.len(), cases.len());
    for (_, expected) in &cases {
        assert!(listed.contains(expected), "{expected} not listed");
    }
    for secret in [
        "EXAMPLEKEY",
        "PRIVATE KEY",
        "0123456789abcdef0123",
        "abcdefghijklmnop",
    ] {
        assert!(!r.text.contains(secret), "{secret} leaked");
        assert_absent(secret, svc.logs().as_bytes(), "the service log");
    }

    // One provider by name, in this surface's spelling.
    let r = svc
        .call("GET", &format!("{BASE}/google"), &admin, None)
        .await;
    assert_eq!((r.status, &r.body), (200, &cases[0].1));

    // `null` removes an optional field; a secret sent back as shown keeps the stored one.
    let r = put(
        &svc,
        &admin,
        "azure",
        json!({"credentials": {"api_key": "***", "api_version": null}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["credentials"].get("api_version"), None);
    assert_eq!(r.body["credentials"]["api_key"], "***");
    assert_eq!(r.body["credentials"]["deployment"], "gpt-4o-prod");
}

async fn bad_requests_are_refused_clearly(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = admin_of(&svc, "acme");
    // A provider that is not one of this API's, in the path: no such resource.
    for provider in ["gemini", "ollama", "nope"] {
        let r = put(&svc, &admin, provider, json!({"enabled": true})).await;
        assert_eq!(r.status, 404, "{provider}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "NOT_FOUND");
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unknown provider"));
    }
    // In a body: 400 naming the field.
    let cases = [
        (
            json!({"provider": "gemini", "credentials": {"api_key": OPENAI_KEY}}),
            "provider",
        ),
        (
            json!({"provider": "azure", "credentials": {"api_key": OPENAI_KEY}}),
            "endpoint",
        ),
        (json!({"provider": "openai", "credentials": {}}), "api_key"),
        (
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY, "apikey": "sk-typo"}}),
            "credentials.apikey",
        ),
        (
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY, "organization": {"x": 1}}}),
            "credentials.organization",
        ),
        (
            json!({"provider": "openai", "credentials": {"api_key": 42}}),
            "credentials.api_key",
        ),
        (
            json!({"provider": "openai", "credentials": {"api_key": "sk-***"}}),
            "api_key",
        ),
        (
            json!({"provider": "azure", "credentials": {"api_key": OPENAI_KEY, "endpoint": "ftp://x"}}),
            "endpoint",
        ),
        (json!({"provider": "openai", "enabled": "yes"}), "enabled"),
    ];
    for (request, field) in cases {
        let r = create(&svc, &admin, request.clone()).await;
        assert_eq!(r.status, 400, "{request} → {}", r.text);
        assert_eq!(r.body["error"]["code"], "BAD_REQUEST", "{}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{request} → {}", r.text);
        assert!(r.body["error"]["message"].is_string());
        assert!(!r.text.contains("sk-typo"), "{}", r.text);
    }
    assert_eq!(svc.call("GET", BASE, &admin, None).await.body, json!([]));

    // 409 when the provider is already configured.
    let body = json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}});
    assert_eq!(create(&svc, &admin, body.clone()).await.status, 201);
    let r = create(&svc, &admin, body).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "CONFLICT");
    // An update with an unknown field or a look-alike mask changes nothing.
    for (credentials, field) in [
        (json!({"apikey": "sk-typo"}), "credentials.apikey"),
        (json!({"api_key": "sk-zzz***"}), "api_key"),
    ] {
        let r = put(&svc, &admin, "openai", json!({"credentials": credentials})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{}", r.text);
    }
    let r = put(&svc, &admin, "openai", json!({"colour": "red"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "BAD_REQUEST");
    assert!(!svc.logs().contains("status=500"));
}

async fn delete_removes_a_provider(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = admin_of(&svc, "acme");
    create(
        &svc,
        &admin,
        json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
    )
    .await;
    create(
        &svc,
        &admin,
        json!({"provider": "xai", "credentials": {"api_key": "xai-0123456789abcdefghijklmnopqrstuvwxyz"}}),
    )
    .await;
    let r = svc
        .call("DELETE", &format!("{BASE}/openai"), &admin, None)
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    let r = svc.call("GET", BASE, &admin, None).await;
    assert_eq!(
        r.body,
        json!([{"provider": "xai", "enabled": true, "credentials": {"api_key": "xai-***"}}])
    );
    let r = svc
        .call("DELETE", &format!("{BASE}/openai"), &admin, None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["error"]["message"],
        "No configuration found for provider: openai"
    );
    // It may be created again.
    let r = create(
        &svc,
        &admin,
        json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
    )
    .await;
    assert_eq!(r.status, 201);
}

async fn authorization(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let openai = json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}});

    // No token.
    let r = svc.send("GET", BASE, None, None, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "UNAUTHORIZED", "{}", r.text);

    // A token without an `instance` claim: 403 whatever its roles.
    let no_instance = [
        svc.user("u1"),
        svc.token("root", "read write", &["superadmin"], None),
        svc.token("a", "read write", &["admin"], None),
    ];
    for token in &no_instance {
        for (method, path, body) in [
            ("GET", BASE.to_owned(), None),
            ("POST", BASE.to_owned(), Some(openai.clone())),
            ("GET", format!("{BASE}/openai"), None),
            (
                "PUT",
                format!("{BASE}/openai"),
                Some(json!({"enabled": false})),
            ),
            ("DELETE", format!("{BASE}/openai"), None),
        ] {
            let r = svc.call(method, &path, token, body).await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
            assert_eq!(
                r.body,
                json!({"error": {"code": "FORBIDDEN", "message": NO_INSTANCE}})
            );
        }
    }
    // An instance claim without an admin role is not enough.
    let plain_user = svc.token("u1", "read write", &[], Some("acme"));
    let r = create(&svc, &plain_user, openai.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "FORBIDDEN");
    let r = svc.call("GET", BASE, &plain_user, None).await;
    assert_eq!(r.status, 403);

    // A superadmin with an instance claim manages that instance, and its admin sees it.
    let root_acme = svc.token("root", "read write", &["superadmin"], Some("acme"));
    assert_eq!(create(&svc, &root_acme, openai.clone()).await.status, 201);
    let r = svc
        .call(
            "GET",
            &format!("{BASE}/openai"),
            &admin_of(&svc, "acme"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Another instance's admin sees and changes nothing of it.
    let beta = admin_of(&svc, "beta");
    assert_eq!(svc.call("GET", BASE, &beta, None).await.body, json!([]));
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"enabled": false}))),
        ("DELETE", None),
    ] {
        let r = svc
            .call(method, &format!("{BASE}/openai"), &beta, body)
            .await;
        assert_eq!(r.status, 404, "{method}: {}", r.text);
        assert_eq!(
            r.body["error"]["message"],
            "No configuration found for provider: openai"
        );
    }
    let r = svc
        .call(
            "GET",
            &format!("{BASE}/openai"),
            &admin_of(&svc, "acme"),
            None,
        )
        .await;
    assert_eq!(r.body["enabled"], true);
}

/// The mask sent back keeps the stored secret, and the stored secret still works: a connection
/// test of the instance's configuration (through the admin API, as this API has none) reaches
/// the fake provider with it.
async fn masked_credentials_keep_the_working_key(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = admin_of(&svc, "acme");
    let r = create(
        &svc,
        &admin,
        json!({"provider": "azure", "credentials": {
            "api_key": Behaviour::Valid.key(),
            "endpoint": fake.base_url("azure"),
            "deployment": AZURE_DEPLOYMENT,
            "api_version": "2024-10-21"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let shown = r.body.clone();
    assert_eq!(shown["credentials"]["api_key"], "***");

    // GET, then PUT the credentials back exactly as shown.
    let r = svc
        .call("GET", &format!("{BASE}/azure"), &admin, None)
        .await;
    assert_eq!(r.body, shown);
    let r = put(
        &svc,
        &admin,
        "azure",
        json!({"enabled": true, "credentials": shown["credentials"]}),
    )
    .await;
    assert_eq!((r.status, &r.body), (200, &shown), "{}", r.text);

    let r = test_instance(&svc, "acme").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["success"], true, "{}", r.text);
    assert_eq!(r.body["provider"], "azure");
    assert_eq!(r.body["message"], "Connection successful");

    // A new key set through this API is what is tested next.
    let r = put(
        &svc,
        &admin,
        "azure",
        json!({"credentials": {"api_key": PLANTED}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = test_instance(&svc, "acme").await;
    assert_eq!(
        (r.body["success"].clone(), r.body["failure"].clone()),
        (json!(false), json!("invalid_credentials")),
        "{}",
        r.text
    );
    assert_absent(PLANTED, r.text.as_bytes(), "the failed test's response");
    assert_absent(PLANTED, svc.logs().as_bytes(), "the service log");
    assert_absent(PLANTED, &svc.stored_bytes(), "the database");
}

/// A connection test of an instance's active configuration, through the admin API.
async fn test_instance(svc: &Service, instance: &str) -> Reply {
    let root = svc.token("root", "read write", &["superadmin"], None);
    svc.send(
        "POST",
        "/llm-config/test-connection",
        Some(&root),
        None,
        &[("X-Instance-Id", instance)],
    )
    .await
}

async fn planted_key_never_leaks(backend: Backend) {
    let fake = FakeProvider::start().await;
    let svc = start(backend, &fake).await;
    let admin = admin_of(&svc, "acme");
    let mut texts = Vec::new();
    let r = create(
        &svc,
        &admin,
        json!({"provider": "openai", "credentials": {"api_key": PLANTED, "organization": "org-acme"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    texts.push(r.text);
    let requests = [
        ("GET", BASE.to_owned(), None),
        ("GET", format!("{BASE}/openai"), None),
        (
            "PUT",
            format!("{BASE}/openai"),
            Some(json!({"credentials": {"api_key": PLANTED}})),
        ),
        (
            "PUT",
            format!("{BASE}/{PLANTED}"),
            Some(json!({"enabled": true})),
        ),
        (
            "POST",
            BASE.to_owned(),
            Some(json!({"provider": PLANTED, "credentials": {}})),
        ),
        (
            "POST",
            BASE.to_owned(),
            Some(json!({"provider": "xai", "credentials": {PLANTED: PLANTED}})),
        ),
        (
            "POST",
            BASE.to_owned(),
            Some(json!({"provider": "xai", "enabled": PLANTED, "credentials": {}})),
        ),
        (
            "PUT",
            format!("{BASE}/openai"),
            Some(json!({"credentials": {"api_key": PLANTED, "organization": {"k": PLANTED}}})),
        ),
        ("GET", format!("{BASE}/openai/{PLANTED}"), None),
        ("DELETE", format!("{BASE}/openai"), None),
    ];
    for (method, path, body) in requests {
        let r = svc.call(method, &path, &admin, body).await;
        assert!(r.status < 500, "{method}: {}", r.text);
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
