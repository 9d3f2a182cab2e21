//! The example's flow end to end, and the contracts of its adapters.

use std::collections::BTreeMap;

use llm_settings_domain::ports::{
    AuditQueue, Clock, ConfigRepository, SecretCipher, SettingsDocumentRepository,
    TaskAssignmentRepository,
};
use llm_settings_domain::{
    AuditEvent, AuditOutcome, AuditRecord, ChainQuery, ChangeStep, ConfigId, ConfigWrite,
    ConnectionTest, DocumentWrite, Error, ForwardPath, GatewayCall, NewProviderConfig, OwnerChange,
    OwnerKind, ProviderId, SecretBinding, Timestamp,
};
use serde_json::json;

use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_750_000_000_000_000 + secs * 1_000_000).unwrap()
}

fn provider(id: &str) -> ProviderId {
    ProviderId::lookup(id).unwrap()
}

fn owner_user(id: &str) -> Owner {
    Owner::User(UserId::parse(id).unwrap())
}

fn acme() -> Owner {
    Owner::Instance(InstanceId::parse(INSTANCE).unwrap())
}

/// A store and a service over it, holding the example's keys and task assignment.
async fn seeded() -> (Arc<MemoryStore>, SettingsService) {
    let store = Arc::new(MemoryStore::new());
    let settings = settings_service(Arc::clone(&store));
    seed(&settings).await.unwrap();
    (store, settings)
}

async fn resolve(settings: &SettingsService, request: ResolveRequest) -> ResolvedCredential {
    settings
        .resolve(&service().unwrap(), request)
        .await
        .unwrap()
}

fn plaintext(credential: &ResolvedCredential) -> &str {
    credential.secrets["api_key"].expose()
}

#[tokio::test]
async fn each_call_gets_the_first_key_along_the_chain() {
    let (_, settings) = seeded().await;

    let alice = resolve(&settings, call("alice", INSTANCE, Some(TASK)).unwrap()).await;
    assert_eq!(alice.resolution.source.owner, owner_user("alice"));
    assert_eq!(plaintext(&alice), ALICE_KEY);
    assert_eq!(alice.resolution.model.as_deref(), Some(TASK_MODEL));
    assert_eq!(
        alice.resolution.task.as_ref().map(TaskName::as_str),
        Some(TASK)
    );

    let bob = resolve(&settings, call("bob", INSTANCE, Some(TASK)).unwrap()).await;
    assert_eq!(bob.resolution.source.owner, acme());
    assert_eq!(plaintext(&bob), INSTANCE_KEY);
    assert_eq!(bob.resolution.model.as_deref(), Some(TASK_MODEL));

    let carol = resolve(&settings, call("carol", "globex", None).unwrap()).await;
    assert_eq!(carol.resolution.source.owner, Owner::Global);
    assert_eq!(plaintext(&carol), GLOBAL_KEY);
    assert_eq!(carol.resolution.model.as_deref(), Some("gpt-4o"));
    assert_eq!(
        carol.resolution.base_url.as_deref(),
        Some("https://api.openai.com/v1")
    );
}

#[tokio::test]
async fn the_printed_line_shows_the_masked_key_only() {
    let (_, settings) = seeded().await;
    let alice = resolve(&settings, call("alice", INSTANCE, Some(TASK)).unwrap()).await;
    let line = describe("alice", &alice);
    assert!(line.contains("source=user:alice"), "{line}");
    assert!(line.contains("key=sk-...A1ce"), "{line}");
    assert!(!line.contains(ALICE_KEY), "{line}");
}

#[tokio::test]
async fn sources_narrow_the_chain_and_only_services_resolve() {
    let (_, settings) = seeded().await;
    let request = ResolveRequest {
        sources: Some(vec![OwnerKind::User]),
        ..call("bob", INSTANCE, Some(TASK)).unwrap()
    };
    let err = settings.resolve(&service().unwrap(), request).await;
    assert_eq!(err.unwrap_err().code(), "task_not_assigned");

    let request = call("alice", INSTANCE, Some(TASK)).unwrap();
    for actor in [user("alice").unwrap(), superadmin().unwrap()] {
        let err = settings.resolve(&actor, request.clone()).await.unwrap_err();
        assert_eq!(err.code(), "forbidden");
    }
}

#[tokio::test]
async fn resolutions_are_audited_without_the_key() {
    let (store, settings) = seeded().await;
    resolve(&settings, call("alice", INSTANCE, Some(TASK)).unwrap()).await;
    let refused = call("bob", "globex", Some(TASK)).unwrap();
    assert!(settings
        .resolve(&service().unwrap(), refused)
        .await
        .is_err());

    let query = AuditQuery {
        action: Some(AuditAction::Resolve),
        ..AuditQuery::newest(AuditScope::All, 100)
    };
    let events: Vec<AuditEvent> = store
        .query(query)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.event)
        .collect();
    assert_eq!(events.len(), 2);
    let answered = &events[1];
    assert_eq!(answered.actor, "app-backend");
    assert_eq!(answered.on_behalf_of, Some(UserId::parse("alice").unwrap()));
    assert_eq!(answered.owner, owner_user("alice"));
    assert_eq!(answered.outcome, AuditOutcome::Success);
    assert!(answered.config_id.is_some());
    assert_eq!(
        events[0].outcome,
        AuditOutcome::Failure("task_not_assigned".into())
    );

    let everything = store.query(AuditQuery::newest(AuditScope::All, 100));
    let trail = format!("{:?}", everything.await.unwrap());
    for key in [ALICE_KEY, INSTANCE_KEY, GLOBAL_KEY] {
        assert!(!trail.contains(key));
    }
}

#[test]
fn sealed_keys_open_only_under_their_binding_and_key() {
    let cipher = XChaChaCipher::generate();
    let openai = provider("openai");
    let binding = SecretBinding::new(&owner_user("alice"), openai, "api_key");
    let sealed = cipher.seal(&SecretValue::new(ALICE_KEY), &binding).unwrap();
    assert!(!String::from_utf8_lossy(sealed.as_bytes()).contains("alice-0000"));
    assert_eq!(cipher.open(&sealed, &binding).unwrap().expose(), ALICE_KEY);
    assert!(cipher.is_current(&sealed));

    let moved = SecretBinding::new(&acme(), openai, "api_key");
    assert_eq!(cipher.open(&sealed, &moved), Err(Error::SecretUnreadable));
    let mut tampered = sealed.as_bytes().to_vec();
    if let Some(last) = tampered.last_mut() {
        *last ^= 1;
    }
    let tampered = llm_settings_domain::SealedSecret::from_bytes(tampered);
    assert_eq!(
        cipher.open(&tampered, &binding),
        Err(Error::SecretUnreadable)
    );
    let other = XChaChaCipher::generate();
    assert!(!other.is_current(&sealed));
    assert_eq!(other.open(&sealed, &binding), Err(Error::SecretUnreadable));
    let rewrapped = cipher.rewrap(&sealed, &binding).unwrap();
    assert_ne!(rewrapped, sealed);
    assert_eq!(
        cipher.open(&rewrapped, &binding).unwrap().expose(),
        ALICE_KEY
    );
}

fn new_config(owner: &Owner, provider_id: &str, enabled: bool) -> NewProviderConfig {
    NewProviderConfig {
        owner: owner.clone(),
        provider: provider(provider_id),
        secrets: BTreeMap::new(),
        settings: BTreeMap::new(),
        model: None,
        base_url: None,
        enabled,
        make_default: false,
        now: t(0),
    }
}

fn write_of(config: &ProviderConfig, model: &str) -> ConfigWrite {
    ConfigWrite {
        id: config.id,
        owner: config.owner.clone(),
        expected_version: config.version,
        secrets: config.secrets.clone(),
        settings: config.settings.clone(),
        model: Some(ModelName::parse(model).unwrap()),
        base_url: None,
        enabled: config.enabled,
        make_default: false,
        now: t(5),
    }
}

fn change(owner: &Owner, steps: Vec<ChangeStep>) -> OwnerChange {
    OwnerChange {
        steps,
        ..OwnerChange::new(owner.clone(), t(5))
    }
}

#[tokio::test]
async fn a_failing_last_step_leaves_nothing_changed() {
    let store = MemoryStore::new();
    let alice = owner_user("alice");
    let first = store
        .insert(new_config(&alice, "openai", true))
        .await
        .unwrap();
    let before = ConfigRepository::list(&store, &alice).await.unwrap();

    let steps = vec![
        ChangeStep::Insert(new_config(&alice, "anthropic", true)),
        ChangeStep::Update(write_of(&first, "gpt-4.1")),
        ChangeStep::SetDefault { id: first.id },
        ChangeStep::Delete {
            id: ConfigId(999),
            expected_version: 1,
        },
    ];
    let err = store.apply(change(&alice, steps)).await.unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert_eq!(
        ConfigRepository::list(&store, &alice).await.unwrap(),
        before
    );

    let mut with_document = change(&alice, vec![ChangeStep::Update(write_of(&first, "o3"))]);
    with_document.document = Some(DocumentWrite {
        document: json!({"ai": {"temperature": 0.2}}),
        expected_version: Some(4),
    });
    let err = store.apply(with_document).await.unwrap_err();
    assert_eq!(err.code(), "conflict");
    assert_eq!(
        ConfigRepository::list(&store, &alice).await.unwrap(),
        before
    );
    assert_eq!(
        SettingsDocumentRepository::get(&store, &alice)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_whole_change_lands_together() {
    let store = MemoryStore::new();
    let alice = owner_user("alice");
    let first = store
        .insert(new_config(&alice, "openai", true))
        .await
        .unwrap();
    let mut whole = change(
        &alice,
        vec![
            ChangeStep::Update(write_of(&first, "gpt-4.1")),
            ChangeStep::Insert(new_config(&alice, "anthropic", true)),
            ChangeStep::SetDefault { id: ConfigId(2) },
        ],
    );
    whole.document = Some(DocumentWrite {
        document: json!({"ai": {"temperature": 0.2}}),
        expected_version: None,
    });
    let outcome = store.apply(whole).await.unwrap();
    let flags: Vec<(i64, bool, i64)> = outcome
        .configs
        .iter()
        .map(|c| (c.id.0, c.is_default, c.version))
        .collect();
    assert_eq!(flags, [(1, false, 2), (2, true, 2)]);
    assert_eq!(
        outcome.configs[0].model.as_ref().unwrap().as_str(),
        "gpt-4.1"
    );
    assert_eq!(outcome.document.unwrap().version, 1);
    assert_eq!(
        ConfigRepository::list(&store, &alice).await.unwrap(),
        outcome.configs
    );
}

#[tokio::test]
async fn each_step_fails_with_its_documented_error() {
    let store = MemoryStore::new();
    let alice = owner_user("alice");
    let first = store
        .insert(new_config(&alice, "openai", true))
        .await
        .unwrap();
    let off = store
        .insert(new_config(&alice, "groq", false))
        .await
        .unwrap();
    let mut stale = write_of(&first, "gpt-4.1");
    stale.expected_version = 7;
    let mut missing = write_of(&first, "gpt-4.1");
    missing.id = ConfigId(999);
    let cases = [
        (ChangeStep::RequireNoDefault, "conflict"),
        (
            ChangeStep::Insert(new_config(&alice, "openai", true)),
            "conflict",
        ),
        (ChangeStep::Update(stale), "conflict"),
        (ChangeStep::Update(missing), "not_found"),
        (
            ChangeStep::Delete {
                id: first.id,
                expected_version: 9,
            },
            "conflict",
        ),
        (
            ChangeStep::Delete {
                id: ConfigId(999),
                expected_version: 1,
            },
            "not_found",
        ),
        (ChangeStep::SetDefault { id: off.id }, "conflict"),
        (ChangeStep::SetDefault { id: ConfigId(999) }, "not_found"),
    ];
    for (step, code) in cases {
        let label = format!("{step:?}");
        let err = store.apply(change(&alice, vec![step])).await.unwrap_err();
        assert_eq!(err.code(), code, "{label}");
    }

    let bob = owner_user("bob");
    let bobs = store
        .insert(new_config(&bob, "openai", true))
        .await
        .unwrap();
    for step in [
        ChangeStep::Update(write_of(&bobs, "gpt-4.1")),
        ChangeStep::Delete {
            id: bobs.id,
            expected_version: 1,
        },
        ChangeStep::Insert(new_config(&bob, "mistral", true)),
    ] {
        let err = store.apply(change(&alice, vec![step])).await.unwrap_err();
        assert_eq!(err.code(), "internal_error");
    }
    assert_eq!(ConfigRepository::list(&store, &bob).await.unwrap(), [bobs]);
}

#[tokio::test]
async fn the_chain_is_read_once_with_enabled_configs_and_the_tasks_assignments() {
    let store = MemoryStore::new();
    let (alice, stranger) = (owner_user("alice"), owner_user("mallory"));
    store
        .insert(new_config(&alice, "openai", true))
        .await
        .unwrap();
    store
        .insert(new_config(&alice, "groq", false))
        .await
        .unwrap();
    store
        .insert(new_config(&acme(), "anthropic", true))
        .await
        .unwrap();
    store
        .insert(new_config(&stranger, "openai", true))
        .await
        .unwrap();
    let summarize = TaskAssignment {
        task: TaskName::parse(TASK).unwrap(),
        provider: provider("anthropic"),
        model: ModelName::parse("claude-sonnet-4").unwrap(),
    };
    store
        .upsert(&acme(), vec![summarize.clone()], t(0))
        .await
        .unwrap();

    let query = ChainQuery {
        owners: vec![alice.clone(), acme(), Owner::Global],
        provider: None,
        task: Some(summarize.task.clone()),
    };
    let snapshot = store.load_chain(query.clone()).await.unwrap();
    let seen: Vec<(&Owner, &str)> = snapshot
        .configs
        .iter()
        .map(|c| (&c.owner, c.provider.as_str()))
        .collect();
    assert_eq!(seen, [(&alice, "openai"), (&acme(), "anthropic")]);
    assert_eq!(snapshot.assignments, [(acme(), summarize)]);

    let only_openai = ChainQuery {
        provider: Some(provider("openai")),
        task: None,
        ..query
    };
    let snapshot = store.load_chain(only_openai).await.unwrap();
    assert_eq!(snapshot.configs.len(), 1);
    assert!(snapshot.assignments.is_empty());
}

fn event(owner: Owner, on_behalf_of: Option<&str>, at: i64) -> AuditEvent {
    AuditEvent {
        on_behalf_of: on_behalf_of.map(|u| UserId::parse(u).unwrap()),
        ..AuditEvent::new(
            "app-backend",
            owner,
            AuditAction::Resolve,
            AuditOutcome::Success,
            t(at),
        )
    }
}

#[tokio::test]
async fn the_audit_trail_is_read_by_scope_and_pruned_oldest_first() {
    let store = MemoryStore::new();
    store
        .record(event(owner_user("alice"), None, 3))
        .await
        .unwrap();
    store
        .record_many(vec![
            event(acme(), Some("alice"), 1),
            event(Owner::Global, Some("bob"), 2),
        ])
        .await
        .unwrap();
    store.submit(event(owner_user("bob"), None, 4));

    let alice = AuditScope::User(UserId::parse("alice").unwrap());
    let ids = |records: Vec<AuditRecord>| records.iter().map(|r| r.id).collect::<Vec<_>>();
    let seen = store
        .query(AuditQuery::newest(alice.clone(), 10))
        .await
        .unwrap();
    assert_eq!(ids(seen), [2, 1]);
    let instance = AuditScope::Instance(InstanceId::parse(INSTANCE).unwrap());
    let seen = store.query(AuditQuery::newest(instance, 10)).await.unwrap();
    assert_eq!(ids(seen), [2]);
    let page = AuditQuery {
        before_id: Some(4),
        since: Some(t(2)),
        ..AuditQuery::newest(AuditScope::All, 1)
    };
    assert_eq!(ids(store.query(page).await.unwrap()), [3]);

    assert_eq!(store.prune(t(4), 1).await.unwrap(), 1);
    let left = store.query(AuditQuery::newest(AuditScope::All, 10)).await;
    assert_eq!(ids(left.unwrap()), [4, 3, 1]);
    assert_eq!(store.prune(t(4), 10).await.unwrap(), 2);
    assert_eq!(store.prune(t(4), 10).await.unwrap(), 0);
}

#[tokio::test]
async fn keys_test_offline_and_the_gateway_forwards_nothing() {
    let (store, settings) = seeded().await;
    let alice = user("alice").unwrap();
    let test = ConnectionTest::stored(provider("openai"));
    let tested = settings
        .test_connection(&alice, &alice.user_owner(), test)
        .await
        .unwrap();
    assert!(tested.outcome.success && tested.used_stored_secret);

    let call = GatewayCall {
        provider: provider("openai"),
        on_behalf_of: Some(UserId::parse("alice").unwrap()),
        instance: None,
        method: "POST".into(),
        path: ForwardPath::parse("chat/completions").unwrap(),
        query: None,
        headers: Vec::new(),
        body: Default::default(),
        fallback: false,
    };
    let err = settings
        .gateway(&service().unwrap(), call)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_invalid");
    let query = AuditQuery {
        action: Some(AuditAction::Gateway),
        ..AuditQuery::newest(AuditScope::All, 10)
    };
    let queued = store.query(query).await.unwrap();
    assert_eq!(queued.len(), 1, "the audit queue writes to the same log");
    assert!(SystemClock.now() > t(0));
}
