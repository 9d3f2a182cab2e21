//! Wiring of the LLM settings service: configuration, the store chosen by `DATABASE_URL`, the
//! master keyring, and the assembled [`SettingsService`]. The `llm-settings` binary is a thin
//! command-line layer over this crate.

pub mod config;
pub mod keys;
pub mod store;

use std::sync::Arc;

use anyhow::anyhow;

use llm_settings_domain::ports::SystemClock;
use llm_settings_domain::{Catalog, Ports, SettingsService};
use llm_settings_probes::{HttpProbe, ProbeSettings};

use config::Config;

/// Everything the service needs, verified before it serves a request.
pub async fn service(
    config: &Config,
    migrate: bool,
) -> anyhow::Result<(SettingsService, Arc<dyn store::Store>)> {
    let keyring = keys::keyring(config)?;
    let store = store::open(&config.database_url(), migrate).await?;
    keys::verify_against_store(&keyring, store.as_ref()).await?;
    let probe_settings = ProbeSettings::from_values(
        config.probe_allow_hosts.as_deref(),
        Some(config.probe_timeout_ms.as_str()),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let probe = HttpProbe::new(probe_settings).map_err(|e| anyhow!("{e}"))?;
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
        audit: store.clone(),
        cipher: Arc::new(keyring),
        probe: Arc::new(probe),
        clock: Arc::new(SystemClock),
    };
    Ok((SettingsService::new(ports, catalog), store))
}
