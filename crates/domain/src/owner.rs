//! Who a provider config belongs to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAX_ID_LEN: usize = 255;

fn check_id(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_ID_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) || value.trim() != value {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters or surrounding spaces"),
        ));
    }
    Ok(())
}

/// Instance ids travel in a header and in URLs: visible characters only, no spaces at all.
fn check_instance_id(field: &str, value: &str) -> Result<()> {
    check_id(field, value)?;
    if value.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            field,
            format!("{field} must be visible characters without spaces"),
        ));
    }
    Ok(())
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn parse(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                $check($field, &value)?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_newtype!(
    /// The subject of a user (the `sub` claim of their token).
    UserId,
    "user id",
    check_id
);
id_newtype!(
    /// A tenant instance.
    InstanceId,
    "instance id",
    check_instance_id
);

/// The three kinds of owner, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Global,
    Instance,
    User,
}

impl OwnerKind {
    /// Storage and audit name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Instance => "instance",
            Self::User => "user",
        }
    }
}

/// Whose configs these are: the whole deployment, one tenant instance, or one user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    Global,
    Instance(InstanceId),
    User(UserId),
}

impl Owner {
    /// The kind of owner.
    pub fn kind(&self) -> OwnerKind {
        match self {
            Self::Global => OwnerKind::Global,
            Self::Instance(_) => OwnerKind::Instance,
            Self::User(_) => OwnerKind::User,
        }
    }

    /// The owner's id within its kind; empty for the global owner.
    pub fn id(&self) -> &str {
        match self {
            Self::Global => "",
            Self::Instance(id) => id.as_str(),
            Self::User(id) => id.as_str(),
        }
    }

    /// Rebuilds an owner from its stored kind and id.
    pub fn from_parts(kind: &str, id: &str) -> Result<Self> {
        match kind {
            "global" if id.is_empty() => Ok(Self::Global),
            "instance" => Ok(Self::Instance(InstanceId::parse(id)?)),
            "user" => Ok(Self::User(UserId::parse(id)?)),
            _ => Err(Error::invalid(
                "owner",
                format!("unknown owner kind {kind:?}"),
            )),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global => f.write_str("global"),
            Self::Instance(id) => write!(f, "instance:{id}"),
            Self::User(id) => write!(f, "user:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(UserId::parse("auth0|42").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(" padded").is_err());
        assert!(InstanceId::parse("a\u{0}b").is_err());
        assert!(InstanceId::parse("x".repeat(256)).is_err());
        assert!(InstanceId::parse("a b").is_err());
        assert!(InstanceId::parse("a\u{a0}b").is_err());
        assert!(UserId::parse("Jane Doe").is_ok());
    }

    #[test]
    fn owner_round_trips_through_parts() {
        for owner in [
            Owner::Global,
            Owner::Instance(InstanceId::parse("acme").unwrap()),
            Owner::User(UserId::parse("42").unwrap()),
        ] {
            let back = Owner::from_parts(owner.kind().as_str(), owner.id()).unwrap();
            assert_eq!(back, owner);
        }
        assert!(Owner::from_parts("global", "x").is_err());
        assert!(Owner::from_parts("team", "x").is_err());
    }
}
