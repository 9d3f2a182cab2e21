//! Black-box: what every surface does with a request before any rule of the product — bodies
//! that are exactly one JSON document declared as JSON with exact numbers, a deadline for slow
//! clients and a bound on connections, tokens (audience arrays, the leeway setting, reasons),
//! request ids, and the `token` command run away from the service's data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use llm_settings_http::{Audience, Claims, TokenIssuer};
use support::{on_both_stores, Backend, Service, JWT_SECRET};

on_both_stores!(
    bodies_are_one_json_document_declared_as_json,
    numbers_are_kept_exactly_or_refused,
    slow_clients_are_cut_off_while_others_are_served,
    audience_arrays_and_the_leeway_setting,
    token_command_away_from_the_data_directory,
);

const OPENAI_KEY: &str = "sk-proj-transport0123456789abcdefghij";

/// One JSON-taking operation of each surface, with a valid body and a token that may call it.
fn operations(svc: &Service) -> Vec<(&'static str, &'static str, String, Value)> {
    let user = svc.user("t-user");
    let root = svc.token("t-root", "read write", &["superadmin"], None);
    let admin = svc.token("t-admin", "read write", &["admin"], Some("acme"));
    vec![
        (
            "POST",
            "/users/me/llm-settings",
            user.clone(),
            json!({"provider": "openai", "api_key": OPENAI_KEY}),
        ),
        (
            "POST",
            "/llm-config/",
            root.clone(),
            json!({"provider": "openai", "model": "gpt-4o", "api_key": OPENAI_KEY}),
        ),
        (
            "POST",
            "/api/v1/settings/providers/openai",
            root,
            json!({"api_key": OPENAI_KEY}),
        ),
        (
            "POST",
            "/v1/llm-provider",
            admin,
            json!({"provider": "openai", "credentials": {"api_key": OPENAI_KEY}}),
        ),
        (
            "PUT",
            "/api/settings",
            user,
            json!({"general": {"theme": "dark"}}),
        ),
    ]
}

/// Whether a reply is a body error in its surface's shape.
fn is_body_error(path: &str, status: u16, body: &Value) -> bool {
    if path.starts_with("/api/v1/settings") {
        return status == 422 && body["detail"][0]["loc"] == json!(["body"]);
    }
    status == 400
        && match path {
            "/v1/llm-provider" => body["error"]["code"] == "BAD_REQUEST",
            "/api/settings" => body["ok"] == false,
            _ => body["error_code"] == "validation_error",
        }
}

async fn bodies_are_one_json_document_declared_as_json(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    for (method, path, token, body) in operations(&svc) {
        let one = body.to_string();
        for extra in [
            one.clone(),
            " garbage".to_owned(),
            "\0".to_owned(),
            "]".to_owned(),
        ] {
            let r = svc
                .send_raw(
                    method,
                    path,
                    Some(&token),
                    format!("{one}{extra}"),
                    "application/json",
                )
                .await;
            assert!(
                is_body_error(path, r.status, &r.body),
                "{method} {path} with data after the body: {} {}",
                r.status,
                r.text
            );
        }
        for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
            let r = svc
                .send_raw(method, path, Some(&token), one.clone(), content_type)
                .await;
            assert_eq!(
                r.status, 415,
                "{method} {path} as {content_type}: {}",
                r.text
            );
        }
        let r = svc.send(method, path, Some(&token), None, &[]).await;
        assert_eq!(
            r.status, 415,
            "{method} {path} without a content type: {}",
            r.text
        );
        let r = svc
            .send_without_content_type(method, path, &token, one.clone())
            .await;
        assert_eq!(
            r.status, 415,
            "{method} {path} without a content type: {}",
            r.text
        );
        let r = svc
            .send_raw(
                method,
                path,
                Some(&token),
                one.clone(),
                "application/merge-patch+json",
            )
            .await;
        assert!(
            (200..300).contains(&r.status),
            "{method} {path} as +json: {}",
            r.text
        );
    }
    // The shapes, exactly, on two surfaces.
    let user = svc.user("t-user");
    let r = svc
        .send_raw(
            "PUT",
            "/api/settings",
            Some(&user),
            "{}{}".into(),
            "application/json",
        )
        .await;
    assert_eq!(
        r.body,
        json!({"ok": false, "error": "the request body must be one JSON value with nothing after it"})
    );
    let r = svc
        .send_raw(
            "PUT",
            "/api/settings",
            Some(&user),
            "{}".into(),
            "text/plain",
        )
        .await;
    assert_eq!(r.body["ok"], false, "{}", r.text);
    assert!(!svc.logs().contains("status=500"));
}

async fn numbers_are_kept_exactly_or_refused(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let me = svc.user("numbers");
    let before = svc.call("GET", "/api/settings", &me, None).await.body;
    for (body, field) in [
        (
            r#"{"ai": {"maxTokens": 18446744073709551616}}"#,
            "ai.maxTokens",
        ),
        (r#"{"custom": {"n": -9223372036854775809}}"#, "custom.n"),
        (
            r#"{"ai": {"temperature": 0.70000000000000000001}}"#,
            "ai.temperature",
        ),
        (r#"{"custom": {"list": [1, 2, 1e400]}}"#, "custom.list[2]"),
    ] {
        let r = svc
            .send_raw(
                "PUT",
                "/api/settings",
                Some(&me),
                body.into(),
                "application/json",
            )
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        let error = r.body["error"].as_str().unwrap();
        assert!(error.starts_with(&format!("{field}:")), "{body}: {error}");
    }
    assert_eq!(
        svc.call("GET", "/api/settings", &me, None).await.body,
        before
    );
    // Numbers that fit are stored as sent.
    let exact =
        r#"{"custom": {"big": 18446744073709551615, "low": -9223372036854775808, "t": 0.1}}"#;
    let r = svc
        .send_raw(
            "PUT",
            "/api/settings",
            Some(&me),
            exact.into(),
            "application/json",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = svc.call("GET", "/api/settings", &me, None).await.text;
    for kept in ["18446744073709551615", "-9223372036854775808", "0.1"] {
        assert!(text.contains(kept), "{kept} in {text}");
    }
    // Every surface reads bodies the same way: the field is named in its shape.
    let r = svc
        .send_raw(
            "POST",
            "/api/v1/settings/task-assignments",
            Some(&svc.token("root", "read write", &["superadmin"], None)),
            r#"{"assignments": [{"task": "t", "provider": "openai", "model": "m", "n": 99999999999999999999}]}"#.into(),
            "application/json",
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "assignments", 0, "n"])
    );
    let r = svc
        .send_raw(
            "PATCH",
            "/users/me/llm-settings/1",
            Some(&me),
            r#"{"version": 18446744073709551616}"#.into(),
            "application/json",
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (400, json!("version")),
        "{}",
        r.text
    );
}

/// A client that sends its headers, then its body one byte at a time; returns how long the
/// service kept the connection open (`None`: still open after `give_up`).
async fn slow_body(address: &str, token: &str, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /users/me/llm-settings HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return Some(started.elapsed());
    }
    trickle(stream, started, give_up).await
}

/// A client that sends its request head one byte at a time.
async fn slow_head(address: &str, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let stream = TcpStream::connect(address).await.unwrap();
    trickle(stream, started, give_up).await
}

/// Sends one byte every 200 ms until the service answers, closes or `give_up` passes.
async fn trickle(mut stream: TcpStream, started: Instant, give_up: Duration) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    while started.elapsed() < give_up {
        if stream.write_all(b" ").await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {
                // An answer (408) before the close; wait for the close.
                let rest =
                    tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
                return matches!(rest, Ok(Ok(0)) | Ok(Err(_))).then(|| started.elapsed());
            }
            Err(_) => {}
        }
    }
    None
}

async fn slow_clients_are_cut_off_while_others_are_served(backend: Backend) {
    let svc = Service::start(
        backend,
        &[
            ("LLM_SETTINGS_REQUEST_TIMEOUT_MS", "1000"),
            ("LLM_SETTINGS_MAX_CONNECTIONS", "4"),
        ],
    )
    .await;
    let address = svc.base.trim_start_matches("http://").to_owned();
    let token = svc.user("slow");
    let give_up = Duration::from_secs(20);
    let mut slow = Vec::new();
    for i in 0..12 {
        let (address, token) = (address.clone(), token.clone());
        slow.push(tokio::spawn(async move {
            if i % 4 == 3 {
                slow_head(&address, give_up).await
            } else {
                slow_body(&address, &token, give_up).await
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Three times as many slow clients as connections: another client is still served.
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/users/me/llm-settings", svc.base))
        .bearer_auth(svc.user("patient"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "served after {:?}",
        started.elapsed()
    );
    for task in slow {
        let held = task.await.unwrap();
        let held = held.expect("a slow client was never cut off");
        assert!(
            held < Duration::from_secs(10),
            "a slow client held its connection {held:?}"
        );
    }
    assert!(!svc.logs().contains("status=500"));
}

fn mint(claims: &Claims) -> String {
    TokenIssuer::hs256(JWT_SECRET.as_bytes())
        .mint(claims)
        .unwrap()
}

fn claims(aud: Option<Audience>, exp_offset: i64) -> Claims {
    Claims {
        sub: "aud-user".into(),
        scope: "read write".into(),
        roles: vec![],
        instance: None,
        exp: (time::OffsetDateTime::now_utc().unix_timestamp() + exp_offset) as u64,
        nbf: None,
        iss: Some("https://idp.example".into()),
        aud,
    }
}

async fn audience_arrays_and_the_leeway_setting(backend: Backend) {
    let svc = Service::start(
        backend,
        &[
            ("LLM_SETTINGS_JWT_ISSUER", "https://idp.example"),
            ("LLM_SETTINGS_JWT_AUDIENCE", "llm-settings"),
            ("LLM_SETTINGS_JWT_LEEWAY_SECS", "5"),
        ],
    )
    .await;
    let ours = || Some(Audience::One("llm-settings".into()));
    let get = |token: String| {
        let svc = &svc;
        async move {
            svc.send("GET", "/users/me/llm-settings", Some(&token), None, &[])
                .await
        }
    };
    let many = Audience::Many(vec!["another-api".into(), "llm-settings".into()]);
    assert_eq!(
        get(mint(&claims(Some(many), 600))).await.status,
        200,
        "an array holding the audience"
    );
    for (aud, reason) in [
        (
            Some(Audience::Many(vec!["another-api".into()])),
            "wrong audience",
        ),
        (Some(Audience::One("another-api".into())), "wrong audience"),
        (None, "lacks the `aud` claim"),
    ] {
        let r = get(mint(&claims(aud, 600))).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(
            r.body["detail"].as_str().unwrap().contains(reason),
            "{}",
            r.text
        );
        assert!(r.headers.contains_key("www-authenticate"));
    }
    // Two seconds late is within the 5 s leeway; twenty is not (the default 30 s would be).
    assert_eq!(get(mint(&claims(ours(), -2))).await.status, 200);
    let r = get(mint(&claims(ours(), -20))).await;
    assert_eq!(
        (r.status, r.body["detail"].clone()),
        (401, json!("the token has expired"))
    );
    let mut wrong_issuer = claims(ours(), 600);
    wrong_issuer.iss = Some("https://elsewhere.example".into());
    let r = get(mint(&wrong_issuer)).await;
    assert!(
        r.body["detail"].as_str().unwrap().contains("wrong issuer"),
        "{}",
        r.text
    );
    let forged = TokenIssuer::hs256(b"another-secret-another-secret-another")
        .mint(&claims(ours(), 600))
        .unwrap();
    let r = get(forged).await;
    assert_eq!(r.body["detail"], "the token signature is invalid");
    // alg=none: {"alg":"none"} . {"sub":"x","exp":9999999999} . no signature
    let r = get("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.".into()).await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["detail"].as_str().unwrap().contains("algorithm"),
        "{}",
        r.text
    );
    // Request ids are echoed when tame, made otherwise.
    let r = svc
        .send(
            "GET",
            "/healthz",
            None,
            None,
            &[("x-request-id", "abc-123")],
        )
        .await;
    assert_eq!(r.headers.get("x-request-id").unwrap(), "abc-123");
    let r = svc
        .send("GET", "/nowhere", None, None, &[("x-request-id", "bad id")])
        .await;
    assert_eq!(r.headers.get("x-request-id").unwrap().len(), 24);
}

/// Runs `llm-settings token --sub me` in `cwd` with `env` only.
fn token_command(cwd: &std::path::Path, env: &[(String, String)]) -> std::process::Output {
    Service::command(env)
        .args(["token", "--sub", "me"])
        .current_dir(cwd)
        .output()
        .unwrap()
}

async fn token_command_away_from_the_data_directory(backend: Backend) {
    // On SQLite the service generates its token secret into its data directory.
    let generated: &[(&str, &str)] = match backend {
        Backend::Sqlite => &[("LLM_SETTINGS_JWT_SECRET", "")],
        Backend::Postgres => &[],
    };
    let svc = Service::start(backend, generated).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let database = match &svc.database {
        Some(db) => db.url().to_owned(),
        None => format!(
            "sqlite://{}",
            svc.data_dir.path().join("llm-settings.sqlite3").display()
        ),
    };
    let path = ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
    let url = ("DATABASE_URL".to_owned(), database);

    // Nothing configured and no secret where it looks: a refusal naming that directory, and
    // nothing created there.
    let out = token_command(elsewhere.path(), std::slice::from_ref(&path));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let looked = elsewhere.path().join("data");
    assert!(stderr.contains(&looked.display().to_string()), "{stderr}");
    assert!(
        !looked.exists(),
        "the token command created {}",
        looked.display()
    );
    let out = token_command(elsewhere.path(), &[path.clone(), url.clone()]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The configured secret (or the service's data directory) gives a token the service takes.
    let configured = match backend {
        Backend::Sqlite => (
            "LLM_SETTINGS_DATA_DIR".to_owned(),
            svc.data_dir.path().display().to_string(),
        ),
        Backend::Postgres => ("LLM_SETTINGS_JWT_SECRET".to_owned(), JWT_SECRET.to_owned()),
    };
    let out = token_command(elsewhere.path(), &[path, url, configured]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = svc
        .send("GET", "/users/me/llm-settings", Some(&token), None, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}
