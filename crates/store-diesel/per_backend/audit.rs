//! The audit trail: batched appends, filtered pages newest first, and pruning by age.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use llm_settings_domain::{AuditEvent, AuditQuery, AuditRecord, AuditScope, OwnerKind, Timestamp};
use llm_settings_store_diesel::{text, OwnerKey, StoreError};

use super::rows::AuditRow;
use super::schema::{audit_events, oldest_events};
use crate::backend::{self, Conn};

/// Appends `events` in one multi-row statement.
pub(super) async fn record(c: &mut Conn, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<AuditRow> = events.iter().map(AuditRow::of).collect();
    backend::insert_rows(c, diesel::insert_into(audit_events::table).values(rows)).await?;
    Ok(())
}

/// The events matching `query`, highest id first, at most `query.limit`.
pub(super) async fn query(
    c: &mut Conn,
    query: &AuditQuery,
) -> Result<Vec<AuditRecord>, StoreError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let mut rows = audit_events::table
        .select(AuditRow::as_select())
        .order(audit_events::id.desc())
        .limit(i64::from(query.limit))
        .into_boxed();
    rows = match &query.scope {
        AuditScope::All => rows,
        AuditScope::User(user) => rows.filter(
            audit_events::owner_kind
                .eq(OwnerKind::User.as_str())
                .and(audit_events::owner_id.eq(user.as_str()))
                .or(audit_events::on_behalf_of.eq(user.as_str())),
        ),
        AuditScope::Instance(instance) => rows.filter(
            audit_events::owner_kind
                .eq(OwnerKind::Instance.as_str())
                .and(audit_events::owner_id.eq(instance.as_str()))
                .or(audit_events::instance_id.eq(instance.as_str())),
        ),
    };
    if let Some(owner) = &query.owner {
        let owner = OwnerKey::of(owner);
        rows = rows
            .filter(audit_events::owner_kind.eq(owner.kind))
            .filter(audit_events::owner_id.eq(owner.id));
    }
    if let Some(actor) = &query.actor {
        rows = rows.filter(audit_events::actor.eq(text(actor).into_owned()));
    }
    if let Some(action) = query.action {
        rows = rows.filter(audit_events::action.eq(action.as_str()));
    }
    if let Some(provider) = query.provider {
        rows = rows.filter(audit_events::provider.eq(provider.as_str()));
    }
    if let Some(since) = query.since {
        rows = rows.filter(audit_events::at.ge(backend::time(since)));
    }
    if let Some(until) = query.until {
        rows = rows.filter(audit_events::at.lt(backend::time(until)));
    }
    if let Some(before_id) = query.before_id {
        rows = rows.filter(audit_events::id.lt(before_id));
    }
    rows.load(c)
        .await?
        .into_iter()
        .map(AuditRow::into_domain)
        .collect()
}

/// Deletes at most `batch` of the oldest events older than `before`; how many went.
pub(super) async fn prune(c: &mut Conn, before: Timestamp, batch: u32) -> Result<u64, StoreError> {
    let (at, id) = (
        oldest_events.field(audit_events::at),
        oldest_events.field(audit_events::id),
    );
    let oldest = oldest_events
        .filter(at.lt(backend::time(before)))
        .select(id)
        .order((at, id))
        .limit(i64::from(batch));
    let deleted = diesel::delete(audit_events::table.filter(audit_events::id.eq_any(oldest)))
        .execute(c)
        .await?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}
