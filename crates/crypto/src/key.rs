//! Master keys and their ids.

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::KeyringError;

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// Longest allowed key id, in characters.
pub const MAX_KEY_ID_LEN: usize = 32;

/// Length of a base64-encoded master key, padding included.
const ENCODED_KEY_LEN: usize = 44;

/// Message authenticated by a key's check value; versioned so the scheme can change.
const CHECK_VALUE_LABEL: &[u8] = b"llm-settings key check v1";

/// Bytes of the HMAC kept in a check value (hex-encoded to twice as many characters).
const CHECK_VALUE_LEN: usize = 16;

/// HMAC-SHA256 block size: keys shorter than this are zero-padded to it by definition.
const HMAC_BLOCK_LEN: usize = 64;

/// Standard base64 alphabet; output is padded, input may omit the padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The name of a master key, written into every envelope it seals so old rows stay readable
/// after rotation: 1–32 characters of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// Validates and wraps a key id; the error never echoes the rejected text.
    pub fn parse(value: &str) -> Result<Self, KeyringError> {
        if is_valid_key_id(value.as_bytes()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(KeyringError::InvalidKeyId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `bytes` form a valid key id (shared with the envelope parser).
pub(crate) fn is_valid_key_id(bytes: &[u8]) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = KeyringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A 32-byte master key and its id. The bytes live in a zeroize-on-drop box and are never
/// shown by `Debug`; [`MasterKey::export`] is the one deliberate way out.
pub struct MasterKey {
    id: KeyId,
    material: SecretBox<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// Builds a key from raw bytes, which must be exactly 32 long.
    pub fn from_bytes(id: KeyId, bytes: &[u8]) -> Result<Self, KeyringError> {
        if bytes.len() != KEY_LEN {
            return Err(KeyringError::WrongLength {
                id,
                len: bytes.len(),
            });
        }
        let material = SecretBox::init_with_mut(|m: &mut [u8; KEY_LEN]| m.copy_from_slice(bytes));
        Ok(Self { id, material })
    }

    /// Builds a key from standard base64 (padding optional, surrounding whitespace ignored).
    pub fn from_base64(id: KeyId, encoded: &str) -> Result<Self, KeyringError> {
        let encoded = encoded.trim().as_bytes();
        let mut decoded = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(encoded.len())]);
        match BASE64.decode_slice(encoded, decoded.as_mut_slice()) {
            Ok(len) => Self::from_bytes(id, &decoded[..len]),
            Err(_) => Err(KeyringError::InvalidBase64 { id }),
        }
    }

    /// Parses one `ID:BASE64_32_BYTES` entry of the keyring configuration.
    pub fn parse(entry: &str) -> Result<Self, KeyringError> {
        Self::parse_entry(entry, 1)
    }

    /// Parses the entry at 1-based `position` of a keyring configuration.
    pub(crate) fn parse_entry(entry: &str, position: usize) -> Result<Self, KeyringError> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(KeyringError::EmptyEntry { position });
        }
        let Some((id, encoded)) = entry.split_once(':') else {
            return Err(KeyringError::MalformedEntry { position });
        };
        let id = KeyId::parse(id.trim()).map_err(|_| KeyringError::InvalidEntryId { position })?;
        Self::from_base64(id, encoded)
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate(id: KeyId) -> Result<Self, KeyringError> {
        let mut failure = None;
        let material = SecretBox::init_with_mut(|m: &mut [u8; KEY_LEN]| {
            if let Err(e) = OsRng.try_fill_bytes(m) {
                failure = Some(e.to_string());
            }
        });
        match failure {
            None => Ok(Self { id, material }),
            Some(reason) => Err(KeyringError::RandomUnavailable(reason)),
        }
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Key check value: the first 16 bytes of HMAC-SHA256(key, "llm-settings key check v1"),
    /// lowercase hex. Safe to store and compare; reveals nothing usable about the key.
    pub fn check_value(&self) -> String {
        // HMAC zero-pads keys shorter than its block, so this is HMAC with the 32-byte key,
        // built through the infallible fixed-size constructor.
        let mut padded = Zeroizing::new([0u8; HMAC_BLOCK_LEN]);
        padded[..KEY_LEN].copy_from_slice(self.material.expose_secret());
        let mut mac = <Hmac<Sha256> as Mac>::new((&*padded).into());
        mac.update(CHECK_VALUE_LABEL);
        let tag = mac.finalize().into_bytes();
        hex::encode(&tag[..CHECK_VALUE_LEN])
    }

    /// The key as an `ID:BASE64` configuration entry, for the command that generates keys.
    pub fn export(&self) -> SecretString {
        let mut out = String::with_capacity(self.entry_len());
        self.write_entry(&mut out);
        SecretString::from(out)
    }

    /// Exact length of the exported entry, so the output buffer never reallocates.
    pub(crate) fn entry_len(&self) -> usize {
        self.id.as_str().len() + 1 + ENCODED_KEY_LEN
    }

    /// Appends `ID:BASE64` to `out` without leaving unzeroized copies of the encoding behind.
    pub(crate) fn write_entry(&self, out: &mut String) {
        let mut encoded = Zeroizing::new([0u8; ENCODED_KEY_LEN]);
        out.push_str(self.id.as_str());
        out.push(':');
        if let Ok(len) = BASE64.encode_slice(self.material.expose_secret(), encoded.as_mut_slice())
        {
            // Base64 output is ASCII, so this conversion cannot fail.
            if let Ok(text) = std::str::from_utf8(&encoded[..len]) {
                out.push_str(text);
            }
        }
    }

    /// The AEAD instance for this key (it zeroizes its own copy of the key on drop).
    pub(crate) fn aead(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.material.expose_secret().into())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id.as_str())
            .field("material", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn id(s: &str) -> KeyId {
        KeyId::parse(s).unwrap()
    }

    #[test]
    fn key_ids_follow_the_rules() {
        for ok in ["a", "k1", "key_2024-01", "A".repeat(32).as_str()] {
            assert_eq!(KeyId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            " k1",
            "k1 ",
            "k:1",
            "k.1",
            "ключ",
            &"A".repeat(33),
            "k/1",
            "k=1",
        ] {
            assert_eq!(
                KeyId::parse(bad),
                Err(KeyringError::InvalidKeyId),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parses_one_entry() {
        let key = MasterKey::parse(&format!("  k1 : {KEY_B64}  ")).unwrap();
        assert_eq!(key.id().as_str(), "k1");
        let expected: Vec<u8> = (0u8..32).collect();
        assert_eq!(key.material.expose_secret().as_slice(), expected.as_slice());
    }

    #[test]
    fn padding_is_optional_on_input_and_present_on_output() {
        let unpadded = KEY_B64.trim_end_matches('=');
        let key = MasterKey::parse(&format!("k1:{unpadded}")).unwrap();
        assert_eq!(key.export().expose_secret(), format!("k1:{KEY_B64}"));
    }

    #[test]
    fn export_round_trips() {
        let key = MasterKey::generate(id("gen")).unwrap();
        let again = MasterKey::parse(key.export().expose_secret()).unwrap();
        assert_eq!(again.id(), key.id());
        assert_eq!(again.check_value(), key.check_value());
        assert_eq!(key.export().expose_secret().len(), key.entry_len());
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate(id("a")).unwrap();
        let b = MasterKey::generate(id("a")).unwrap();
        assert_ne!(a.material.expose_secret(), b.material.expose_secret());
        assert_ne!(a.check_value(), b.check_value());
    }

    #[test]
    fn check_value_is_truncated_hmac_sha256() {
        let key = MasterKey::from_base64(id("k1"), KEY_B64).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.material.expose_secret()).unwrap();
        mac.update(b"llm-settings key check v1");
        let full = mac.finalize().into_bytes();
        assert_eq!(key.check_value(), hex::encode(&full[..16]));
        assert_eq!(key.check_value().len(), 32);
    }

    #[test]
    fn debug_shows_the_id_only() {
        let key = MasterKey::from_base64(id("k1"), KEY_B64).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("k1"));
        assert!(!shown.contains(KEY_B64));
        assert!(!shown.contains("AAECAwQF"));
        assert!(!shown.contains("[0, 1, 2"));
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        assert_eq!(
            MasterKey::from_bytes(id("k1"), &[7u8; 31]).unwrap_err(),
            KeyringError::WrongLength {
                id: id("k1"),
                len: 31
            }
        );
        assert!(MasterKey::from_bytes(id("k1"), &[7u8; 32]).is_ok());
    }
}
