//! Audit retention: events older than the configured number of days are pruned in the
//! background, in small batches, so the table's growth stays bounded.

use std::time::Duration;

use llm_settings_domain::{SettingsService, Timestamp};
use tokio::task::JoinHandle;

/// Events deleted per statement.
const PRUNE_BATCH: u32 = 1_000;

/// Prunes once now and then every `every`, keeping `days` days of events.
pub fn spawn_pruning(service: SettingsService, days: u32, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let before = Timestamp::new(
                time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(days)),
            );
            match service.prune_audit(before, PRUNE_BATCH).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, days, "old audit events pruned"),
                Err(err) => tracing::warn!(code = err.code(), "audit events not pruned"),
            }
        }
    })
}
