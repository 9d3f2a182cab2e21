//! Atomic owner changes (`ConfigRepository::apply`): every step and the document land
//! together or not at all, serialised per owner.

use llm_settings_domain::ports::{ConfigRepository, SettingsDocumentRepository};
use llm_settings_domain::{
    Catalog, ChangeStep, ConfigId, DocumentWrite, Error, OwnerChange, ProviderConfig,
};
use serde_json::json;
use tokio::task::JoinSet;

use super::{assert_conflict, assert_not_found, defaults, insert, list};
use crate::fixtures::{at, new_config, now, unchanged, user};
use crate::StoreFixture;

fn change(owner: &llm_settings_domain::Owner, steps: Vec<ChangeStep>) -> OwnerChange {
    OwnerChange {
        steps,
        ..OwnerChange::new(owner.clone(), at(50))
    }
}

fn document(value: serde_json::Value, expected_version: Option<i64>) -> Option<DocumentWrite> {
    Some(DocumentWrite {
        document: value,
        expected_version,
    })
}

/// Every step lands, in order, with the document; the outcome is the owner's state after.
pub async fn apply_lands_every_step_and_the_document<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("applied");
    let first = insert(&*store, &owner, "openai").await;
    let mut disable = unchanged(&first, at(50));
    disable.enabled = false;
    let mut new = new_config(&owner, "anthropic", at(50));
    new.make_default = true;
    let landed = store
        .apply(OwnerChange {
            document: document(json!({"ai": {"temperature": 0.2}}), None),
            ..change(
                &owner,
                vec![
                    ChangeStep::RequireNoDefault,
                    ChangeStep::Update(disable),
                    ChangeStep::Insert(new),
                ],
            )
        })
        .await;
    assert_conflict(landed, "RequireNoDefault while the owner has a default");

    let mut disable = unchanged(&first, at(50));
    disable.enabled = false;
    let second = insert(&*store, &owner, "gemini").await;
    let outcome = store
        .apply(OwnerChange {
            document: document(json!({"ai": {"temperature": 0.2}}), None),
            ..change(
                &owner,
                vec![
                    ChangeStep::Update(disable),
                    ChangeStep::RequireNoDefault,
                    ChangeStep::Insert(new_config(&owner, "anthropic", at(50))),
                    ChangeStep::SetDefault { id: second.id },
                ],
            )
        })
        .await
        .expect("apply");
    assert_eq!(outcome.configs, list(&*store, &owner).await);
    let ids: Vec<ConfigId> = outcome.configs.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id");
    let by_id = |id| outcome.configs.iter().find(|c| c.id == id).expect("config");
    assert!(!by_id(first.id).enabled && !by_id(first.id).is_default);
    assert_eq!(by_id(first.id).version, first.version + 1);
    assert_eq!(defaults(&outcome.configs), vec![second.id]);
    assert_eq!(
        by_id(second.id).updated_at,
        at(50),
        "set-default takes the change's time"
    );
    let stored = outcome.document.expect("document written");
    assert_eq!(
        (stored.version, &stored.document),
        (1, &json!({"ai": {"temperature": 0.2}}))
    );
    let read = SettingsDocumentRepository::get(&*store, &owner)
        .await
        .expect("get");
    assert_eq!(read, Some(stored));

    let empty = store
        .apply(change(&owner, Vec::new()))
        .await
        .expect("an empty change");
    assert_eq!((empty.configs, empty.document), (outcome.configs, None));
}

/// A change whose last step (or document) fails leaves nothing written, the document
/// included; the first failing step's error is returned.
pub async fn apply_is_all_or_nothing<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("atomic");
    let first = insert(&*store, &owner, "openai").await;
    let second = insert(&*store, &owner, "anthropic").await;
    let before = list(&*store, &owner).await;
    let steps = || {
        let mut rotate = unchanged(&first, at(60));
        rotate.model = None;
        vec![
            ChangeStep::Insert(new_config(&owner, "gemini", at(60))),
            ChangeStep::Update(rotate),
            ChangeStep::SetDefault { id: second.id },
            ChangeStep::Delete {
                id: second.id,
                expected_version: second.version + 1,
            },
        ]
    };
    let failing_last: Vec<(&str, ChangeStep, Option<DocumentWrite>)> = vec![
        (
            "duplicate insert",
            ChangeStep::Insert(new_config(&owner, "openai", at(60))),
            document(json!({"x": 1}), None),
        ),
        (
            "stale update",
            ChangeStep::Update(unchanged(&first, at(60))),
            document(json!({"x": 1}), None),
        ),
        (
            "missing default",
            ChangeStep::SetDefault {
                id: ConfigId(second.id.0 + 1000),
            },
            document(json!({"x": 1}), None),
        ),
        (
            "document version moved",
            ChangeStep::RequireNoDefault,
            document(json!({"x": 1}), Some(7)),
        ),
    ];
    for (what, last, doc) in failing_last {
        let mut all = steps();
        let expect_not_found = matches!(last, ChangeStep::SetDefault { .. });
        if !matches!(last, ChangeStep::RequireNoDefault) {
            all.push(last);
        }
        let result = store
            .apply(OwnerChange {
                document: doc,
                ..change(&owner, all)
            })
            .await;
        if expect_not_found {
            assert_not_found(result, what);
        } else {
            assert_conflict(result, what);
        }
        assert_eq!(
            list(&*store, &owner).await,
            before,
            "{what}: nothing written"
        );
        assert_eq!(
            SettingsDocumentRepository::get(&*store, &owner)
                .await
                .expect("get"),
            None,
            "{what}: no document"
        );
    }
}

/// Deleting a config and inserting one for the same provider in one change frees the slot
/// within the change; a stale or missing delete fails it.
pub async fn apply_deletes_and_inserts_in_one_change<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let owner = user("replaced");
    let old = insert(&*store, &owner, "openai").await;
    let mut fresh = new_config(&owner, "openai", at(70));
    fresh.make_default = true;
    let outcome = store
        .apply(change(
            &owner,
            vec![
                ChangeStep::Delete {
                    id: old.id,
                    expected_version: old.version,
                },
                ChangeStep::Insert(fresh),
            ],
        ))
        .await
        .expect("delete then insert");
    assert_eq!(outcome.configs.len(), 1);
    let new = &outcome.configs[0];
    assert!(new.id > old.id && new.version == 1 && new.is_default);
    assert_eq!(new.created_at, at(70));

    let stale = store
        .apply(change(
            &owner,
            vec![ChangeStep::Delete {
                id: new.id,
                expected_version: new.version + 1,
            }],
        ))
        .await;
    assert_conflict(stale, "delete of a moved version");
    let missing = store
        .apply(change(
            &owner,
            vec![ChangeStep::Delete {
                id: old.id,
                expected_version: old.version,
            }],
        ))
        .await;
    assert_not_found(missing, "delete of a deleted config");
    let foreign = store
        .apply(change(
            &user("someone-else"),
            vec![ChangeStep::Delete {
                id: new.id,
                expected_version: new.version,
            }],
        ))
        .await;
    assert_not_found(foreign, "delete of another owner's config");
    assert_eq!(list(&*store, &owner).await, outcome.configs);
}

/// A step naming a config of another owner is a bug in the caller: `Internal`, nothing
/// written.
pub async fn apply_refuses_steps_of_another_owner<F: StoreFixture>(fx: &F) {
    let store = fx.store();
    let (owner, other) = (user("mine"), user("theirs"));
    let theirs = insert(&*store, &other, "openai").await;
    let mut foreign_update = unchanged(&theirs, at(80));
    foreign_update.model = None;
    for (what, step) in [
        (
            "insert",
            ChangeStep::Insert(new_config(&other, "anthropic", at(80))),
        ),
        ("update", ChangeStep::Update(foreign_update)),
    ] {
        let result = store
            .apply(change(
                &owner,
                vec![
                    ChangeStep::Insert(new_config(&owner, "gemini", at(80))),
                    step,
                ],
            ))
            .await;
        match result {
            Err(Error::Internal(_)) => {}
            other => panic!("{what} of another owner: expected Internal, got {other:?}"),
        }
    }
    assert!(list(&*store, &owner).await.is_empty());
    assert_eq!(list(&*store, &other).await, vec![theirs]);
}

/// Concurrent changes that each require the owner to have no default and insert one: one
/// lands, every other is a conflict, from two stores (two processes) at once.
pub async fn apply_require_no_default_admits_one_of_many<F: StoreFixture>(fx: &F) {
    const CHANGES: usize = 16;
    let owner = user("first-come");
    let stores = [fx.store(), fx.second_store().await];
    // The catalog has fewer providers than changes: the last ones repeat a provider and
    // conflict for that reason or for the default, whichever they meet first.
    let providers: Vec<&'static str> = Catalog::all().providers().map(|p| p.as_str()).collect();
    let mut tasks = JoinSet::new();
    for i in 0..CHANGES {
        let store = stores[i % stores.len()].clone();
        let mut new = new_config(&owner, providers[i % providers.len()], now());
        new.make_default = true;
        let change = change(
            &owner,
            vec![ChangeStep::RequireNoDefault, ChangeStep::Insert(new)],
        );
        tasks.spawn(async move { store.apply(change).await });
    }
    let (mut landed, mut conflicts) = (Vec::<ProviderConfig>::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task panicked") {
            Ok(outcome) => landed.extend(outcome.configs),
            Err(Error::Conflict(_)) => conflicts += 1,
            Err(other) => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!((landed.len(), conflicts), (1, CHANGES - 1));
    let after = list(&*fx.store(), &owner).await;
    assert_eq!(after, landed);
    assert_eq!(defaults(&after), vec![landed[0].id]);
}
