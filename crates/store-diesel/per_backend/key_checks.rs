//! Master-key check values.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::RunQueryDsl;
use llm_settings_domain::{Error, Result, Timestamp};
use llm_settings_store_diesel::{KeyCheck, MasterKeyChecks};

use super::schema::master_key_checks;
use crate::backend::{self, Store, Time};

#[async_trait]
impl MasterKeyChecks for Store {
    async fn key_checks(&self) -> Result<Vec<KeyCheck>> {
        self.read(|c| {
            async move {
                master_key_checks::table
                    .select((
                        master_key_checks::key_id,
                        master_key_checks::check_value,
                        master_key_checks::created_at,
                    ))
                    .order(master_key_checks::key_id)
                    .load::<(String, String, Time)>(c)
                    .await?
                    .into_iter()
                    .map(|(key_id, check_value, created_at)| {
                        Ok(KeyCheck {
                            key_id,
                            check_value,
                            created_at: backend::timestamp(created_at)?,
                        })
                    })
                    .collect()
            }
            .scope_boxed()
        })
        .await
    }

    async fn save_key_check(&self, key_id: &str, check_value: &str, now: Timestamp) -> Result<()> {
        let now = backend::time(now);
        self.write(|c| {
            async move {
                diesel::insert_into(master_key_checks::table)
                    .values((
                        master_key_checks::key_id.eq(key_id),
                        master_key_checks::check_value.eq(check_value),
                        master_key_checks::created_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await?;
                let stored: String = master_key_checks::table
                    .find(key_id)
                    .select(master_key_checks::check_value)
                    .first(c)
                    .await?;
                if stored == check_value {
                    Ok(())
                } else {
                    Err(Error::Conflict(format!(
                        "a different check value is already stored for master key {key_id}"
                    ))
                    .into())
                }
            }
            .scope_boxed()
        })
        .await
    }
}
