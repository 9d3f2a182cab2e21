//! Black-box tests of what the binary writes and how its command line behaves: plain logs to a
//! pipe, the one start-up line, refused tokens and request ids in the log, fatal errors as
//! JSON, `serve --bind`, `openapi` into a closed pipe, `token` and SQLite paths.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::process::{Output, Stdio};

use serde_json::Value;

use llm_settings_http::{Claims, TokenIssuer};
use support::{assert_absent, Backend, Service, JWT_SECRET};

const BASE: &str = "/users/me/llm-settings";

/// The log lines naming where the service listens.
fn start_up_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("listening on http://"))
        .collect()
}

#[tokio::test]
async fn logs_to_a_pipe_are_plain_with_one_start_up_line() {
    let svc = Service::start(
        Backend::Sqlite,
        &[("LLM_SETTINGS_PROVIDERS", "openai,ollama")],
    )
    .await;
    let forged = TokenIssuer::hs256(b"some-other-secret-0123456789abcdef")
        .mint(&Claims {
            sub: "u".into(),
            scope: "read".into(),
            roles: vec![],
            instance: None,
            exp: time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 600,
            nbf: None,
            iss: None,
            aud: None,
        })
        .unwrap();
    for token in [Some(forged.as_str()), None] {
        let r = svc.send("GET", BASE, token, None, &[]).await;
        assert_eq!(r.status, 401);
    }
    svc.logged("reason=bad_signature").await;
    let logs = svc.logged("reason=missing").await;
    assert!(
        !logs.contains('\u{1b}'),
        "escape codes in piped logs:\n{logs}"
    );
    let lines = start_up_lines(&logs);
    assert_eq!(lines.len(), 1, "{logs}");
    let data_dir = svc.data_dir.path().display().to_string();
    for expected in [
        "store=sqlite".to_owned(),
        format!("store_location={data_dir}/llm-settings.sqlite3"),
        format!("data_dir={data_dir}"),
        format!("master_keys=generated ({data_dir}/master.keys)"),
        "token_key=env (LLM_SETTINGS_JWT_SECRET)".to_owned(),
        "bind=127.0.0.1:0".to_owned(),
        "providers=openai,ollama".to_owned(),
    ] {
        assert!(lines[0].contains(&expected), "{expected} in {}", lines[0]);
    }
    assert!(
        !logs.contains("mint a token"),
        "no hint when the token secret is configured"
    );
    for reason in ["reason=bad_signature", "reason=missing"] {
        assert!(logs.contains(reason), "{reason} in\n{logs}");
    }
    assert_absent(&forged, logs.as_bytes(), "the log");
    assert_absent(JWT_SECRET, logs.as_bytes(), "the log");

    let svc = svc.restart(&[]).await.unwrap();
    let line = start_up_lines(&svc.logged("listening on").await)[0].to_owned();
    let data_dir = svc.data_dir.path().display().to_string();
    assert!(
        line.contains(&format!("master_keys=file ({data_dir}/master.keys)")),
        "{line}"
    );
}

#[tokio::test]
async fn the_postgres_start_up_line_hides_the_password() {
    let db = llm_settings_testkit::postgres::TestDatabase::create().await;
    let mut url = url::Url::parse(db.url()).unwrap();
    let password = match url.password() {
        Some(p) => p.to_owned(),
        None => {
            url.set_password(Some("planted-db-password-42")).unwrap();
            "planted-db-password-42".to_owned()
        }
    };
    let svc = Service::start(Backend::Postgres, &[("DATABASE_URL", url.as_str())]).await;
    let logs = svc.logged("listening on").await;
    assert_absent(&password, logs.as_bytes(), "the log");
    let line = start_up_lines(&logs)[0].to_owned();
    url.set_password(None).unwrap();
    for expected in [
        "store=postgres".to_owned(),
        format!("store_location={url}"),
        "master_keys=env (LLM_SETTINGS_MASTER_KEYS)".to_owned(),
    ] {
        assert!(line.contains(&expected), "{expected} in {line}");
    }
}

#[tokio::test]
async fn request_ids_are_kept_only_when_tame() {
    let svc = Service::start(Backend::Sqlite, &[]).await;
    let long = "x".repeat(65);
    let longest = "y".repeat(64);
    for (sent, kept) in [
        ("client-id_1.2", true),
        (longest.as_str(), true),
        ("has space", false),
        ("a:b", false),
        (long.as_str(), false),
        ("<script>", false),
    ] {
        let r = svc
            .send("GET", "/healthz", None, None, &[("x-request-id", sent)])
            .await;
        let echoed = r.headers["x-request-id"].to_str().unwrap().to_owned();
        if kept {
            assert_eq!(echoed, sent);
        } else {
            assert_ne!(echoed, sent);
            assert!(
                echoed.len() == 24 && echoed.bytes().all(|b| b.is_ascii_hexdigit()),
                "{echoed}"
            );
        }
    }
    let r = svc.send("GET", "/healthz", None, None, &[]).await;
    assert_eq!(
        r.headers["x-request-id"].len(),
        24,
        "one is made when none is sent"
    );
    // Lines arrive in order: once the last request's id is logged, every earlier line is.
    svc.send(
        "GET",
        "/healthz",
        None,
        None,
        &[("x-request-id", "last-one")],
    )
    .await;
    let logs = svc.logged("request_id=last-one").await;
    assert!(logs.contains("request_id=client-id_1.2"), "{logs}");
    assert!(!logs.contains("<script>") && !logs.contains("a:b"));
}

#[tokio::test]
async fn json_logs_are_json_lines() {
    let svc = Service::start(Backend::Sqlite, &[("LLM_SETTINGS_LOG_FORMAT", "json")]).await;
    let r = svc.send("GET", BASE, Some("not-a-token"), None, &[]).await;
    assert_eq!(r.status, 401);
    let logs = svc.logged("\"reason\":\"invalid\"").await;
    assert!(!logs.contains('\u{1b}'));
    for line in logs.lines() {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
}

/// Runs the binary with the harness's environment for a fresh data directory plus `env`.
fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut all = Service::base_env(Backend::Sqlite, dir, None);
    for (k, v) in env {
        all.retain(|(name, _)| name != k);
        all.push(((*k).to_owned(), (*v).to_owned()));
    }
    Service::command(&all).args(args).output().unwrap()
}

#[test]
fn fatal_start_up_errors_are_json_when_json_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let bad_url = [("DATABASE_URL", "mysql://db/x")];
    let out = run(dir.path(), &bad_url, &["serve"]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stderr).unwrap();
    assert!(
        text.starts_with("llm-settings: DATABASE_URL must start with"),
        "{text}"
    );

    let json = [
        ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
        ("LLM_SETTINGS_LOG_FORMAT", "json"),
    ];
    let out = run(dir.path(), &json, &["serve"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    let message = last["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("LLM_SETTINGS_MASTER_KEYS is not set"),
        "{message}"
    );
}

#[tokio::test]
async fn serve_listens_where_bind_says() {
    let svc = Service::start_with_args(
        Backend::Sqlite,
        &[("LLM_SETTINGS_BIND", "not-an-address")],
        &["--bind", "127.0.0.1:0"],
    )
    .await;
    let r = svc.send("GET", "/healthz", None, None, &[]).await;
    assert_eq!(r.status, 200);
    svc.logged("bind=127.0.0.1:0").await;
}

#[test]
fn openapi_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let env = Service::base_env(Backend::Sqlite, dir.path(), None);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Service::command(&env)
        .arg("openapi")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let script = format!(
        "set -o pipefail; '{}' openapi | head -1",
        env!("CARGO_BIN_EXE_llm-settings")
    );
    let mut child = std::process::Command::new("bash")
        .args(["-c", &script])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(first, "{\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_refuses_what_the_service_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    for (args, named) in [
        (vec!["--sub", ""], "--sub"),
        (vec!["--sub", "u", "--instance", "two words"], "--instance"),
        (vec!["--sub", "u", "--role", "root"], "unknown role"),
        (vec!["--sub", "u", "--scope", "read admin"], "unknown scope"),
    ] {
        let out = run(dir.path(), &[], &[&["token"], args.as_slice()].concat());
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "no token printed for {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{named} in {stderr}");
    }
}

#[test]
fn sqlite_directories_are_created_only_inside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_env = data.display().to_string();
    let outside = dir.path().join("missing").join("deeper");
    let url = format!("sqlite://{}/db.sqlite3", outside.display());
    let env = [
        ("LLM_SETTINGS_DATA_DIR", data_env.as_str()),
        ("DATABASE_URL", url.as_str()),
    ];
    let out = run(dir.path(), &env, &["migrate"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not exist and is outside"), "{stderr}");
    assert!(!dir.path().join("missing").exists(), "nothing was created");

    let inside = format!("sqlite://{}/nested/db.sqlite3", data.display());
    let env = [
        ("LLM_SETTINGS_DATA_DIR", data_env.as_str()),
        ("DATABASE_URL", inside.as_str()),
    ];
    let out = run(dir.path(), &env, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("nested").join("db.sqlite3").exists());
}

/// Runs `serve` on a terminal (util-linux `script` gives it one) with a bind address that
/// cannot work, so it logs its start (a generated key) and stops; returns what it wrote.
fn on_a_terminal(extra: &[(&str, &str)]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut env = Service::base_env(Backend::Sqlite, dir.path(), None);
    env.retain(|(k, _)| k != "LLM_SETTINGS_BIND");
    env.push(("LLM_SETTINGS_BIND".into(), "256.0.0.1:80".into()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let command = format!("'{}' serve", env!("CARGO_BIN_EXE_llm-settings"));
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let Some(coloured) = on_a_terminal(&[]) else {
        eprintln!("util-linux `script` is not installed; no terminal to test colour on");
        return;
    };
    assert!(
        coloured.contains("generated a new secret file"),
        "{coloured}"
    );
    assert!(
        coloured.contains("\u{1b}["),
        "colour on a terminal: {coloured}"
    );
    let plain = on_a_terminal(&[("NO_COLOR", "1")]).unwrap();
    assert!(plain.contains("generated a new secret file"), "{plain}");
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain}");
}
