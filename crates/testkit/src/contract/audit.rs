//! The audit trail: every field kept, each filter and scope of a query, cursor pages,
//! pruning in batches, and never a secret in any column.

use llm_settings_domain::ports::AuditLog;
use llm_settings_domain::{
    AuditAction, AuditEvent, AuditOutcome, AuditQuery, AuditRecord, AuditScope, CallStats,
    ConfigId, ConnectionTest, InstanceId, Owner, UserId,
};

use super::{actor, get, key_patch, service};
use crate::fixtures::{at, instance, provider, user, PLANTED_SECRET};
use crate::StoreFixture;

fn event(who: &str, owner: &Owner, action: AuditAction, secs: i64) -> AuditEvent {
    AuditEvent::new(who, owner.clone(), action, AuditOutcome::Success, at(secs))
}

fn user_id(id: &str) -> UserId {
    UserId::parse(id).expect("user id")
}

fn instance_id(id: &str) -> InstanceId {
    InstanceId::parse(id).expect("instance id")
}

async fn query<S: AuditLog>(store: &S, query: AuditQuery) -> Vec<AuditRecord> {
    store.query(query).await.expect("audit query")
}

fn events(records: &[AuditRecord]) -> Vec<AuditEvent> {
    records.iter().map(|r| r.event.clone()).collect()
}

/// Every field of an event reads back as written; a batch keeps its order in the ids.
pub async fn audit_round_trips_every_field<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let full = AuditEvent {
        on_behalf_of: Some(user_id("auth0|ursula")),
        instance: Some(instance_id("acme")),
        provider: Some(provider("anthropic")),
        config_id: Some(ConfigId(42)),
        call: Some(CallStats {
            latency_ms: 1234,
            upstream_status: Some(429),
            request_bytes: 2048,
            response_bytes: 5_000_000_000,
        }),
        ..AuditEvent::new(
            "service:gateway",
            instance("acme"),
            AuditAction::Gateway,
            AuditOutcome::Failure("rate_limited".into()),
            at(3),
        )
    };
    let no_status = AuditEvent {
        call: Some(CallStats {
            upstream_status: None,
            ..CallStats::default()
        }),
        ..event("service:resolver", &Owner::Global, AuditAction::Resolve, 4)
    };
    let bare = event("auth0|ursula", &user("ursula"), AuditAction::Create, 5);
    let batch = vec![full, no_status, bare];
    store.record_many(batch.clone()).await.expect("record many");
    store.record_many(Vec::new()).await.expect("an empty batch");

    let read = query(&*store, AuditQuery::newest(AuditScope::All, 10)).await;
    let mut oldest_first = events(&read);
    oldest_first.reverse();
    assert_eq!(oldest_first, batch);
    assert!(
        read.windows(2).all(|w| w[0].id > w[1].id),
        "newest (highest id) first"
    );
}

/// Each filter of a query narrows the events it returns; `limit` caps them.
pub async fn audit_query_filters<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let (acme, alice) = (instance("acme"), user("alice"));
    let all = [
        event("auth0|victor", &acme, AuditAction::Create, 1),
        AuditEvent {
            provider: Some(provider("openai")),
            ..event("auth0|victor", &acme, AuditAction::Test, 2)
        },
        event("auth0|wendy", &acme, AuditAction::Delete, 3),
        AuditEvent {
            provider: Some(provider("openai")),
            ..event("auth0|alice", &alice, AuditAction::Create, 4)
        },
        event("system:rewrap", &Owner::Global, AuditAction::Rewrap, 5),
    ];
    for e in &all {
        store.record(e.clone()).await.expect("record");
    }
    let newest = |limit| AuditQuery::newest(AuditScope::All, limit);
    let cases: Vec<(&str, AuditQuery, Vec<usize>)> = vec![
        ("everything", newest(10), vec![4, 3, 2, 1, 0]),
        ("limit", newest(2), vec![4, 3]),
        ("limit 0", newest(0), vec![]),
        (
            "owner",
            AuditQuery {
                owner: Some(acme.clone()),
                ..newest(10)
            },
            vec![2, 1, 0],
        ),
        (
            "actor",
            AuditQuery {
                actor: Some("auth0|victor".into()),
                ..newest(10)
            },
            vec![1, 0],
        ),
        (
            "action",
            AuditQuery {
                action: Some(AuditAction::Create),
                ..newest(10)
            },
            vec![3, 0],
        ),
        (
            "provider",
            AuditQuery {
                provider: Some(provider("openai")),
                ..newest(10)
            },
            vec![3, 1],
        ),
        (
            "since is inclusive",
            AuditQuery {
                since: Some(at(3)),
                ..newest(10)
            },
            vec![4, 3, 2],
        ),
        (
            "until is exclusive",
            AuditQuery {
                until: Some(at(3)),
                ..newest(10)
            },
            vec![1, 0],
        ),
        (
            "every filter at once",
            AuditQuery {
                owner: Some(acme.clone()),
                actor: Some("auth0|victor".into()),
                action: Some(AuditAction::Test),
                provider: Some(provider("openai")),
                since: Some(at(2)),
                until: Some(at(3)),
                ..newest(10)
            },
            vec![1],
        ),
    ];
    for (what, q, expected) in cases {
        let got = events(&query(&*store, q).await);
        let want: Vec<AuditEvent> = expected.iter().map(|&i| all[i].clone()).collect();
        assert_eq!(got, want, "{what}");
    }
}

/// A user sees the events on their own settings and the calls made on their behalf; an
/// instance the events on its settings and the calls made in it.
pub async fn audit_scopes_reach_owner_and_calls<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let (bob, acme) = (user("bob"), instance("acme"));
    let for_bob_in_acme = AuditEvent {
        on_behalf_of: Some(user_id("bob")),
        instance: Some(instance_id("acme")),
        ..event("service:app", &Owner::Global, AuditAction::Gateway, 3)
    };
    let all = [
        event("bob", &bob, AuditAction::Create, 1),
        event("admin", &acme, AuditAction::Update, 2),
        for_bob_in_acme,
        event("carol", &user("carol"), AuditAction::Create, 4),
        // An instance named like the user is not the user's.
        event("admin", &instance("bob"), AuditAction::Create, 5),
        AuditEvent {
            instance: Some(instance_id("other")),
            ..event("service:app", &Owner::Global, AuditAction::Resolve, 6)
        },
    ];
    store.record_many(all.to_vec()).await.expect("record");
    for (scope, expected) in [
        (AuditScope::User(user_id("bob")), vec![2, 0]),
        (AuditScope::Instance(instance_id("acme")), vec![2, 1]),
        (AuditScope::Instance(instance_id("bob")), vec![4]),
        (AuditScope::User(user_id("nobody")), vec![]),
        (AuditScope::All, vec![5, 4, 3, 2, 1, 0]),
    ] {
        let got = events(&query(&*store, AuditQuery::newest(scope.clone(), 10)).await);
        let want: Vec<AuditEvent> = expected.iter().map(|&i| all[i].clone()).collect();
        assert_eq!(got, want, "{scope:?}");
    }
    let scoped_and_filtered = AuditQuery {
        action: Some(AuditAction::Create),
        ..AuditQuery::newest(AuditScope::User(user_id("bob")), 10)
    };
    assert_eq!(
        events(&query(&*store, scoped_and_filtered).await),
        vec![all[0].clone()]
    );
}

/// Pages taken with `before_id` (the previous page's last id) walk every event once.
pub async fn audit_cursor_pages_without_overlap<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("paging");
    let written: Vec<AuditEvent> = (0..11)
        .map(|i| event("pager", &owner, AuditAction::Test, i))
        .collect();
    store.record_many(written.clone()).await.expect("record");
    store
        .record(event("other", &user("someone"), AuditAction::Test, 20))
        .await
        .expect("record other");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = query(
            &*store,
            AuditQuery {
                owner: Some(owner.clone()),
                before_id: cursor,
                ..AuditQuery::newest(AuditScope::All, 4)
            },
        )
        .await;
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        cursor = Some(last.id);
        seen.extend(events(&page));
    }
    let mut newest_first = written;
    newest_first.reverse();
    assert_eq!(seen, newest_first);
}

/// The times of the stored events, in seconds after `at(0)`, ascending.
async fn seconds_left<S: AuditLog>(store: &S) -> Vec<i64> {
    let mut left: Vec<i64> = query(store, AuditQuery::newest(AuditScope::All, 100))
        .await
        .iter()
        .map(|r| (r.event.at.unix_micros() - at(0).unix_micros()) / 1_000_000)
        .collect();
    left.sort_unstable();
    left
}

/// Pruning deletes at most a batch of the oldest events older than the cut-off, until none
/// older remain; newer events stay.
pub async fn audit_prune_deletes_the_oldest_in_batches<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("pruned");
    // Written out of time order: pruning goes by time, not by id.
    let secs = [4, 0, 6, 2, 1, 3, 5];
    let written: Vec<AuditEvent> = secs
        .iter()
        .map(|&s| event("pruner", &owner, AuditAction::Update, s))
        .collect();
    store.record_many(written.clone()).await.expect("record");

    assert_eq!(store.prune(at(5), 2).await.expect("prune"), 2);
    assert_eq!(
        seconds_left(&*store).await,
        vec![2, 3, 4, 5, 6],
        "the two oldest went"
    );
    assert_eq!(store.prune(at(5), 2).await.expect("prune"), 2);
    assert_eq!(store.prune(at(5), 2).await.expect("prune"), 1);
    assert_eq!(
        store.prune(at(5), 2).await.expect("prune"),
        0,
        "none older remain"
    );
    assert_eq!(seconds_left(&*store).await, vec![5, 6]);
    assert_eq!(store.prune(at(100), 0).await.expect("empty batch"), 0);
}

/// A planted key written, tested, changed and deleted through the service appears in no
/// audit column and in no stored byte.
pub async fn audit_never_holds_the_planted_secret<F: StoreFixture>(fx: &F) {
    let service = service(fx);
    let store = fx.store();
    let actor = actor("walter");
    let owner = actor.user_owner();
    let upsert = |value: &str| llm_settings_domain::service::UpsertRequest {
        provider: provider("openai"),
        changes: key_patch(value),
        make_default: true,
    };
    let config = service
        .upsert_config(&actor, &owner, upsert(PLANTED_SECRET))
        .await
        .expect("create")
        .into_config();
    let stored = get(&*store, &owner, config.id).await.expect("stored");
    let sealed = stored.secrets["api_key"].sealed.as_bytes();
    assert!(
        !sealed
            .windows(PLANTED_SECRET.len())
            .any(|w| w == PLANTED_SECRET.as_bytes()),
        "the store holds the sealed bytes, never the plaintext"
    );
    let result = service
        .test_connection(&actor, &owner, ConnectionTest::stored(provider("openai")))
        .await
        .expect("test");
    assert!(result.outcome.success && result.used_stored_secret);
    let mask = stored.secrets["api_key"].hints.lead3_last4.clone();
    service
        .upsert_config(&actor, &owner, upsert(&mask))
        .await
        .expect("a handed-out mask keeps the key");
    let wrong = service
        .upsert_config(&actor, &owner, upsert("sk-...ZZZZ"))
        .await;
    assert!(wrong.is_err(), "an unknown mask is refused");
    service
        .upsert_config(&actor, &owner, upsert(PLANTED_SECRET))
        .await
        .expect("same key");
    service
        .set_default(&actor, &owner, config.id)
        .await
        .expect("set default");
    service
        .delete_config(&actor, &owner, config.id)
        .await
        .expect("delete");

    let records = query(
        &*store,
        AuditQuery {
            owner: Some(owner.clone()),
            ..AuditQuery::newest(AuditScope::All, 100)
        },
    )
    .await;
    assert!(records.len() >= 6, "every change was audited: {records:?}");
    for action in [
        AuditAction::Create,
        AuditAction::Update,
        AuditAction::Test,
        AuditAction::SetDefault,
        AuditAction::Delete,
    ] {
        assert!(
            records.iter().any(|r| r.event.action == action),
            "{action:?} audited"
        );
    }
    let needles = [PLANTED_SECRET, "PLANTEDsecret", "secretVALUE0123"];
    for record in &records {
        // The debug form shows every column the row was read from.
        let text = format!("{record:?} {}", record.event.outcome.as_str());
        for needle in needles {
            assert!(
                !text.contains(needle),
                "audit row holds the planted secret: {text}"
            );
        }
    }
}
