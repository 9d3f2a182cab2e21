//! The per-owner settings document (generation defaults and free-form sections).

use serde_json::{Map, Value};

use super::{SettingsService, WRITE_ATTEMPTS};
use crate::actor::{Access, Actor};
use crate::audit::{AuditAction, AuditOutcome};
use crate::document;
use crate::error::{Error, Result};
use crate::owner::Owner;

impl SettingsService {
    /// The owner's document overlaid on the defaults.
    pub async fn settings_document(&self, actor: &Actor, owner: &Owner) -> Result<Value> {
        actor.authorize(owner, Access::Read)?;
        let stored = self.ports.documents.get(owner).await?;
        Ok(document::effective(stored.as_ref().map(|d| &d.document)))
    }

    /// Deep-merges a partial document into the stored one (RFC 7396: `null` removes) after
    /// checking known field types, and returns the effective result.
    pub async fn update_settings_document(
        &self,
        actor: &Actor,
        owner: &Owner,
        patch: Value,
    ) -> Result<Value> {
        actor.authorize(owner, Access::Write)?;
        if !patch.is_object() {
            return Err(Error::invalid("settings", "settings must be a JSON object"));
        }
        document::validate(&patch)?;
        let result = self.merge_document(owner, &patch).await;
        let outcome = match &result {
            Ok(_) => AuditOutcome::Success,
            Err(e) => AuditOutcome::Failure(e.code().to_owned()),
        };
        self.audit(
            actor,
            owner,
            None,
            None,
            AuditAction::DocumentUpdate,
            outcome,
        )
        .await;
        result
    }

    async fn merge_document(&self, owner: &Owner, patch: &Value) -> Result<Value> {
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.ports.documents.get(owner).await?;
            let (mut doc, version) = match stored {
                Some(s) => (s.document, Some(s.version)),
                None => (Value::Object(Map::new()), None),
            };
            document::merge(&mut doc, patch);
            document::validate(&doc)?;
            let now = self.ports.clock.now();
            match self.ports.documents.put(owner, doc, version, now).await {
                Ok(saved) => return Ok(document::effective(Some(&saved.document))),
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(
            "the settings were changed concurrently; retry the request".into(),
        ))
    }
}
