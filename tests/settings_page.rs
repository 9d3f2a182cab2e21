//! The settings page's framing policy and routes on the real binary (the browser tests in
//! `browser_ui.rs` drive the page itself).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Backend, Service};

#[tokio::test]
async fn the_page_refuses_framing_unless_the_operator_lists_origins() {
    let svc = Service::start(Backend::Sqlite, &[]).await;
    let r = svc.send("GET", "/settings/", None, None, &[]).await;
    assert_eq!(r.status, 200);
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");

    let svc = Service::start(
        Backend::Sqlite,
        &[(
            "LLM_SETTINGS_FRAME_ANCESTORS",
            "https://app.example.com, http://localhost:3000",
        )],
    )
    .await;
    let r = svc.send("GET", "/settings/app.js", None, None, &[]).await;
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.ends_with("frame-ancestors https://app.example.com http://localhost:3000"),
        "{csp}"
    );
    assert!(r.headers.get("x-frame-options").is_none());
}

#[tokio::test]
async fn the_root_leads_to_the_page_and_unknown_files_are_absent() {
    let svc = Service::start(Backend::Sqlite, &[]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/settings"] {
        let r = client
            .get(format!("{}{path}", svc.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{path}");
        assert_eq!(r.headers()["location"], "/settings/");
    }
    let r = svc
        .send("GET", "/settings/SERVING.md", None, None, &[])
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn a_malformed_origin_list_stops_the_start() {
    let data = tempfile::tempdir().unwrap();
    let mut env = Service::base_env(Backend::Sqlite, data.path(), None);
    env.push((
        "LLM_SETTINGS_FRAME_ANCESTORS".into(),
        "https://app.example.com/path".into(),
    ));
    let out = Service::command(&env).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LLM_SETTINGS_FRAME_ANCESTORS"), "{err}");
}
