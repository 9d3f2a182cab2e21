//! Black-box: inputs no store can keep, or that try to exhaust the parser, are refused with
//! the surface's own 4xx on both stores — never a 500.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};

use support::{on_both_stores, Backend, Service};

on_both_stores!(hostile_inputs_are_client_errors);

fn deeply_nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

async fn hostile_inputs_are_client_errors(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let user = svc.user("hostile");
    let admin = svc.token("ops", "", &["admin"], Some("acme"));
    let root = svc.token("root", "", &["superadmin"], None);
    let cases: Vec<(&str, &str, &str, Value)> = vec![
        (
            "PUT",
            "/api/settings",
            user.as_str(),
            json!({"general": {"theme": "da\u{0}rk"}}),
        ),
        (
            "PUT",
            "/api/settings",
            user.as_str(),
            json!({"custom": {"k\u{0}ey": 1}}),
        ),
        (
            "POST",
            "/users/me/llm-settings",
            user.as_str(),
            json!({"provider": "openai", "api_key": "sk-abc\u{0}0123456789abcdef", "model": "gpt-4o"}),
        ),
        (
            "POST",
            "/users/me/llm-settings",
            user.as_str(),
            json!({"provider": "openai\u{0}", "api_key": "sk-0123456789abcdef0123"}),
        ),
        (
            "POST",
            "/users/me/llm-settings",
            user.as_str(),
            json!({"provider": "openai", "api_key": "sk-0123456789abcdef0123", "model": "gpt\u{0}4o"}),
        ),
        (
            "PUT",
            "/v1/llm-provider/openai",
            admin.as_str(),
            json!({"credentials": {"organization": "org\u{0}1"}}),
        ),
        (
            "POST",
            "/v1/llm-provider",
            admin.as_str(),
            json!({"provider": "openai", "credentials": {"api_key": "sk-0123456789abcdef0123", "organization": "org\u{0}1"}}),
        ),
        (
            "POST",
            "/v1/llm-provider",
            admin.as_str(),
            json!({"provider": "google-vertex", "credentials": {"service_account_json": "{\"type\": \"service_account\"}\u{0}", "project_id": "p"}}),
        ),
        (
            "POST",
            "/api/v1/settings/task-assignments",
            root.as_str(),
            json!({"assignments": [{"task": "sum\u{0}", "provider": "openai", "model": "gpt-4o"}]}),
        ),
    ];
    for (method, path, token, body) in cases {
        let r = svc.call(method, path, token, Some(body.clone())).await;
        assert!(
            (400..500).contains(&r.status),
            "{method} {path} {body}: {} {}",
            r.status,
            r.text
        );
    }
    // Parser exhaustion: deep nesting and a wrong JSON type at the root.
    for raw in [
        deeply_nested(10_000),
        "[1, 2, 3]".to_owned(),
        "\"just a string\"".to_owned(),
    ] {
        let r = svc
            .send_raw(
                "POST",
                "/users/me/llm-settings",
                Some(&user),
                raw.clone(),
                "application/json",
            )
            .await;
        assert_eq!(r.status, 400, "{}: {}", &raw[..raw.len().min(20)], r.text);
    }
    let r = svc
        .send_raw(
            "PUT",
            "/api/settings",
            Some(&user),
            deeply_nested(10_000),
            "application/json",
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.text);
    assert!(
        !svc.logs().contains("status=500"),
        "no request ended in a 500"
    );
    let r = svc.call("GET", "/users/me/llm-settings", &user, None).await;
    assert_eq!(r.body, json!({"configs": []}), "nothing was stored");
}

on_both_stores!(a_key_sent_in_the_wrong_place_never_comes_back);

/// A request: method, path, token, JSON body (`Null` for none) and extra headers.
type Request<'a> = (&'a str, &'a str, &'a str, Value, Vec<(&'a str, String)>);

/// Keys pasted as provider names, field names, header values or values of another type are
/// refused without being repeated, on every surface.
async fn a_key_sent_in_the_wrong_place_never_comes_back(backend: Backend) {
    const PLANTED: &str = "sk-proj-PLANTEDsecretVALUE0123456789abcdef";
    let svc = Service::start(backend, &[]).await;
    let root = svc.token("root", "read write", &["superadmin"], None);
    let admin = svc.token("ops", "read write", &["admin"], Some("acme"));
    let me = svc.user("u1");
    let providers = format!("/api/v1/settings/providers/{PLANTED}");
    let config = format!("/v1/llm-provider/{PLANTED}");
    let requests: Vec<Request> = vec![
        (
            "POST",
            "/llm-config/",
            &root,
            json!({"provider": PLANTED, "model": "m", "api_key": PLANTED}),
            vec![],
        ),
        (
            "GET",
            "/llm-config/",
            &root,
            Value::Null,
            vec![("X-Instance-Id", PLANTED.repeat(8))],
        ),
        (
            "POST",
            &providers,
            &root,
            json!({"api_key": "sk-0123456789abcdef0123456789"}),
            vec![],
        ),
        (
            "POST",
            "/api/v1/settings/providers/openai",
            &root,
            json!({"api_key": PLANTED, PLANTED: 1}),
            vec![],
        ),
        (
            "POST",
            "/api/v1/settings/task-assignments",
            &root,
            json!({"assignments": [{"task": PLANTED, "provider": PLANTED, "model": "m"}]}),
            vec![],
        ),
        ("PUT", &config, &admin, json!({"enabled": true}), vec![]),
        (
            "POST",
            "/v1/llm-provider",
            &admin,
            json!({"provider": PLANTED, "credentials": {}}),
            vec![],
        ),
        (
            "POST",
            "/v1/llm-provider",
            &admin,
            json!({"provider": "openai", "credentials": {PLANTED: PLANTED}}),
            vec![],
        ),
        (
            "POST",
            "/v1/llm-provider",
            &admin,
            json!({"provider": "openai", "enabled": PLANTED, "credentials": {}}),
            vec![],
        ),
        (
            "PUT",
            "/api/settings",
            &me,
            json!({"ai": {"providers": {PLANTED: {"apiKey": PLANTED}}}}),
            vec![],
        ),
        (
            "PUT",
            "/api/settings",
            &me,
            json!({"ai": {"provider": PLANTED, "temperature": PLANTED}}),
            vec![],
        ),
        (
            "PUT",
            "/api/settings",
            &me,
            json!({"ai": {"providers": {"openai": {PLANTED: 1}}}}),
            vec![],
        ),
        (
            "POST",
            "/api/settings/test-provider",
            &me,
            json!({"apiKey": PLANTED, "provider": PLANTED}),
            vec![],
        ),
        (
            "POST",
            "/api/settings/test-provider",
            &me,
            json!({"apiKey": PLANTED, "baseUrl": PLANTED}),
            vec![],
        ),
    ];
    for (method, path, token, body, headers) in requests {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = (!body.is_null()).then_some(body);
        let r = svc
            .send(method, path, Some(token), body.as_ref(), &headers)
            .await;
        assert!(
            (400..500).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.text
        );
        assert!(!r.text.contains("PLANTED"), "{method} {path}: {}", r.text);
    }
    support::assert_absent("PLANTED", svc.logs().as_bytes(), "the service log");
}
