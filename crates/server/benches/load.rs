//! Load benchmark (`just bench`): the release service under 64 concurrent keep-alive clients
//! for a fixed time, against the same store operations issued straight through the store
//! adapter (diesel-async) at the same concurrency. Prints req/s, p50 and p99 for both and the
//! ratio service/raw, on Postgres and on SQLite.
//!
//! Phases: list and upsert of a user's configs; then resolution (`POST /v1/credentials/resolve`
//! with a service token) for 1,000 distinct users, each with a key of their own, an instance
//! key and a global key behind it, against the same chain read (`load_chain`) through the store
//! followed by the opening (decryption) of the chosen key.
//!
//! `BENCH_SECONDS` (default 5) sets each phase's length, `BENCH_CLIENTS` (default 64) the
//! concurrency. Then the gateway phase (see `gateway/mod.rs`; `BENCH_GATEWAY_SECONDS`,
//! `BENCH_GATEWAY_CLIENTS`, `BENCH_GATEWAY_STORES`, `BENCH_PEERS`). `BENCH_PHASES` (default
//! `stores,gateway`) picks the phases; every table is also written to `bench/results.md`
//! (`BENCH_RESULTS` to change the path). `LLM_SETTINGS_CHAIN_CACHE_TTL_MS` is handed to the
//! gateway phase's service (`0` measures it without the chain cache).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/mod.rs"]
mod support;

mod gateway;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use llm_settings_crypto::Keyring;
use llm_settings_domain::ports::{ConfigRepository, SecretCipher};
use llm_settings_domain::{
    AuditAction, AuditEvent, AuditOutcome, ChainQuery, ConfigWrite, InstanceId, NewProviderConfig,
    Owner, ProviderId, SecretBinding, SecretHints, SecretValue, StoredSecret, Timestamp, UserId,
};
use llm_settings_server::store::{self, Store};
use support::{Backend, Service};

/// Everything printed, kept for the results file.
static REPORT: Mutex<String> = Mutex::new(String::new());

/// Prints a line and keeps it for the results file.
#[macro_export]
macro_rules! out {
    () => { $crate::out!("") };
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        let mut report = $crate::REPORT.lock().unwrap();
        report.push_str(&line);
        report.push('\n');
    }};
}

struct Stats {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[idx] as f64 / 1000.0
    }
}

/// Runs `op(client, iteration)` from `clients` tasks for `duration`.
async fn drive<F, Fut>(clients: usize, duration: Duration, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                if op(client, i).await {
                    latencies.push(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let mut stats = Stats {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (l, e) = t.await.unwrap();
        stats.latencies_us.extend(l);
        stats.errors += e;
    }
    stats.elapsed = started.elapsed();
    stats
}

/// Sends a request and reads the whole body; true when the status is `status`.
async fn expect_status(req: reqwest::RequestBuilder, status: u16) -> bool {
    match req.send().await {
        Ok(res) => res.status().as_u16() == status && res.bytes().await.is_ok(),
        Err(_) => false,
    }
}

fn key(client: usize, i: u64) -> String {
    format!("sk-proj-bench{client:03}x{i:08}ABCDEFGHIJKLMNOPQRSTUVWX")
}

fn row(backend: &str, endpoint: &str, path: &str, s: &Stats) {
    out!(
        "{backend:<9} {endpoint:<22} {path:<8} {:>10.0} {:>9.2} {:>9.2} {:>7}",
        s.rate(),
        s.percentile(0.5),
        s.percentile(0.99),
        s.errors
    );
}

async fn bench(backend: Backend, clients: usize, duration: Duration) -> Vec<(String, f64)> {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let mut svc = Service::start(backend, &[("LLM_SETTINGS_LOG", "warn,llm_settings=info")]).await;
    let base = svc.base.clone();
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..clients)
            .map(|c| svc.user(&format!("bench-{c}")))
            .collect(),
    );
    let http: Arc<Vec<reqwest::Client>> = Arc::new(
        (0..clients)
            .map(|_| {
                reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap()
            })
            .collect(),
    );
    // Every client owns one user with three configs.
    for c in 0..clients {
        for provider in ["openai", "anthropic", "gemini"] {
            let r = http[c]
                .post(format!("{base}/users/me/llm-settings"))
                .bearer_auth(&tokens[c])
                .json(&json!({"provider": provider, "api_key": key(c, 0)}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    }

    let list = {
        let (base, tokens, http) = (base.clone(), tokens.clone(), http.clone());
        drive(clients, duration, move |c, _| {
            let req = http[c]
                .get(format!("{base}/users/me/llm-settings"))
                .bearer_auth(&tokens[c]);
            async move { expect_status(req, 200).await }
        })
        .await
    };
    let upsert = {
        let (base, tokens, http) = (base.clone(), tokens.clone(), http.clone());
        drive(clients, duration, move |c, i| {
            let req = http[c]
                .post(format!("{base}/users/me/llm-settings"))
                .bearer_auth(&tokens[c])
                .json(&json!({"provider": "openai", "api_key": key(c, i), "model": "gpt-4o-mini"}));
            async move { expect_status(req, 201).await }
        })
        .await
    };
    assert!(svc.terminate(), "the service stops cleanly");

    // The same store operations (read, write, audit row) straight through the adapter, with
    // the service stopped.
    let env: BTreeMap<String, String> =
        Service::base_env(backend, svc.data_dir.path(), svc.database.as_ref())
            .into_iter()
            .collect();
    let raw: Arc<dyn Store> = store::open(&env["DATABASE_URL"], false, Duration::from_secs(1))
        .await
        .unwrap();
    let keyring = match backend {
        Backend::Postgres => Keyring::parse(support::MASTER_KEYS).unwrap(),
        Backend::Sqlite => {
            let text = std::fs::read_to_string(svc.data_dir.path().join("master.keys")).unwrap();
            Keyring::parse(text.trim()).unwrap()
        }
    };
    let keyring = Arc::new(keyring);
    let owners: Arc<Vec<Owner>> = Arc::new(
        (0..clients)
            .map(|c| Owner::User(UserId::parse(format!("bench-{c}")).unwrap()))
            .collect(),
    );
    let raw_list = {
        let (raw, owners) = (raw.clone(), owners.clone());
        drive(clients, duration, move |c, _| {
            let (raw, owners) = (raw.clone(), owners.clone());
            async move {
                ConfigRepository::list(raw.as_ref(), &owners[c])
                    .await
                    .is_ok()
            }
        })
        .await
    };
    let openai = ProviderId::lookup("openai").unwrap();
    let raw_upsert = {
        let (raw, owners, keyring) = (raw.clone(), owners.clone(), keyring.clone());
        drive(clients, duration, move |c, i| {
            let (raw, owners, keyring) = (raw.clone(), owners.clone(), keyring.clone());
            async move {
                let owner = &owners[c];
                let Ok(Some(current)) = raw.find_by_provider(owner, openai).await else {
                    return false;
                };
                let plain = key(c, i);
                let binding = SecretBinding::new(owner, openai, "api_key");
                let sealed = keyring
                    .seal(&SecretValue::new(plain.clone()), &binding)
                    .unwrap();
                let mut secrets = current.secrets.clone();
                secrets.insert(
                    "api_key".into(),
                    StoredSecret {
                        sealed,
                        hints: SecretHints::of(&plain),
                    },
                );
                let write = ConfigWrite {
                    id: current.id,
                    owner: owner.clone(),
                    expected_version: current.version,
                    secrets,
                    settings: current.settings.clone(),
                    model: current.model.clone(),
                    base_url: current.base_url.clone(),
                    enabled: current.enabled,
                    make_default: false,
                    now: Timestamp::new(time::OffsetDateTime::now_utc()),
                };
                let Ok(saved) = raw.update(write).await else {
                    return false;
                };
                raw.record(AuditEvent {
                    provider: Some(openai),
                    config_id: Some(saved.id),
                    ..AuditEvent::new(
                        owner.id(),
                        owner.clone(),
                        AuditAction::Update,
                        AuditOutcome::Success,
                        saved.updated_at,
                    )
                })
                .await
                .is_ok()
            }
        })
        .await
    };

    let (resolve, raw_resolve) = resolve_phase(svc, raw, keyring, clients, duration).await;

    row(name, "GET /  (list)", "service", &list);
    row(name, "GET /  (list)", "raw SQL", &raw_list);
    row(name, "POST / (upsert)", "service", &upsert);
    row(name, "POST / (upsert)", "raw SQL", &raw_upsert);
    row(name, "POST resolve", "service", &resolve);
    row(name, "POST resolve", "raw SQL", &raw_resolve);
    vec![
        (format!("{name} list"), list.rate() / raw_list.rate()),
        (format!("{name} upsert"), upsert.rate() / raw_upsert.rate()),
        (
            format!("{name} resolve"),
            resolve.rate() / raw_resolve.rate(),
        ),
    ]
}

/// Users resolved for, each with an openai key of their own.
const RESOLVE_USERS: usize = 1_000;
/// Instances the users are spread over, each with an openai key.
const RESOLVE_INSTANCES: usize = 10;

/// The chain of resolution user `n`: the user, their instance, global.
fn resolve_chain(n: usize) -> (Owner, Owner) {
    (
        Owner::User(UserId::parse(format!("resolve-{n:04}")).unwrap()),
        Owner::Instance(InstanceId::parse(format!("tenant-{}", n % RESOLVE_INSTANCES)).unwrap()),
    )
}

/// Which user client `c` resolves for on its `i`-th request: every client walks all users.
fn resolve_user(clients: usize, c: usize, i: u64) -> usize {
    (c + (i as usize).wrapping_mul(clients)) % RESOLVE_USERS
}

/// Seeds the users', instances' and global openai keys through the store (sealed under the
/// service's keyring), restarts the service, drives `POST /v1/credentials/resolve` with a
/// service token, stops it, then reads the same chains through the store with `load_chain`.
async fn resolve_phase(
    svc: Service,
    raw: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clients: usize,
    duration: Duration,
) -> (Stats, Stats) {
    let openai = ProviderId::lookup("openai").unwrap();
    let mut owners: Vec<Owner> = Vec::new();
    for n in 0..RESOLVE_USERS {
        owners.push(resolve_chain(n).0);
    }
    for n in 0..RESOLVE_INSTANCES {
        owners.push(resolve_chain(n).1);
    }
    owners.push(Owner::Global);
    let owners = Arc::new(owners);
    let seeding: Vec<_> = (0..clients)
        .map(|c| {
            let (raw, keyring, owners) = (raw.clone(), keyring.clone(), owners.clone());
            tokio::spawn(async move {
                for owner in owners.iter().skip(c).step_by(clients) {
                    let plain = format!("sk-proj-resolve-{}-0123456789ABCDEFGHIJ", owner.id());
                    let binding = SecretBinding::new(owner, openai, "api_key");
                    let sealed = keyring
                        .seal(&SecretValue::new(plain.clone()), &binding)
                        .unwrap();
                    raw.insert(NewProviderConfig {
                        owner: owner.clone(),
                        provider: openai,
                        secrets: BTreeMap::from([(
                            "api_key".to_owned(),
                            StoredSecret {
                                sealed,
                                hints: SecretHints::of(&plain),
                            },
                        )]),
                        settings: BTreeMap::new(),
                        model: None,
                        base_url: None,
                        enabled: true,
                        make_default: false,
                        now: Timestamp::new(time::OffsetDateTime::now_utc()),
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for task in seeding {
        task.await.unwrap();
    }

    let mut svc = svc
        .restart(&[("LLM_SETTINGS_LOG", "warn,llm_settings=info")])
        .await
        .unwrap();
    let base = svc.base.clone();
    let token = Arc::new(svc.token("bench-backend", "", &["service"], None));
    let http: Arc<Vec<reqwest::Client>> = Arc::new(
        (0..clients)
            .map(|_| {
                reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap()
            })
            .collect(),
    );
    // Every resolution is the user's own key (checked once here, counted by status below).
    let (user, instance) = resolve_chain(7);
    let answer: serde_json::Value = http[0]
        .post(format!("{base}/v1/credentials/resolve"))
        .bearer_auth(token.as_str())
        .json(&json!({"user": user.id(), "instance": instance.id()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["source"]["owner"], "user", "{answer}");
    let resolve = drive(clients, duration, move |c, i| {
        let (user, instance) = resolve_chain(resolve_user(clients, c, i));
        let req = http[c]
            .post(format!("{base}/v1/credentials/resolve"))
            .bearer_auth(token.as_str())
            .json(&json!({"user": user.id(), "instance": instance.id()}));
        async move { expect_status(req, 200).await }
    })
    .await;
    assert!(svc.terminate(), "the service stops cleanly");

    // The same chain read, then the chosen (the user's own) key opened, as the service does.
    let raw_resolve = drive(clients, duration, move |c, i| {
        let (raw, keyring) = (raw.clone(), keyring.clone());
        let (user, instance) = resolve_chain(resolve_user(clients, c, i));
        async move {
            let Ok(chain) = raw
                .load_chain(ChainQuery {
                    owners: vec![user.clone(), instance, Owner::Global],
                    provider: None,
                    task: None,
                })
                .await
            else {
                return false;
            };
            let Some(own) = chain.configs.iter().find(|config| config.owner == user) else {
                return false;
            };
            let binding = SecretBinding::new(&own.owner, own.provider, "api_key");
            chain.configs.len() == 3
                && keyring
                    .open(&own.secrets["api_key"].sealed, &binding)
                    .is_ok()
        }
    })
    .await;
    (resolve, raw_resolve)
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| "stores,gateway".into());
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let gateway_settings = gateway::Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if phases.contains("stores") {
            out!("{clients} concurrent keep-alive clients, {seconds} s per phase, release build, {cpus} CPUs");
            out!("{:<9} {:<22} {:<8} {:>10} {:>9} {:>9} {:>7}", "store", "endpoint", "path", "req/s", "p50 ms", "p99 ms", "errors");
            let mut ratios = Vec::new();
            for backend in [Backend::Postgres, Backend::Sqlite] {
                ratios.extend(bench(backend, clients, Duration::from_secs(seconds)).await);
            }
            out!();
            for (what, ratio) in ratios {
                out!("ratio service/raw {what:<16} {ratio:>6.2}");
            }
            out!();
        }
        if phases.contains("gateway") {
            out!("release build, {cpus} CPUs shared by the load generator, the service, the database and nginx");
            gateway::run(&gateway_settings).await;
        }
    });
    let path = std::env::var("BENCH_RESULTS").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results.md"),
        std::path::PathBuf::from,
    );
    let report = REPORT.lock().unwrap().clone();
    let text = format!(
        "# Load benchmark results\n\nOne run on a shared machine; see the README's Benchmarks section.\n\n```\n{report}```\n"
    );
    match std::fs::write(&path, text) {
        Ok(()) => println!("\nwritten to {}", path.display()),
        Err(e) => println!("\ncould not write {}: {e}", path.display()),
    }
}
