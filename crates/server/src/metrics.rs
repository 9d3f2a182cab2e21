//! The process's Prometheus recorder and what only the binary can report: build info, the
//! store's pool (read at scrape time), failed audit writes, and the separate metrics listener
//! (`LLM_SETTINGS_METRICS_BIND`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;

use llm_settings_domain::ports::AuditLog;
use llm_settings_domain::{AuditEvent, AuditQuery, AuditRecord, Result, Timestamp};
use llm_settings_http::metrics::Scrape;

use crate::store::Store;

/// Audit events that could not be written (store failure, or the gateway's queue full).
pub const AUDIT_WRITES_FAILED: &str = "llm_settings_audit_writes_failed_total";

/// How often recorded latencies are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the recorder: build info, and the pool figures of `store` refreshed at each
/// scrape; starts the upkeep task (on the current runtime).
pub fn install(store: Arc<dyn Store>, store_kind: &'static str) -> anyhow::Result<Scrape> {
    let scrape = Scrape::install(move || {
        let pool = store.pool_status();
        let figure = |n: usize| n as f64;
        metrics::gauge!("llm_settings_store_pool_max_connections").set(figure(pool.max_size));
        metrics::gauge!("llm_settings_store_pool_connections").set(figure(pool.open));
        metrics::gauge!("llm_settings_store_pool_in_use")
            .set(figure(pool.open.saturating_sub(pool.idle)));
        metrics::gauge!("llm_settings_store_pool_waiting").set(figure(pool.waiting));
    })
    .map_err(|e| anyhow!("cannot install the metrics recorder: {e}"))?;
    metrics::describe_gauge!(
        "llm_settings_build_info",
        "Always 1; the labels name the version and the store kind"
    );
    metrics::describe_gauge!(
        "llm_settings_store_pool_in_use",
        "Pooled store connections running an operation"
    );
    metrics::describe_histogram!(
        "llm_settings_store_pool_wait_seconds",
        metrics::Unit::Seconds,
        "Time an operation waited for a pooled store connection"
    );
    metrics::describe_counter!(
        AUDIT_WRITES_FAILED,
        "Audit events that could not be written"
    );
    metrics::gauge!(
        "llm_settings_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "store" => store_kind
    )
    .set(1.0);
    metrics::counter!(AUDIT_WRITES_FAILED).absolute(0);
    let upkeep = scrape.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.upkeep();
        }
    });
    Ok(scrape)
}

/// Serves `/metrics` alone on `bind` (`LLM_SETTINGS_METRICS_BIND`) until the process ends.
pub fn serve_separately(bind: &str, scrape: Scrape) -> anyhow::Result<()> {
    let server =
        actix_web::HttpServer::new(move || llm_settings_http::metrics::app(scrape.clone()))
            .workers(1)
            .bind(bind)
            .with_context(|| format!("cannot listen on {bind} (LLM_SETTINGS_METRICS_BIND)"))?;
    for address in server.addrs() {
        tracing::info!(%address, "metrics served at http://{address}/metrics");
    }
    tokio::spawn(server.run());
    Ok(())
}

/// The audit log, counting every event whose write failed.
pub struct CountedAuditLog<L: ?Sized>(pub Arc<L>);

impl<L: ?Sized> std::fmt::Debug for CountedAuditLog<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountedAuditLog")
    }
}

#[async_trait]
impl<L: AuditLog + ?Sized> AuditLog for CountedAuditLog<L> {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        let written = self.0.record(event).await;
        if written.is_err() {
            metrics::counter!(AUDIT_WRITES_FAILED).increment(1);
        }
        written
    }

    async fn record_many(&self, events: Vec<AuditEvent>) -> Result<()> {
        let count = events.len() as u64;
        let written = self.0.record_many(events).await;
        if written.is_err() {
            metrics::counter!(AUDIT_WRITES_FAILED).increment(count);
        }
        written
    }

    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditRecord>> {
        self.0.query(query).await
    }

    async fn prune(&self, before: Timestamp, batch: u32) -> Result<u64> {
        self.0.prune(before, batch).await
    }
}
