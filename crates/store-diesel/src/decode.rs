//! How owners and free text are stored, and the decoding of stored names back into the
//! domain's validated types.

use std::borrow::Cow;

use llm_settings_domain::{ModelName, Owner, ProviderId};

use crate::error::{corrupt, StoreError};

/// How an owner is stored: its kind and its id (`''` for the global owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerKey {
    /// `global`, `instance` or `user`.
    pub kind: &'static str,
    /// The instance or user id; empty for the global owner.
    pub id: String,
}

impl OwnerKey {
    /// The stored form of `owner`.
    pub fn of(owner: &Owner) -> Self {
        Self {
            kind: owner.kind().as_str(),
            id: owner.id().to_owned(),
        }
    }

    /// Whether a stored `(kind, id)` pair is this owner.
    pub fn is(&self, kind: &str, id: &str) -> bool {
        self.kind == kind && self.id == id
    }
}

/// Free text as every store keeps it: PostgreSQL text cannot hold NUL, so a NUL becomes
/// U+FFFD on every backend and a value reads back the same whichever store holds it.
pub fn text(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// A stored owner.
pub fn owner(kind: &str, id: &str) -> Result<Owner, StoreError> {
    Owner::from_parts(kind, id).map_err(|_| corrupt("owner"))
}

/// A stored provider id.
pub fn provider(name: &str) -> Result<ProviderId, StoreError> {
    ProviderId::lookup(name).ok_or_else(|| corrupt("provider"))
}

/// A stored model name.
pub fn model(name: &str) -> Result<ModelName, StoreError> {
    ModelName::parse(name).map_err(|_| corrupt("model"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_and_other_text_kept() {
        assert_eq!(text("a\0b"), "a\u{fffd}b");
        assert!(matches!(text("plain ✓"), Cow::Borrowed("plain ✓")));
    }
}
