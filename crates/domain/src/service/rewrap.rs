//! Key rotation: re-seal every stored secret under the active master key.

use std::collections::BTreeMap;

use super::SettingsService;
use crate::audit::{AuditAction, AuditOutcome};
use crate::config::ProviderConfig;
use crate::error::{Error, Result};
use crate::secret::{SealedSecret, SecretBinding};
use crate::values::ConfigId;

/// Progress of a rewrap run; `last_id` lets an interrupted run resume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Configs looked at.
    pub scanned: u64,
    /// Configs whose secrets were re-sealed.
    pub rewrapped: u64,
    /// Configs already sealed under the active key.
    pub current: u64,
    /// The last config id processed.
    pub last_id: Option<ConfigId>,
}

const REWRAP_ACTOR: &str = "system:rewrap";
const CAS_ATTEMPTS: usize = 5;

impl SettingsService {
    /// Re-seals every secret not yet under the active key, `batch` configs at a time, starting
    /// after `resume_after`. Calls `progress` after each batch. A config changed concurrently
    /// is re-read and retried, so nothing is lost or left behind.
    pub async fn rewrap_all(
        &self,
        resume_after: Option<ConfigId>,
        batch: u32,
        mut progress: impl FnMut(&RewrapReport) + Send,
    ) -> Result<RewrapReport> {
        let mut report = RewrapReport {
            last_id: resume_after,
            ..RewrapReport::default()
        };
        loop {
            let page = self
                .ports
                .configs
                .page_all(report.last_id, batch.max(1))
                .await?;
            let Some(last) = page.last() else { break };
            let last_id = last.id;
            for config in page {
                report.scanned += 1;
                if self.rewrap_one(config).await? {
                    report.rewrapped += 1;
                } else {
                    report.current += 1;
                }
            }
            report.last_id = Some(last_id);
            progress(&report);
        }
        Ok(report)
    }

    /// Returns whether anything was re-sealed.
    async fn rewrap_one(&self, mut config: ProviderConfig) -> Result<bool> {
        for _ in 0..CAS_ATTEMPTS {
            let mut sealed: BTreeMap<String, SealedSecret> = BTreeMap::new();
            for (field, secret) in &config.secrets {
                if self.ports.cipher.is_current(&secret.sealed) {
                    continue;
                }
                let binding = SecretBinding::new(&config.owner, config.provider, field);
                sealed.insert(
                    field.clone(),
                    self.ports.cipher.rewrap(&secret.sealed, &binding)?,
                );
            }
            if sealed.is_empty() {
                return Ok(false);
            }
            if self
                .ports
                .configs
                .replace_sealed(config.id, config.version, sealed)
                .await?
            {
                self.audit_as(
                    REWRAP_ACTOR,
                    &config.owner,
                    Some(config.provider),
                    Some(config.id),
                    AuditAction::Rewrap,
                    AuditOutcome::Success,
                )
                .await;
                return Ok(true);
            }
            match self.ports.configs.get(&config.owner, config.id).await? {
                Some(fresh) => config = fresh,
                None => return Ok(false),
            }
        }
        Err(Error::Conflict(format!(
            "config {} kept changing during rewrap; run the command again",
            config.id
        )))
    }
}
