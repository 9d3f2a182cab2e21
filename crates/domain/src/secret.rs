//! Secret values in memory and sealed at rest.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::catalog::ProviderId;
use crate::mask::SecretHints;
use crate::owner::Owner;

/// A plaintext secret. Never printed by `Debug`/`Display`, not `Serialize`, zeroized on drop.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Wraps a plaintext.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The plaintext, for the few places that must use it (sealing, masking, probing).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the secret is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

impl PartialEq for SecretValue {
    /// Constant-time in the length of the shorter value; used by tests and round-trip checks.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// An opaque sealed envelope produced by a [`crate::ports::SecretCipher`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(Vec<u8>);

impl SealedSecret {
    /// Wraps envelope bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The envelope bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// What a ciphertext is bound to: opening it under any other binding fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretBinding {
    pub owner: Owner,
    pub provider: ProviderId,
    pub field: String,
}

impl SecretBinding {
    /// Binding for one field of one owner's provider config.
    pub fn new(owner: &Owner, provider: ProviderId, field: &str) -> Self {
        Self {
            owner: owner.clone(),
            provider,
            field: field.to_owned(),
        }
    }

    /// Canonical, unambiguous bytes used as AEAD associated data: each part length-prefixed.
    pub fn associated_data(&self) -> Vec<u8> {
        let parts: [&[u8]; 5] = [
            b"llm-settings/secret/v1",
            self.owner.kind().as_str().as_bytes(),
            self.owner.id().as_bytes(),
            self.provider.as_str().as_bytes(),
            self.field.as_bytes(),
        ];
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
        for part in parts {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }
}

/// A stored secret field: the sealed value and the hints computed when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub sealed: SealedSecret,
    pub hints: SecretHints,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::UserId;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretValue::new("sk-planted-secret-123456");
        assert!(!format!("{s:?}").contains("planted"));
        assert!(!format!("{:?}", Some(&s)).contains("planted"));
    }

    #[test]
    fn associated_data_is_unambiguous() {
        let p = ProviderId::lookup("openai").unwrap();
        let a = SecretBinding::new(&Owner::User(UserId::parse("ab").unwrap()), p, "c");
        let b = SecretBinding::new(&Owner::User(UserId::parse("a").unwrap()), p, "bc");
        assert_ne!(a.associated_data(), b.associated_data());
        let g = SecretBinding::new(&Owner::Global, p, "api_key");
        let i = SecretBinding::new(
            &Owner::Instance(crate::owner::InstanceId::parse("x").unwrap()),
            p,
            "api_key",
        );
        assert_ne!(g.associated_data(), i.associated_data());
    }
}
