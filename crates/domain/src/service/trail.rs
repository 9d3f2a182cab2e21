//! Reading and pruning the audit trail.
//!
//! Every audited act is one event: changes, connection tests (repeated failures included),
//! decryptions, resolutions and gateway calls are never merged, so the trail can be counted
//! and correlated. Its growth is bounded by retention: events older than the configured
//! number of days are pruned in small batches ([`SettingsService::prune_audit`]).

use super::SettingsService;
use crate::actor::{Access, Actor, Role, Scope};
use crate::audit::{AuditPage, AuditQuery, AuditScope};
use crate::error::{Error, Result};
use crate::values::Timestamp;

/// Most events one page returns.
pub const MAX_AUDIT_PAGE: u32 = 500;

impl SettingsService {
    /// The caller's own events: changes to their settings and calls made on their behalf
    /// (scope `read`). The query's scope is replaced by the caller's.
    pub async fn my_audit_events(&self, actor: &Actor, query: AuditQuery) -> Result<AuditPage> {
        actor.authorize(&actor.user_owner(), Access::Read)?;
        let query = AuditQuery {
            scope: AuditScope::User(actor.subject.clone()),
            ..bounded(query)?
        };
        self.audit_page(query).await
    }

    /// Events an administrator may read (scope `read`): a superadmin any event, filtered as
    /// asked; an admin those of the instance in their token, whatever the query's scope.
    pub async fn audit_events(&self, actor: &Actor, query: AuditQuery) -> Result<AuditPage> {
        let scope = if actor.has_role(Role::Superadmin) {
            actor.require_role(Role::Superadmin, "the audit API")?;
            query.scope.clone()
        } else {
            actor.require_role(Role::Admin, "the audit API")?;
            let instance = actor.instance.clone().ok_or_else(|| {
                Error::Forbidden(
                    "an admin reads the audit events of the instance in the token's `instance` claim; the token has none"
                        .into(),
                )
            })?;
            AuditScope::Instance(instance)
        };
        actor.require_scope(Scope::Read)?;
        let query = AuditQuery {
            scope,
            ..bounded(query)?
        };
        self.audit_page(query).await
    }

    /// Reads one event more than asked, to know whether another page follows.
    async fn audit_page(&self, query: AuditQuery) -> Result<AuditPage> {
        let limit = query.limit as usize;
        let mut records = self
            .ports
            .audit
            .query(AuditQuery {
                limit: query.limit + 1,
                ..query
            })
            .await?;
        let more = records.len() > limit;
        records.truncate(limit);
        let next_before_id = records.last().map(|r| r.id).filter(|_| more);
        Ok(AuditPage {
            records,
            next_before_id,
        })
    }

    /// Deletes the events older than `before` in batches of `batch`, so no statement holds
    /// the table for long; returns how many were deleted.
    pub async fn prune_audit(&self, before: Timestamp, batch: u32) -> Result<u64> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let deleted = self.ports.audit.prune(before, batch).await?;
            total += deleted;
            if deleted < u64::from(batch) {
                return Ok(total);
            }
        }
    }
}

/// Checks the page size and the time window.
fn bounded(query: AuditQuery) -> Result<AuditQuery> {
    if query.limit == 0 || query.limit > MAX_AUDIT_PAGE {
        return Err(Error::invalid(
            "limit",
            format!("limit must be from 1 to {MAX_AUDIT_PAGE}"),
        ));
    }
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if since >= until {
            return Err(Error::invalid("since", "since must be before until"));
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery, AuditRecord};
    use crate::catalog::Catalog;
    use crate::owner::{InstanceId, UserId};
    use crate::ports::*;
    use crate::service::Ports;

    /// A record of the event with `id`.
    fn record(id: i64) -> AuditRecord {
        let at = Timestamp::from_unix_micros(id).unwrap();
        AuditRecord {
            id,
            event: AuditEvent::new(
                "u1",
                crate::owner::Owner::Global,
                AuditAction::Update,
                AuditOutcome::Success,
                at,
            ),
        }
    }

    /// A service whose audit log holds events 1 to 5 and remembers each query.
    fn service(seen: Arc<Mutex<Vec<AuditQuery>>>) -> SettingsService {
        let mut audit = MockAuditLog::new();
        audit.expect_query().returning(move |q| {
            let page = (1..=5)
                .rev()
                .filter(|id| q.before_id.is_none_or(|before| *id < before))
                .take(q.limit as usize)
                .map(record)
                .collect();
            seen.lock().unwrap().push(q);
            Ok(page)
        });
        let mut pages = vec![100, 100, 7];
        audit
            .expect_prune()
            .returning(move |_, _| Ok(pages.remove(0)));
        let ports = Ports {
            configs: Arc::new(MockConfigRepository::new()),
            tasks: Arc::new(MockTaskAssignmentRepository::new()),
            documents: Arc::new(MockSettingsDocumentRepository::new()),
            audit: Arc::new(audit),
            cipher: Arc::new(MockSecretCipher::new()),
            probe: Arc::new(MockProviderProbe::new()),
            client: Arc::new(MockProviderClient::new()),
            audit_queue: Arc::new(MockAuditQueue::new()),
            clock: Arc::new(MockClock::new()),
        };
        SettingsService::new(ports, Catalog::all())
    }

    fn actor(roles: &[Role], instance: Option<&str>) -> Actor {
        Actor::new(
            UserId::parse("u1").unwrap(),
            [Scope::Read],
            roles.iter().copied(),
            instance.map(|i| InstanceId::parse(i).unwrap()),
        )
    }

    #[tokio::test]
    async fn each_reader_sees_only_their_scope() {
        let seen = Arc::default();
        let svc = service(Arc::clone(&seen));
        let all = AuditQuery::newest(AuditScope::All, 50);
        svc.my_audit_events(&actor(&[], None), all.clone())
            .await
            .unwrap();
        svc.audit_events(&actor(&[Role::Admin], Some("acme")), all.clone())
            .await
            .unwrap();
        svc.audit_events(&actor(&[Role::Superadmin], None), all.clone())
            .await
            .unwrap();
        let scopes: Vec<_> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|q| q.scope.clone())
            .collect();
        assert_eq!(
            scopes,
            [
                AuditScope::User(UserId::parse("u1").unwrap()),
                AuditScope::Instance(InstanceId::parse("acme").unwrap()),
                AuditScope::All,
            ]
        );
        for (who, reason) in [
            (actor(&[], None), "the audit API needs the admin role"),
            (
                actor(&[Role::Admin], None),
                "an admin reads the audit events",
            ),
            (actor(&[Role::Service], None), "a service token"),
        ] {
            let err = svc.audit_events(&who, all.clone()).await.unwrap_err();
            assert!(err.to_string().starts_with(reason), "{err}");
        }
        let err = svc
            .my_audit_events(&actor(&[], None), AuditQuery::newest(AuditScope::All, 0))
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("limit"));
    }

    #[tokio::test]
    async fn pages_say_whether_another_follows() {
        let svc = service(Arc::default());
        let me = actor(&[], None);
        let mut cursor = None;
        let mut pages = Vec::new();
        loop {
            let query = AuditQuery {
                before_id: cursor,
                ..AuditQuery::newest(AuditScope::All, 2)
            };
            let page = svc.my_audit_events(&me, query).await.unwrap();
            let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
            pages.push(ids);
            cursor = page.next_before_id;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(pages, [vec![5, 4], vec![3, 2], vec![1]]);
        let exact = AuditQuery::newest(AuditScope::All, 5);
        let page = svc.my_audit_events(&me, exact).await.unwrap();
        assert_eq!(
            (page.records.len(), page.next_before_id),
            (5, None),
            "a full last page says it is the last"
        );
    }

    #[tokio::test]
    async fn pruning_runs_batches_until_a_short_one() {
        let svc = service(Arc::default());
        let before = Timestamp::from_unix_micros(0).unwrap();
        assert_eq!(svc.prune_audit(before, 100).await.unwrap(), 207);
    }
}
