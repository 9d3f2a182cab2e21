//! Use-case tests over mocked ports.

mod gateway;
mod resolve;
mod workflows;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::actor::{Role, Scope};
use crate::audit::AuditEvent;
use crate::config::{ConfigPatch, Patch, ProviderConfig, TestRecord};
use crate::document::StoredDocument;
use crate::error::Error;
use crate::mask::SecretHints;
use crate::owner::{InstanceId, UserId};
use crate::ports::{
    MockAuditLog, MockAuditQueue, MockClock, MockConfigRepository, MockProviderClient,
    MockProviderProbe, MockSecretCipher, MockSettingsDocumentRepository,
    MockTaskAssignmentRepository,
};
use crate::probe::{FailureClass, ProbeOutcome, ProbeRequest};
use crate::secret::{SealedSecret, SecretValue, StoredSecret};
use crate::task::{TaskAssignment, TaskName};
use crate::values::{BaseUrl, ConfigId, ModelName, Timestamp};

const PLANTED: &str = "sk-proj-PLANTEDsecretVALUE0123456789abcdefYx4f";
const STORED: &str = "sk-ant-api03-STOREDsecretVALUE0123456789abcdefghijklmnopXXXX";

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_735_000_000_000_000 + secs * 1_000_000).unwrap()
}

fn provider(id: &str) -> ProviderId {
    ProviderId::lookup(id).unwrap()
}

fn user(sub: &str) -> Owner {
    Owner::User(UserId::parse(sub).unwrap())
}

fn actor(sub: &str, scopes: &[Scope]) -> Actor {
    Actor::new(
        UserId::parse(sub).unwrap(),
        scopes.iter().copied(),
        [],
        None,
    )
}

fn writer() -> Actor {
    actor("u1", &[Scope::Read, Scope::Write])
}

/// The fake cipher's envelope: never the plaintext, but tied to the binding.
fn fake_sealed(binding: &crate::secret::SecretBinding) -> SealedSecret {
    SealedSecret::from_bytes(
        format!(
            "sealed:{}:{}:{}",
            binding.owner, binding.provider, binding.field
        )
        .into_bytes(),
    )
}

fn stored_secret(owner: &Owner, provider: ProviderId, field: &str, plain: &str) -> StoredSecret {
    StoredSecret {
        sealed: fake_sealed(&crate::secret::SecretBinding::new(owner, provider, field)),
        hints: SecretHints::of(plain),
    }
}

fn config(id: i64, owner: &Owner, provider_id: &str, key: Option<&str>) -> ProviderConfig {
    let p = provider(provider_id);
    let mut secrets = BTreeMap::new();
    if let Some(key) = key {
        secrets.insert(
            "api_key".to_owned(),
            stored_secret(owner, p, "api_key", key),
        );
    }
    ProviderConfig {
        id: ConfigId(id),
        owner: owner.clone(),
        provider: p,
        secrets,
        settings: BTreeMap::new(),
        model: None,
        base_url: None,
        enabled: true,
        is_default: false,
        version: 3,
        last_test: None,
        created_at: t(0),
        updated_at: t(10),
    }
}

/// Builds the config a store would return for a write, keeping id and created_at.
fn config_after(current: &ProviderConfig, write: &crate::config::ConfigWrite) -> ProviderConfig {
    ProviderConfig {
        secrets: write.secrets.clone(),
        settings: write.settings.clone(),
        model: write.model.clone(),
        base_url: write.base_url.clone(),
        enabled: write.enabled,
        is_default: write.enabled && (current.is_default || write.make_default),
        version: write.expected_version + 1,
        updated_at: write.now,
        ..current.clone()
    }
}

struct Fixture {
    configs: MockConfigRepository,
    tasks: MockTaskAssignmentRepository,
    documents: MockSettingsDocumentRepository,
    cipher: MockSecretCipher,
    probe: MockProviderProbe,
    client: MockProviderClient,
    events: Arc<Mutex<Vec<AuditEvent>>>,
    catalog: Catalog,
}

impl Fixture {
    fn new() -> Self {
        let mut cipher = MockSecretCipher::new();
        cipher
            .expect_seal()
            .returning(|_, binding| Ok(fake_sealed(binding)));
        Self {
            configs: MockConfigRepository::new(),
            tasks: MockTaskAssignmentRepository::new(),
            documents: MockSettingsDocumentRepository::new(),
            cipher,
            probe: MockProviderProbe::new(),
            client: MockProviderClient::new(),
            events: Arc::default(),
            catalog: Catalog::all(),
        }
    }

    /// A cipher that refuses to seal: for paths that must not seal anything.
    fn no_sealing(mut self) -> Self {
        self.cipher = MockSecretCipher::new();
        self
    }

    fn service(self) -> (SettingsService, Arc<Mutex<Vec<AuditEvent>>>) {
        let mut audit = MockAuditLog::new();
        let events = self.events.clone();
        audit.expect_record().returning(move |e| {
            events.lock().unwrap().push(e);
            Ok(())
        });
        let mut clock = MockClock::new();
        clock.expect_now().return_const(t(100));
        let mut queue = MockAuditQueue::new();
        let queued = self.events.clone();
        queue
            .expect_submit()
            .returning(move |e| queued.lock().unwrap().push(e));
        let ports = Ports {
            configs: Arc::new(self.configs),
            tasks: Arc::new(self.tasks),
            documents: Arc::new(self.documents),
            audit: Arc::new(audit),
            cipher: Arc::new(self.cipher),
            probe: Arc::new(self.probe),
            client: Arc::new(self.client),
            audit_queue: Arc::new(queue),
            clock: Arc::new(clock),
        };
        (SettingsService::new(ports, self.catalog), self.events)
    }
}

fn key_patch(key: &str) -> ConfigPatch {
    ConfigPatch {
        secrets: [("api_key".to_owned(), Some(SecretValue::new(key)))].into(),
        ..ConfigPatch::default()
    }
}

fn upsert(provider_id: &str, changes: ConfigPatch, make_default: bool) -> UpsertRequest {
    UpsertRequest {
        provider: provider(provider_id),
        changes,
        make_default,
    }
}

fn ok_outcome() -> ProbeOutcome {
    ProbeOutcome {
        success: true,
        latency_ms: 42,
        model_available: true,
        models: vec!["gpt-4o".into()],
        failure: None,
        retry_after_secs: None,
        message: "Connection OK".into(),
    }
}

// ---------------------------------------------------------------- create / update

#[tokio::test]
async fn upsert_creates_a_sealed_config_with_hints() {
    let mut f = Fixture::new();
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    f.configs.expect_insert().times(1).returning(|new| {
        assert_eq!(new.owner, user("u1"));
        assert!(!new.make_default);
        assert!(new.enabled);
        let secret = &new.secrets["api_key"];
        assert_eq!(secret.hints.last4, "Yx4f");
        assert_eq!(secret.hints.first4_last4, "sk-p...Yx4f");
        assert!(!String::from_utf8_lossy(secret.sealed.as_bytes()).contains("PLANTED"));
        Ok(ProviderConfig {
            id: ConfigId(1),
            owner: new.owner,
            provider: new.provider,
            secrets: new.secrets,
            settings: new.settings,
            model: new.model,
            base_url: new.base_url,
            enabled: new.enabled,
            is_default: true,
            version: 1,
            last_test: None,
            created_at: new.now,
            updated_at: new.now,
        })
    });
    let (svc, events) = f.service();
    let out = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("openai", key_patch(PLANTED), false),
        )
        .await
        .unwrap();
    assert!(matches!(out, UpsertOutcome::Created(_)));
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, AuditAction::Create);
    assert!(!format!("{events:?}").contains("PLANTED"));
}

#[tokio::test]
async fn upsert_of_an_existing_provider_keeps_id_and_created_at() {
    let mut f = Fixture::new();
    let existing = config(7, &user("u1"), "openai", Some(STORED));
    let current = existing.clone();
    f.configs
        .expect_find_by_provider()
        .returning(move |_, _| Ok(Some(current.clone())));
    let base = existing.clone();
    f.configs.expect_update().times(1).returning(move |write| {
        assert_eq!(write.id, ConfigId(7));
        assert_eq!(write.expected_version, 3);
        assert_eq!(
            write.model.as_ref().map(ModelName::as_str),
            Some("gpt-4o-mini")
        );
        Ok(config_after(&base, &write))
    });
    let (svc, events) = f.service();
    let changes = ConfigPatch {
        model: Patch::Set(ModelName::parse("gpt-4o-mini").unwrap()),
        ..key_patch(PLANTED)
    };
    let out = svc
        .upsert_config(&writer(), &user("u1"), upsert("openai", changes, false))
        .await
        .unwrap();
    let UpsertOutcome::Updated(cfg) = out else {
        panic!("expected an update")
    };
    assert_eq!((cfg.id, cfg.created_at), (existing.id, existing.created_at));
    assert_eq!(cfg.primary_hints().unwrap().last4, "Yx4f");
    assert_eq!(events.lock().unwrap()[0].action, AuditAction::Update);
}

#[tokio::test]
async fn upsert_that_loses_an_insert_race_updates_the_winner() {
    let mut f = Fixture::new();
    let winner = config(9, &user("u1"), "openai", Some(STORED));
    let mut seq = mockall::Sequence::new();
    f.configs
        .expect_find_by_provider()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(None));
    f.configs
        .expect_insert()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(Error::Conflict("duplicate".into())));
    let w = winner.clone();
    f.configs
        .expect_find_by_provider()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _| Ok(Some(w.clone())));
    f.configs
        .expect_update()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |write| Ok(config_after(&winner, &write)));
    let (svc, _) = f.service();
    let out = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("openai", key_patch(PLANTED), false),
        )
        .await
        .unwrap();
    assert_eq!(out.config().id, ConfigId(9));
}

#[tokio::test]
async fn create_requires_the_key_unless_the_provider_needs_none() {
    let mut f = Fixture::new();
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    f.configs.expect_insert().times(1).returning(|new| {
        assert!(new.secrets.is_empty());
        Ok(ProviderConfig {
            id: ConfigId(2),
            owner: new.owner,
            provider: new.provider,
            secrets: new.secrets,
            settings: new.settings,
            model: new.model,
            base_url: new.base_url,
            enabled: true,
            is_default: true,
            version: 1,
            last_test: None,
            created_at: new.now,
            updated_at: new.now,
        })
    });
    let (svc, _) = f.service();
    let err = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("anthropic", ConfigPatch::default(), false),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("validation_error", Some("api_key"))
    );
    svc.upsert_config(
        &writer(),
        &user("u1"),
        upsert("deepseek_local", ConfigPatch::default(), false),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn provider_specific_required_fields_are_enforced() {
    let mut f = Fixture::new();
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let (svc, _) = f.service();
    let err = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("azure", key_patch(PLANTED), false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("endpoint"));
    let err = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("openai_compatible", ConfigPatch::default(), false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("base_url"));
    let mut changes = key_patch(PLANTED);
    changes
        .secrets
        .insert("password".into(), Some(SecretValue::new("x")));
    let err = svc
        .upsert_config(&writer(), &user("u1"), upsert("openai", changes, false))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("password"));
    let mut changes = key_patch(PLANTED);
    changes
        .settings
        .insert("organization".into(), Some("org\u{0}x".into()));
    let err = svc
        .upsert_config(&writer(), &user("u1"), upsert("openai", changes, false))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("organization"), "no store can keep a NUL");
    let mut changes = key_patch(PLANTED);
    changes.settings.insert("api_key".into(), Some("x".into()));
    let err = svc
        .upsert_config(&writer(), &user("u1"), upsert("openai", changes, false))
        .await
        .unwrap_err();
    assert_eq!(
        err.field(),
        Some("api_key"),
        "secret fields are not plain settings"
    );
}

#[tokio::test]
async fn blank_and_oversized_secrets_are_rejected() {
    let mut f = Fixture::new();
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let (svc, _) = f.service();
    for bad in [
        "",
        "   ",
        &"k".repeat(40_000),
        "sk-abc\ndef",
        "sk-abc\u{0}def",
    ] {
        let err = svc
            .upsert_config(
                &writer(),
                &user("u1"),
                upsert("openai", key_patch(bad), false),
            )
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("api_key"));
    }
}

#[tokio::test]
async fn patch_with_explicit_null_clears_model_and_base_url() {
    let mut f = Fixture::new().no_sealing();
    let mut existing = config(4, &user("u1"), "openai", Some(STORED));
    existing.model = Some(ModelName::parse("gpt-4o").unwrap());
    existing.base_url = Some(BaseUrl::parse("https://api.openai.com/v1").unwrap());
    let current = existing.clone();
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(current.clone())));
    f.configs.expect_update().times(1).returning(move |write| {
        assert_eq!(write.model, None);
        assert_eq!(write.base_url, None);
        assert_eq!(write.secrets, existing.secrets, "the key is untouched");
        Ok(config_after(&existing, &write))
    });
    let (svc, _) = f.service();
    let patch = ConfigPatch {
        model: Patch::Clear,
        base_url: Patch::Clear,
        ..ConfigPatch::default()
    };
    let cfg = svc
        .update_config(&writer(), &user("u1"), ConfigId(4), patch)
        .await
        .unwrap();
    assert_eq!(cfg.effective_model(), Some("gpt-4o"));
}

#[tokio::test]
async fn patch_with_a_stale_version_is_a_conflict() {
    let mut f = Fixture::new();
    let current = config(4, &user("u1"), "openai", Some(STORED));
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(current.clone())));
    let (svc, _) = f.service();
    let patch = ConfigPatch {
        expected_version: Some(2),
        enabled: Some(false),
        ..ConfigPatch::default()
    };
    let err = svc
        .update_config(&writer(), &user("u1"), ConfigId(4), patch)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict");
}

#[tokio::test]
async fn patch_of_another_owners_config_is_not_found() {
    let mut f = Fixture::new();
    f.configs.expect_get().returning(|owner, _| {
        assert_eq!(*owner, user("u1"), "lookups are scoped to the caller");
        Ok(None)
    });
    let (svc, _) = f.service();
    let err = svc
        .update_config(&writer(), &user("u1"), ConfigId(99), key_patch(PLANTED))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}

// ---------------------------------------------------------------- masked round trip

#[tokio::test]
async fn a_mask_equal_to_a_handed_out_hint_keeps_the_stored_key() {
    for style in [
        MaskStyleUnderTest::First4Last4,
        MaskStyleUnderTest::VendorLast4,
        MaskStyleUnderTest::PrefixStars,
    ] {
        let mut f = Fixture::new().no_sealing();
        let existing = config(5, &user("u1"), "anthropic", Some(STORED));
        let hints = existing.primary_hints().unwrap().clone();
        let current = existing.clone();
        f.configs
            .expect_get()
            .returning(move |_, _| Ok(Some(current.clone())));
        let keep = existing.clone();
        f.configs.expect_update().times(1).returning(move |write| {
            assert_eq!(write.secrets, keep.secrets);
            Ok(config_after(&keep, &write))
        });
        let (svc, _) = f.service();
        svc.update_config(
            &writer(),
            &user("u1"),
            ConfigId(5),
            key_patch(style.pick(&hints)),
        )
        .await
        .unwrap();
    }
}

enum MaskStyleUnderTest {
    First4Last4,
    VendorLast4,
    PrefixStars,
}

impl MaskStyleUnderTest {
    fn pick<'a>(&self, h: &'a SecretHints) -> &'a str {
        match self {
            Self::First4Last4 => &h.first4_last4,
            Self::VendorLast4 => &h.vendor_last4,
            Self::PrefixStars => &h.prefix_stars,
        }
    }
}

#[tokio::test]
async fn a_look_alike_mask_is_rejected_and_never_stored() {
    let mut f = Fixture::new().no_sealing();
    let existing = config(5, &user("u1"), "anthropic", Some(STORED));
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let (svc, _) = f.service();
    let err = svc
        .update_config(
            &writer(),
            &user("u1"),
            ConfigId(5),
            key_patch("sk-a...ZZZZ"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("masked_key_mismatch", Some("api_key"))
    );
    // With nothing stored, any mask is a mismatch.
    let err = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("openai", key_patch("sk-***"), false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "masked_key_mismatch");
    assert!(!err.to_string().contains("sk-***"));
}

// ---------------------------------------------------------------- base URL rule

#[tokio::test]
async fn changing_base_url_of_a_stored_key_requires_the_key() {
    let mut f = Fixture::new();
    let existing = config(6, &user("u1"), "openai", Some(STORED));
    let current = existing.clone();
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(current.clone())));
    f.configs
        .expect_update()
        .times(2)
        .returning(move |write| Ok(config_after(&existing, &write)));
    let (svc, _) = f.service();
    let elsewhere = BaseUrl::parse("https://gateway.example.com/v1").unwrap();

    let patch = ConfigPatch {
        base_url: Patch::Set(elsewhere.clone()),
        ..ConfigPatch::default()
    };
    let err = svc
        .update_config(&writer(), &user("u1"), ConfigId(6), patch)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("base_url"));

    // The provider's own host is fine without the key.
    let own = ConfigPatch {
        base_url: Patch::Set(BaseUrl::parse("https://api.openai.com/v2").unwrap()),
        ..ConfigPatch::default()
    };
    svc.update_config(&writer(), &user("u1"), ConfigId(6), own)
        .await
        .unwrap();

    // Sending the key again allows it.
    let with_key = ConfigPatch {
        base_url: Patch::Set(elsewhere),
        ..key_patch(PLANTED)
    };
    svc.update_config(&writer(), &user("u1"), ConfigId(6), with_key)
        .await
        .unwrap();
}

#[tokio::test]
async fn changing_the_azure_endpoint_requires_the_key() {
    let mut f = Fixture::new();
    let mut existing = config(8, &user("u1"), "azure", Some(STORED));
    existing
        .settings
        .insert("endpoint".into(), "https://a.openai.azure.com".into());
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(existing.clone())));
    let (svc, _) = f.service();
    let patch = ConfigPatch {
        settings: [(
            "endpoint".to_owned(),
            Some("https://evil.example.com".to_owned()),
        )]
        .into(),
        ..ConfigPatch::default()
    };
    let err = svc
        .update_config(&writer(), &user("u1"), ConfigId(8), patch)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("endpoint"));
}

// ---------------------------------------------------------------- default invariant

#[tokio::test]
async fn set_default_on_another_owners_config_is_not_found() {
    let mut f = Fixture::new();
    f.configs.expect_get().returning(|_, _| Ok(None));
    let (svc, events) = f.service();
    let err = svc
        .set_default(&writer(), &user("u1"), ConfigId(77))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert_eq!(
        events.lock().unwrap()[0].outcome,
        AuditOutcome::Failure("not_found".into())
    );
}

#[tokio::test]
async fn set_default_is_one_repository_operation() {
    let mut f = Fixture::new();
    let existing = config(3, &user("u1"), "openai", Some(STORED));
    let current = existing.clone();
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(current.clone())));
    f.configs
        .expect_set_default()
        .times(1)
        .returning(move |_, id, now| {
            assert_eq!(id, ConfigId(3));
            Ok(ProviderConfig {
                is_default: true,
                updated_at: now,
                ..existing.clone()
            })
        });
    let (svc, events) = f.service();
    let cfg = svc
        .set_default(&writer(), &user("u1"), ConfigId(3))
        .await
        .unwrap();
    assert!(cfg.is_default);
    assert_eq!(events.lock().unwrap()[0].action, AuditAction::SetDefault);
}

#[tokio::test]
async fn a_disabled_config_cannot_become_the_default() {
    let mut f = Fixture::new();
    let mut existing = config(3, &user("u1"), "openai", Some(STORED));
    existing.enabled = false;
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let (svc, _) = f.service();
    let err = svc
        .set_default(&writer(), &user("u1"), ConfigId(3))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("validation_error", Some("is_default"))
    );

    let disabled_default = ConfigPatch {
        enabled: Some(false),
        ..key_patch(PLANTED)
    };
    let err = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("openai", disabled_default, true),
        )
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("is_default"));
}

#[tokio::test]
async fn set_default_losing_to_a_concurrent_disable_is_reported_clearly() {
    let mut f = Fixture::new();
    let existing = config(3, &user("u1"), "openai", Some(STORED));
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.configs
        .expect_set_default()
        .returning(|_, _, _| Err(Error::Conflict("disabled".into())));
    let (svc, _) = f.service();
    let err = svc
        .set_default(&writer(), &user("u1"), ConfigId(3))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("is_default"));
}

#[tokio::test]
async fn disabling_passes_through_to_the_store_which_clears_the_flag() {
    let mut f = Fixture::new().no_sealing();
    let mut existing = config(3, &user("u1"), "openai", Some(STORED));
    existing.is_default = true;
    let current = existing.clone();
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(current.clone())));
    f.configs.expect_update().times(1).returning(move |write| {
        assert!(!write.enabled);
        assert!(!write.make_default);
        Ok(config_after(&existing, &write))
    });
    let (svc, _) = f.service();
    let cfg = svc
        .set_enabled(&writer(), &user("u1"), ConfigId(3), false)
        .await
        .unwrap();
    assert!(!cfg.enabled && !cfg.is_default);
}

#[tokio::test]
async fn deleting_the_default_promotes_nothing() {
    let mut f = Fixture::new();
    let mut existing = config(3, &user("u1"), "openai", Some(STORED));
    existing.is_default = true;
    f.configs
        .expect_get()
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.configs.expect_delete().times(1).returning(|_, _| Ok(()));
    // No set_default / update expectation: calling either would fail the test.
    let (svc, events) = f.service();
    svc.delete_config(&writer(), &user("u1"), ConfigId(3))
        .await
        .unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events[0].action, AuditAction::Delete);
    assert_eq!(events[0].provider, Some(provider("openai")));
}

#[tokio::test]
async fn delete_of_a_missing_config_is_not_found() {
    let mut f = Fixture::new();
    f.configs.expect_get().returning(|_, _| Ok(None));
    let (svc, _) = f.service();
    let err = svc
        .delete_config(&writer(), &user("u1"), ConfigId(3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}

// ---------------------------------------------------------------- authorization

#[tokio::test]
async fn scopes_and_roles_are_checked_before_any_port_is_touched() {
    // No expectations on any repository: a call would fail the test.
    let (svc, _) = Fixture::new().no_sealing().service();
    let reader = actor("u1", &[Scope::Read]);
    let err = svc
        .upsert_config(
            &reader,
            &user("u1"),
            upsert("openai", key_patch(PLANTED), false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let err = svc.list_configs(&writer(), &user("u2")).await.unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let err = svc
        .list_configs(&writer(), &Owner::Global)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let admin = Actor::new(
        UserId::parse("a").unwrap(),
        [],
        [Role::Admin],
        Some(InstanceId::parse("acme").unwrap()),
    );
    let other = Owner::Instance(InstanceId::parse("globex").unwrap());
    let err = svc
        .test_connection(&admin, &other, ConnectionTest::stored(provider("openai")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
}

#[tokio::test]
async fn providers_not_offered_are_unknown() {
    let mut f = Fixture::new();
    f.catalog = Catalog::restricted(["anthropic"]).unwrap();
    let (svc, _) = f.service();
    let err = svc
        .upsert_config(
            &writer(),
            &user("u1"),
            upsert("openai", key_patch(PLANTED), false),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_provider");
}

// ---------------------------------------------------------------- test connection

#[tokio::test]
async fn test_without_stored_or_given_key_is_provider_not_configured() {
    let mut f = Fixture::new();
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    let (svc, events) = f.service();
    let err = svc
        .test_connection(
            &writer(),
            &user("u1"),
            ConnectionTest::stored(provider("anthropic")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "provider_not_configured");
    assert_eq!(events.lock().unwrap()[0].action, AuditAction::Test);
}

fn stored_key_fixture(mut f: Fixture) -> Fixture {
    let existing = config(11, &user("u1"), "anthropic", Some(STORED));
    f.configs
        .expect_find_by_provider()
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.cipher.expect_open().returning(|sealed, binding| {
        assert_eq!(sealed, &fake_sealed(binding));
        Ok(SecretValue::new(STORED))
    });
    f
}

#[tokio::test]
async fn test_with_the_stored_key_records_the_outcome() {
    let mut f = stored_key_fixture(Fixture::new());
    f.probe
        .expect_probe()
        .times(1)
        .returning(|req: ProbeRequest| {
            assert_eq!(req.secrets["api_key"].expose(), STORED);
            assert_eq!(req.model.as_deref(), Some("claude-sonnet-4-5"));
            assert_eq!(req.base_url, None);
            ok_outcome()
        });
    f.configs
        .expect_record_test()
        .times(1)
        .returning(|_, id, record: TestRecord| {
            assert_eq!(id, ConfigId(11));
            assert!(record.success);
            Ok(())
        });
    let (svc, events) = f.service();
    let result = svc
        .test_connection(
            &writer(),
            &user("u1"),
            ConnectionTest::stored(provider("anthropic")),
        )
        .await
        .unwrap();
    assert!(result.outcome.success && result.used_stored_secret);
    let actions: Vec<_> = events.lock().unwrap().iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Decrypt, AuditAction::Test]);
}

#[tokio::test]
async fn test_with_a_handed_out_mask_uses_the_stored_key() {
    let mut f = stored_key_fixture(Fixture::new());
    f.probe
        .expect_probe()
        .times(1)
        .returning(|req: ProbeRequest| {
            assert_eq!(req.secrets["api_key"].expose(), STORED);
            ok_outcome()
        });
    f.configs.expect_record_test().returning(|_, _, _| Ok(()));
    let (svc, _) = f.service();
    let hints = SecretHints::of(STORED);
    let test = ConnectionTest {
        secrets: [("api_key".to_owned(), SecretValue::new(hints.first4_last4))].into(),
        ..ConnectionTest::stored(provider("anthropic"))
    };
    svc.test_connection(&writer(), &user("u1"), test)
        .await
        .unwrap();
}

#[tokio::test]
async fn test_with_a_key_in_the_request_does_not_touch_the_stored_one() {
    let mut f = Fixture::new();
    let existing = config(11, &user("u1"), "anthropic", Some(STORED));
    f.configs
        .expect_find_by_provider()
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.probe
        .expect_probe()
        .times(1)
        .returning(|req: ProbeRequest| {
            assert_eq!(req.secrets["api_key"].expose(), PLANTED);
            assert_eq!(req.base_url.as_deref(), Some("https://gateway.example.com"));
            ProbeOutcome::failed(
                FailureClass::InvalidCredentials,
                5,
                "The API key was rejected",
            )
        });
    // No open / record_test expectations: the stored key is neither decrypted nor updated.
    let (svc, events) = f.service();
    let test = ConnectionTest {
        secrets: [("api_key".to_owned(), SecretValue::new(PLANTED))].into(),
        base_url: Some(BaseUrl::parse("https://gateway.example.com").unwrap()),
        ..ConnectionTest::stored(provider("anthropic"))
    };
    let result = svc
        .test_connection(&writer(), &user("u1"), test)
        .await
        .unwrap();
    assert!(!result.outcome.success);
    assert_eq!(
        result.outcome.failure,
        Some(FailureClass::InvalidCredentials)
    );
    let events = events.lock().unwrap();
    assert_eq!(
        events[0].outcome,
        AuditOutcome::Failure("invalid_credentials".into())
    );
    assert!(!format!("{events:?}").contains("PLANTED"));
}

#[tokio::test]
async fn a_stored_key_is_never_sent_to_another_base_url() {
    let f = stored_key_fixture(Fixture::new());
    // No probe expectation: probing would fail the test.
    let (svc, _) = f.service();
    let test = ConnectionTest {
        base_url: Some(BaseUrl::parse("http://169.254.169.254").unwrap()),
        ..ConnectionTest::stored(provider("anthropic"))
    };
    let err = svc
        .test_connection(&writer(), &user("u1"), test)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("base_url"));
}

#[tokio::test]
async fn a_stored_key_may_be_tested_against_the_providers_own_host() {
    let mut f = stored_key_fixture(Fixture::new());
    f.probe.expect_probe().times(1).returning(|_| ok_outcome());
    let (svc, _) = f.service();
    let test = ConnectionTest {
        base_url: Some(BaseUrl::parse("https://api.anthropic.com").unwrap()),
        ..ConnectionTest::stored(provider("anthropic"))
    };
    svc.test_connection(&writer(), &user("u1"), test)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_test_of_an_unreadable_secret_is_an_error_not_a_probe() {
    let mut f = Fixture::new();
    let existing = config(11, &user("u1"), "anthropic", Some(STORED));
    f.configs
        .expect_find_by_provider()
        .returning(move |_, _| Ok(Some(existing.clone())));
    f.cipher
        .expect_open()
        .returning(|_, _| Err(Error::SecretUnreadable));
    let (svc, events) = f.service();
    let err = svc
        .test_connection(
            &writer(),
            &user("u1"),
            ConnectionTest::stored(provider("anthropic")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "secret_unreadable");
    assert_eq!(
        events.lock().unwrap()[0].outcome,
        AuditOutcome::Failure("secret_unreadable".into())
    );
}

#[tokio::test]
async fn a_keyless_provider_can_be_tested_with_nothing_stored() {
    let mut f = Fixture::new();
    f.configs
        .expect_find_by_provider()
        .returning(|_, _| Ok(None));
    f.probe
        .expect_probe()
        .times(1)
        .returning(|req: ProbeRequest| {
            assert!(req.secrets.is_empty());
            assert_eq!(req.model.as_deref(), Some("llama3.1"));
            ok_outcome()
        });
    let (svc, _) = f.service();
    svc.test_connection(
        &writer(),
        &user("u1"),
        ConnectionTest::stored(provider("ollama")),
    )
    .await
    .unwrap();
}

// ---------------------------------------------------------------- tasks and documents

fn assignment(task: &str, provider_id: &str, model: &str) -> TaskAssignment {
    TaskAssignment {
        task: TaskName::parse(task).unwrap(),
        provider: provider(provider_id),
        model: ModelName::parse(model).unwrap(),
    }
}

fn superadmin() -> Actor {
    Actor::new(
        UserId::parse("root").unwrap(),
        [Scope::Read, Scope::Write],
        [Role::Superadmin],
        None,
    )
}

#[tokio::test]
async fn task_assignments_are_validated_then_saved() {
    let mut f = Fixture::new();
    f.tasks
        .expect_upsert()
        .times(1)
        .returning(|owner, list, _| {
            assert_eq!(*owner, Owner::Global);
            assert_eq!(list.len(), 2);
            Ok(())
        });
    f.tasks
        .expect_list()
        .returning(|_| Ok(vec![assignment("summarize", "openai", "gpt-4o")]));
    let (svc, _) = f.service();
    let dup = vec![
        assignment("summarize", "openai", "gpt-4o"),
        assignment("summarize", "anthropic", "claude-sonnet-4-5"),
    ];
    let err = svc
        .save_task_assignments(&superadmin(), &Owner::Global, dup)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("task"));
    let ok = vec![
        assignment("summarize", "openai", "gpt-4o"),
        assignment("classify", "anthropic", "claude-sonnet-4-5"),
    ];
    let saved = svc
        .save_task_assignments(&superadmin(), &Owner::Global, ok)
        .await
        .unwrap();
    assert_eq!(saved.len(), 1);
}

// ---------------------------------------------------------------- key rotation

#[tokio::test]
async fn rewrap_reseals_stale_secrets_and_retries_moved_rows() {
    let mut f = Fixture::new();
    let owner = user("u1");
    let stale = config(1, &owner, "openai", Some(STORED));
    let current = config(2, &owner, "anthropic", Some(STORED));
    let page = vec![stale.clone(), current.clone()];
    let mut seq = mockall::Sequence::new();
    f.configs
        .expect_page_all()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |after, _| {
            assert_eq!(after, None);
            Ok(page.clone())
        });
    f.cipher
        .expect_is_current()
        .returning(|sealed| !String::from_utf8_lossy(sealed.as_bytes()).contains("openai"));
    f.cipher
        .expect_rewrap()
        .returning(|_, _| Ok(SealedSecret::from_bytes(b"fresh".to_vec())));
    f.configs
        .expect_replace_sealed()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(false));
    let moved = ProviderConfig {
        version: 4,
        ..stale
    };
    f.configs
        .expect_get()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _| Ok(Some(moved.clone())));
    f.configs
        .expect_replace_sealed()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|id, version, sealed| {
            assert_eq!((id, version), (ConfigId(1), 4));
            assert_eq!(sealed["api_key"].as_bytes(), b"fresh");
            Ok(true)
        });
    f.configs
        .expect_page_all()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|after, _| {
            assert_eq!(after, Some(ConfigId(2)));
            Ok(vec![])
        });
    let (svc, events) = f.service();
    let mut batches = 0;
    let report = svc.rewrap_all(None, 100, |_| batches += 1).await.unwrap();
    assert_eq!(
        (report.scanned, report.rewrapped, report.current),
        (2, 1, 1)
    );
    assert_eq!(batches, 1);
    assert_eq!(events.lock().unwrap()[0].action, AuditAction::Rewrap);
}
