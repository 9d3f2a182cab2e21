//! Black-box tests of how the binary starts, refuses to start, rotates keys and stops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use serde_json::json;

use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{Backend, Service, MASTER_KEYS};

const BASE: &str = "/users/me/llm-settings";

#[tokio::test]
async fn the_embedded_default_generates_owner_only_secrets() {
    let svc = Service::start(Backend::Sqlite, &[("LLM_SETTINGS_JWT_SECRET", "")]).await;
    for file in ["master.keys", "jwt.secret"] {
        let path = svc.data_dir.path().join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    assert!(
        svc.logs().contains("llm-settings token --sub"),
        "start-up explains how to mint a token"
    );
    let r = svc.send("GET", "/healthz", None, None, &[]).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    let r = svc.send("GET", "/openapi.json", None, None, &[]).await;
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../openapi/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        r.body, committed,
        "the served document is the committed one"
    );
    let r = svc.send("GET", "/docs", None, None, &[]).await;
    assert!(r.status == 200 && r.text.contains("<html"));
}

#[tokio::test]
async fn the_token_command_mints_a_token_the_service_accepts() {
    let svc = Service::start(Backend::Sqlite, &[]).await;
    let env = Service::base_env(Backend::Sqlite, svc.data_dir.path(), None);
    let out = Service::command(&env)
        .args([
            "token",
            "--sub",
            "cli-user",
            "--scope",
            "read write",
            "--ttl",
            "120",
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "only the token is printed");
    let r = svc.call("GET", BASE, token, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn postgres_without_a_master_key_refuses_to_start() {
    let db = llm_settings_testkit::postgres::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = Service::base_env(Backend::Postgres, dir.path(), Some(&db));
    env.retain(|(k, _)| k != "LLM_SETTINGS_MASTER_KEYS");
    let out = Service::command(&env)
        .args(["serve", "--migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LLM_SETTINGS_MASTER_KEYS is not set"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("master.keys").exists(),
        "no key is invented for Postgres"
    );
}

async fn wrong_master_key_refuses(backend: Backend) {
    let svc = Service::start(backend, &[]).await;
    let me = svc.user("u");
    let r = svc
        .call(
            "POST",
            BASE,
            &me,
            Some(json!({"provider": "openai", "api_key": "sk-0123456789abcdefghijklmnop"})),
        )
        .await;
    assert_eq!(r.status, 201);
    // Same key id, different key material.
    let wrong = "bb1://////////////////////////////////////////8=";
    let wrong = if backend == Backend::Sqlite {
        wrong.replace("bb1", "k1")
    } else {
        wrong.to_owned()
    };
    let logs = svc
        .restart(&[("LLM_SETTINGS_MASTER_KEYS", &wrong)])
        .await
        .err()
        .expect("refused");
    assert!(logs.contains("wrong master key"), "{logs}");
}

#[tokio::test]
async fn a_wrong_master_key_stops_the_sqlite_service_at_start() {
    wrong_master_key_refuses(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_wrong_master_key_stops_the_postgres_service_at_start() {
    wrong_master_key_refuses(Backend::Postgres).await;
}

#[tokio::test]
async fn rotation_and_rewrap_lose_nothing() {
    let fake = FakeProvider::start().await;
    let allow = fake.allow_hosts();
    let svc = Service::start(
        Backend::Postgres,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &allow)],
    )
    .await;
    let users: Vec<String> = (0..5).map(|i| format!("user-{i}")).collect();
    for u in &users {
        let r = svc
            .call(
                "POST",
                BASE,
                &svc.user(u),
                Some(json!({"provider": "deepseek_cloud", "api_key": Behaviour::Valid.key(), "base_url": fake.base_url("deepseek_cloud")})),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    // A new active key in front of the old one.
    let out = Service::command(&[])
        .args(["keys", "generate", "--id", "bb2"])
        .output()
        .unwrap();
    let new_key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(new_key.starts_with("bb2:"));
    let rotated = format!("{new_key},{MASTER_KEYS}");
    let svc = svc
        .restart(&[
            ("LLM_SETTINGS_MASTER_KEYS", &rotated),
            ("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &allow),
        ])
        .await
        .unwrap();
    let mut env = Service::base_env(
        Backend::Postgres,
        svc.data_dir.path(),
        svc.database.as_ref(),
    );
    env.retain(|(k, _)| k != "LLM_SETTINGS_MASTER_KEYS");
    env.push(("LLM_SETTINGS_MASTER_KEYS".into(), rotated.clone()));
    let out = Service::command(&env)
        .args(["keys", "rewrap", "--batch", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("5 re-encrypted"), "{stderr}");
    // Only the new key is needed now, and every stored key still works.
    let svc = svc
        .restart(&[
            ("LLM_SETTINGS_MASTER_KEYS", &new_key),
            ("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &allow),
        ])
        .await
        .unwrap();
    for u in &users {
        let r = svc
            .call(
                "POST",
                &format!("{BASE}/test"),
                &svc.user(u),
                Some(json!({"provider": "deepseek_cloud"})),
            )
            .await;
        assert_eq!(r.body["success"], true, "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let fake = FakeProvider::start().await;
    let mut svc = Service::start(
        Backend::Sqlite,
        &[("LLM_SETTINGS_PROBE_ALLOW_HOSTS", &fake.allow_hosts())],
    )
    .await;
    let token = svc.user("slow");
    let body = json!({
        "provider": "deepseek_cloud",
        "api_key": Behaviour::Slow.key(),
        "base_url": fake.base_url("deepseek_cloud"),
    });
    let url = format!("{}{BASE}/test", svc.base);
    let in_flight = tokio::spawn(async move {
        let res = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json::<serde_json::Value>().await.unwrap(),
        )
    });
    // The fake holds the probe for several seconds; stop the service meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(!in_flight.is_finished());
    let exited_cleanly = tokio::task::block_in_place(|| svc.terminate());
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the in-flight request was answered: {body}");
    assert_eq!(body["success"], true, "{body}");
    assert!(
        exited_cleanly,
        "exit status 0 after SIGTERM:\n{}",
        svc.logs()
    );
}

#[tokio::test]
async fn sigterm_stops_the_service_cleanly() {
    let mut svc = Service::start(Backend::Sqlite, &[]).await;
    assert!(
        svc.terminate(),
        "exit status 0 after SIGTERM:\n{}",
        svc.logs()
    );
}
