//! Errors of keyring configuration and verification. No variant ever carries key material.

use crate::key::KeyId;

/// Why a keyring could not be built, parsed or verified.
///
/// Entries are named by position (1-based) or by a validated key id, never by their text,
/// because a malformed entry may well be key material pasted in the wrong place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The configuration holds no key at all.
    #[error(
        "no master key is configured: expected comma-separated ID:BASE64_32_BYTES entries, \
         the first one active"
    )]
    Empty,
    /// An entry between two commas is blank.
    #[error("master keyring entry {position} is empty (check for a stray comma)")]
    EmptyEntry {
        /// 1-based position of the entry.
        position: usize,
    },
    /// An entry has no `:` separating the id from the key material.
    #[error("master keyring entry {position} is not of the form ID:BASE64_32_BYTES")]
    MalformedEntry {
        /// 1-based position of the entry.
        position: usize,
    },
    /// A key id given on its own breaks the id rules.
    #[error("a master key id must be 1-32 characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidKeyId,
    /// The id part of a keyring entry breaks the id rules.
    #[error(
        "master keyring entry {position}: the key id must be 1-32 characters of \
         A-Z, a-z, 0-9, '_' or '-'"
    )]
    InvalidEntryId {
        /// 1-based position of the entry.
        position: usize,
    },
    /// The key material is not standard base64.
    #[error("master key {id}: the key material is not valid standard base64")]
    InvalidBase64 {
        /// The key whose material is malformed.
        id: KeyId,
    },
    /// The key material does not decode to exactly 32 bytes.
    #[error("master key {id}: the key material is {len} bytes long, expected 32")]
    WrongLength {
        /// The key whose material has the wrong length.
        id: KeyId,
        /// How many bytes it decoded to.
        len: usize,
    },
    /// Two keys share an id, so envelopes naming it would be ambiguous.
    #[error("master key id {id} appears more than once in the keyring")]
    DuplicateId {
        /// The repeated id.
        id: KeyId,
    },
    /// Configured key material differs from the material recorded earlier under the same id.
    #[error(
        "master key {} does not match the key recorded under that id when secrets were sealed \
         (key check value differs); configure the original key material for it",
        join_ids(.ids)
    )]
    CheckValueMismatch {
        /// Every key id whose material differs.
        ids: Vec<KeyId>,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed: {0}")]
    RandomUnavailable(String),
}

fn join_ids(ids: &[KeyId]) -> String {
    ids.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", ")
}
