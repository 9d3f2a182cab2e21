//! Who is calling and what they may do to which owner.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::owner::{InstanceId, Owner, UserId};

/// A token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read settings.
    Read,
    /// Change or test settings.
    Write,
    /// Call a provider through the gateway with the resolved credential.
    Use,
}

impl Scope {
    /// Every scope, in claim order.
    pub const ALL: [Self; 3] = [Self::Read, Self::Write, Self::Use];

    /// Parses one space-separated item of the `scope` claim; unknown scopes are ignored.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The claim spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Use => "use",
        }
    }
}

/// A role: which owners a token reaches, or that it is a backend service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Manages the configs of the instance named in its token.
    Admin,
    /// Manages global and every instance's configs.
    Superadmin,
    /// A trusted backend: resolves credentials and uses the gateway on behalf of any user and
    /// instance, and manages nothing.
    Service,
}

impl Role {
    /// Every role, in claim order.
    pub const ALL: [Self; 3] = [Self::Admin, Self::Superadmin, Self::Service];

    /// Parses one item of the `roles` claim; unknown roles are ignored.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// The claim spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Superadmin => "superadmin",
            Self::Service => "service",
        }
    }
}

/// What an operation does to an owner's configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading needs the `read` scope.
    Read,
    /// Changing or testing needs the `write` scope.
    Write,
}

impl Access {
    /// The scope this access needs, whatever the role.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Read => Scope::Read,
            Self::Write => Scope::Write,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub subject: UserId,
    pub scopes: BTreeSet<Scope>,
    pub roles: BTreeSet<Role>,
    pub instance: Option<InstanceId>,
}

impl Actor {
    /// A caller with the given scopes and roles.
    pub fn new(
        subject: UserId,
        scopes: impl IntoIterator<Item = Scope>,
        roles: impl IntoIterator<Item = Role>,
        instance: Option<InstanceId>,
    ) -> Self {
        Self {
            subject,
            scopes: scopes.into_iter().collect(),
            roles: roles.into_iter().collect(),
            instance,
        }
    }

    /// The actor's own user owner.
    pub fn user_owner(&self) -> Owner {
        Owner::User(self.subject.clone())
    }

    /// The instance owner named in the token, if any.
    pub fn instance_owner(&self) -> Option<Owner> {
        self.instance.clone().map(Owner::Instance)
    }

    /// Whether the actor holds a role.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the token is a backend service's (which manages nothing).
    pub fn is_service(&self) -> bool {
        self.has_role(Role::Service)
    }

    /// Checks that the actor holds `role`, for APIs reserved to it whatever the owner;
    /// `api` names the API in the error. A service token holds no management role.
    pub fn require_role(&self, role: Role, api: &str) -> Result<()> {
        if role != Role::Service && self.is_service() {
            return Err(service_manages_nothing());
        }
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{api} needs the {} role",
                role.as_str()
            )))
        }
    }

    /// Checks that the token carries `scope`.
    pub fn require_scope(&self, scope: Scope) -> Result<()> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "the token lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    /// Checks that the actor may read or write `owner`'s configs.
    ///
    /// Roles decide which owners a token reaches: users act on themselves, admins on the
    /// instance in their token, superadmins on global and every instance; service tokens on
    /// none. Scopes apply on top, whatever the role: `read` to read, `write` to change or test.
    pub fn authorize(&self, owner: &Owner, access: Access) -> Result<()> {
        if self.is_service() {
            return Err(service_manages_nothing());
        }
        self.reach(owner)?;
        self.require_scope(access.scope())
    }

    /// Whether the actor's roles reach `owner` at all.
    fn reach(&self, owner: &Owner) -> Result<()> {
        match owner {
            Owner::User(user) => {
                if *user == self.subject {
                    Ok(())
                } else {
                    Err(Error::Forbidden(
                        "a user may only manage their own settings".into(),
                    ))
                }
            }
            Owner::Instance(instance) => {
                let own_instance = self.instance.as_ref() == Some(instance);
                if self.has_role(Role::Superadmin) || (self.has_role(Role::Admin) && own_instance) {
                    Ok(())
                } else {
                    Err(Error::Forbidden(
                        "managing an instance's settings needs the admin role for that instance or superadmin".into(),
                    ))
                }
            }
            Owner::Global => {
                if self.has_role(Role::Superadmin) {
                    Ok(())
                } else {
                    Err(Error::Forbidden(
                        "managing global settings needs the superadmin role".into(),
                    ))
                }
            }
        }
    }
}

fn service_manages_nothing() -> Error {
    Error::Forbidden(
        "a service token may only resolve credentials and use the gateway; it manages no settings"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(sub: &str, scopes: &[Scope], roles: &[Role], instance: Option<&str>) -> Actor {
        Actor::new(
            UserId::parse(sub).unwrap(),
            scopes.iter().copied(),
            roles.iter().copied(),
            instance.map(|i| InstanceId::parse(i).unwrap()),
        )
    }

    #[test]
    fn users_need_the_matching_scope_and_their_own_id() {
        let a = user("u1", &[Scope::Read], &[], None);
        let me = a.user_owner();
        assert!(a.authorize(&me, Access::Read).is_ok());
        assert_eq!(
            a.authorize(&me, Access::Write).unwrap_err().code(),
            "forbidden"
        );
        let other = Owner::User(UserId::parse("u2").unwrap());
        assert!(a.authorize(&other, Access::Read).is_err());
        let superadmin = user(
            "root",
            &[Scope::Read, Scope::Write],
            &[Role::Superadmin],
            None,
        );
        assert!(superadmin.authorize(&me, Access::Read).is_err());
    }

    const RW: &[Scope] = &[Scope::Read, Scope::Write];

    fn reason(result: Result<()>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn instances_need_admin_of_that_instance_or_superadmin() {
        let acme = Owner::Instance(InstanceId::parse("acme").unwrap());
        assert!(user("a", RW, &[Role::Admin], Some("acme"))
            .authorize(&acme, Access::Write)
            .is_ok());
        for stranger in [
            user("a", RW, &[Role::Admin], Some("other")),
            user("a", RW, &[Role::Admin], None),
            user("a", RW, &[], Some("acme")),
        ] {
            assert!(reason(stranger.authorize(&acme, Access::Read)).contains("admin role"));
        }
        assert!(user("s", RW, &[Role::Superadmin], None)
            .authorize(&acme, Access::Write)
            .is_ok());
    }

    #[test]
    fn global_needs_superadmin() {
        assert!(user("s", RW, &[Role::Superadmin], None)
            .authorize(&Owner::Global, Access::Write)
            .is_ok());
        assert!(reason(
            user("a", RW, &[Role::Admin], Some("x")).authorize(&Owner::Global, Access::Read)
        )
        .contains("superadmin role"));
    }

    #[test]
    fn scopes_apply_whatever_the_role() {
        let acme = Owner::Instance(InstanceId::parse("acme").unwrap());
        let cases = [
            (
                user("s", &[Scope::Read], &[Role::Superadmin], None),
                Owner::Global,
            ),
            (
                user("s", &[Scope::Read], &[Role::Superadmin], None),
                acme.clone(),
            ),
            (
                user("a", &[Scope::Read], &[Role::Admin], Some("acme")),
                acme.clone(),
            ),
        ];
        for (actor, owner) in &cases {
            assert!(actor.authorize(owner, Access::Read).is_ok());
            assert_eq!(
                reason(actor.authorize(owner, Access::Write)),
                "the token lacks the `write` scope"
            );
        }
        let no_scope = user("s", &[], &[Role::Superadmin], None);
        assert_eq!(
            reason(no_scope.authorize(&Owner::Global, Access::Read)),
            "the token lacks the `read` scope"
        );
    }

    #[test]
    fn service_tokens_manage_nothing() {
        let service = user("billing", RW, &[Role::Service, Role::Superadmin], None);
        for owner in [
            Owner::Global,
            Owner::Instance(InstanceId::parse("acme").unwrap()),
            service.user_owner(),
        ] {
            assert!(reason(service.authorize(&owner, Access::Read)).contains("service token"));
        }
        assert!(reason(service.require_role(Role::Superadmin, "x")).contains("service token"));
        assert!(service.require_role(Role::Service, "x").is_ok());
    }

    #[test]
    fn reserved_apis_need_their_role() {
        let admin = user("a", &[Scope::Read], &[Role::Admin], Some("acme"));
        let err = admin
            .require_role(Role::Superadmin, "the AI configuration API")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the AI configuration API needs the superadmin role"
        );
        assert!(user("s", &[], &[Role::Superadmin], None)
            .require_role(Role::Superadmin, "x")
            .is_ok());
    }

    #[test]
    fn unknown_scopes_and_roles_are_ignored() {
        assert_eq!(Scope::parse("admin"), None);
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("superadmin"), Some(Role::Superadmin));
        assert_eq!(Role::parse("service"), Some(Role::Service));
        assert_eq!(Scope::parse("use"), Some(Scope::Use));
    }
}
