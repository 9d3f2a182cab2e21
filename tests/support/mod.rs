//! Black-box harness: starts the real `llm-settings` binary on a free port against a fresh
//! database (SQLite file or a new Postgres database) and talks to it over HTTP.

#![allow(
    dead_code,
    unused_imports,
    unused_macros,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use llm_settings_http::{Claims, TokenIssuer};
use llm_settings_testkit::postgres::TestDatabase;

/// The HS256 secret the harness configures and signs test tokens with.
pub const JWT_SECRET: &str = "blackbox-test-secret-0123456789abcdef";
/// A master keyring for Postgres runs (SQLite runs let the service generate its own).
pub const MASTER_KEYS: &str = "bb1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Which store the service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running service process.
pub struct Service {
    child: Child,
    pub base: String,
    logs: Arc<Mutex<String>>,
    pub data_dir: tempfile::TempDir,
    pub database: Option<TestDatabase>,
    pub backend: Backend,
    client: reqwest::Client,
}

/// An HTTP response: status, headers and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Service {
    /// Starts the binary on a fresh database with the given extra environment.
    pub async fn start(backend: Backend, extra_env: &[(&str, &str)]) -> Self {
        Self::start_with_args(backend, extra_env, &[]).await
    }

    /// Starts the binary as [`Service::start`] does, with `serve` and `args` on its command line.
    pub async fn start_with_args(
        backend: Backend,
        extra_env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        match Self::spawn(backend, data_dir, database, extra_env, args).await {
            Ok(service) => service,
            Err((logs, _, _)) => panic!("the service did not start:\n{logs}"),
        }
    }

    /// Stops this process and starts another on the same data with `extra_env`; on failure
    /// returns what the new process logged.
    pub async fn restart(mut self, extra_env: &[(&str, &str)]) -> Result<Self, String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        let database = self.database.take();
        let backend = self.backend;
        drop(self);
        Self::spawn(backend, data_dir, database, extra_env, &[])
            .await
            .map_err(|(logs, _, _)| logs)
    }

    /// The environment every run gets.
    pub fn base_env(
        backend: Backend,
        data_dir: &std::path::Path,
        database: Option<&TestDatabase>,
    ) -> Vec<(String, String)> {
        let database_url = match database {
            None => format!(
                "sqlite://{}",
                data_dir.join("llm-settings.sqlite3").display()
            ),
            Some(db) => db.url().to_owned(),
        };
        let mut env = vec![
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("DATABASE_URL".to_owned(), database_url),
            ("LLM_SETTINGS_BIND".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "LLM_SETTINGS_DATA_DIR".to_owned(),
                data_dir.display().to_string(),
            ),
            ("LLM_SETTINGS_JWT_SECRET".to_owned(), JWT_SECRET.to_owned()),
            (
                "LLM_SETTINGS_LOG".to_owned(),
                "debug,h2=info,hyper=info,rustls=info,tokio_postgres=info".to_owned(),
            ),
        ];
        // Scenarios test far more often than a person would; the rate limits have their own
        // tests (`tests/operations.rs`), which set them back (an empty value is the default).
        for limit in [
            "LLM_SETTINGS_RATE_LIMIT_CONNECTION_TESTS",
            "LLM_SETTINGS_RATE_LIMIT_GATEWAY_CALLS",
            "LLM_SETTINGS_RATE_LIMIT_RESOLUTIONS",
            "LLM_SETTINGS_RATE_LIMIT_FAILED_AUTHENTICATIONS",
        ] {
            env.push((limit.to_owned(), "off".to_owned()));
        }
        if backend == Backend::Postgres {
            env.push((
                "LLM_SETTINGS_MASTER_KEYS".to_owned(),
                MASTER_KEYS.to_owned(),
            ));
        }
        env
    }

    /// The binary with a clean environment plus `env`.
    pub fn command(env: &[(String, String)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-settings"));
        cmd.env_clear();
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts a second process of the service on this one's database (and, for SQLite, its
    /// data directory and keys), with the given extra environment: another node of the
    /// same deployment. The database stays this service's.
    pub async fn start_beside(&self, extra_env: &[(&str, &str)]) -> Self {
        let env = Self::env_with(
            Self::base_env(self.backend, self.data_dir.path(), self.database.as_ref()),
            extra_env,
        );
        let spare = tempfile::tempdir().unwrap();
        match Self::launch(self.backend, env, spare, None, &[]).await {
            Ok(service) => service,
            Err((logs, _, _)) => panic!("the second service did not start:\n{logs}"),
        }
    }

    fn env_with(
        mut env: Vec<(String, String)>,
        extra_env: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env
    }

    async fn spawn(
        backend: Backend,
        data_dir: tempfile::TempDir,
        database: Option<TestDatabase>,
        extra_env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<Self, (String, tempfile::TempDir, Option<TestDatabase>)> {
        let env = Self::env_with(
            Self::base_env(backend, data_dir.path(), database.as_ref()),
            extra_env,
        );
        Self::launch(backend, env, data_dir, database, args).await
    }

    /// Runs the binary with `env` and `args`; the service holds `data_dir` and `database`.
    async fn launch(
        backend: Backend,
        env: Vec<(String, String)>,
        data_dir: tempfile::TempDir,
        database: Option<TestDatabase>,
        args: &[&str],
    ) -> Result<Self, (String, tempfile::TempDir, Option<TestDatabase>)> {
        let mut cmd = Self::command(&env);
        if backend == Backend::Postgres {
            cmd.arg("serve").arg("--migrate");
        } else if !args.is_empty() {
            cmd.arg("serve");
        }
        cmd.args(args);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the llm-settings binary starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(addr);
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
                break addr;
            }
            if let Ok(Some(_)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                let text = logs.lock().unwrap().clone();
                return Err((text, data_dir, database));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let text = logs.lock().unwrap().clone();
                return Err((text, data_dir, database));
            }
        };
        let service = Self {
            child,
            base: format!("http://{address}"),
            logs,
            data_dir,
            database,
            backend,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        service.wait_ready().await;
        Ok(service)
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if let Ok(res) = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
            {
                if res.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service never became ready:\n{}", self.logs());
    }

    /// Everything the service logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// The log once it holds `needle` (log lines reach the harness through a reader thread, a
    /// little after the service wrote them).
    pub async fn logged(&self, needle: &str) -> String {
        eventually(needle, Duration::from_secs(30), || async {
            let logs = self.logs();
            logs.contains(needle).then_some(logs)
        })
        .await
    }

    /// A token for `sub` with the given scopes, roles and instance.
    pub fn token(&self, sub: &str, scope: &str, roles: &[&str], instance: Option<&str>) -> String {
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 600;
        TokenIssuer::hs256(JWT_SECRET.as_bytes())
            .mint(&Claims {
                sub: sub.into(),
                scope: scope.into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                instance: instance.map(str::to_owned),
                exp,
                nbf: None,
                iss: None,
                aud: None,
            })
            .unwrap()
    }

    /// A user token with `read write`.
    pub fn user(&self, sub: &str) -> String {
        self.token(sub, "read write", &[], None)
    }

    /// Sends a request with an optional bearer token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.handle().send(method, path, token, body, headers).await
    }

    /// A cloneable handle that sends requests to this service, for concurrent tasks.
    pub fn handle(&self) -> Handle {
        Handle {
            base: self.base.clone(),
            client: self.client.clone(),
        }
    }

    /// The `DATABASE_URL` this service runs on.
    pub fn database_url(&self) -> String {
        match &self.database {
            None => format!(
                "sqlite://{}",
                self.data_dir.path().join("llm-settings.sqlite3").display()
            ),
            Some(db) => db.url().to_owned(),
        }
    }

    /// The service's database opened through the store adapter, beside the running service
    /// (to read what it wrote, e.g. the audit table); it caches no chain, so every read sees
    /// the database as it is.
    pub async fn open_store(&self) -> Arc<dyn llm_settings_server::store::Store> {
        llm_settings_server::store::open(&self.database_url(), false, Duration::ZERO)
            .await
            .unwrap()
    }

    /// Sends a raw body with the given content type.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: String,
        content_type: &str,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Sends a body with no `Content-Type` header at all.
    pub async fn send_without_content_type(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: String,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Shorthand for a JSON request with a token.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.send(method, path, Some(token), body.as_ref(), &[])
            .await
    }

    /// Everything the store holds, as bytes: the SQLite files, or a Postgres data dump.
    pub fn stored_bytes(&self) -> Vec<u8> {
        match &self.database {
            None => {
                let mut bytes = Vec::new();
                for entry in std::fs::read_dir(self.data_dir.path()).unwrap() {
                    let path: PathBuf = entry.unwrap().path();
                    if path.is_file() {
                        bytes.extend(std::fs::read(path).unwrap());
                    }
                }
                bytes
            }
            Some(db) => {
                let out = Command::new("pg_dump")
                    .arg("--data-only")
                    .arg(db.url())
                    .output()
                    .expect("pg_dump runs");
                assert!(
                    out.status.success(),
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends requests to a running [`Service`]; cheap to clone into concurrent tasks.
#[derive(Clone)]
pub struct Handle {
    pub base: String,
    client: reqwest::Client,
}

impl Handle {
    /// Sends a request with an optional bearer token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Shorthand for a JSON request with a token.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.send(method, path, Some(token), body.as_ref(), &[])
            .await
    }
}

/// The message of an error body in any surface's shape: `{"detail": "…"}`,
/// `{"error": {"message": "…"}}` or `{"ok": false, "error": "…"}`.
pub fn error_message(body: &Value) -> String {
    body["detail"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .or_else(|| body["error"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Polls `probe` until it gives a value, for at most `limit`; panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts that `needle` occurs nowhere in `haystack`, naming where.
pub fn assert_absent(needle: &str, haystack: &[u8], place: &str) {
    let found = haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes());
    assert!(!found, "the planted secret appears in {place}");
}

/// Instantiates each scenario `async fn name(backend: Backend)` of the calling test file as two
/// tests, `name::sqlite` and `name::postgres`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    )*};
}
pub(crate) use on_both_stores;
