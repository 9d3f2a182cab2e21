//! The store micro-benchmark, written once for every store: list, upsert and set-default on
//! one owner, and the resolution chain read (user → global), measured with criterion and
//! summarised as operations per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::Criterion;
use llm_settings_domain::ports::ConfigRepository;
use llm_settings_domain::{ChainQuery, ConfigId, Owner};
use tokio::runtime::Runtime;

use crate::fixtures::{new_config, now, stored_secret, unchanged, user};

/// Operations and time measured per benchmark, for the ops/s summary.
#[derive(Debug, Default)]
pub struct OpsCounter {
    runs: Mutex<Vec<(String, u64, Duration)>>,
}

impl OpsCounter {
    fn add(&self, name: &str, ops: u64, took: Duration) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        match runs.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, o, t)) => {
                *o += ops;
                *t += took;
            }
            None => runs.push((name.to_owned(), ops, took)),
        }
    }

    /// Prints one `name: N ops/s` line per benchmark.
    pub fn print(&self) {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        println!(
            "\nthroughput (one connection at a time, every timed iteration, warm-up included):"
        );
        for (name, ops, took) in runs.iter() {
            let rate = *ops as f64 / took.as_secs_f64().max(f64::EPSILON);
            println!("  {name:<28} {rate:>10.0} ops/s  ({ops} ops)");
        }
    }
}

/// Benchmarks `list`, `upsert` (find by provider, then update), `set_default` and
/// `load_chain` of `store` under the group name `store_name`, on an owner holding five
/// configs (and a global one).
pub fn store_benches<S: ConfigRepository>(
    c: &mut Criterion,
    rt: &Runtime,
    store_name: &str,
    store: Arc<S>,
    counter: &OpsCounter,
) {
    let owner = user("bench");
    let ids: Vec<ConfigId> = rt.block_on(async {
        let mut ids = Vec::new();
        for name in ["openai", "anthropic", "gemini", "mistral", "groq"] {
            let config = match store
                .find_by_provider(&owner, crate::fixtures::provider(name))
                .await
            {
                Ok(Some(existing)) => existing,
                _ => store
                    .insert(new_config(&owner, name, now()))
                    .await
                    .unwrap_or_else(|e| panic!("bench setup: {e}")),
            };
            ids.push(config.id);
        }
        ids
    });

    let mut group = c.benchmark_group(store_name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let name = format!("{store_name}/list");
    group.bench_function("list", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let configs = store
                        .list(&owner)
                        .await
                        .unwrap_or_else(|e| panic!("list: {e}"));
                    assert_eq!(configs.len(), ids.len());
                }
                let took = start.elapsed();
                counter.add(&name, iters, took);
                took
            })
        });
    });

    let name = format!("{store_name}/upsert");
    group.bench_function("upsert", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    upsert(&*store, &owner, i).await;
                }
                let took = start.elapsed();
                counter.add(&name, iters, took);
                took
            })
        });
    });

    let name = format!("{store_name}/set_default");
    group.bench_function("set_default", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let id = ids[i as usize % ids.len()];
                    store
                        .set_default(&owner, id, now())
                        .await
                        .unwrap_or_else(|e| panic!("set_default: {e}"));
                }
                let took = start.elapsed();
                counter.add(&name, iters, took);
                took
            })
        });
    });
    let chain = ChainQuery {
        owners: vec![owner.clone(), Owner::Global],
        provider: None,
        task: None,
    };
    rt.block_on(async {
        if store
            .find_default(&Owner::Global)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            store
                .insert(new_config(&Owner::Global, "openai", now()))
                .await
                .unwrap_or_else(|e| panic!("bench setup: {e}"));
        }
    });
    let name = format!("{store_name}/load_chain");
    group.bench_function("load_chain", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let snapshot = store
                        .load_chain(chain.clone())
                        .await
                        .unwrap_or_else(|e| panic!("load_chain: {e}"));
                    assert_eq!(snapshot.configs.len(), ids.len() + 1);
                }
                let took = start.elapsed();
                counter.add(&name, iters, took);
                took
            })
        });
    });
    group.finish();
}

/// What the service does to save an existing provider's key: read it, then write it back
/// with a new sealed key under its version.
async fn upsert<S: ConfigRepository>(store: &S, owner: &Owner, i: u64) {
    let provider = crate::fixtures::provider("openai");
    let current = store
        .find_by_provider(owner, provider)
        .await
        .unwrap_or_else(|e| panic!("find: {e}"))
        .unwrap_or_else(|| panic!("bench config vanished"));
    let mut write = unchanged(&current, now());
    write.secrets.insert(
        "api_key".into(),
        stored_secret(&format!("sk-bench-{i:020}")),
    );
    store
        .update(write)
        .await
        .unwrap_or_else(|e| panic!("update: {e}"));
}
