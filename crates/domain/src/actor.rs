//! Who is calling and what they may do to which owner.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::owner::{InstanceId, Owner, UserId};

/// A token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    /// Parses one space-separated item of the `scope` claim; unknown scopes are ignored.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }

    /// The claim spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// An administrative role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Manages the configs of the instance named in its token.
    Admin,
    /// Manages global and every instance's configs.
    Superadmin,
}

impl Role {
    /// Parses one item of the `roles` claim; unknown roles are ignored.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Self::Admin),
            "superadmin" => Some(Self::Superadmin),
            _ => None,
        }
    }
}

/// What an operation does to an owner's configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
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

    /// Checks that the actor holds `role`, for APIs reserved to it whatever the owner;
    /// `api` names the API in the error.
    pub fn require_role(&self, role: Role, api: &str) -> Result<()> {
        if self.has_role(role) {
            Ok(())
        } else {
            let name = match role {
                Role::Admin => "admin",
                Role::Superadmin => "superadmin",
            };
            Err(Error::Forbidden(format!("{api} needs the {name} role")))
        }
    }

    /// Checks that the actor may read or write `owner`'s configs.
    ///
    /// Users act on themselves with the `read`/`write` scopes; admins on the instance in
    /// their token; superadmins on global and every instance.
    pub fn authorize(&self, owner: &Owner, access: Access) -> Result<()> {
        match owner {
            Owner::User(user) => {
                if *user != self.subject {
                    return Err(Error::Forbidden(
                        "a user may only manage their own settings".into(),
                    ));
                }
                let needed = match access {
                    Access::Read => Scope::Read,
                    Access::Write => Scope::Write,
                };
                if self.scopes.contains(&needed) {
                    Ok(())
                } else {
                    Err(Error::Forbidden(format!(
                        "the token lacks the `{}` scope",
                        needed.as_str()
                    )))
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

    #[test]
    fn instances_need_admin_of_that_instance_or_superadmin() {
        let acme = Owner::Instance(InstanceId::parse("acme").unwrap());
        assert!(user("a", &[], &[Role::Admin], Some("acme"))
            .authorize(&acme, Access::Write)
            .is_ok());
        assert!(user("a", &[], &[Role::Admin], Some("other"))
            .authorize(&acme, Access::Read)
            .is_err());
        assert!(user("a", &[], &[Role::Admin], None)
            .authorize(&acme, Access::Read)
            .is_err());
        assert!(user("a", &[Scope::Write], &[], Some("acme"))
            .authorize(&acme, Access::Write)
            .is_err());
        assert!(user("s", &[], &[Role::Superadmin], None)
            .authorize(&acme, Access::Write)
            .is_ok());
    }

    #[test]
    fn global_needs_superadmin() {
        assert!(user("s", &[], &[Role::Superadmin], None)
            .authorize(&Owner::Global, Access::Write)
            .is_ok());
        assert!(user("a", &[Scope::Write], &[Role::Admin], Some("x"))
            .authorize(&Owner::Global, Access::Read)
            .is_err());
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
    }
}
