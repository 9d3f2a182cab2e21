//! Small builders shared by the contract cases: owners, times, configs, a reversible fake
//! cipher and a probe that always succeeds.

use std::collections::BTreeMap;

use async_trait::async_trait;
use llm_settings_domain::ports::{
    Clock, ConfigRepository, ProviderProbe, SecretCipher, SystemClock,
};
use llm_settings_domain::{
    ConfigWrite, Error, InstanceId, ModelName, NewProviderConfig, Owner, ProbeOutcome,
    ProbeRequest, ProviderConfig, ProviderId, Result, SealedSecret, SecretBinding, SecretHints,
    SecretValue, StoredSecret, Timestamp, UserId,
};

/// A key planted in tests: it must never show up in an audit row or a stored byte.
pub const PLANTED_SECRET: &str = "sk-proj-PLANTEDsecretVALUE0123456789abcdefYx4f";

/// A user owner.
pub fn user(id: &str) -> Owner {
    Owner::User(UserId::parse(id).unwrap_or_else(|e| panic!("bad user id {id}: {e}")))
}

/// An instance owner.
pub fn instance(id: &str) -> Owner {
    Owner::Instance(InstanceId::parse(id).unwrap_or_else(|e| panic!("bad instance id {id}: {e}")))
}

/// A catalog provider by id.
pub fn provider(name: &str) -> ProviderId {
    ProviderId::lookup(name).unwrap_or_else(|| panic!("unknown provider {name}"))
}

/// A fixed instant with a non-zero microsecond part, plus `secs` seconds.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_736_071_200_123_456 + secs * 1_000_000)
        .unwrap_or_else(|e| panic!("timestamp out of range: {e}"))
}

/// The current time.
pub fn now() -> Timestamp {
    SystemClock.now()
}

/// A model name.
pub fn model(name: &str) -> ModelName {
    ModelName::parse(name).unwrap_or_else(|e| panic!("bad model {name}: {e}"))
}

/// Seals with [`FakeCipher`] without a binding check (for store-level tests).
pub fn stored_secret(value: &str) -> StoredSecret {
    StoredSecret {
        sealed: SealedSecret::from_bytes(scramble(value.as_bytes())),
        hints: SecretHints::of(value),
    }
}

/// A config to insert: enabled, one API key, one non-secret field and a model.
pub fn new_config(owner: &Owner, provider_name: &str, now: Timestamp) -> NewProviderConfig {
    NewProviderConfig {
        owner: owner.clone(),
        provider: provider(provider_name),
        secrets: BTreeMap::from([(
            "api_key".to_owned(),
            stored_secret(&format!("sk-test-{provider_name}-0123456789abcdef")),
        )]),
        settings: BTreeMap::from([("organization".to_owned(), "org-test".to_owned())]),
        model: Some(model("test-model-1")),
        base_url: None,
        enabled: true,
        make_default: false,
        now,
    }
}

/// Proves a freshly (re)migrated store works: `owner` has no config yet, and its first one
/// becomes the default.
pub async fn works_on_a_fresh_schema<S: ConfigRepository>(store: &S, owner: &Owner) {
    let configs = ConfigRepository::list(store, owner)
        .await
        .unwrap_or_else(|e| panic!("list after migrating: {e}"));
    assert!(configs.is_empty(), "{configs:?}");
    let created = store
        .insert(new_config(owner, "openai", now()))
        .await
        .unwrap_or_else(|e| panic!("insert after migrating: {e}"));
    assert!(created.is_default);
}

/// A write that keeps every field of `config` as it is.
pub fn unchanged(config: &ProviderConfig, now: Timestamp) -> ConfigWrite {
    ConfigWrite {
        id: config.id,
        owner: config.owner.clone(),
        expected_version: config.version,
        secrets: config.secrets.clone(),
        settings: config.settings.clone(),
        model: config.model.clone(),
        base_url: config.base_url.clone(),
        enabled: config.enabled,
        make_default: false,
        now,
    }
}

fn scramble(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b ^ 0x5A).collect()
}

/// A reversible stand-in for the real cipher: XOR-scrambled bytes prefixed with the
/// binding, so a plaintext never appears in storage and a moved ciphertext fails to open.
#[derive(Debug, Default, Clone, Copy)]
pub struct FakeCipher;

impl SecretCipher for FakeCipher {
    fn seal(&self, value: &SecretValue, binding: &SecretBinding) -> Result<SealedSecret> {
        let ad = binding.associated_data();
        let mut out = (ad.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&ad);
        out.extend(scramble(value.expose().as_bytes()));
        Ok(SealedSecret::from_bytes(out))
    }

    fn open(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SecretValue> {
        let bytes = sealed.as_bytes();
        let ad = binding.associated_data();
        let len = bytes
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
            .ok_or(Error::SecretUnreadable)?;
        if bytes.get(4..4 + len) != Some(ad.as_slice()) {
            return Err(Error::SecretUnreadable);
        }
        String::from_utf8(scramble(&bytes[4 + len..]))
            .map(SecretValue::new)
            .map_err(|_| Error::SecretUnreadable)
    }

    fn is_current(&self, _sealed: &SealedSecret) -> bool {
        true
    }

    fn rewrap(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SealedSecret> {
        self.seal(&self.open(sealed, binding)?, binding)
    }
}

/// A probe that reports every key as working, without any network.
#[derive(Debug, Default, Clone, Copy)]
pub struct AcceptingProbe;

#[async_trait]
impl ProviderProbe for AcceptingProbe {
    async fn probe(&self, request: ProbeRequest) -> ProbeOutcome {
        ProbeOutcome {
            success: true,
            latency_ms: 7,
            model_available: true,
            models: request.model.into_iter().collect(),
            failure: None,
            retry_after_secs: None,
            message: "the key works".into(),
        }
    }
}

/// A gateway client for store tests: they make no calls, so every call is refused as one that
/// cannot be built.
#[derive(Debug, Default)]
pub struct NoCalls;

#[async_trait]
impl llm_settings_domain::ports::ProviderClient for NoCalls {
    async fn forward(
        &self,
        _: llm_settings_domain::ForwardRequest,
    ) -> Result<llm_settings_domain::ForwardResponse, llm_settings_domain::ForwardFailure> {
        Err(llm_settings_domain::ForwardFailure::Invalid(
            "store tests make no provider calls".into(),
        ))
    }
}

/// An audit queue that writes each event to the store on a task of its own.
#[derive(Clone)]
pub struct StoreQueue(pub std::sync::Arc<dyn llm_settings_domain::ports::AuditLog>);

impl std::fmt::Debug for StoreQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreQueue")
    }
}

impl llm_settings_domain::ports::AuditQueue for StoreQueue {
    fn submit(&self, event: llm_settings_domain::AuditEvent) {
        let log = self.0.clone();
        tokio::spawn(async move {
            // A store test that needs the event reads the store; a failure shows there.
            let _ = log.record(event).await;
        });
    }
}
