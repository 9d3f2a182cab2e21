//! Who calls and which owner the surface acts on for them, as extractors: the calling user, the
//! deployment (global), the instance named by `X-Instance-Id` (or global) for superadmins, or
//! the instance named in the token. The domain then authorizes the actor on that owner.

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};

use llm_settings_domain::{
    Actor, Catalog, ConfigId, ConfigPatch, ConnectionTest, ConnectionTestResult, InstanceId, Owner,
    ProviderConfig, ProviderId, Resolution, Role, SettingsService, SettingsUpdate, SettingsView,
    TaskAssignment, TaskName, UpsertRequest,
};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::limits::Limited;
use crate::AppState;

/// Header naming the tenant instance on the admin API; absent means the global config.
pub const INSTANCE_HEADER: &str = "X-Instance-Id";

/// How a surface finds the owner a request acts on.
pub trait OwnerRule: 'static {
    /// The owner for this actor and request, or why there is none.
    fn owner(actor: &Actor, req: &HttpRequest) -> Result<Owner, ApiError>;
}

/// The calling user.
#[derive(Debug)]
pub enum OwnUser {}

/// The whole deployment.
#[derive(Debug)]
pub enum Deployment {}

/// For superadmins: the instance in `X-Instance-Id`, or global without the header.
#[derive(Debug)]
pub enum HeaderInstance {}

/// The instance named in the token's `instance` claim.
#[derive(Debug)]
pub enum ClaimInstance {}

impl OwnerRule for OwnUser {
    fn owner(actor: &Actor, _: &HttpRequest) -> Result<Owner, ApiError> {
        Ok(actor.user_owner())
    }
}

impl OwnerRule for Deployment {
    fn owner(_: &Actor, _: &HttpRequest) -> Result<Owner, ApiError> {
        Ok(Owner::Global)
    }
}

impl OwnerRule for HeaderInstance {
    fn owner(actor: &Actor, req: &HttpRequest) -> Result<Owner, ApiError> {
        actor.require_role(Role::Superadmin, "the AI configuration API")?;
        let Some(value) = req.headers().get(INSTANCE_HEADER) else {
            return Ok(Owner::Global);
        };
        value
            .to_str()
            .ok()
            .and_then(|v| InstanceId::parse(v).ok())
            .map(Owner::Instance)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{INSTANCE_HEADER} must be 1 to 255 visible characters without surrounding spaces; omit it for the global configuration"
                ))
                .with_field(INSTANCE_HEADER)
            })
    }
}

impl OwnerRule for ClaimInstance {
    fn owner(actor: &Actor, _: &HttpRequest) -> Result<Owner, ApiError> {
        actor.instance_owner().ok_or_else(|| {
            ApiError::new(
                llm_settings_domain::ErrorCode::Forbidden,
                "this API acts on the instance named in the token's `instance` claim; the token has none",
            )
        })
    }
}

/// The owner the native API's path names: the caller (`/users/me/…`), the instance
/// (`/instances/{instance_id}/…`) or the deployment (`/global/…`). The domain decides whether
/// the caller may act on it (admins their instance, superadmins any).
#[derive(Debug)]
pub enum PathOwner {}

/// Path segment naming the instance of the instance-scoped native API.
pub const INSTANCE_SEGMENT: &str = "instance_id";

impl OwnerRule for PathOwner {
    fn owner(actor: &Actor, req: &HttpRequest) -> Result<Owner, ApiError> {
        let path = req.path();
        if path.starts_with("/global/") || path == "/global" {
            return Ok(Owner::Global);
        }
        match req.match_info().get(INSTANCE_SEGMENT) {
            Some(raw) => InstanceId::parse(raw).map(Owner::Instance).map_err(|_| {
                ApiError::not_found("no such instance: the path does not name a valid instance id")
            }),
            None => Ok(actor.user_owner()),
        }
    }
}

/// A value read from one segment of the request path.
pub trait FromSegment: Sized {
    /// The segment's name in the route (`{config_id}`).
    const NAME: &'static str;
    /// The value, or why the path names nothing (usually 404).
    fn from_segment(req: &HttpRequest, segment: &str) -> Result<Self, ApiError>;
}

/// The path segment [`FromSegment::NAME`] of a request, read as `T`.
#[derive(Debug, Clone, Copy)]
pub struct Segment<T>(pub T);

impl<T: FromSegment> FromRequest for Segment<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let segment = req.match_info().get(T::NAME).unwrap_or_default();
        ready(T::from_segment(req, segment).map(Self))
    }
}

/// The authenticated caller, the owner `R` picks for it, and the application state.
pub struct Caller<R> {
    pub state: Data<AppState>,
    pub actor: Actor,
    pub owner: Owner,
    rule: PhantomData<R>,
}

impl<R> std::fmt::Debug for Caller<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("actor", &self.actor)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// The domain's use cases for this caller and owner; domain errors become [`ApiError`]s.
impl<R> Caller<R> {
    /// The domain service.
    pub fn service(&self) -> &SettingsService {
        &self.state.service
    }

    /// The providers offered by the deployment.
    pub fn catalog(&self) -> &Catalog {
        self.state.service.catalog()
    }

    /// The owner's configs.
    pub async fn configs(&self) -> Result<Vec<ProviderConfig>, ApiError> {
        Ok(self
            .service()
            .list_configs(&self.actor, &self.owner)
            .await?)
    }

    /// One of the owner's configs.
    pub async fn config(&self, id: ConfigId) -> Result<ProviderConfig, ApiError> {
        Ok(self
            .service()
            .get_config(&self.actor, &self.owner, id)
            .await?)
    }

    /// The owner's config of a provider, if any.
    pub async fn config_of(&self, p: ProviderId) -> Result<Option<ProviderConfig>, ApiError> {
        Ok(self
            .service()
            .find_config(&self.actor, &self.owner, p)
            .await?)
    }

    /// The owner's default config, if any.
    pub async fn default_config(&self) -> Result<Option<ProviderConfig>, ApiError> {
        Ok(self
            .service()
            .default_config(&self.actor, &self.owner)
            .await?)
    }

    /// Creates or updates the owner's config of a provider.
    pub async fn upsert(
        &self,
        provider: ProviderId,
        changes: ConfigPatch,
        make_default: bool,
    ) -> Result<ProviderConfig, ApiError> {
        let request = Self::request(provider, changes, make_default);
        let outcome = self
            .service()
            .upsert_config(&self.actor, &self.owner, request);
        Ok(outcome.await?.into_config())
    }

    /// Changes one of the owner's configs.
    pub async fn update(
        &self,
        id: ConfigId,
        patch: ConfigPatch,
    ) -> Result<ProviderConfig, ApiError> {
        Ok(self
            .service()
            .update_config(&self.actor, &self.owner, id, patch)
            .await?)
    }

    /// Moves one of the owner's configs to another provider.
    pub async fn switch(
        &self,
        id: ConfigId,
        to: ProviderId,
        changes: ConfigPatch,
    ) -> Result<ProviderConfig, ApiError> {
        let switched = self
            .service()
            .switch_provider(&self.actor, &self.owner, id, to, changes);
        Ok(switched.await?)
    }

    /// Deletes one of the owner's configs.
    pub async fn delete(&self, id: ConfigId) -> Result<(), ApiError> {
        Ok(self
            .service()
            .delete_config(&self.actor, &self.owner, id)
            .await?)
    }

    /// Makes one of the owner's configs its default.
    pub async fn set_default(&self, id: ConfigId) -> Result<ProviderConfig, ApiError> {
        Ok(self
            .service()
            .set_default(&self.actor, &self.owner, id)
            .await?)
    }

    /// Tests credentials of the owner (stored, sent, or a handed-out mask).
    /// Counted against the subject's budget of connection tests.
    pub async fn test(&self, test: ConnectionTest) -> Result<ConnectionTestResult, ApiError> {
        self.state
            .limits
            .admit(Limited::ConnectionTest, &self.actor)?;
        let provider = test.provider;
        let result = self
            .service()
            .test_connection(&self.actor, &self.owner, test)
            .await;
        crate::metrics::connection_test(provider, &result);
        Ok(result?)
    }

    /// The owner's task assignments.
    pub async fn tasks(&self) -> Result<Vec<TaskAssignment>, ApiError> {
        Ok(self
            .service()
            .task_assignments(&self.actor, &self.owner)
            .await?)
    }

    /// Removes the owner's assignment of a task.
    pub async fn delete_task(&self, task: &TaskName) -> Result<(), ApiError> {
        let deleted = self
            .service()
            .delete_task_assignment(&self.actor, &self.owner, task);
        Ok(deleted.await?)
    }

    /// What a call would use for the owner (without the key).
    pub async fn effective(
        &self,
        task: Option<TaskName>,
        provider: Option<ProviderId>,
    ) -> Result<Resolution, ApiError> {
        let view = self
            .service()
            .effective(&self.actor, &self.owner, task, provider);
        Ok(view.await?)
    }

    /// Saves task assignments of the owner; returns all of them.
    pub async fn save_tasks(
        &self,
        tasks: Vec<TaskAssignment>,
    ) -> Result<Vec<TaskAssignment>, ApiError> {
        Ok(self
            .service()
            .save_task_assignments(&self.actor, &self.owner, tasks)
            .await?)
    }

    /// The owner's settings: document and provider configs.
    pub async fn settings(&self) -> Result<SettingsView, ApiError> {
        Ok(self.service().settings(&self.actor, &self.owner).await?)
    }

    /// Changes the owner's settings as one unit.
    pub async fn update_settings(&self, update: SettingsUpdate) -> Result<SettingsView, ApiError> {
        let updated = self
            .service()
            .update_settings(&self.actor, &self.owner, update);
        Ok(updated.await?)
    }

    /// Creates the owner's config of a provider; a conflict when it has one.
    pub async fn create(
        &self,
        provider: ProviderId,
        changes: ConfigPatch,
    ) -> Result<ProviderConfig, ApiError> {
        let request = Self::request(provider, changes, false);
        let created = self
            .service()
            .create_config(&self.actor, &self.owner, request);
        Ok(created.await?)
    }

    /// Creates the owner's active (default) config; a conflict when it has a default.
    pub async fn create_active(
        &self,
        provider: ProviderId,
        changes: ConfigPatch,
    ) -> Result<ProviderConfig, ApiError> {
        let request = Self::request(provider, changes, true);
        let created = self
            .service()
            .create_active_config(&self.actor, &self.owner, request);
        Ok(created.await?)
    }

    fn request(provider: ProviderId, changes: ConfigPatch, make_default: bool) -> UpsertRequest {
        UpsertRequest {
            provider,
            changes,
            make_default,
        }
    }
}

impl<R: OwnerRule> FromRequest for Caller<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let (state, actor) = authenticate(req)?;
            let owner = R::owner(&actor, req)?;
            Ok(Self {
                state,
                actor,
                owner,
                rule: PhantomData,
            })
        })())
    }
}
