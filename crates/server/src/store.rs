//! The store chosen by `DATABASE_URL`, behind the domain's ports plus the few administrative
//! operations the binary needs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use llm_settings_domain::ports::{
    AuditLog, Clock, ConfigRepository, SettingsDocumentRepository, SystemClock,
    TaskAssignmentRepository,
};
use llm_settings_domain::Result;
use llm_settings_store_postgres::PostgresStore;
use llm_settings_store_sqlite::{MasterKeyChecks, PoolStatus, SqliteStore};

/// Every repository port plus migrations, health and master-key checks.
#[async_trait]
pub trait Store:
    ConfigRepository + TaskAssignmentRepository + SettingsDocumentRepository + AuditLog
{
    /// Applies pending migrations; returns the versions applied.
    async fn migrate(&self) -> Result<Vec<String>>;
    /// A cheap round trip proving the store answers.
    async fn ping(&self) -> Result<()>;
    /// Recorded master-key check values (key id, value).
    async fn key_checks(&self) -> Result<Vec<(String, String)>>;
    /// Records the check value of a key seen for the first time.
    async fn save_key_check(&self, key_id: &str, check_value: &str) -> Result<()>;
    /// The connection pool's figures now, for metrics.
    fn pool_status(&self) -> PoolStatus;
}

macro_rules! store_admin {
    ($store:ty) => {
        #[async_trait]
        impl Store for $store {
            async fn migrate(&self) -> Result<Vec<String>> {
                self.run_migrations().await
            }
            async fn ping(&self) -> Result<()> {
                <$store>::ping(self).await
            }
            async fn key_checks(&self) -> Result<Vec<(String, String)>> {
                let checks = MasterKeyChecks::key_checks(self).await?;
                Ok(checks
                    .into_iter()
                    .map(|c| (c.key_id, c.check_value))
                    .collect())
            }
            async fn save_key_check(&self, key_id: &str, check_value: &str) -> Result<()> {
                let now = SystemClock.now();
                MasterKeyChecks::save_key_check(self, key_id, check_value, now).await
            }
            fn pool_status(&self) -> PoolStatus {
                <$store>::pool_status(self)
            }
        }
    };
}

store_admin!(SqliteStore);
store_admin!(PostgresStore);

/// Opens the store named by `database_url`. SQLite applies its migrations on open; Postgres
/// only when `migrate` is set (or through the `migrate` command). Resolution chains are
/// cached for `chain_cache_ttl` (zero: not cached; see `ChainCache` in the shared store
/// layer for when a change is seen).
pub async fn open(
    database_url: &str,
    migrate: bool,
    chain_cache_ttl: Duration,
) -> anyhow::Result<Arc<dyn Store>> {
    if database_url.starts_with("sqlite:") {
        let store = SqliteStore::connect(database_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the SQLite database: {e}"))?
            .with_chain_cache_ttl(chain_cache_ttl);
        Ok(Arc::new(store))
    } else {
        let store = PostgresStore::connect(database_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Postgres: {e}"))?
            .with_chain_cache_ttl(chain_cache_ttl);
        if migrate {
            store
                .run_migrations()
                .await
                .map_err(|e| anyhow::anyhow!("cannot migrate the Postgres database: {e}"))?;
        }
        Ok(Arc::new(store))
    }
}

/// The store's kind and location as a log line may show them: the SQLite path, or the
/// Postgres URL without its password or any query parameter but `sslmode` and `sslrootcert`.
pub fn describe(database_url: &str) -> (&'static str, String) {
    if let Some(path) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
    {
        return ("sqlite", path.to_owned());
    }
    let Ok(mut url) = url::Url::parse(database_url) else {
        return ("postgres", "(a URL that does not parse)".to_owned());
    };
    if url.password().is_some() {
        let _ = url.set_password(None);
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k == "sslmode" || k == "sslrootcert")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    ("postgres", url.to_string())
}

/// `/readyz` backed by the store's ping.
#[allow(missing_debug_implementations)]
pub struct StoreReadiness(pub Arc<dyn Store>);

#[async_trait]
impl llm_settings_http::Readiness for StoreReadiness {
    async fn check(&self) -> std::result::Result<(), String> {
        self.0.ping().await.map_err(|e| e.code().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_never_show_credentials() {
        assert_eq!(
            describe("sqlite:///var/lib/llm-settings/db.sqlite3"),
            ("sqlite", "/var/lib/llm-settings/db.sqlite3".to_owned())
        );
        let (kind, shown) = describe(
            "postgres://app:s3cret-pw@db.internal:5433/settings?sslmode=require&password=other-pw",
        );
        assert_eq!(kind, "postgres");
        assert_eq!(
            shown,
            "postgres://app@db.internal:5433/settings?sslmode=require"
        );
        assert!(!describe("postgres://:only-pw@h/db").1.contains("only-pw"));
    }
}
