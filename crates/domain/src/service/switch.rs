//! Moving an owner's default config to another provider (the admin API's "change provider").
//!
//! A config's provider never changes in place: its secrets are sealed bound to the provider, so
//! a key stored for one provider cannot be opened as another's. Switching therefore creates
//! (or updates) the target provider's config as the owner's default and then deletes the old
//! one, and needs the target's key unless the target provider needs none.

use super::{SettingsService, UpsertRequest};
use crate::actor::{Access, Actor};
use crate::catalog::ProviderId;
use crate::config::{ConfigPatch, ProviderConfig};
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::values::ConfigId;

impl SettingsService {
    /// Moves config `id` of `owner` to provider `to`, applying `changes` (secrets, model, base
    /// URL, settings) to the target. Nothing of the old config is carried over: its key is
    /// bound to the old provider and its model and endpoint belong to it.
    ///
    /// When `to` is the config's own provider this is a plain [`SettingsService::update_config`].
    /// Otherwise the target's primary secret must be in `changes` unless the target provider
    /// needs none (`Validation` naming that field); the target becomes the owner's default
    /// (created, or updated if the owner already has a config for it) and the old config is
    /// deleted. `NotFound` when the owner has no config `id`.
    pub async fn switch_provider(
        &self,
        actor: &Actor,
        owner: &Owner,
        id: ConfigId,
        to: ProviderId,
        changes: ConfigPatch,
    ) -> Result<ProviderConfig> {
        actor.authorize(owner, Access::Write)?;
        let current = self
            .ports
            .configs
            .get(owner, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("config {id}")))?;
        if current.provider == to {
            return self.update_config(actor, owner, id, changes).await;
        }
        self.catalog.ensure_offered(to)?;
        let spec = to.spec();
        if let Some(key) = spec.primary_secret().filter(|f| f.required) {
            let given = changes
                .secrets
                .get(key.name)
                .is_some_and(|value| value.is_some());
            if !given {
                return Err(Error::invalid(
                    key.name,
                    format!(
                        "changing the provider to {} requires its {} (a stored key belongs to its provider)",
                        spec.id, key.name
                    ),
                ));
            }
        }
        let request = UpsertRequest {
            provider: to,
            changes,
            make_default: true,
        };
        let moved = self
            .upsert_config(actor, owner, request)
            .await?
            .into_config();
        match self.delete_config(actor, owner, current.id).await {
            Ok(()) | Err(Error::NotFound(_)) => Ok(moved),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::actor::{Role, Scope};
    use crate::audit::{AuditAction, AuditEvent};
    use crate::catalog::Catalog;
    use crate::config::{NewProviderConfig, Patch};
    use crate::mask::SecretHints;
    use crate::owner::{InstanceId, UserId};
    use crate::ports::{
        MockAuditLog, MockClock, MockConfigRepository, MockProviderProbe, MockSecretCipher,
        MockSettingsDocumentRepository, MockTaskAssignmentRepository,
    };
    use crate::secret::{SealedSecret, SecretValue, StoredSecret};
    use crate::service::Ports;
    use crate::values::{ModelName, Timestamp};

    const OLD_KEY: &str = "sk-ant-api03-OLDsecretVALUE0123456789abcdefghijklmnopXXXX";
    const NEW_KEY: &str = "sk-proj-NEWsecretVALUE0123456789abcdefghYx4f";

    fn now() -> Timestamp {
        Timestamp::from_unix_micros(1_735_000_000_000_000).unwrap()
    }

    fn instance() -> Owner {
        Owner::Instance(InstanceId::parse("acme").unwrap())
    }

    fn superadmin() -> Actor {
        Actor::new(UserId::parse("root").unwrap(), [], [Role::Superadmin], None)
    }

    fn p(id: &str) -> ProviderId {
        ProviderId::lookup(id).unwrap()
    }

    fn anthropic_default(owner: &Owner) -> ProviderConfig {
        let provider = p("anthropic");
        let secret = StoredSecret {
            sealed: SealedSecret::from_bytes(b"sealed-old".to_vec()),
            hints: SecretHints::of(OLD_KEY),
        };
        ProviderConfig {
            id: ConfigId(7),
            owner: owner.clone(),
            provider,
            secrets: BTreeMap::from([("api_key".to_owned(), secret)]),
            settings: BTreeMap::new(),
            model: Some(ModelName::parse("claude-sonnet-4-20250514").unwrap()),
            base_url: None,
            enabled: true,
            is_default: true,
            version: 2,
            last_test: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn inserted(new: &NewProviderConfig) -> ProviderConfig {
        ProviderConfig {
            id: ConfigId(8),
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
        }
    }

    fn build(configs: MockConfigRepository) -> (SettingsService, Arc<Mutex<Vec<AuditEvent>>>) {
        let events: Arc<Mutex<Vec<AuditEvent>>> = Arc::default();
        let sink = events.clone();
        let mut audit = MockAuditLog::new();
        audit.expect_record().returning(move |e| {
            sink.lock().unwrap().push(e);
            Ok(())
        });
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        let mut cipher = MockSecretCipher::new();
        cipher.expect_seal().returning(|value, binding| {
            assert!(!value.expose().is_empty());
            Ok(SealedSecret::from_bytes(
                format!("sealed:{}:{}", binding.provider, binding.field).into_bytes(),
            ))
        });
        let ports = Ports {
            configs: Arc::new(configs),
            tasks: Arc::new(MockTaskAssignmentRepository::new()),
            documents: Arc::new(MockSettingsDocumentRepository::new()),
            audit: Arc::new(audit),
            cipher: Arc::new(cipher),
            probe: Arc::new(MockProviderProbe::new()),
            clock: Arc::new(clock),
        };
        (SettingsService::new(ports, Catalog::all()), events)
    }

    fn key(value: &str) -> ConfigPatch {
        ConfigPatch {
            secrets: BTreeMap::from([("api_key".to_owned(), Some(SecretValue::new(value)))]),
            ..ConfigPatch::default()
        }
    }

    #[tokio::test]
    async fn switching_creates_the_target_as_default_then_deletes_the_old_config() {
        let owner = instance();
        let current = anthropic_default(&owner);
        let mut configs = MockConfigRepository::new();
        let loaded = current.clone();
        configs
            .expect_get()
            .returning(move |_, _| Ok(Some(loaded.clone())));
        configs
            .expect_find_by_provider()
            .withf(|_, provider| provider.as_str() == "openai")
            .returning(|_, _| Ok(None));
        configs
            .expect_insert()
            .withf(|new| {
                new.make_default
                    && new.provider.as_str() == "openai"
                    && new.model.is_none()
                    && new.secrets["api_key"].hints == SecretHints::of(NEW_KEY)
            })
            .returning(|new| Ok(inserted(&new)));
        configs
            .expect_delete()
            .withf(|_, id| *id == ConfigId(7))
            .times(1)
            .returning(|_, _| Ok(()));
        let (service, events) = build(configs);
        let moved = service
            .switch_provider(
                &superadmin(),
                &owner,
                ConfigId(7),
                p("openai"),
                key(NEW_KEY),
            )
            .await
            .unwrap();
        assert_eq!(moved.provider.as_str(), "openai");
        assert!(moved.is_default);
        let actions: Vec<_> = events.lock().unwrap().iter().map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::Create, AuditAction::Delete]);
    }

    #[tokio::test]
    async fn switching_needs_the_new_providers_key_unless_it_needs_none() {
        let owner = Owner::Global;
        let current = anthropic_default(&owner);
        let mut configs = MockConfigRepository::new();
        let loaded = current.clone();
        configs
            .expect_get()
            .returning(move |_, _| Ok(Some(loaded.clone())));
        let (service, _) = build(configs);
        let model_only = ConfigPatch {
            model: Patch::Set(ModelName::parse("gpt-4o").unwrap()),
            ..ConfigPatch::default()
        };
        let err = service
            .switch_provider(&superadmin(), &owner, ConfigId(7), p("openai"), model_only)
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("api_key"));
        assert!(err.to_string().contains("requires its api_key"), "{err}");

        // A keyless provider can be switched to with nothing but the provider.
        let mut configs = MockConfigRepository::new();
        let loaded = current.clone();
        configs
            .expect_get()
            .returning(move |_, _| Ok(Some(loaded.clone())));
        configs.expect_find_by_provider().returning(|_, _| Ok(None));
        configs
            .expect_insert()
            .withf(|new| new.secrets.is_empty() && new.make_default)
            .returning(|new| Ok(inserted(&new)));
        configs.expect_delete().times(1).returning(|_, _| Ok(()));
        let (service, _) = build(configs);
        let moved = service
            .switch_provider(
                &superadmin(),
                &owner,
                ConfigId(7),
                p("ollama"),
                ConfigPatch::default(),
            )
            .await
            .unwrap();
        assert_eq!(moved.provider.as_str(), "ollama");
    }

    #[tokio::test]
    async fn switching_to_the_same_provider_is_an_update() {
        let owner = Owner::Global;
        let current = anthropic_default(&owner);
        let mut configs = MockConfigRepository::new();
        let loaded = current.clone();
        configs
            .expect_get()
            .returning(move |_, _| Ok(Some(loaded.clone())));
        let base = current.clone();
        configs.expect_update().times(1).returning(move |write| {
            Ok(ProviderConfig {
                model: write.model.clone(),
                version: write.expected_version + 1,
                ..base.clone()
            })
        });
        configs.expect_delete().never();
        let (service, _) = build(configs);
        let changes = ConfigPatch {
            model: Patch::Set(ModelName::parse("claude-opus-4-1").unwrap()),
            ..ConfigPatch::default()
        };
        let updated = service
            .switch_provider(&superadmin(), &owner, ConfigId(7), p("anthropic"), changes)
            .await
            .unwrap();
        assert_eq!(updated.model.unwrap().as_str(), "claude-opus-4-1");
    }

    #[tokio::test]
    async fn switching_checks_access_and_existence_first() {
        let owner = instance();
        let stranger = Actor::new(
            UserId::parse("u1").unwrap(),
            [Scope::Read, Scope::Write],
            [Role::Admin],
            Some(InstanceId::parse("other").unwrap()),
        );
        let (service, _) = build(MockConfigRepository::new());
        let err = service
            .switch_provider(&stranger, &owner, ConfigId(7), p("openai"), key(NEW_KEY))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "forbidden");

        let mut configs = MockConfigRepository::new();
        configs.expect_get().returning(|_, _| Ok(None));
        let (service, _) = build(configs);
        let err = service
            .switch_provider(
                &superadmin(),
                &owner,
                ConfigId(7),
                p("openai"),
                key(NEW_KEY),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    #[tokio::test]
    async fn a_mask_of_the_old_providers_key_is_not_a_key_for_the_new_one() {
        let owner = Owner::Global;
        let current = anthropic_default(&owner);
        let mask = current.primary_hints().unwrap().vendor_last4.clone();
        let mut configs = MockConfigRepository::new();
        let loaded = current.clone();
        configs
            .expect_get()
            .returning(move |_, _| Ok(Some(loaded.clone())));
        configs.expect_find_by_provider().returning(|_, _| Ok(None));
        configs.expect_insert().never();
        configs.expect_delete().never();
        let (service, _) = build(configs);
        let err = service
            .switch_provider(&superadmin(), &owner, ConfigId(7), p("openai"), key(&mask))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "masked_key_mismatch");
    }
}
