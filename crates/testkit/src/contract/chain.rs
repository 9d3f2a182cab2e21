//! Resolution chains (`ConfigRepository::load_chain`): the enabled configs and the task's
//! assignments of exactly the chain's owners, in one read.

use std::collections::BTreeMap;
use std::time::Duration;

use llm_settings_domain::ports::{ConfigRepository, TaskAssignmentRepository};
use llm_settings_domain::{
    ChainQuery, ChainSnapshot, ChangeStep, ConfigId, Owner, OwnerChange, ProviderConfig,
    SealedSecret, TaskAssignment, TaskName, TestRecord,
};

use super::insert;
use crate::fixtures::{instance, model, new_config, now, provider, stored_secret, unchanged, user};
use crate::StoreFixture;

fn chain(owners: &[Owner]) -> ChainQuery {
    ChainQuery {
        owners: owners.to_vec(),
        provider: None,
        task: None,
    }
}

fn ids(snapshot: &ChainSnapshot) -> Vec<ConfigId> {
    let mut ids: Vec<ConfigId> = snapshot.configs.iter().map(|c| c.id).collect();
    ids.sort();
    ids
}

async fn load<S: ConfigRepository>(store: &S, query: ChainQuery) -> ChainSnapshot {
    store.load_chain(query).await.expect("load chain")
}

async fn disabled<S: ConfigRepository>(store: &S, owner: &Owner, name: &str) -> ProviderConfig {
    let mut new = new_config(owner, name, now());
    new.enabled = false;
    store.insert(new).await.expect("insert disabled")
}

/// The enabled configs of the chain's owners, with every secret; nothing of other owners
/// (not even an instance named like the chain's user) and nothing disabled.
pub async fn load_chain_reads_enabled_configs_of_the_chain<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let (me, acme) = (user("chain-user"), instance("acme"));
    let mut keyed = new_config(&me, "azure", now());
    keyed
        .secrets
        .insert("extra".into(), stored_secret("second-secret-0123456789"));
    let mine = store.insert(keyed).await.expect("insert");
    let mine_off = disabled(&*store, &me, "openai").await;
    let ours = insert(&*store, &acme, "openai").await;
    let global = insert(&*store, &Owner::Global, "openai").await;
    let global_off = disabled(&*store, &Owner::Global, "groq").await;
    for stranger in [
        user("acme"),
        instance("chain-user"),
        user("someone"),
        instance("other"),
    ] {
        insert(&*store, &stranger, "openai").await;
    }

    let all = load(&*store, chain(&[me.clone(), acme.clone(), Owner::Global])).await;
    assert_eq!(ids(&all), vec![mine.id, ours.id, global.id]);
    let read = all.configs.iter().find(|c| c.id == mine.id).expect("mine");
    assert_eq!(read, &mine, "every field and secret");
    assert!(all.assignments.is_empty(), "no task, no assignments");
    assert!(!ids(&all).contains(&mine_off.id) && !ids(&all).contains(&global_off.id));

    assert_eq!(
        ids(&load(&*store, chain(std::slice::from_ref(&me))).await),
        vec![mine.id]
    );
    assert_eq!(
        ids(&load(&*store, chain(&[acme, Owner::Global])).await),
        vec![ours.id, global.id]
    );
    assert!(load(&*store, chain(&[user("nobody")]))
        .await
        .configs
        .is_empty());
    assert_eq!(load(&*store, chain(&[])).await, ChainSnapshot::default());
}

/// With a provider, only that provider's enabled configs along the chain.
pub async fn load_chain_filters_by_provider<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let me = user("filtered");
    insert(&*store, &me, "anthropic").await;
    let mine = insert(&*store, &me, "openai").await;
    let global = insert(&*store, &Owner::Global, "openai").await;
    insert(&*store, &Owner::Global, "gemini").await;
    disabled(&*store, &Owner::Global, "mistral").await;
    let query = |name: &str| ChainQuery {
        provider: Some(provider(name)),
        ..chain(&[me.clone(), Owner::Global])
    };
    assert_eq!(
        ids(&load(&*store, query("openai")).await),
        vec![mine.id, global.id]
    );
    assert!(load(&*store, query("mistral")).await.configs.is_empty());
    assert!(load(&*store, query("groq")).await.configs.is_empty());
}

/// With a task, its assignment on each of the chain's owners that has one (with or without
/// configs of its own), and no other task's.
pub async fn load_chain_reads_the_task_per_owner<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let (me, acme) = (user("tasked"), instance("tasked-inc"));
    let config = insert(&*store, &Owner::Global, "openai").await;
    let assign = |task: &str, p: &str, m: &str| TaskAssignment {
        task: TaskName::parse(task).expect("task"),
        provider: provider(p),
        model: model(m),
    };
    let summarize = TaskName::parse("summarize").expect("task");
    store
        .upsert(
            &me,
            vec![
                assign("summarize", "anthropic", "claude-haiku"),
                assign("classify", "groq", "llama-3"),
            ],
            now(),
        )
        .await
        .expect("assign user");
    store
        .upsert(
            &Owner::Global,
            vec![assign("summarize", "openai", "gpt-4o-mini")],
            now(),
        )
        .await
        .expect("assign global");
    store
        .upsert(
            &user("other"),
            vec![assign("summarize", "mistral", "small")],
            now(),
        )
        .await
        .expect("assign other");

    let query = ChainQuery {
        task: Some(summarize.clone()),
        ..chain(&[me.clone(), acme.clone(), Owner::Global])
    };
    let snapshot = load(&*store, query.clone()).await;
    assert_eq!(ids(&snapshot), vec![config.id], "the configs come along");
    let mut assignments = snapshot.assignments.clone();
    assignments.sort_by_key(|(owner, _)| owner.kind().as_str());
    assert_eq!(
        assignments,
        vec![
            (Owner::Global, assign("summarize", "openai", "gpt-4o-mini")),
            (me.clone(), assign("summarize", "anthropic", "claude-haiku")),
        ]
    );
    let narrowed = ChainQuery {
        provider: Some(provider("anthropic")),
        ..query
    };
    let snapshot = load(&*store, narrowed).await;
    assert!(
        snapshot.configs.is_empty(),
        "the provider narrows the configs"
    );
    assert_eq!(snapshot.assignments.len(), 2, "but not the assignments");
    let unassigned = ChainQuery {
        task: Some(TaskName::parse("translate").expect("task")),
        ..chain(&[me, acme, Owner::Global])
    };
    assert!(load(&*store, unassigned).await.assignments.is_empty());
}

fn assign(task: &str, p: &str, m: &str) -> TaskAssignment {
    TaskAssignment {
        task: TaskName::parse(task).expect("task"),
        provider: provider(p),
        model: model(m),
    }
}

/// The config `id` of the snapshot, if it holds it.
fn config_of(snapshot: &ChainSnapshot, id: ConfigId) -> Option<&ProviderConfig> {
    snapshot.configs.iter().find(|c| c.id == id)
}

/// Every write that can change a chain, made through the store, is seen by the very next
/// `load_chain` on the same store, however recently the chain was read (a store may cache
/// chains, but never across its own writes): a key change, a key rotation, a test result,
/// a disable and re-enable, a new config, a task change and removal, an atomic change and a
/// delete.
pub async fn load_chain_sees_every_write_of_the_same_store_at_once<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let me = user("cached");
    let task = TaskName::parse("summarize").expect("task");
    let query = ChainQuery {
        owners: vec![me.clone(), Owner::Global],
        provider: None,
        task: Some(task.clone()),
    };
    let warm = || async { load(&*store, query.clone()).await };

    let mine = insert(&*store, &me, "openai").await;
    assert_eq!(ids(&warm().await), vec![mine.id]);

    // A key change.
    let mut write = unchanged(&mine, now());
    write
        .secrets
        .insert("api_key".into(), stored_secret("sk-changed-0123456789"));
    let changed = store.update(write).await.expect("change the key");
    let read = warm().await;
    assert_eq!(
        config_of(&read, mine.id),
        Some(&changed),
        "the new key at once"
    );

    // A key rotation (the sealed bytes swapped under the same version).
    let rewrapped = SealedSecret::from_bytes(b"rewrapped-under-key-2".to_vec());
    assert!(store
        .replace_sealed(
            changed.id,
            changed.version,
            BTreeMap::from([("api_key".to_owned(), rewrapped.clone())]),
        )
        .await
        .expect("rotate"));
    let read = warm().await;
    let rotated = config_of(&read, mine.id).expect("still there");
    assert_eq!(
        rotated.secrets["api_key"].sealed, rewrapped,
        "the rotated key at once"
    );

    // A test result.
    let record = TestRecord {
        at: now(),
        success: false,
        latency_ms: 7,
        failure: None,
        message: "refused".into(),
    };
    store
        .record_test(&me, mine.id, record.clone())
        .await
        .expect("record a test");
    let read = warm().await;
    assert_eq!(
        config_of(&read, mine.id).expect("still there").last_test,
        Some(record)
    );

    // Disabled, then enabled again.
    let current = config_of(&read, mine.id).expect("still there").clone();
    let mut off = unchanged(&current, now());
    off.enabled = false;
    let disabled = store.update(off).await.expect("disable");
    assert!(warm().await.configs.is_empty(), "disabled at once");
    let mut on = unchanged(&disabled, now());
    on.enabled = true;
    let enabled = store.update(on).await.expect("enable");
    assert_eq!(ids(&warm().await), vec![mine.id], "enabled at once");

    // A new config behind it.
    let global = insert(&*store, &Owner::Global, "anthropic").await;
    assert_eq!(ids(&warm().await), vec![mine.id, global.id]);

    // A task assigned, changed, removed.
    store
        .upsert(
            &me,
            vec![assign("summarize", "openai", "gpt-4o-mini")],
            now(),
        )
        .await
        .expect("assign");
    assert_eq!(
        warm().await.assignments,
        vec![(me.clone(), assign("summarize", "openai", "gpt-4o-mini"))]
    );
    store
        .upsert(
            &me,
            vec![assign("summarize", "anthropic", "claude-haiku")],
            now(),
        )
        .await
        .expect("reassign");
    assert_eq!(
        warm().await.assignments,
        vec![(me.clone(), assign("summarize", "anthropic", "claude-haiku"))]
    );
    assert!(TaskAssignmentRepository::delete(&*store, &me, &task)
        .await
        .expect("unassign"));
    assert!(warm().await.assignments.is_empty(), "unassigned at once");

    // An atomic change deleting the global config.
    let mut change = OwnerChange::new(Owner::Global, now());
    change.steps.push(ChangeStep::Delete {
        id: global.id,
        expected_version: global.version,
    });
    store.apply(change).await.expect("apply");
    assert_eq!(
        ids(&warm().await),
        vec![mine.id],
        "deleted by the change at once"
    );

    // A plain delete.
    ConfigRepository::delete(&*store, &me, enabled.id)
        .await
        .expect("delete");
    assert_eq!(warm().await, ChainSnapshot::default(), "deleted at once");
}

/// A change made through another store over the same database (another service process)
/// is seen by this store's `load_chain` at most 1 s after it was made, however recently
/// this store read the chain.
pub async fn load_chain_sees_another_stores_write_within_a_second<F: StoreFixture>(fx: &F) {
    let (here, there) = (fx.store(), fx.second_store().await);
    let me = user("elsewhere");
    let query = ChainQuery {
        owners: vec![me.clone(), Owner::Global],
        provider: None,
        task: None,
    };
    let mine = insert(&*here, &me, "openai").await;
    assert_eq!(ids(&load(&*there, query.clone()).await), vec![mine.id]);

    let mut off = unchanged(&mine, now());
    off.enabled = false;
    here.update(off)
        .await
        .expect("disable through the first store");
    // Just past the longest TTL a store may keep a chain for.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(
        load(&*there, query).await.configs.is_empty(),
        "the other store still serves the enabled config"
    );
}
