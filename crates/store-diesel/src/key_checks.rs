//! Master-key check values: one per key id, so a node started with a wrong key refuses to
//! serve instead of sealing under a key the others cannot open.

use async_trait::async_trait;
use llm_settings_domain::{Result, Timestamp};

/// The recorded check value of one master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    pub key_id: String,
    pub check_value: String,
    /// When the key was first seen, by the caller's clock.
    pub created_at: Timestamp,
}

/// Storage of master-key check values (every store implements it).
#[async_trait]
pub trait MasterKeyChecks: Send + Sync + 'static {
    /// Every recorded check, ordered by key id.
    async fn key_checks(&self) -> Result<Vec<KeyCheck>>;

    /// Records the check value of a master key first seen at `now`. Saving the same value
    /// again is a no-op; a different value for a known key id is a `Conflict` (the stored
    /// one is kept).
    async fn save_key_check(&self, key_id: &str, check_value: &str, now: Timestamp) -> Result<()>;
}
