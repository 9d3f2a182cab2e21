//! Workflows that change several things: each lands as ONE store change or not at all.

use super::*;
use crate::change::{ChangeOutcome, ChangeStep, OwnerChange};
use crate::service::{SettingsUpdate, UpsertOutcome};

/// What a store returns after applying `change` on top of `configs`: inserts get ids from 100.
fn applied(configs: &[ProviderConfig], change: &OwnerChange) -> ChangeOutcome {
    let mut after: Vec<ProviderConfig> = configs.to_vec();
    for (i, step) in change.steps.iter().enumerate() {
        match step {
            ChangeStep::Insert(new) => {
                if new.make_default {
                    after.iter_mut().for_each(|c| c.is_default = false);
                }
                after.push(ProviderConfig {
                    id: ConfigId(100 + i as i64),
                    owner: new.owner.clone(),
                    provider: new.provider,
                    secrets: new.secrets.clone(),
                    settings: new.settings.clone(),
                    model: new.model.clone(),
                    base_url: new.base_url.clone(),
                    enabled: new.enabled,
                    is_default: new.make_default,
                    version: 1,
                    last_test: None,
                    created_at: new.now,
                    updated_at: new.now,
                });
            }
            ChangeStep::Update(write) => {
                let pos = after.iter().position(|c| c.id == write.id).unwrap();
                after[pos] = config_after(&after[pos], write);
            }
            ChangeStep::Delete { id, .. } => after.retain(|c| c.id != *id),
            ChangeStep::SetDefault { id } => {
                after.iter_mut().for_each(|c| c.is_default = c.id == *id)
            }
            ChangeStep::RequireNoDefault => {}
        }
    }
    ChangeOutcome {
        configs: after,
        document: change.document.as_ref().map(|d| StoredDocument {
            document: d.document.clone(),
            version: d.expected_version.unwrap_or(0) + 1,
        }),
    }
}

/// A store with these configs that records the one change it is asked to apply.
fn store_of(f: &mut Fixture, configs: Vec<ProviderConfig>) -> Arc<Mutex<Vec<OwnerChange>>> {
    let changes: Arc<Mutex<Vec<OwnerChange>>> = Arc::default();
    let listed = configs.clone();
    f.configs
        .expect_list()
        .returning(move |_| Ok(listed.clone()));
    let sink = changes.clone();
    f.configs.expect_apply().returning(move |change| {
        let outcome = applied(&configs, &change);
        sink.lock().unwrap().push(change);
        Ok(outcome)
    });
    f.configs.expect_insert().never();
    f.configs.expect_update().never();
    f.configs.expect_delete().never();
    f.configs.expect_set_default().never();
    f.documents.expect_put().never();
    changes
}

fn entry(key: Option<&str>, model: Option<&str>) -> ConfigPatch {
    ConfigPatch {
        secrets: key
            .map(|k| [("api_key".to_owned(), Some(SecretValue::new(k)))].into())
            .unwrap_or_default(),
        model: model.map_or(Patch::Keep, |m| Patch::Set(ModelName::parse(m).unwrap())),
        ..ConfigPatch::default()
    }
}

#[tokio::test]
async fn a_settings_update_lands_as_one_change() {
    let owner = user("u1");
    let mut openai = config(1, &owner, "openai", Some(STORED));
    openai.is_default = true;
    let anthropic = config(2, &owner, "anthropic", Some(STORED));
    let mut f = Fixture::new();
    let changes = store_of(&mut f, vec![openai, anthropic]);
    f.documents.expect_get().returning(|_| {
        Ok(Some(StoredDocument {
            document: json!({"ai": {"temperature": 0.7}, "general": {"theme": "dark"}}),
            version: 4,
        }))
    });
    let (svc, events) = f.service();
    let update = SettingsUpdate {
        providers: vec![
            (provider("anthropic"), None),
            (
                provider("gemini"),
                Some(entry(Some(PLANTED), Some("gemini-2.5-pro"))),
            ),
        ],
        default_provider: Some(provider("gemini")),
        document: Some(json!({"ai": {"temperature": 0.9}, "general": null})),
    };
    let view = svc
        .update_settings(&writer(), &owner, update)
        .await
        .unwrap();

    let changes = changes.lock().unwrap();
    assert_eq!(changes.len(), 1, "every write in one change");
    let change = &changes[0];
    assert!(matches!(
        change.steps[0],
        ChangeStep::Delete {
            id: ConfigId(2),
            expected_version: 3
        }
    ));
    let ChangeStep::Insert(new) = &change.steps[1] else {
        panic!("{:?}", change.steps[1]);
    };
    assert!(new.make_default && new.provider == provider("gemini"));
    assert_eq!(new.secrets["api_key"].hints, SecretHints::of(PLANTED));
    let doc = change.document.as_ref().unwrap();
    assert_eq!(doc.expected_version, Some(4));
    assert_eq!(doc.document, json!({"ai": {"temperature": 0.9}}));

    assert_eq!(view.default_config().unwrap().provider, provider("gemini"));
    assert_eq!(
        view.document["ai"]["maxTokens"],
        json!(4096),
        "defaults shown"
    );
    let actions: Vec<_> = events.lock().unwrap().iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Delete,
            AuditAction::Create,
            AuditAction::DocumentUpdate
        ]
    );
}

#[tokio::test]
async fn a_failed_settings_update_writes_nothing() {
    let owner = user("u1");
    let mut f = Fixture::new();
    f.configs
        .expect_list()
        .returning(move |_| Ok(vec![config(1, &user("u1"), "openai", Some(STORED))]));
    f.documents.expect_get().returning(|_| Ok(None));
    // The store fails while applying the change (its last step, say): nothing of it lands,
    // and the domain wrote nothing through any other door.
    f.configs
        .expect_apply()
        .times(1)
        .returning(|_| Err(Error::Unavailable("connection lost".into())));
    f.configs.expect_insert().never();
    f.configs.expect_update().never();
    f.configs.expect_delete().never();
    f.documents.expect_put().never();
    let (svc, events) = f.service();
    let update = SettingsUpdate {
        providers: vec![(provider("openai"), None)],
        default_provider: None,
        document: Some(json!({"general": {"theme": "light"}})),
    };
    let err = svc
        .update_settings(&writer(), &owner, update)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store_unavailable");
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].outcome,
        AuditOutcome::Failure("store_unavailable".into())
    );
}

#[tokio::test]
async fn a_settings_update_is_checked_before_anything_is_read_or_written() {
    let owner = user("u1");
    let cases = [
        (
            SettingsUpdate {
                providers: vec![(
                    provider("gemini"),
                    Some(entry(None, Some("gemini-2.5-pro"))),
                )],
                ..SettingsUpdate::default()
            },
            "ai.providers.gemini.apiKey is required to add provider gemini",
        ),
        (
            SettingsUpdate {
                default_provider: Some(provider("gemini")),
                ..SettingsUpdate::default()
            },
            "ai.provider: provider gemini is not configured; add it under ai.providers first",
        ),
        (
            SettingsUpdate {
                document: Some(json!({"ai": {"temperature": 7}})),
                ..SettingsUpdate::default()
            },
            "ai.temperature must be a number from 0 to 2",
        ),
        (
            SettingsUpdate {
                document: Some(json!({"ai": {"providers": {"openai": {"apiKey": PLANTED}}}})),
                ..SettingsUpdate::default()
            },
            "provider credentials are provider configs, not document fields",
        ),
    ];
    for (update, message) in cases {
        let mut f = Fixture::new();
        f.configs.expect_list().returning(|_| Ok(vec![]));
        f.documents.expect_get().returning(|_| Ok(None));
        f.configs.expect_apply().never();
        let (svc, _) = f.service();
        let err = svc
            .update_settings(&writer(), &owner, update)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), message);
        assert!(!err.to_string().contains("PLANTED"));
    }
}

#[tokio::test]
async fn a_settings_update_that_loses_a_race_is_planned_again() {
    let owner = user("u1");
    let mut f = Fixture::new();
    f.configs.expect_list().returning(|_| Ok(vec![]));
    let mut version = 0;
    f.documents.expect_get().returning(move |_| {
        version += 1;
        Ok(Some(StoredDocument {
            document: json!({"ai": {"maxTokens": 100 * version}}),
            version,
        }))
    });
    let mut seq = mockall::Sequence::new();
    f.configs
        .expect_apply()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(Error::Conflict("moved".into())));
    f.configs
        .expect_apply()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|change| {
            let doc = change.document.clone().unwrap();
            assert_eq!(doc.expected_version, Some(2));
            assert_eq!(
                doc.document,
                json!({"ai": {"maxTokens": 200, "temperature": 0.9}})
            );
            Ok(applied(&[], &change))
        });
    let (svc, _) = f.service();
    let update = SettingsUpdate {
        document: Some(json!({"ai": {"temperature": 0.9}})),
        ..SettingsUpdate::default()
    };
    let view = svc
        .update_settings(&writer(), &owner, update)
        .await
        .unwrap();
    assert_eq!(view.document["ai"]["maxTokens"], json!(200));
}

#[tokio::test]
async fn the_active_configuration_is_created_under_a_no_default_guard() {
    let owner = Owner::Global;
    let mut f = Fixture::new();
    f.configs
        .expect_find_default()
        .times(1)
        .returning(|_| Ok(None));
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let changes = store_of(&mut f, vec![]);
    let (svc, _) = f.service();
    let request = upsert("anthropic", key_patch(PLANTED), false);
    let created = svc
        .create_active_config(&superadmin(), &owner, request)
        .await
        .unwrap();
    assert!(created.is_default);
    let changes = changes.lock().unwrap();
    assert!(matches!(changes[0].steps[0], ChangeStep::RequireNoDefault));
    assert!(matches!(&changes[0].steps[1], ChangeStep::Insert(n) if n.make_default));
}

#[tokio::test]
async fn a_second_active_configuration_is_a_conflict_even_when_it_raced() {
    let owner = Owner::Global;
    let mut f = Fixture::new();
    let mut seq = mockall::Sequence::new();
    // The first look sees no default; the store's guard then finds the winner's.
    f.configs
        .expect_find_default()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(None));
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    f.configs
        .expect_apply()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(Error::Conflict("the owner already has a default".into())));
    let winner = config(9, &Owner::Global, "openai", Some(STORED));
    f.configs
        .expect_find_default()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_| Ok(Some(winner.clone())));
    let (svc, events) = f.service();
    let err = svc
        .create_active_config(
            &superadmin(),
            &owner,
            upsert("anthropic", key_patch(PLANTED), false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict");
    assert!(
        err.to_string().starts_with("Configuration already exists"),
        "{err}"
    );
    assert_eq!(
        events.lock().unwrap()[0].outcome,
        AuditOutcome::Failure("conflict".into())
    );
}

#[tokio::test]
async fn switching_provider_creates_the_target_and_deletes_the_old_in_one_change() {
    let owner = Owner::Instance(InstanceId::parse("acme").unwrap());
    let mut current = config(7, &owner, "anthropic", Some(STORED));
    current.is_default = true;
    let mut f = Fixture::new();
    let loaded = current.clone();
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(loaded.clone())));
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let changes = store_of(&mut f, vec![current]);
    let (svc, events) = f.service();
    let moved = svc
        .switch_provider(
            &superadmin(),
            &owner,
            ConfigId(7),
            provider("openai"),
            key_patch(PLANTED),
        )
        .await
        .unwrap();
    assert_eq!(moved.provider, provider("openai"));
    assert!(moved.is_default);
    let changes = changes.lock().unwrap();
    assert_eq!(changes.len(), 1);
    assert!(matches!(&changes[0].steps[0], ChangeStep::Insert(n) if n.make_default));
    assert!(matches!(
        changes[0].steps[1],
        ChangeStep::Delete {
            id: ConfigId(7),
            expected_version: 3
        }
    ));
    let actions: Vec<_> = events.lock().unwrap().iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Create, AuditAction::Delete]);
}

#[tokio::test]
async fn switching_needs_the_new_providers_key_unless_it_needs_none() {
    let owner = Owner::Global;
    let current = config(7, &owner, "anthropic", Some(STORED));
    let mut f = Fixture::new();
    let loaded = current.clone();
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(loaded.clone())));
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let changes = store_of(&mut f, vec![current.clone()]);
    let (svc, _) = f.service();
    let model_only = entry(None, Some("gpt-4o"));
    let err = svc
        .switch_provider(
            &superadmin(),
            &owner,
            ConfigId(7),
            provider("openai"),
            model_only,
        )
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("api_key"));
    assert!(err.to_string().contains("requires its api_key"), "{err}");
    // A mask of the old provider's key is not a key for the new one.
    let mask = current.primary_hints().unwrap().vendor_last4.clone();
    let err = svc
        .switch_provider(
            &superadmin(),
            &owner,
            ConfigId(7),
            provider("openai"),
            key_patch(&mask),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "masked_key_mismatch");
    assert!(changes.lock().unwrap().is_empty());
    // A keyless provider needs nothing but its name.
    let moved = svc
        .switch_provider(
            &superadmin(),
            &owner,
            ConfigId(7),
            provider("ollama"),
            ConfigPatch::default(),
        )
        .await
        .unwrap();
    assert_eq!(moved.provider, provider("ollama"));
}

#[tokio::test]
async fn switching_checks_access_and_existence_first() {
    let owner = Owner::Instance(InstanceId::parse("acme").unwrap());
    let stranger = Actor::new(
        UserId::parse("u1").unwrap(),
        [Scope::Read, Scope::Write],
        [Role::Admin],
        Some(InstanceId::parse("other").unwrap()),
    );
    let (svc, _) = Fixture::new().service();
    let err = svc
        .switch_provider(
            &stranger,
            &owner,
            ConfigId(7),
            provider("openai"),
            key_patch(PLANTED),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let mut f = Fixture::new();
    f.configs.expect_get().returning(|_, _| Ok(None));
    let (svc, _) = f.service();
    let err = svc
        .switch_provider(
            &superadmin(),
            &owner,
            ConfigId(7),
            provider("openai"),
            key_patch(PLANTED),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[tokio::test]
async fn an_upsert_racing_a_delete_creates_the_config_again() {
    let owner = user("u1");
    let existing = config(14, &owner, "openai", Some(STORED));
    let mut f = Fixture::new();
    let mut seq = mockall::Sequence::new();
    f.configs
        .expect_find_by_provider()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.configs
        .expect_update()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(Error::NotFound("config 14".into())));
    f.configs
        .expect_find_by_provider()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(None));
    f.configs
        .expect_insert()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|new| {
            let mut created = config(15, &new.owner, "openai", None);
            created.secrets = new.secrets.clone();
            Ok(created)
        });
    let (svc, _) = f.service();
    let outcome = svc
        .upsert_config(
            &writer(),
            &owner,
            upsert("openai", key_patch(PLANTED), false),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, UpsertOutcome::Created(c) if c.id == ConfigId(15)));
}

#[tokio::test]
async fn create_is_a_conflict_when_the_provider_is_configured_even_by_a_racer() {
    let owner = Owner::Instance(InstanceId::parse("acme").unwrap());
    let mut f = Fixture::new();
    f.configs
        .expect_find_by_provider()
        .times(1)
        .returning(|_, _| Ok(None));
    f.configs
        .expect_insert()
        .times(1)
        .returning(|_| Err(Error::Conflict("duplicate".into())));
    let (svc, _) = f.service();
    let err = svc
        .create_config(
            &superadmin(),
            &owner,
            upsert("openai", key_patch(PLANTED), false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict");

    let mut f = Fixture::new();
    let taken = config(3, &owner, "openai", Some(STORED));
    f.configs
        .expect_find_by_provider()
        .returning(move |_, _| Ok(Some(taken.clone())));
    f.configs.expect_insert().never();
    let (svc, _) = f.service();
    let err = svc
        .create_config(
            &superadmin(),
            &owner,
            upsert("openai", key_patch(PLANTED), false),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}
