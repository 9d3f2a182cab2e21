//! The store contract: every case runs unchanged against every store adapter through
//! [`store_contract_tests!`](crate::store_contract_tests). A case panics on a broken rule.
//!
//! The cases of this module cover the single-operation methods; the submodules cover
//! atomic owner changes, resolution chains, the audit trail and what every store must do
//! the same way with storage itself.

mod audit;
mod chain;
mod changes;
mod storage;

pub use audit::*;
pub use chain::*;
pub use changes::*;
pub use storage::*;

use std::collections::BTreeMap;
use std::sync::Arc;

use llm_settings_domain::ports::{
    ConfigRepository, SettingsDocumentRepository, SystemClock, TaskAssignmentRepository,
};
use llm_settings_domain::service::{Ports, UpsertRequest};
use llm_settings_domain::values::BaseUrl;
use llm_settings_domain::{
    Actor, Catalog, ConfigId, ConfigPatch, Error, FailureClass, Owner, Patch, ProviderConfig,
    Scope, SealedSecret, SecretValue, SettingsService, TaskAssignment, TaskName, TestRecord,
    UpsertOutcome, UserId,
};
use serde_json::json;
use tokio::task::JoinSet;

use crate::fixtures::{
    at, instance, model, new_config, now, provider, stored_secret, unchanged, user, AcceptingProbe,
    FakeCipher, NoCalls, StoreQueue,
};
use crate::StoreFixture;

async fn list<S: ConfigRepository>(store: &S, owner: &Owner) -> Vec<ProviderConfig> {
    ConfigRepository::list(store, owner)
        .await
        .expect("list configs")
}

async fn get<S: ConfigRepository>(
    store: &S,
    owner: &Owner,
    id: ConfigId,
) -> Option<ProviderConfig> {
    ConfigRepository::get(store, owner, id)
        .await
        .expect("get config")
}

async fn insert<S: ConfigRepository>(store: &S, owner: &Owner, name: &str) -> ProviderConfig {
    store
        .insert(new_config(owner, name, now()))
        .await
        .unwrap_or_else(|e| panic!("insert {name}: {e}"))
}

fn defaults(configs: &[ProviderConfig]) -> Vec<ConfigId> {
    configs
        .iter()
        .filter(|c| c.is_default)
        .map(|c| c.id)
        .collect()
}

fn assert_conflict<T: std::fmt::Debug>(result: llm_settings_domain::Result<T>, what: &str) {
    match result {
        Err(Error::Conflict(_)) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: llm_settings_domain::Result<T>, what: &str) {
    match result {
        Err(Error::NotFound(_)) => {}
        other => panic!("{what}: expected not found, got {other:?}"),
    }
}

/// Insert stores every field exactly (microsecond timestamps included) at version 1.
pub async fn insert_round_trips_every_field<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("alice");
    let mut new = new_config(&owner, "azure", at(0));
    new.secrets.insert(
        "api_key".into(),
        stored_secret("azure-key-0123456789abcdef"),
    );
    new.secrets
        .insert("extra".into(), stored_secret("second-secret-value-0123"));
    new.settings = BTreeMap::from([
        (
            "endpoint".to_owned(),
            "https://example.openai.azure.com".to_owned(),
        ),
        ("deployment".to_owned(), "gpt-4o-prod".to_owned()),
        ("api_version".to_owned(), "2024-06-01".to_owned()),
        (
            "note".to_owned(),
            "ünïcödé \"quoted\" nul\u{0}inside".to_owned(),
        ),
    ]);
    new.model = Some(model("gpt-4o"));
    new.base_url = Some(BaseUrl::parse("https://example.openai.azure.com/openai").unwrap());
    let created = store.insert(new.clone()).await.expect("insert");

    assert!(created.id.0 > 0);
    assert_eq!(created.owner, owner);
    assert_eq!(created.provider, provider("azure"));
    assert_eq!(created.secrets, new.secrets);
    assert_eq!(created.settings, new.settings);
    assert_eq!(created.model, new.model);
    assert_eq!(created.base_url, new.base_url);
    assert!(created.enabled);
    assert_eq!(created.version, 1);
    assert_eq!(created.last_test, None);
    assert_eq!(
        created.created_at,
        at(0),
        "created_at must round-trip to the microsecond"
    );
    assert_eq!(created.updated_at, at(0));
    assert_eq!(
        get(&*store, &owner, created.id).await,
        Some(created.clone())
    );

    let bare = store
        .insert(llm_settings_domain::NewProviderConfig {
            secrets: BTreeMap::new(),
            settings: BTreeMap::new(),
            model: None,
            ..new_config(&owner, "ollama", at(1))
        })
        .await
        .expect("insert without secrets");
    assert!(bare.secrets.is_empty() && bare.settings.is_empty() && bare.model.is_none());
    assert!(bare.id > created.id, "ids grow");
}

/// The first enabled config of an owner becomes its default; later ones do not.
pub async fn first_config_becomes_default<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("bob");
    let first = insert(&*store, &owner, "openai").await;
    let second = insert(&*store, &owner, "anthropic").await;
    assert!(first.is_default, "first config is the default");
    assert!(!second.is_default, "second config is not");
    let found = store.find_default(&owner).await.expect("find default");
    assert_eq!(found.map(|c| c.id), Some(first.id));

    let global = Owner::Global;
    let g = insert(&*store, &global, "openai").await;
    assert!(g.is_default, "defaults are per owner");
    assert!(
        get(&*store, &owner, first.id)
            .await
            .expect("still there")
            .is_default
    );
}

/// A disabled config never becomes the default, not even as the owner's first.
pub async fn disabled_config_is_never_default<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("carol");
    let mut new = new_config(&owner, "openai", now());
    new.enabled = false;
    new.make_default = true;
    let disabled = store.insert(new).await.expect("insert disabled");
    assert!(!disabled.is_default);
    assert!(store
        .find_default(&owner)
        .await
        .expect("find default")
        .is_none());
    let second = insert(&*store, &owner, "anthropic").await;
    assert!(!second.is_default, "the owner already has a config");
}

/// `make_default` on insert moves the default in the same transaction.
pub async fn insert_with_make_default_moves_the_default<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = instance("acme");
    let first = insert(&*store, &owner, "openai").await;
    let mut new = new_config(&owner, "anthropic", now());
    new.make_default = true;
    let second = store.insert(new).await.expect("insert default");
    assert!(second.is_default);
    let all = list(&*store, &owner).await;
    assert_eq!(defaults(&all), vec![second.id]);
    assert!(!all[0].is_default && all[0].id == first.id);
}

/// A second config for the same owner and provider is a conflict; the first is untouched.
pub async fn duplicate_provider_is_a_conflict<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("dave");
    let first = insert(&*store, &owner, "openai").await;
    let mut again = new_config(&owner, "openai", now());
    again.make_default = true;
    assert_conflict(store.insert(again).await, "duplicate insert");
    assert_eq!(list(&*store, &owner).await, vec![first]);
    // The same provider for another owner is fine.
    insert(&*store, &user("dave2"), "openai").await;
}

/// Listing is ordered by id and shows only the owner's configs.
pub async fn list_is_ordered_and_scoped<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let a = user("erin");
    let b = instance("erin");
    let mut ids = Vec::new();
    for name in ["mistral", "openai", "groq"] {
        ids.push(insert(&*store, &a, name).await.id);
        insert(&*store, &b, name).await;
    }
    let listed: Vec<ConfigId> = list(&*store, &a).await.iter().map(|c| c.id).collect();
    assert_eq!(listed, ids);
    assert!(list(&*store, &user("nobody")).await.is_empty());
    assert!(list(&*store, &Owner::Global).await.is_empty());
}

/// Lookup by provider finds the owner's config and nothing else.
pub async fn find_by_provider_is_scoped<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("frank");
    let created = insert(&*store, &owner, "gemini").await;
    let found = store
        .find_by_provider(&owner, provider("gemini"))
        .await
        .expect("find");
    assert_eq!(found, Some(created));
    assert!(store
        .find_by_provider(&owner, provider("openai"))
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_by_provider(&user("frank2"), provider("gemini"))
        .await
        .expect("find")
        .is_none());
}

/// Update replaces the mutable fields, bumps the version and keeps `created_at`.
pub async fn update_replaces_fields_and_bumps_version<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("grace");
    let mut new = new_config(&owner, "openai", at(0));
    new.secrets
        .insert("second".into(), stored_secret("to-be-removed-0123456789"));
    let created = store.insert(new).await.expect("insert");

    let mut write = unchanged(&created, at(60));
    write.secrets = BTreeMap::from([(
        "api_key".to_owned(),
        stored_secret("sk-rotated-0123456789abcdef"),
    )]);
    write.settings = BTreeMap::from([("project".to_owned(), "proj-9".to_owned())]);
    write.model = None;
    write.base_url = Some(BaseUrl::parse("https://proxy.example.com/v1").unwrap());
    let updated = store.update(write.clone()).await.expect("update");

    assert_eq!(updated.id, created.id);
    assert_eq!(updated.version, 2);
    assert_eq!(
        updated.secrets, write.secrets,
        "removed secret fields are gone"
    );
    assert_eq!(updated.settings, write.settings);
    assert_eq!(updated.model, None);
    assert_eq!(updated.base_url, write.base_url);
    assert_eq!(updated.created_at, at(0));
    assert_eq!(updated.updated_at, at(60));
    assert!(updated.is_default, "an enabled default stays the default");
    assert_eq!(
        get(&*store, &owner, created.id).await,
        Some(updated.clone())
    );

    let again = store
        .update(unchanged(&updated, at(61)))
        .await
        .expect("second update");
    assert_eq!(again.version, 3);
}

/// An update carrying a stale version fails as a conflict and changes nothing.
pub async fn stale_update_is_a_conflict<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("heidi");
    let created = insert(&*store, &owner, "openai").await;
    let fresh = store
        .update(unchanged(&created, now()))
        .await
        .expect("update");
    let mut stale = unchanged(&created, now());
    stale.model = Some(model("stale-model"));
    assert_conflict(store.update(stale).await, "stale update");
    assert_eq!(get(&*store, &owner, created.id).await, Some(fresh));
}

/// Disabling the default clears the flag; `make_default` on update moves it.
pub async fn update_moves_or_clears_the_default<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("ivan");
    let first = insert(&*store, &owner, "openai").await;
    let second = insert(&*store, &owner, "anthropic").await;

    let mut promote = unchanged(&second, now());
    promote.make_default = true;
    let second = store.update(promote).await.expect("make default");
    assert!(second.is_default);
    assert_eq!(defaults(&list(&*store, &owner).await), vec![second.id]);

    let mut disable = unchanged(&second, now());
    disable.enabled = false;
    let second = store.update(disable).await.expect("disable");
    assert!(!second.is_default && !second.enabled);
    assert!(
        defaults(&list(&*store, &owner).await).is_empty(),
        "nothing is promoted"
    );

    let mut disabled_default = unchanged(&second, now());
    disabled_default.make_default = true;
    let second = store
        .update(disabled_default)
        .await
        .expect("make_default while disabled");
    assert!(
        !second.is_default,
        "a disabled config cannot become the default"
    );

    let first = get(&*store, &owner, first.id).await.expect("first");
    let mut promote = unchanged(&first, now());
    promote.make_default = true;
    assert!(
        store
            .update(promote)
            .await
            .expect("promote first")
            .is_default
    );
}

/// Updating a config that does not exist is not found.
pub async fn update_of_missing_config_is_not_found<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("judy");
    let created = insert(&*store, &owner, "openai").await;
    let mut write = unchanged(&created, now());
    write.id = ConfigId(created.id.0 + 1000);
    assert_not_found(store.update(write).await, "update of a missing id");
}

/// Set-default moves the flag atomically and bumps the version of the new default.
pub async fn set_default_moves_the_flag<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("ken");
    let first = insert(&*store, &owner, "openai").await;
    let second = insert(&*store, &owner, "anthropic").await;
    let made = store
        .set_default(&owner, second.id, at(5))
        .await
        .expect("set default");
    assert!(made.is_default);
    assert_eq!(made.version, second.version + 1);
    assert_eq!(made.updated_at, at(5));
    assert_eq!(defaults(&list(&*store, &owner).await), vec![second.id]);
    let again = store
        .set_default(&owner, second.id, now())
        .await
        .expect("idempotent");
    assert!(again.is_default);
    let back = store
        .set_default(&owner, first.id, now())
        .await
        .expect("back");
    assert!(back.is_default);
    assert_eq!(defaults(&list(&*store, &owner).await), vec![first.id]);
}

/// Set-default refuses a disabled config and a missing one.
pub async fn set_default_refuses_disabled_and_missing<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("leo");
    let first = insert(&*store, &owner, "openai").await;
    let mut new = new_config(&owner, "anthropic", now());
    new.enabled = false;
    let disabled = store.insert(new).await.expect("insert disabled");
    assert_conflict(
        store.set_default(&owner, disabled.id, now()).await,
        "disabled default",
    );
    assert_not_found(
        store
            .set_default(&owner, ConfigId(disabled.id.0 + 1000), now())
            .await,
        "missing default",
    );
    assert_eq!(defaults(&list(&*store, &owner).await), vec![first.id]);
}

/// Deleting the default promotes nothing; its secrets go with it.
pub async fn delete_promotes_nothing<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("mallory");
    let first = insert(&*store, &owner, "openai").await;
    let second = insert(&*store, &owner, "anthropic").await;
    ConfigRepository::delete(&*store, &owner, first.id)
        .await
        .expect("delete");
    assert!(get(&*store, &owner, first.id).await.is_none());
    assert_eq!(list(&*store, &owner).await, vec![second.clone()]);
    assert!(store
        .find_default(&owner)
        .await
        .expect("find default")
        .is_none());
    assert_not_found(
        ConfigRepository::delete(&*store, &owner, first.id).await,
        "second delete",
    );
    // The provider slot is free again and the new config starts clean.
    let again = store
        .insert(new_config(&owner, "openai", now()))
        .await
        .expect("re-insert");
    assert_eq!(again.version, 1);
    assert_eq!(again.secrets.len(), 1);
    assert!(!again.is_default, "the owner still has another config");
}

/// Recording a test outcome keeps the version and `updated_at`.
pub async fn record_test_keeps_the_version<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("niaj");
    let created = store
        .insert(new_config(&owner, "openai", at(0)))
        .await
        .expect("insert");
    let failed = TestRecord {
        at: at(30),
        success: false,
        latency_ms: 1234,
        failure: Some(FailureClass::RateLimited),
        message: "rate limited; retry in 20 s".into(),
    };
    store
        .record_test(&owner, created.id, failed.clone())
        .await
        .expect("record");
    let read = get(&*store, &owner, created.id).await.expect("config");
    assert_eq!(read.last_test, Some(failed));
    assert_eq!(read.version, created.version);
    assert_eq!(read.updated_at, created.updated_at);

    let ok = TestRecord {
        at: at(40),
        success: true,
        latency_ms: 85,
        failure: None,
        message: String::new(),
    };
    store
        .record_test(&owner, created.id, ok.clone())
        .await
        .expect("record");
    assert_eq!(
        get(&*store, &owner, created.id)
            .await
            .expect("config")
            .last_test,
        Some(ok)
    );
    assert_not_found(
        store
            .record_test(&owner, ConfigId(created.id.0 + 1000), ok_record())
            .await,
        "record on a missing id",
    );
}

fn ok_record() -> TestRecord {
    TestRecord {
        at: now(),
        success: true,
        latency_ms: 1,
        failure: None,
        message: "ok".into(),
    }
}

/// Paging walks every owner's configs in id order.
pub async fn page_all_walks_every_owner<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let mut expected = Vec::new();
    for (i, owner) in [user("olivia"), instance("olivia"), Owner::Global]
        .iter()
        .enumerate()
    {
        for name in ["openai", "anthropic"] {
            let mut new = new_config(owner, name, now());
            new.secrets.insert(
                format!("extra{i}"),
                stored_secret("another-secret-0123456789"),
            );
            expected.push(store.insert(new).await.expect("insert").id);
        }
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.page_all(after, 4).await.expect("page");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for config in &page {
            assert_eq!(
                config.secrets.len(),
                2,
                "a page carries every secret of a config"
            );
        }
        seen.extend(page.iter().map(|c| c.id));
    }
    assert_eq!(seen, expected);
}

/// Key rotation swaps sealed bytes only while the version still matches.
pub async fn replace_sealed_is_guarded_by_version<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("peggy");
    let created = insert(&*store, &owner, "openai").await;
    let rewrapped = SealedSecret::from_bytes(b"rewrapped-under-key-2".to_vec());
    let swap = BTreeMap::from([("api_key".to_owned(), rewrapped.clone())]);

    assert!(store
        .replace_sealed(created.id, created.version, swap.clone())
        .await
        .expect("swap"));
    let read = get(&*store, &owner, created.id).await.expect("config");
    assert_eq!(read.secrets["api_key"].sealed, rewrapped);
    assert_eq!(
        read.secrets["api_key"].hints,
        created.secrets["api_key"].hints
    );
    assert_eq!(
        read.version, created.version,
        "rotation does not bump the version"
    );

    let moved = store.update(unchanged(&read, now())).await.expect("update");
    assert!(!store
        .replace_sealed(created.id, created.version, swap.clone())
        .await
        .expect("stale swap"));
    assert_eq!(get(&*store, &owner, created.id).await, Some(moved.clone()));
    let unknown = BTreeMap::from([("no_such_field".to_owned(), rewrapped.clone())]);
    assert!(!store
        .replace_sealed(moved.id, moved.version, unknown)
        .await
        .expect("unknown field"));
    assert!(!store
        .replace_sealed(ConfigId(moved.id.0 + 1000), 1, swap)
        .await
        .expect("missing row"));
}

/// A user never reads or changes another owner's config by id.
pub async fn owners_are_isolated<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("42");
    let victim = insert(&*store, &owner, "openai").await;
    for intruder in [user("43"), instance("42"), Owner::Global] {
        insert(&*store, &intruder, "anthropic").await;
        assert!(get(&*store, &intruder, victim.id).await.is_none());
        assert!(store
            .find_by_provider(&intruder, provider("openai"))
            .await
            .expect("find")
            .is_none());
        let mut write = unchanged(&victim, now());
        write.owner = intruder.clone();
        write.make_default = true;
        assert_not_found(store.update(write).await, "foreign update");
        assert_not_found(
            store.set_default(&intruder, victim.id, now()).await,
            "foreign default",
        );
        assert_not_found(
            store.record_test(&intruder, victim.id, ok_record()).await,
            "foreign test",
        );
        assert_not_found(
            ConfigRepository::delete(&*store, &intruder, victim.id).await,
            "foreign delete",
        );
        let theirs = list(&*store, &intruder).await;
        assert!(theirs.iter().all(|c| c.owner == intruder));
        assert_eq!(
            defaults(&theirs).len(),
            1,
            "the intruder keeps its own default"
        );
    }
    assert_eq!(get(&*store, &owner, victim.id).await, Some(victim));
}

fn service<F: StoreFixture>(fx: &F) -> SettingsService {
    let store = fx.store();
    SettingsService::new(
        Ports {
            configs: store.clone(),
            tasks: store.clone(),
            documents: store.clone(),
            audit: store.clone(),
            cipher: Arc::new(FakeCipher),
            probe: Arc::new(AcceptingProbe),
            client: Arc::new(NoCalls),
            audit_queue: Arc::new(StoreQueue(store)),
            clock: Arc::new(SystemClock),
        },
        Catalog::all(),
    )
}

fn actor(subject: &str) -> Actor {
    Actor::new(
        UserId::parse(subject).expect("subject"),
        [Scope::Read, Scope::Write],
        [],
        None,
    )
}

fn key_patch(value: &str) -> ConfigPatch {
    ConfigPatch {
        secrets: BTreeMap::from([("api_key".to_owned(), Some(SecretValue::new(value)))]),
        ..ConfigPatch::default()
    }
}

/// Upsert through the service creates once, then updates the same row in place.
pub async fn upsert_creates_then_updates_in_place<F: StoreFixture>(fx: &F) {
    let service = service(fx);
    let actor = actor("rupert");
    let owner = actor.user_owner();
    let request = |value: &str, model_name: Option<&str>| UpsertRequest {
        provider: provider("anthropic"),
        changes: ConfigPatch {
            model: model_name.map_or(Patch::Keep, |m| Patch::Set(model(m))),
            ..key_patch(value)
        },
        make_default: false,
    };
    let created = match service
        .upsert_config(
            &actor,
            &owner,
            request("sk-ant-first-0123456789abcdef", Some("claude-a")),
        )
        .await
        .expect("create")
    {
        UpsertOutcome::Created(c) => c,
        other => panic!("expected a create, got {other:?}"),
    };
    assert!(created.is_default, "the first config becomes the default");
    let updated = match service
        .upsert_config(
            &actor,
            &owner,
            request("sk-ant-second-0123456789abcdef", None),
        )
        .await
        .expect("update")
    {
        UpsertOutcome::Updated(c) => c,
        other => panic!("expected an update, got {other:?}"),
    };
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(updated.version, 2);
    assert_eq!(
        updated.model,
        Some(model("claude-a")),
        "unset fields are kept"
    );
    assert_ne!(updated.secrets["api_key"], created.secrets["api_key"]);
    assert_eq!(updated.secrets["api_key"].hints.last4, "cdef");
    let configs = service.list_configs(&actor, &owner).await.expect("list");
    assert_eq!(configs, vec![updated]);
}

/// Task assignments: ordered by task, replaced by task name, deleted one at a time, per owner.
pub async fn task_assignments_upsert_and_delete<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = Owner::Global;
    let other = user("sybil");
    let assign = |task: &str, p: &str, m: &str| TaskAssignment {
        task: TaskName::parse(task).expect("task"),
        provider: provider(p),
        model: model(m),
    };
    assert!(TaskAssignmentRepository::list(&*store, &owner)
        .await
        .expect("list")
        .is_empty());
    store
        .upsert(
            &owner,
            vec![
                assign("summarize", "openai", "gpt-4o-mini"),
                assign("classify", "groq", "llama-3"),
            ],
            now(),
        )
        .await
        .expect("upsert");
    store
        .upsert(
            &other,
            vec![assign("summarize", "mistral", "mistral-small")],
            now(),
        )
        .await
        .expect("upsert other");
    store
        .upsert(
            &owner,
            vec![
                assign("summarize", "anthropic", "claude-haiku"),
                assign("embed", "openai", "te-3"),
            ],
            now(),
        )
        .await
        .expect("upsert again");
    let listed = TaskAssignmentRepository::list(&*store, &owner)
        .await
        .expect("list");
    assert_eq!(
        listed,
        vec![
            assign("classify", "groq", "llama-3"),
            assign("embed", "openai", "te-3"),
            assign("summarize", "anthropic", "claude-haiku"),
        ]
    );
    let task = TaskName::parse("classify").expect("task");
    assert!(TaskAssignmentRepository::delete(&*store, &owner, &task)
        .await
        .expect("delete"));
    assert!(!TaskAssignmentRepository::delete(&*store, &owner, &task)
        .await
        .expect("again"));
    let summarize = TaskName::parse("summarize").expect("task");
    assert!(
        !TaskAssignmentRepository::delete(&*store, &user("nobody"), &summarize)
            .await
            .expect("foreign delete")
    );
    assert_eq!(
        TaskAssignmentRepository::list(&*store, &owner)
            .await
            .expect("list")
            .len(),
        2
    );
    assert_eq!(
        TaskAssignmentRepository::list(&*store, &other)
            .await
            .expect("list"),
        vec![assign("summarize", "mistral", "mistral-small")]
    );
    store
        .upsert(&owner, Vec::new(), now())
        .await
        .expect("empty upsert");
    // Assignments apply in order: a task named twice keeps the last one.
    store
        .upsert(
            &other,
            vec![
                assign("twice", "openai", "first"),
                assign("twice", "groq", "second"),
            ],
            now(),
        )
        .await
        .expect("upsert with a repeated task");
    let twice = TaskAssignmentRepository::list(&*store, &other)
        .await
        .expect("list");
    assert!(
        twice.contains(&assign("twice", "groq", "second")),
        "{twice:?}"
    );
    assert_eq!(twice.len(), 2);
}

/// Settings documents: created once, then changed only from the version last read.
pub async fn settings_documents_are_versioned<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("trent");
    assert!(SettingsDocumentRepository::get(&*store, &owner)
        .await
        .expect("get")
        .is_none());
    let doc = json!({"ai": {"temperature": 0.9, "maxTokens": 2048, "systemPrompt": "Be brief. ✓"},
                     "general": {"theme": "dark", "motto": "nul\u{0}inside ✓"},
                     "custom": [1, 2.5, -0.001, 18446744073709551615u64, null, "x"]});
    let first = store
        .put(&owner, doc.clone(), None, now())
        .await
        .expect("create");
    assert_eq!((first.version, &first.document), (1, &doc));
    assert_conflict(
        store.put(&owner, json!({}), None, now()).await,
        "second create",
    );

    let changed = json!({"ai": {"temperature": 1.0}});
    let second = store
        .put(&owner, changed.clone(), Some(1), now())
        .await
        .expect("update");
    assert_eq!(second.version, 2);
    assert_conflict(
        store.put(&owner, json!({"x": 1}), Some(1), now()).await,
        "stale update",
    );
    let read = SettingsDocumentRepository::get(&*store, &owner)
        .await
        .expect("get")
        .expect("doc");
    assert_eq!((read.version, read.document), (2, changed));

    let other = user("trent2");
    assert!(SettingsDocumentRepository::get(&*store, &other)
        .await
        .expect("get")
        .is_none());
    assert_conflict(
        store.put(&other, json!({}), Some(2), now()).await,
        "update of nothing",
    );
}

/// Many concurrent set-default calls on one owner end with exactly one default, no errors,
/// and every call applied (each bumped one version).
pub async fn concurrent_set_default_keeps_one_default<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    hammer_set_default(fx, &[store.clone(), store], "yolanda").await;
}

/// Two independent stores (two pools, standing in for two service processes) hammering
/// set-default on the same owner leave exactly one default and return no error.
pub async fn two_stores_set_default_keep_one_default<F: StoreFixture>(fx: &F) {
    let second = fx.second_store().await;
    hammer_set_default(fx, &[fx.store(), second], "zoe").await;
}

/// Concurrency of the default invariant: 16 tasks × 20 set-default calls on one owner.
pub const SET_DEFAULT_TASKS: usize = 16;
/// Calls per task in the set-default hammer.
pub const SET_DEFAULT_CALLS: usize = 20;

async fn hammer_set_default<F: StoreFixture>(fx: &F, stores: &[Arc<F::Store>], who: &str) {
    let owner = user(who);
    let names = ["openai", "anthropic", "gemini", "mistral", "groq"];
    let mut configs = Vec::new();
    for name in names {
        configs.push(insert(&*fx.store(), &owner, name).await);
    }
    let ids: Vec<ConfigId> = configs.iter().map(|c| c.id).collect();
    let mut tasks = JoinSet::new();
    for t in 0..SET_DEFAULT_TASKS {
        let store = stores[t % stores.len()].clone();
        let (owner, ids) = (owner.clone(), ids.clone());
        tasks.spawn(async move {
            let mut errors = Vec::new();
            for i in 0..SET_DEFAULT_CALLS {
                let id = ids[(t * 7 + i) % ids.len()];
                match store.set_default(&owner, id, now()).await {
                    Ok(c) if c.is_default && c.id == id => {}
                    Ok(c) => errors.push(format!("set_default({id}) returned {c:?}")),
                    Err(e) => errors.push(format!("set_default({id}): {e} ({})", e.code())),
                }
            }
            errors
        });
    }
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        errors.extend(joined.expect("task panicked"));
    }
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    let after = list(&*fx.store(), &owner).await;
    assert_eq!(defaults(&after).len(), 1, "exactly one default: {after:?}");
    let bumps: i64 = after.iter().map(|c| c.version - 1).sum();
    assert_eq!(
        bumps as usize,
        SET_DEFAULT_TASKS * SET_DEFAULT_CALLS,
        "every call applied"
    );
    let found = fx.store().find_default(&owner).await.expect("find default");
    assert_eq!(found.map(|c| c.id), defaults(&after).first().copied());
}

/// Concurrent first inserts of one owner leave exactly one default and no errors.
pub async fn concurrent_first_inserts_make_one_default<F: StoreFixture>(fx: &F) {
    let owner = user("alex");
    let second = fx.second_store().await;
    let stores = [fx.store(), second];
    let names: Vec<&'static str> = Catalog::all().providers().map(|p| p.as_str()).collect();
    let mut tasks = JoinSet::new();
    for (i, name) in names.iter().copied().enumerate() {
        let store = stores[i % 2].clone();
        let owner = owner.clone();
        tasks.spawn(async move { store.insert(new_config(&owner, name, now())).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task panicked").expect("concurrent insert");
    }
    let all = list(&*fx.store(), &owner).await;
    assert_eq!(all.len(), names.len());
    assert_eq!(defaults(&all).len(), 1, "exactly one default: {all:?}");
}

/// Concurrent inserts of the same provider: one wins, the rest are conflicts, never a
/// storage error.
pub async fn concurrent_duplicate_inserts_conflict<F: StoreFixture>(fx: &F) {
    let owner = user("brenda");
    let second = fx.second_store().await;
    let stores = [fx.store(), second];
    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let store = stores[i % 2].clone();
        let owner = owner.clone();
        tasks.spawn(async move { store.insert(new_config(&owner, "openai", now())).await });
    }
    let (mut won, mut conflicts) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task panicked") {
            Ok(_) => won += 1,
            Err(Error::Conflict(_)) => conflicts += 1,
            Err(other) => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!((won, conflicts), (1, 7));
    assert_eq!(defaults(&list(&*fx.store(), &owner).await).len(), 1);
}
