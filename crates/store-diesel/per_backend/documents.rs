//! The per-owner settings document, versioned for optimistic concurrency.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use llm_settings_domain::document::StoredDocument;
use llm_settings_domain::{Error, Timestamp};
use llm_settings_store_diesel::{OwnerKey, StoreError};
use serde_json::Value;

use super::rows::{from_json, to_json};
use super::schema::settings_documents;
use crate::backend::{self, Conn, Json};

/// The owner's document, if one was ever stored.
pub(super) async fn get(
    c: &mut Conn,
    owner: &OwnerKey,
) -> Result<Option<StoredDocument>, StoreError> {
    let row = settings_documents::table
        .find((owner.kind, &owner.id))
        .select((settings_documents::document, settings_documents::version))
        .first::<(Json, i64)>(c)
        .await
        .optional()?;
    row.map(|(document, version)| {
        Ok(StoredDocument {
            document: from_json(document, "settings document")?,
            version,
        })
    })
    .transpose()
}

/// Stores a document: created when `expected_version` is `None`, else replaced if still at
/// that version; `Conflict` otherwise.
pub(super) async fn put(
    c: &mut Conn,
    owner: &OwnerKey,
    document: &Value,
    expected_version: Option<i64>,
    now: Timestamp,
) -> Result<StoredDocument, StoreError> {
    let now = backend::time(now);
    let stored = to_json(document, "the settings document")?;
    let version = match expected_version {
        None => {
            let inserted = diesel::insert_into(settings_documents::table)
                .values((
                    settings_documents::owner_kind.eq(owner.kind),
                    settings_documents::owner_id.eq(&owner.id),
                    settings_documents::document.eq(stored),
                    settings_documents::version.eq(1),
                    settings_documents::created_at.eq(now),
                    settings_documents::updated_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)
                .await?;
            if inserted == 0 {
                return Err(Error::Conflict(
                    "the settings document was created concurrently".into(),
                )
                .into());
            }
            1
        }
        Some(expected) => {
            let changed = diesel::update(
                settings_documents::table
                    .find((owner.kind, &owner.id))
                    .filter(settings_documents::version.eq(expected)),
            )
            .set((
                settings_documents::document.eq(stored),
                settings_documents::version.eq(expected + 1),
                settings_documents::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
            if changed == 0 {
                return Err(Error::Conflict(format!(
                    "the settings document is no longer at version {expected}"
                ))
                .into());
            }
            expected + 1
        }
    };
    Ok(StoredDocument {
        document: document.clone(),
        version,
    })
}
