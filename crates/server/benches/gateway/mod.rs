//! The gateway phase of `just bench`: a fast local upstream (an nginx instance this bench
//! starts, answering a fixed OpenAI chat completion and a fixed server-sent-events stream),
//! called directly, through an nginx `proxy_pass` forwarder (keep-alive upstream pool) and
//! through the gateway with a stored key whose base URL is the upstream, non-streaming and
//! streaming, at 1, 16 and 64 clients, all driven by one load tool, wrk (`--latency`).
//! Then the time to the first chunk of a streamed answer over sequential requests, direct and
//! through the gateway, measured by a small client here.
//!
//! Everything listens on 127.0.0.1. Extra targets (`BENCH_PEERS`, e.g. LiteLLM's proxy set up
//! by `bench/gateway-vs-litellm.sh`) are measured with the same load in the same run.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::out;
use crate::support::{Backend, Service};

/// The upstream's non-streaming route (OpenAI's path below the base URL `…/v1`).
const CHAT_PATH: &str = "/v1/chat/completions";
/// The upstream's streaming route: base URL `…/v1/stream`, same provider path.
const STREAM_PATH: &str = "/v1/stream/chat/completions";
/// Model names the bodies carry; a peer proxy maps them to the two upstream routes.
pub const CHAT_MODEL: &str = "bench-chat";
pub const STREAM_MODEL: &str = "bench-stream";

/// A fixed chat completion, as OpenAI answers it.
const COMPLETION: &str = r#"{"id":"chatcmpl-bench0001","object":"chat.completion","created":1764547200,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18},"service_tier":"default","system_fingerprint":"fp_bench"}"#;

/// A fixed streamed completion: one event per piece, a finish event and `[DONE]`.
fn sse_stream() -> String {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let event = json!({
            "id": "chatcmpl-bench0001",
            "object": "chat.completion.chunk",
            "created": 1_764_547_200,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        format!("data: {event}\n\n")
    };
    let mut out = chunk(json!({"role": "assistant", "content": ""}), None);
    for piece in [
        "Hello", "!", " How", " can", " I", " help", " you", " today", "?",
    ] {
        out.push_str(&chunk(json!({"content": piece}), None));
    }
    out.push_str(&chunk(json!({}), Some("stop")));
    out.push_str("data: [DONE]\n\n");
    out
}

fn body(stream: bool) -> String {
    let model = if stream { STREAM_MODEL } else { CHAT_MODEL };
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
    });
    if stream {
        body["stream"] = json!(true);
    }
    body.to_string()
}

/// A free port on 127.0.0.1 (free when asked; nothing else on this box races for it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The nginx binary, if installed.
fn nginx_binary() -> Option<PathBuf> {
    let given = std::env::var("BENCH_NGINX").ok().map(PathBuf::from);
    let candidates = given.into_iter().chain(
        std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"])
            .map(|dir| Path::new(dir).join("nginx"))
            .collect::<Vec<_>>(),
    );
    candidates.into_iter().find(|p| p.is_file())
}

fn wrk_installed() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// One nginx master (with its workers) serving the upstream and the forwarder, from a config
/// in its own temporary directory; stopped when dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    upstream: u16,
    forwarder: u16,
}

impl Nginx {
    fn start(binary: &Path, upstream: u16) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let forwarder = free_port();
        let d = dir.path().display();
        // Workers drop to `nobody` under root unless told otherwise; they never need files
        // here (the bodies fit in memory buffers), but stay as the caller to be safe.
        let user = match Command::new("id").arg("-u").output() {
            Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => "user root;",
            _ => "",
        };
        let config = format!(
            r#"{user}
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;

    # The provider: a fixed chat completion and a fixed event stream.
    server {{
        listen 127.0.0.1:{upstream} backlog=4096;
        location = {CHAT_PATH} {{
            default_type application/json;
            return 200 '{COMPLETION}';
        }}
        location = {STREAM_PATH} {{
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            return 200 '{stream}';
        }}
    }}

    # A plain HTTP forwarder in front of it: the practical ceiling of a proxy on this box.
    upstream provider {{
        server 127.0.0.1:{upstream};
        keepalive 256;
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:{forwarder} backlog=4096;
        location / {{
            proxy_pass http://provider;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"#,
            stream = sse_stream(),
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nginx did not start: {e}"))?;
        let mut nginx = Self {
            child,
            dir,
            upstream,
            forwarder,
        };
        if !(wait_listening(upstream) && wait_listening(forwarder)) {
            let log = std::fs::read_to_string(nginx.dir.path().join("error.log"));
            let _ = nginx.child.kill();
            return Err(format!("nginx is not listening: {log:?}"));
        }
        Ok(nginx)
    }

    fn url(&self, port: u16, path: &str) -> String {
        format!("http://127.0.0.1:{port}{path}")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A fast shutdown of the master takes its workers with it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Something the load is sent to: the same two bodies, its own URLs and headers.
struct Target {
    name: String,
    chat_url: String,
    stream_url: String,
    headers: Vec<(String, String)>,
    /// Whether this is the gateway (its rows get the ratios).
    gateway: bool,
    /// Whether this is a peer proxy (BENCH_PEERS).
    peer: bool,
    /// `GET` without a body (the reference row), else `POST` with the chat body.
    get: bool,
}

impl Target {
    fn url(&self, stream: bool) -> &str {
        if stream {
            &self.stream_url
        } else {
            &self.chat_url
        }
    }

    /// One request with a reqwest client: the answer must be the upstream's.
    async fn check(&self, http: &reqwest::Client, stream: bool) -> Result<(), String> {
        let mut req = http
            .post(self.url(stream))
            .header("content-type", "application/json")
            .body(body(stream));
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let source = res
            .headers()
            .get("x-llm-settings-credential-source")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let text = res.text().await.map_err(|e| e.to_string())?;
        let expected = if stream { "[DONE]" } else { "How can I help" };
        if status != 200 || !text.contains(expected) {
            return Err(format!("{} answered {status}: {text}", self.name));
        }
        if self.gateway && source.as_deref() != Some("user") {
            return Err(format!("{} named no credential source", self.name));
        }
        Ok(())
    }
}

/// What wrk measured in one cell.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// A wrk duration (`123.45us`, `1.20ms`, `2.00s`, `1.00m`) in milliseconds.
fn wrk_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(value * scale)
}

/// Requests/sec, the 50th and 99th latency percentiles and every kind of error wrk counts.
fn parse_wrk(output: &str) -> Option<Cell> {
    let mut cell = Cell::default();
    let mut rate = None;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => cell.p50_ms = wrk_ms(value)?,
            ["99%", value] => cell.p99_ms = wrk_ms(value)?,
            ["Requests/sec:", value] => rate = value.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => cell.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                for pair in rest.chunks(2) {
                    if let [_, n] = pair {
                        cell.errors += n.trim_end_matches(',').parse::<u64>().ok()?;
                    }
                }
            }
            _ => {}
        }
    }
    cell.rate = rate?;
    Some(cell)
}

/// Runs wrk against `target` for `seconds` with `clients` connections.
fn run_wrk(
    dir: &Path,
    target: &Target,
    stream: bool,
    clients: usize,
    seconds: u64,
) -> Result<Cell, String> {
    let script = dir.join(format!(
        "{}-{}.lua",
        target
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        if stream { "stream" } else { "chat" }
    ));
    let mut lua = String::new();
    if !target.get {
        lua.push_str("wrk.method = \"POST\"\n");
        lua.push_str(&format!("wrk.body = [==[{}]==]\n", body(stream)));
        lua.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    for (name, value) in &target.headers {
        lua.push_str(&format!("wrk.headers[\"{name}\"] = [==[{value}]==]\n"));
    }
    std::fs::write(&script, lua).unwrap();
    let threads = clients.min(2);
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{clients}"))
        .arg(format!("-d{seconds}s"))
        .args(["--latency", "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(target.url(stream))
        .output()
        .map_err(|e| format!("wrk did not run: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).ok_or_else(|| {
        format!(
            "wrk's output could not be read: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Settings of the phase, from the environment.
pub struct Settings {
    pub stores: Vec<Backend>,
    pub clients: Vec<usize>,
    pub seconds: u64,
    pub ttfb_requests: usize,
    pub upstream_port: Option<u16>,
    /// `(name, base URL)` of extra proxies measured side by side, e.g. LiteLLM's.
    pub peers: Vec<(String, String)>,
    pub peer_token: Option<String>,
}

impl Settings {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let stores = var("BENCH_GATEWAY_STORES")
            .unwrap_or_else(|| "postgres,sqlite".into())
            .split(',')
            .map(|s| match s.trim() {
                "postgres" => Backend::Postgres,
                "sqlite" => Backend::Sqlite,
                other => panic!("BENCH_GATEWAY_STORES: unknown store {other}"),
            })
            .collect();
        let clients = var("BENCH_GATEWAY_CLIENTS")
            .unwrap_or_else(|| "1,16,64".into())
            .split(',')
            .map(|s| s.trim().parse().expect("BENCH_GATEWAY_CLIENTS: numbers"))
            .collect();
        let peers = var("BENCH_PEERS")
            .map(|list| {
                list.split(';')
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| {
                        let (name, url) = p.split_once('=').expect("BENCH_PEERS: name=url;…");
                        (
                            name.trim().to_owned(),
                            url.trim().trim_end_matches('/').to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            stores,
            clients,
            seconds: var("BENCH_GATEWAY_SECONDS").map_or(5, |s| s.parse().unwrap()),
            ttfb_requests: var("BENCH_TTFB_REQUESTS").map_or(500, |s| s.parse().unwrap()),
            upstream_port: var("BENCH_UPSTREAM_PORT").map(|s| s.parse().unwrap()),
            peers,
            peer_token: var("BENCH_PEER_TOKEN"),
        }
    }
}

fn store_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Starts a service on `backend` that may reach the upstream, with a user holding an openai
/// key whose base URL is the upstream; returns it with the user's token (scope `use`).
async fn gateway_service(backend: Backend, upstream: u16) -> (Service, String) {
    let allow = format!("127.0.0.1:{upstream}");
    let mut env = vec![
        ("LLM_SETTINGS_LOG", "warn,llm_settings=info"),
        ("LLM_SETTINGS_PROBE_ALLOW_HOSTS", allow.as_str()),
    ];
    // The chain cache's TTL, when the bench is told one (0 measures without the cache).
    let ttl = std::env::var("LLM_SETTINGS_CHAIN_CACHE_TTL_MS").ok();
    if let Some(ttl) = ttl.as_deref() {
        env.push(("LLM_SETTINGS_CHAIN_CACHE_TTL_MS", ttl));
    }
    let svc = Service::start(backend, &env).await;
    let token = svc.token("gateway-bench", "read write use", &[], None);
    let r = svc
        .call(
            "POST",
            "/users/me/llm-settings",
            &token,
            Some(json!({
                "provider": "openai",
                "api_key": "sk-proj-gatewaybench0123456789ABCDEFGHIJKLMNOP",
                "base_url": format!("http://127.0.0.1:{upstream}/v1"),
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (svc, token)
}

/// Time from sending a streaming request to its first body chunk, `n` sequential requests
/// on one keep-alive connection, in milliseconds (sorted).
async fn first_chunk_times(target: &Target, n: usize) -> Vec<f64> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let mut req = http
            .post(target.url(true))
            .header("content-type", "application/json")
            .body(body(true));
        for (name, value) in &target.headers {
            req = req.header(name, value);
        }
        let started = Instant::now();
        let mut res = req.send().await.unwrap();
        let first = res.chunk().await.unwrap();
        let elapsed = started.elapsed();
        assert!(
            first.is_some_and(|c| !c.is_empty()),
            "{} sent no chunk",
            target.name
        );
        while res.chunk().await.unwrap().is_some() {}
        // The first 50 warm the connection and the caches.
        if i >= 50 {
            times.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The whole gateway phase; prints (and records) its tables.
pub async fn run(settings: &Settings) {
    let Some(nginx_bin) = nginx_binary() else {
        out!("gateway phase skipped: nginx is not installed (apt-get install -y nginx wrk)");
        return;
    };
    if !wrk_installed() {
        out!("gateway phase skipped: wrk is not installed (apt-get install -y wrk nginx)");
        return;
    }
    let upstream = settings.upstream_port.unwrap_or_else(free_port);
    let nginx = match Nginx::start(&nginx_bin, upstream) {
        Ok(n) => n,
        Err(e) => {
            out!("gateway phase skipped: {e}");
            return;
        }
    };
    let mut services = Vec::new();
    for &backend in &settings.stores {
        services.push((backend, gateway_service(backend, upstream).await));
    }

    let mut targets = vec![
        Target {
            name: "direct (nginx)".into(),
            chat_url: nginx.url(nginx.upstream, CHAT_PATH),
            stream_url: nginx.url(nginx.upstream, STREAM_PATH),
            headers: vec![("Authorization".into(), "Bearer sk-direct".into())],
            gateway: false,
            peer: false,
            get: false,
        },
        Target {
            name: "nginx proxy_pass".into(),
            chat_url: nginx.url(nginx.forwarder, CHAT_PATH),
            stream_url: nginx.url(nginx.forwarder, STREAM_PATH),
            headers: vec![("Authorization".into(), "Bearer sk-direct".into())],
            gateway: false,
            peer: false,
            get: false,
        },
    ];
    for (backend, (svc, token)) in &services {
        let gateway = format!("{}/v1/gateway/openai", svc.base);
        targets.push(Target {
            name: format!("gateway ({})", store_name(*backend)),
            chat_url: format!("{gateway}/chat/completions"),
            stream_url: format!("{gateway}/stream/chat/completions"),
            headers: vec![("Authorization".into(), format!("Bearer {token}"))],
            gateway: true,
            peer: false,
            get: false,
        });
    }
    for (name, base) in &settings.peers {
        let headers = settings
            .peer_token
            .iter()
            .map(|t| ("Authorization".to_owned(), format!("Bearer {t}")))
            .collect();
        targets.push(Target {
            name: name.clone(),
            chat_url: format!("{base}{CHAT_PATH}"),
            stream_url: format!("{base}{CHAT_PATH}"),
            headers,
            gateway: false,
            peer: true,
            get: false,
        });
    }

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut streaming_targets = Vec::new();
    for target in &targets {
        target.check(&http, false).await.unwrap();
        match target.check(&http, true).await {
            Ok(()) => streaming_targets.push(target.name.clone()),
            Err(e) if target.peer => out!("{} streaming not measured: {e}", target.name),
            Err(e) => panic!("{e}"),
        }
    }

    out!(
        "gateway: POST chat completion to a fixed local upstream (nginx), wrk -c N, {} s per cell",
        settings.seconds
    );
    out!(
        "{:<24} {:<7} {:>7} {:>10} {:>9} {:>9} {:>7}",
        "target",
        "mode",
        "clients",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors"
    );
    let mut cells: BTreeMap<(bool, usize, String), Cell> = BTreeMap::new();
    for stream in [false, true] {
        for &clients in &settings.clients {
            for target in &targets {
                if stream && !streaming_targets.contains(&target.name) {
                    continue;
                }
                let cell = run_wrk(nginx.dir.path(), target, stream, clients, settings.seconds)
                    .unwrap_or_else(|e| panic!("{e}"));
                out!(
                    "{:<24} {:<7} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                    target.name,
                    if stream { "stream" } else { "chat" },
                    clients,
                    cell.rate,
                    cell.p50_ms,
                    cell.p99_ms,
                    cell.errors
                );
                cells.insert((stream, clients, target.name.clone()), cell);
            }
        }
    }

    out!();
    out!("gateway ratios (throughput vs the nginx forwarder; p50 added over direct)");
    let mut header = format!(
        "{:<24} {:<7} {:>7} {:>12} {:>14}",
        "gateway", "mode", "clients", "gw/nginx-fwd", "p50 added ms"
    );
    for target in targets.iter().filter(|t| t.peer) {
        header.push_str(&format!(" {:>18}", format!("gw/{}", target.name)));
    }
    out!("{header}");
    for stream in [false, true] {
        for &clients in &settings.clients {
            let direct = cells[&(stream, clients, targets[0].name.clone())];
            let forwarder = cells[&(stream, clients, targets[1].name.clone())];
            for target in targets.iter().filter(|t| t.gateway) {
                let gw = cells[&(stream, clients, target.name.clone())];
                let mut line = format!(
                    "{:<24} {:<7} {:>7} {:>12.2} {:>14.3}",
                    target.name,
                    if stream { "stream" } else { "chat" },
                    clients,
                    gw.rate / forwarder.rate,
                    gw.p50_ms - direct.p50_ms
                );
                for peer in targets.iter().filter(|t| t.peer) {
                    match cells.get(&(stream, clients, peer.name.clone())) {
                        Some(p) if p.rate > 0.0 => {
                            line.push_str(&format!(" {:>17.0}x", gw.rate / p.rate));
                        }
                        _ => line.push_str(&format!(" {:>18}", "-")),
                    }
                }
                out!("{line}");
            }
        }
    }

    // For scale: the service's own HTTP stack (same middleware, no store, no upstream).
    if let Some((backend, (svc, _))) = services.first() {
        let clients = settings
            .clients
            .iter()
            .copied()
            .find(|&c| c == 16)
            .unwrap_or(settings.clients[0]);
        let healthz = Target {
            name: format!("service GET /healthz ({})", store_name(*backend)),
            chat_url: format!("{}/healthz", svc.base),
            stream_url: String::new(),
            headers: Vec::new(),
            gateway: false,
            peer: false,
            get: true,
        };
        let cell = run_wrk(nginx.dir.path(), &healthz, false, clients, settings.seconds)
            .unwrap_or_else(|e| panic!("{e}"));
        out!();
        out!(
            "for scale, the service's HTTP stack alone ({}, {clients} clients): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            healthz.name,
            cell.rate,
            cell.p50_ms,
            cell.p99_ms,
            cell.errors
        );
    }

    out!();
    out!(
        "time to first chunk of a streamed answer: {} sequential requests on one connection",
        settings.ttfb_requests
    );
    out!(
        "{:<24} {:>9} {:>9} {:>15} {:>15}",
        "target",
        "p50 ms",
        "p99 ms",
        "p50 added ms",
        "p99 added ms"
    );
    let mut direct = None;
    for target in targets.iter().filter(|t| !t.peer) {
        let times = first_chunk_times(target, settings.ttfb_requests).await;
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        let (d50, d99) = *direct.get_or_insert((p50, p99));
        out!(
            "{:<24} {:>9.3} {:>9.3} {:>15.3} {:>15.3}",
            target.name,
            p50,
            p99,
            p50 - d50,
            p99 - d99
        );
    }

    for (_, (mut svc, _)) in services {
        assert!(svc.terminate(), "the service stops cleanly");
    }
    drop(nginx);
}
