//! What every store must do the same way with storage itself: free text, master-key checks
//! and operations whose caller went away.

use std::time::Duration;

use llm_settings_domain::ports::{AuditLog, ConfigRepository};
use llm_settings_domain::{
    AuditAction, AuditEvent, AuditOutcome, AuditQuery, AuditScope, ChangeStep, Error, FailureClass,
    OwnerChange, TestRecord,
};
use llm_settings_store_diesel::{KeyCheck, MasterKeyChecks};

use super::{defaults, get, insert, list};
use crate::fixtures::{at, new_config, now, user};
use crate::StoreFixture;

/// Free text reads back the same whichever store holds it: PostgreSQL text cannot hold NUL,
/// so every store keeps a NUL as U+FFFD (and finds it again by the text as written).
pub async fn free_text_reads_back_the_same_on_every_store<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("nul");
    let created = insert(&*store, &owner, "openai").await;
    let record = TestRecord {
        at: at(1),
        success: false,
        latency_ms: 3,
        failure: Some(FailureClass::InvalidResponse),
        message: "upstream said \0 and ✓".into(),
    };
    store
        .record_test(&owner, created.id, record)
        .await
        .expect("record a message with NUL");
    let read = get(&*store, &owner, created.id).await.expect("config");
    assert_eq!(
        read.last_test.map(|t| t.message),
        Some("upstream said \u{fffd} and ✓".to_owned())
    );

    let event = AuditEvent::new(
        "auth0|nul\0actor",
        owner.clone(),
        AuditAction::Test,
        AuditOutcome::Failure("odd\0code".into()),
        at(2),
    );
    store.record(event).await.expect("record an actor with NUL");
    let found = store
        .query(AuditQuery {
            actor: Some("auth0|nul\0actor".into()),
            ..AuditQuery::newest(AuditScope::All, 10)
        })
        .await
        .expect("query");
    assert_eq!(found.len(), 1, "found by the actor as written");
    assert_eq!(found[0].event.actor, "auth0|nul\u{fffd}actor");
    assert_eq!(
        found[0].event.outcome,
        AuditOutcome::Failure("odd\u{fffd}code".into())
    );
}

/// Master-key checks: one per key id, never overwritten, stamped with the caller's clock.
pub async fn key_checks_are_kept_and_never_overwritten<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    assert!(store.key_checks().await.expect("read").is_empty());
    store
        .save_key_check("k2", "check-2", at(2))
        .await
        .expect("save");
    store
        .save_key_check("k1", "check-1", at(1))
        .await
        .expect("save");
    store
        .save_key_check("k1", "check-1", at(9))
        .await
        .expect("saving the same value again");
    let err = store
        .save_key_check("k1", "other", at(9))
        .await
        .expect_err("a different value");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let check = |id: &str, value: &str, secs| KeyCheck {
        key_id: id.into(),
        check_value: value.into(),
        created_at: at(secs),
    };
    assert_eq!(
        store.key_checks().await.expect("read"),
        vec![check("k1", "check-1", 1), check("k2", "check-2", 2)],
        "ordered by key id, first save kept, time from the caller"
    );
}

/// Writes whose caller gives up at any point (a client hanging up) leave no transaction
/// open and no lock held: every later operation runs as if they never started.
pub async fn abandoned_writes_leave_no_transaction_behind<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("hangup");
    let mut ids = Vec::new();
    for name in ["openai", "anthropic", "gemini"] {
        ids.push(insert(&*store, &owner, name).await.id);
    }
    for i in 0..60u64 {
        let deadline = Duration::from_micros(i * 100);
        let id = ids[i as usize % ids.len()];
        let _ = tokio::time::timeout(deadline, store.set_default(&owner, id, now())).await;
        let mut change = OwnerChange::new(owner.clone(), now());
        change.steps = vec![
            ChangeStep::SetDefault { id },
            ChangeStep::Insert(new_config(&owner, "mistral", now())),
        ];
        let _ = tokio::time::timeout(deadline, store.apply(change)).await;
        if let Ok(Some(mistral)) = store
            .find_by_provider(&owner, crate::fixtures::provider("mistral"))
            .await
        {
            ConfigRepository::delete(&*store, &owner, mistral.id)
                .await
                .expect("delete after an abandoned change");
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let made = tokio::time::timeout(
            Duration::from_secs(10),
            store.set_default(&owner, *id, now()),
        )
        .await
        .unwrap_or_else(|_| panic!("write {i} waited on a lock left behind"))
        .unwrap_or_else(|e| panic!("write {i} after abandoned ones: {e:?}"));
        assert!(made.is_default);
    }
    let after = list(&*store, &owner).await;
    assert_eq!(
        after.len(),
        ids.len(),
        "no change landed in part: {after:?}"
    );
    assert_eq!(defaults(&after), vec![ids[ids.len() - 1]]);
}
