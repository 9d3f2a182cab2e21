//! Which provider, model, endpoint and credential a call on behalf of a user (in an instance)
//! uses: the resolution rule, applied to one read of the store.
//!
//! The chain is `user → instance → global` (each present only when named, narrowed by
//! `sources`). With a task, the first assignment along the chain names provider and model.
//! Without task or provider, the first enabled default along the chain names the provider. The
//! credential is the first enabled config for that provider along the chain. Model: the
//! request's, else the assignment's, else the config's, else the catalog default. Base URL: the
//! config's, else the catalog default.

use std::collections::BTreeMap;

use super::SettingsService;
use crate::actor::{Access, Actor, Role};
use crate::audit::{AuditAction, AuditEvent, AuditOutcome};
use crate::catalog::ProviderId;
use crate::chain::{ChainQuery, ChainSnapshot};
use crate::config::ProviderConfig;
use crate::error::{Error, Result};
use crate::owner::{InstanceId, Owner, OwnerKind, UserId};
use crate::secret::{SecretBinding, SecretValue};
use crate::task::{TaskAssignment, TaskName};
use crate::values::{ConfigId, ModelName};

/// Who a call is made for and what it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveRequest {
    /// The user the call is made for.
    pub user: Option<UserId>,
    /// The tenant instance the call is made in.
    pub instance: Option<InstanceId>,
    /// A named task whose assignment picks provider and model; excludes `provider`.
    pub task: Option<TaskName>,
    pub provider: Option<ProviderId>,
    /// Overrides the model of the assignment and the config.
    pub model: Option<ModelName>,
    /// Owner kinds the chain may use; `None` means all three.
    pub sources: Option<Vec<OwnerKind>>,
}

/// Whose config a resolution uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSource {
    pub owner: Owner,
    pub config_id: ConfigId,
    pub version: i64,
}

/// What a call uses, without the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub provider: ProviderId,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub source: ResolvedSource,
    /// The task whose assignment was used.
    pub task: Option<TaskName>,
    /// The config used (its secrets still sealed).
    pub config: ProviderConfig,
    /// The enabled configs of the same provider further along the chain, in order: where a
    /// call may fall back when the first credential is refused.
    pub fallbacks: Vec<ProviderConfig>,
}

/// A resolution with the credential opened: every credential field of the config (secret
/// fields in plaintext, others as stored).
#[derive(Debug, Clone)]
pub struct ResolvedCredential {
    pub resolution: Resolution,
    pub secrets: BTreeMap<String, SecretValue>,
}

impl ResolvedCredential {
    /// Every credential field: secrets in plaintext, then the non-secret fields.
    pub fn fields(&self) -> BTreeMap<&str, &str> {
        let mut fields: BTreeMap<&str, &str> = self
            .resolution
            .config
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        fields.extend(self.secrets.iter().map(|(k, v)| (k.as_str(), v.expose())));
        fields
    }
}

impl ResolveRequest {
    /// The most specific owner named: the user, else the instance, else the deployment.
    pub fn asked_owner(&self) -> Owner {
        self.user
            .clone()
            .map(Owner::User)
            .or_else(|| self.instance.clone().map(Owner::Instance))
            .unwrap_or(Owner::Global)
    }

    /// The owners to search, most specific first.
    pub fn chain(&self) -> Result<Vec<Owner>> {
        let only_global = self.sources.as_deref() == Some(&[OwnerKind::Global]);
        if self.user.is_none() && self.instance.is_none() && !only_global {
            return Err(Error::invalid(
                "user",
                "name the user or the instance the call is made for (or both)",
            ));
        }
        if self.task.is_some() && self.provider.is_some() {
            return Err(Error::invalid(
                "provider",
                "give either a task or a provider, not both: a task's assignment names the provider",
            ));
        }
        let allowed = |kind| self.sources.as_ref().is_none_or(|s| s.contains(&kind));
        let chain: Vec<Owner> = [
            self.user.clone().map(Owner::User),
            self.instance.clone().map(Owner::Instance),
            Some(Owner::Global),
        ]
        .into_iter()
        .flatten()
        .filter(|owner| allowed(owner.kind()))
        .collect();
        if chain.is_empty() {
            return Err(Error::invalid(
                "sources",
                "sources leave no owner to search: the user or instance named is not among them",
            ));
        }
        Ok(chain)
    }
}

/// Applies the resolution rule to the chain's state (pure: the whole rule, no I/O).
pub fn choose(
    chain: &[Owner],
    snapshot: &ChainSnapshot,
    request: &ResolveRequest,
) -> Result<Resolution> {
    let assignment = match &request.task {
        Some(task) => Some(first_assignment(chain, snapshot, task)?),
        None => None,
    };
    let provider = match (assignment, request.provider) {
        (Some(a), _) => a.provider,
        (None, Some(provider)) => provider,
        (None, None) => first_default(chain, snapshot)?,
    };
    let mut candidates = chain.iter().filter_map(|owner| {
        snapshot
            .configs
            .iter()
            .find(|c| c.owner == *owner && c.provider == provider && c.enabled)
    });
    let config = candidates.next().ok_or_else(|| Error::NoCredential {
        wanted: format!("for provider {provider}"),
        searched: searched(chain),
    })?;
    let model = request
        .model
        .as_ref()
        .map(|m| m.as_str().to_owned())
        .or_else(|| assignment.map(|a| a.model.as_str().to_owned()))
        .or_else(|| config.effective_model().map(str::to_owned));
    Ok(Resolution {
        provider,
        model,
        base_url: config.effective_base_url().map(str::to_owned),
        source: ResolvedSource {
            owner: config.owner.clone(),
            config_id: config.id,
            version: config.version,
        },
        task: assignment.map(|a| a.task.clone()),
        fallbacks: candidates.cloned().collect(),
        config: config.clone(),
    })
}

fn first_assignment<'a>(
    chain: &[Owner],
    snapshot: &'a ChainSnapshot,
    task: &TaskName,
) -> Result<&'a TaskAssignment> {
    chain
        .iter()
        .find_map(|owner| {
            snapshot
                .assignments
                .iter()
                .find(|(o, a)| o == owner && a.task == *task)
                .map(|(_, a)| a)
        })
        .ok_or_else(|| Error::TaskNotAssigned {
            task: task.to_string(),
            searched: searched(chain),
        })
}

fn first_default(chain: &[Owner], snapshot: &ChainSnapshot) -> Result<ProviderId> {
    chain
        .iter()
        .find_map(|owner| {
            snapshot
                .configs
                .iter()
                .find(|c| c.owner == *owner && c.is_default && c.enabled)
                .map(|c| c.provider)
        })
        .ok_or_else(|| Error::NoCredential {
            wanted: "marked as default".into(),
            searched: searched(chain),
        })
}

/// The owners searched, for messages: `user alice, instance acme, global`.
fn searched(chain: &[Owner]) -> String {
    chain
        .iter()
        .map(|owner| match owner {
            Owner::Global => "global".to_owned(),
            Owner::Instance(id) => format!("instance {id}"),
            Owner::User(id) => format!("user {id}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl SettingsService {
    /// Resolves the credential of a call for a trusted backend (service tokens only): the
    /// resolution and the opened secrets. One read of the store, one decryption; audited,
    /// answered or refused, through the audit queue (off the request's path).
    pub async fn resolve(
        &self,
        actor: &Actor,
        request: ResolveRequest,
    ) -> Result<ResolvedCredential> {
        actor.require_role(Role::Service, "resolving credentials")?;
        let result = async {
            let resolution = self.resolution(&request).await?;
            let secrets = self.open_all(&resolution.config)?;
            Ok(ResolvedCredential {
                resolution,
                secrets,
            })
        }
        .await;
        self.audit_resolution(actor, &request, result.as_ref().map(|c| &c.resolution));
        result
    }

    /// What a call would use, without the key, for settings pages (scope `read` on `owner`):
    /// for the caller's own settings, a call of theirs (in the instance of their token, if
    /// any); for an instance, a call made in it by a user without a key of their own; for the
    /// deployment, the global configs alone.
    pub async fn effective(
        &self,
        actor: &Actor,
        owner: &Owner,
        task: Option<TaskName>,
        provider: Option<ProviderId>,
    ) -> Result<Resolution> {
        actor.authorize(owner, Access::Read)?;
        let (user, instance, sources) = match owner {
            Owner::User(user) => (Some(user.clone()), actor.instance.clone(), None),
            Owner::Instance(instance) => (None, Some(instance.clone()), None),
            Owner::Global => (None, None, Some(vec![OwnerKind::Global])),
        };
        let request = ResolveRequest {
            user,
            instance,
            task,
            provider,
            sources,
            ..ResolveRequest::default()
        };
        self.resolution(&request).await
    }

    /// The resolution rule over one read of the chain.
    pub(crate) async fn resolution(&self, request: &ResolveRequest) -> Result<Resolution> {
        let chain = request.chain()?;
        if let Some(provider) = request.provider {
            self.catalog.ensure_offered(provider)?;
        }
        let snapshot = self
            .ports
            .configs
            .load_chain(ChainQuery {
                owners: chain.clone(),
                provider: request.provider,
                task: request.task.clone(),
            })
            .await?;
        let resolution = choose(&chain, &snapshot, request)?;
        self.catalog.ensure_offered(resolution.provider)?;
        Ok(resolution)
    }

    /// Opens every secret of a config.
    pub(crate) fn open_all(
        &self,
        config: &ProviderConfig,
    ) -> Result<BTreeMap<String, SecretValue>> {
        config
            .secrets
            .iter()
            .map(|(name, secret)| {
                let binding = SecretBinding::new(&config.owner, config.provider, name);
                let value = self.ports.cipher.open(&secret.sealed, &binding)?;
                Ok((name.clone(), value))
            })
            .collect()
    }

    fn audit_resolution(
        &self,
        actor: &Actor,
        request: &ResolveRequest,
        result: Result<&Resolution, &Error>,
    ) {
        let (owner, provider, config_id, outcome) = match result {
            Ok(r) => (
                r.source.owner.clone(),
                Some(r.provider),
                Some(r.source.config_id),
                AuditOutcome::Success,
            ),
            Err(e) => (
                request.asked_owner(),
                request.provider,
                None,
                AuditOutcome::Failure(e.code().to_owned()),
            ),
        };
        let event = AuditEvent {
            on_behalf_of: request.user.clone(),
            instance: request.instance.clone(),
            provider,
            config_id,
            ..AuditEvent::new(
                actor.subject.as_str(),
                owner,
                AuditAction::Resolve,
                outcome,
                self.ports.clock.now(),
            )
        };
        self.ports.audit_queue.submit(event);
    }
}
