//! Another Rust backend that links `llm-settings-domain` with its own adapters (an in-memory
//! store, an XChaCha20-Poly1305 cipher, a probe and a gateway client that stay offline, the
//! system clock) and uses the same use cases as the HTTP service.
//!
//! It stores a user's key, an instance key and a global key, assigns a task on the instance,
//! then resolves, as a backend service, which provider, model and key each call would use.

mod cipher;
mod memory;
mod offline;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use llm_settings_domain::ports::{AuditLog, SystemClock};
use llm_settings_domain::{
    Actor, AuditAction, AuditQuery, AuditScope, Catalog, ConfigPatch, InstanceId, MaskStyle,
    ModelName, Owner, Ports, ProviderConfig, ResolveRequest, ResolvedCredential, Result, Role,
    Scope, SecretValue, SettingsService, TaskAssignment, TaskName, UpsertOutcome, UpsertRequest,
    UserId,
};

use crate::cipher::XChaChaCipher;
use crate::memory::MemoryStore;
use crate::offline::{AcceptingProbe, NoGateway};

/// The tenant instance of the example.
const INSTANCE: &str = "acme";
/// The task the instance assigns.
const TASK: &str = "summarize";
/// The model the instance assigns to the task.
const TASK_MODEL: &str = "gpt-4o-mini";
/// Alice's own OpenAI key (made up).
const ALICE_KEY: &str = "sk-proj-alice-0000000000000000000000000000A1ce";
/// The instance's OpenAI key (made up).
const INSTANCE_KEY: &str = "sk-proj-acme-11111111111111111111111111111Acme";
/// The deployment-wide OpenAI key (made up).
const GLOBAL_KEY: &str = "sk-proj-global-222222222222222222222222222G10b";

/// The domain's use cases over this backend's adapters; `store` serves every storage port.
fn settings_service(store: Arc<MemoryStore>) -> SettingsService {
    let ports = Ports {
        configs: store.clone(),
        tasks: store.clone(),
        documents: store.clone(),
        audit: store.clone(),
        cipher: Arc::new(XChaChaCipher::generate()),
        probe: Arc::new(AcceptingProbe),
        client: Arc::new(NoGateway),
        audit_queue: store,
        clock: Arc::new(SystemClock),
    };
    SettingsService::new(ports, Catalog::all())
}

/// A signed-in user of the application, allowed to read and change their own settings.
fn user(subject: &str) -> Result<Actor> {
    let scopes = [Scope::Read, Scope::Write];
    Ok(Actor::new(UserId::parse(subject)?, scopes, [], None))
}

/// The platform operator, who manages global and every instance's settings.
fn superadmin() -> Result<Actor> {
    let scopes = [Scope::Read, Scope::Write];
    Ok(Actor::new(
        UserId::parse("ops")?,
        scopes,
        [Role::Superadmin],
        None,
    ))
}

/// The application's backend: it may resolve credentials on behalf of anyone, nothing else.
fn service() -> Result<Actor> {
    Ok(Actor::new(
        UserId::parse("app-backend")?,
        [],
        [Role::Service],
        None,
    ))
}

/// Stores `key` as `owner`'s OpenAI API key, acting as `actor`.
async fn store_openai_key(
    settings: &SettingsService,
    actor: &Actor,
    owner: &Owner,
    key: &str,
) -> Result<ProviderConfig> {
    let changes = ConfigPatch {
        secrets: BTreeMap::from([("api_key".to_owned(), Some(SecretValue::new(key)))]),
        ..ConfigPatch::default()
    };
    let request = UpsertRequest {
        provider: settings.catalog().resolve("openai")?,
        changes,
        make_default: false,
    };
    let outcome = settings.upsert_config(actor, owner, request).await?;
    Ok(UpsertOutcome::into_config(outcome))
}

/// Alice's own key, the instance's and the deployment's, and the instance's task assignment.
async fn seed(settings: &SettingsService) -> Result<()> {
    let alice = user("alice")?;
    store_openai_key(settings, &alice, &alice.user_owner(), ALICE_KEY).await?;
    let ops = superadmin()?;
    let instance = Owner::Instance(InstanceId::parse(INSTANCE)?);
    store_openai_key(settings, &ops, &instance, INSTANCE_KEY).await?;
    store_openai_key(settings, &ops, &Owner::Global, GLOBAL_KEY).await?;
    let assignment = TaskAssignment {
        task: TaskName::parse(TASK)?,
        provider: settings.catalog().resolve("openai")?,
        model: ModelName::parse(TASK_MODEL)?,
    };
    settings
        .save_task_assignments(&ops, &instance, vec![assignment])
        .await?;
    Ok(())
}

/// A call for `user` in `instance`, for `task` (or the first default along the chain).
fn call(user: &str, instance: &str, task: Option<&str>) -> Result<ResolveRequest> {
    Ok(ResolveRequest {
        user: Some(UserId::parse(user)?),
        instance: Some(InstanceId::parse(instance)?),
        task: task.map(TaskName::parse).transpose()?,
        ..ResolveRequest::default()
    })
}

/// One line about a resolution, with the key masked: the plaintext is never printed.
fn describe(call: &str, credential: &ResolvedCredential) -> String {
    let resolution = &credential.resolution;
    let masked = resolution
        .config
        .primary_hints()
        .map_or("(none)", |hints| hints.get(MaskStyle::Lead3Last4));
    format!(
        "{call:<32} provider={} model={} source={} key={masked}",
        resolution.provider,
        resolution.model.as_deref().unwrap_or("-"),
        resolution.source.owner,
    )
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let settings = settings_service(Arc::clone(&store));
    seed(&settings).await?;
    let calls = [
        (
            "alice in acme, task summarize",
            call("alice", INSTANCE, Some(TASK))?,
        ),
        (
            "bob in acme, task summarize",
            call("bob", INSTANCE, Some(TASK))?,
        ),
        ("carol in globex, default", call("carol", "globex", None)?),
    ];
    let backend = service()?;
    for (label, request) in calls {
        let credential = settings.resolve(&backend, request).await?;
        println!("{}", describe(label, &credential));
    }
    let query = AuditQuery {
        action: Some(AuditAction::Resolve),
        ..AuditQuery::newest(AuditScope::All, 100)
    };
    let audited = store.query(query).await?.len();
    println!("{audited} resolutions audited, none of them holding a key");
    Ok(())
}
