//! Task assignments: per owner, task name → provider + model.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use llm_settings_domain::{TaskAssignment, TaskName, Timestamp};
use llm_settings_store_diesel::{OwnerKey, StoreError};

use super::rows::TaskRow;
use super::schema::task_assignments;
use crate::backend::{self, Conn};

/// The owner's assignments ordered by task name.
pub(super) async fn list(
    c: &mut Conn,
    owner: &OwnerKey,
) -> Result<Vec<TaskAssignment>, StoreError> {
    task_assignments::table
        .filter(task_assignments::owner_kind.eq(owner.kind))
        .filter(task_assignments::owner_id.eq(&owner.id))
        .order(task_assignments::task)
        .select(TaskRow::as_select())
        .load(c)
        .await?
        .into_iter()
        .map(TaskRow::into_domain)
        .collect()
}

/// Inserts or replaces each assignment by task name, in order (a task named twice keeps
/// its last assignment); run inside one write transaction.
pub(super) async fn upsert(
    c: &mut Conn,
    owner: &OwnerKey,
    assignments: &[TaskAssignment],
    now: Timestamp,
) -> Result<(), StoreError> {
    let now = backend::time(now);
    for a in assignments {
        diesel::insert_into(task_assignments::table)
            .values(TaskRow {
                owner_kind: owner.kind.to_owned(),
                owner_id: owner.id.clone(),
                task: a.task.as_str().to_owned(),
                provider: a.provider.as_str().to_owned(),
                model: a.model.as_str().to_owned(),
                created_at: now,
                updated_at: now,
            })
            .on_conflict((
                task_assignments::owner_kind,
                task_assignments::owner_id,
                task_assignments::task,
            ))
            .do_update()
            .set((
                task_assignments::provider.eq(excluded(task_assignments::provider)),
                task_assignments::model.eq(excluded(task_assignments::model)),
                task_assignments::updated_at.eq(excluded(task_assignments::updated_at)),
            ))
            .execute(c)
            .await?;
    }
    Ok(())
}

/// Removes one assignment; whether there was one.
pub(super) async fn delete(
    c: &mut Conn,
    owner: &OwnerKey,
    task: &TaskName,
) -> Result<bool, StoreError> {
    let deleted =
        diesel::delete(task_assignments::table.find((owner.kind, &owner.id, task.as_str())))
            .execute(c)
            .await?;
    Ok(deleted > 0)
}
