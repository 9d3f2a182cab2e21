//! The settings page (`/settings/`) and the embeddable `<llm-settings>` component in a real
//! headless Chromium, on the real binary with the local fake provider.
//!
//! This file starts the service, the fake provider and (for embedding) a host page on another
//! origin, mints the tokens, and runs `tests/browser/run.mjs` (playwright-core driving Debian's
//! Chromium), which does the clicking and checking. Chromium and the npm packages are set up
//! by `scripts/test`; without them these tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use llm_settings_fake_provider::{Behaviour, FakeProvider};
use support::{assert_absent, Backend, Service};

/// The instance the admin token manages and the user token belongs to.
const INSTANCE: &str = "acme";
/// A planted key the provider refuses (the fake provider echoes refused keys in its errors).
const REFUSED_KEY: &str = "sk-proj-PLANTEDbrowserKey0123456789abcdefREFUSED";

/// One Chromium at a time: the machines running these tests have two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where node, Chromium and the browser program are.
struct Tools {
    node: PathBuf,
    chromium: PathBuf,
    program: PathBuf,
}

fn tools() -> Tools {
    const SETUP: &str = "run scripts/test from the repository root: it installs Chromium and \
                         the npm packages of tests/browser, then runs every test";
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let chromium = std::env::var_os("LLM_SETTINGS_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "Chromium is not installed at {} (or set LLM_SETTINGS_CHROMIUM): {SETUP}",
        chromium.display()
    );
    let node = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|p| p.join("node"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("node is not on PATH: {SETUP}"));
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/browser/node_modules is missing: {SETUP}"
    );
    Tools {
        node,
        chromium,
        program: dir.join("run.mjs"),
    }
}

/// Runs one scenario of the browser program; fails with everything it printed.
async fn run_browser(tools: &Tools, scenario: &str, mut config: Value, service: &Service) {
    let screenshots = std::env::var_os("LLM_SETTINGS_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    );
    config["scenario"] = json!(scenario);
    config["chromium"] = json!(tools.chromium);
    config["screenshots"] = json!(screenshots);
    let mut cmd = Command::new(&tools.node);
    cmd.arg(&tools.program)
        .env("LLM_SETTINGS_BROWSER_TEST", config.to_string())
        .env("NO_COLOR", "1");
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs the browser program");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser scenario {scenario} failed:\n{stdout}\n{stderr}\n--- service log (tail) ---\n{}",
        tail(&service.logs(), 40)
    );
    let logs = service.logs();
    assert_absent(REFUSED_KEY, logs.as_bytes(), "the service log");
    assert_absent(&Behaviour::Valid.key(), logs.as_bytes(), "the service log");
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The service on SQLite with probes allowed to reach the fake provider.
async fn start(fake: &FakeProvider, extra: &[(&str, &str)]) -> Service {
    let allow = fake.allow_hosts();
    let mut env = vec![("LLM_SETTINGS_PROBE_ALLOW_HOSTS", allow.as_str())];
    env.extend_from_slice(extra);
    Service::start(Backend::Sqlite, &env).await
}

/// The tokens and keys every scenario gets.
fn config(svc: &Service, fake: &FakeProvider) -> Value {
    json!({
        "service": svc.base,
        "tokens": {
            "user": svc.token("browser-user", "read write", &[], Some(INSTANCE)),
            "admin": svc.token("browser-admin", "read write", &["admin"], Some(INSTANCE)),
            "superadmin": svc.token("browser-root", "read write", &["superadmin"], None),
        },
        "fake": {
            "openai": fake.base_url("openai"),
            "anthropic": fake.base_url("anthropic"),
        },
        "keys": {
            "valid": Behaviour::Valid.key(),
            "refused": REFUSED_KEY,
        },
    })
}

/// The instance's OpenAI key, saved through the admin API the way an operator would.
async fn seed_instance_key(svc: &Service, fake: &FakeProvider) {
    let root = svc.token("operator", "read write", &["superadmin"], None);
    let r = svc
        .send(
            "POST",
            "/llm-config/",
            Some(&root),
            Some(&json!({
                "provider": "openai",
                "model": "gpt-4o-mini",
                "api_key": Behaviour::Valid.key(),
                "base_url": fake.base_url("openai"),
            })),
            &[("X-Instance-Id", INSTANCE)],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// A page of another origin that embeds the component from the service named in `?svc=`.
struct HostPage {
    origin: String,
}

const HOST_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Host application</title></head>
<body>
<h1>Host application</h1>
<llm-settings></llm-settings>
<script type="module">
  const service = new URLSearchParams(location.search).get('svc');
  const element = document.querySelector('llm-settings');
  element.setAttribute('api-base', service);
  element.setAttribute('token', new URLSearchParams(location.hash.slice(1)).get('token'));
  await import(service + '/settings/llm-settings.js');
</script>
</body></html>"#;

impl HostPage {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request_line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let (status, body) = if request_line.starts_with("GET /host.html") {
                    ("200 OK", HOST_HTML)
                } else {
                    ("404 Not Found", "")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { origin }
    }
}

/// A user pastes keys, sees only masks, tests (OK and refused), sets the default, assigns a
/// task, deletes; calls use the organization's key, then the user's. Screenshots `user-*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_manages_keys_in_the_settings_page() {
    let tools = tools();
    let _one = BROWSER.lock().await;
    let fake = FakeProvider::start().await;
    let svc = start(&fake, &[]).await;
    seed_instance_key(&svc, &fake).await;
    run_browser(&tools, "user", config(&svc, &fake), &svc).await;
}

/// An admin edits the instance config (model, key, test) and its task assignments; a
/// superadmin saves a deployment key. Screenshots `admin-*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_edits_the_instance_config() {
    let tools = tools();
    let _one = BROWSER.lock().await;
    let fake = FakeProvider::start().await;
    let svc = start(&fake, &[]).await;
    seed_instance_key(&svc, &fake).await;
    run_browser(&tools, "admin", config(&svc, &fake), &svc).await;
}

/// `<llm-settings>` on a page of another origin works when the operator allows that origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_component_works_from_an_allowed_origin() {
    let tools = tools();
    let _one = BROWSER.lock().await;
    let host = HostPage::start();
    let fake = FakeProvider::start().await;
    let svc = start(
        &fake,
        &[("LLM_SETTINGS_CORS_ORIGINS", host.origin.as_str())],
    )
    .await;
    let mut cfg = config(&svc, &fake);
    cfg["host"] = json!(host.origin);
    run_browser(&tools, "embed", cfg, &svc).await;
}

/// Without `LLM_SETTINGS_CORS_ORIGINS` the browser refuses the API to another origin's page,
/// and the component says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_component_is_refused_without_cors() {
    let tools = tools();
    let _one = BROWSER.lock().await;
    let host = HostPage::start();
    let fake = FakeProvider::start().await;
    let svc = start(&fake, &[]).await;
    let mut cfg = config(&svc, &fake);
    cfg["host"] = json!(host.origin);
    cfg["refusing"] = json!(true);
    run_browser(&tools, "embed", cfg, &svc).await;
}

/// The page and its assets are served with the headers SERVING.md names; preflights from an
/// allowed origin are answered and others are not.
#[tokio::test]
async fn settings_page_is_served_with_strict_headers() {
    let fake = FakeProvider::start().await;
    let allowed = "http://127.0.0.1:9";
    let svc = start(&fake, &[("LLM_SETTINGS_CORS_ORIGINS", allowed)]).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let root = client.get(format!("{}/", svc.base)).send().await.unwrap();
    assert!(
        root.status().is_redirection(),
        "/ answers {}: the settings page is not served (crates/http/web/SERVING.md says how)",
        root.status()
    );
    assert_eq!(root.headers()["location"], "/settings/");

    let page = svc.send("GET", "/settings/", None, None, &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<llm-settings") || page.text.contains("app.js"));
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "CSP: {csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "CSP: {csp}"
    );
    assert!(csp.contains("frame-ancestors"), "CSP: {csp}");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");

    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("llm-settings.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("words.js", "text/javascript"),
        ("owner-view.js", "text/javascript"),
        ("provider-card.js", "text/javascript"),
        ("style.css", "text/css"),
        ("llm-settings.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let r = svc
            .send(
                "GET",
                &format!("/settings/{file}"),
                None,
                None,
                &[("Origin", "http://127.0.0.1:1")],
            )
            .await;
        assert_eq!(r.status, 200, "/settings/{file}");
        let ct = r.headers["content-type"].to_str().unwrap();
        assert!(ct.starts_with(kind), "/settings/{file} is {ct}");
        // Any page may load the component's modules (they hold no secret).
        assert_eq!(r.headers["access-control-allow-origin"], "*", "{file}");
    }
    let missing = svc.send("GET", "/settings/nope.js", None, None, &[]).await;
    assert_eq!(missing.status, 404);

    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/users/me/llm-settings/test", svc.base),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight(allowed).await.unwrap();
    assert!(ok.status().is_success(), "preflight: {}", ok.status());
    assert_eq!(ok.headers()["access-control-allow-origin"], allowed);
    let methods = ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "allow-methods {methods}");
    }
    let headers = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"));
    let refused = preflight("http://127.0.0.1:8").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let user = svc.user("header-check");
    let r = svc
        .send(
            "GET",
            "/users/me/llm-settings",
            Some(&user),
            None,
            &[("Origin", allowed)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["access-control-allow-origin"], allowed);
    let r = svc
        .send(
            "GET",
            "/users/me/llm-settings",
            Some(&user),
            None,
            &[("Origin", "http://127.0.0.1:8")],
        )
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}
