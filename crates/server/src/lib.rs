//! Wiring of the LLM settings service: configuration, the store chosen by `DATABASE_URL`, the
//! master keyring, and the assembled [`SettingsService`]. The `llm-settings` binary is a thin
//! command-line layer over this crate.

pub mod audit_queue;
pub mod config;
pub mod keys;
pub mod metrics;
pub mod retention;
pub mod store;

use std::sync::Arc;

use anyhow::anyhow;
use tokio::task::JoinHandle;

use llm_settings_domain::ports::SystemClock;
use llm_settings_domain::{Catalog, Ports, SettingsService};
use llm_settings_probes::{GatewaySettings, HttpGateway, HttpProbe, ProbeSettings};

use audit_queue::BatchingAuditQueue;
use config::Config;

/// Gateway audit events held in memory while the store catches up.
const AUDIT_QUEUE_CAPACITY: usize = 65_536;

/// The assembled service and what runs beside it.
pub struct Wired {
    pub service: SettingsService,
    pub store: Arc<dyn store::Store>,
    /// Where the master keyring came from.
    pub master_keys: keys::KeySource,
    /// The batched audit writer; it ends once the service (holding the queue) is dropped and
    /// the queued events are written.
    pub audit_writer: JoinHandle<()>,
}

impl std::fmt::Debug for Wired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wired").finish_non_exhaustive()
    }
}

/// Everything the service needs, verified before it serves a request.
pub async fn service(config: &Config, migrate: bool) -> anyhow::Result<Wired> {
    let (keyring, master_keys) = keys::keyring(config)?;
    let store = store::open(&config.database_url(), migrate, config.chain_cache_ttl()).await?;
    keys::verify_against_store(&keyring, store.as_ref()).await?;
    let probe_settings = ProbeSettings::from_values(
        config.probe_allow_hosts.as_deref(),
        Some(config.probe_timeout_ms.as_str()),
    )
    .and_then(|s| s.with_local_provider_hosts(config.local_provider_hosts.as_deref()))
    .map_err(|e| anyhow!("{e}"))?;
    let limits = GatewaySettings::from_values(
        Some(&config.gateway_connect_timeout_ms),
        Some(&config.gateway_first_byte_timeout_ms),
        Some(&config.gateway_idle_timeout_ms),
        Some(&config.gateway_total_timeout_ms),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let client = HttpGateway::new(&probe_settings, limits).map_err(|e| anyhow!("{e}"))?;
    let probe = HttpProbe::new(probe_settings).map_err(|e| anyhow!("{e}"))?;
    // Every audit write, direct or batched, is counted in `/metrics` when it fails.
    let audit = Arc::new(metrics::CountedAuditLog(store.clone()));
    let (audit_queue, audit_writer) =
        BatchingAuditQueue::start(audit.clone(), AUDIT_QUEUE_CAPACITY);
    let catalog = match &config.providers {
        Some(list) => {
            let list: Vec<String> = list.iter().map(|p| p.trim().to_owned()).collect();
            Catalog::restricted(&list).map_err(|e| anyhow!("LLM_SETTINGS_PROVIDERS: {e}"))?
        }
        None => Catalog::all(),
    };
    let ports = Ports {
        configs: store.clone(),
        tasks: store.clone(),
        documents: store.clone(),
        audit,
        cipher: Arc::new(keyring),
        probe: Arc::new(probe),
        client: Arc::new(client),
        audit_queue: Arc::new(audit_queue),
        clock: Arc::new(SystemClock),
    };
    Ok(Wired {
        service: SettingsService::new(ports, catalog),
        store,
        master_keys,
        audit_writer,
    })
}
