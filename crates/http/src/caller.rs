//! Who calls and which owner the surface acts on for them, as extractors: the calling user, the
//! deployment (global), the instance named by `X-Instance-Id` (or global) for superadmins, or
//! the instance named in the token. The domain then authorizes the actor on that owner.

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};

use llm_settings_domain::{Actor, InstanceId, Owner, Role, SettingsService};

use crate::auth::authenticate;
use crate::error::ApiError;
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

impl<R> Caller<R> {
    /// The domain service.
    pub fn service(&self) -> &SettingsService {
        &self.state.service
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
