//! The [`SecretCipher`] of this backend: XChaCha20-Poly1305 under one key held in memory.
//!
//! Every ciphertext is bound to [`SecretBinding::associated_data`] (owner, provider, field),
//! so a sealed key copied to another row or field no longer opens. A real backend would load
//! its key from a secret manager and keep several for rotation; one generated key is enough to
//! show the contract.

use std::fmt;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use llm_settings_domain::ports::SecretCipher;
use llm_settings_domain::{Error, Result, SealedSecret, SecretBinding, SecretValue};
use zeroize::Zeroize;

/// Version byte at the start of every envelope.
const FORMAT: u8 = 1;
/// Bytes of the key id that follows the version byte.
const KEY_ID_LEN: usize = 8;
/// Bytes of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Envelope header: format byte and key id.
const HEADER_LEN: usize = 1 + KEY_ID_LEN;

/// Seals secrets as `format | key id | nonce | ciphertext+tag`, with a random nonce per seal.
pub struct XChaChaCipher {
    key_id: [u8; KEY_ID_LEN],
    aead: XChaCha20Poly1305,
}

impl XChaChaCipher {
    /// A cipher under a fresh random key (secrets sealed by it are readable only by it).
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let id = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&id[..KEY_ID_LEN]);
        Self {
            key_id,
            aead: XChaCha20Poly1305::new(&key),
        }
    }

    /// The key id, nonce and ciphertext of an envelope sealed by this format.
    fn split(sealed: &SealedSecret) -> Option<(&[u8], &XNonce, &[u8])> {
        let bytes = sealed.as_bytes();
        if bytes.len() < HEADER_LEN + NONCE_LEN || bytes[0] != FORMAT {
            return None;
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Some((&header[1..], XNonce::from_slice(nonce), ciphertext))
    }
}

impl fmt::Debug for XChaChaCipher {
    /// Shows the key id only, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XChaChaCipher")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SecretCipher for XChaChaCipher {
    fn seal(&self, value: &SecretValue, binding: &SecretBinding) -> Result<SealedSecret> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = binding.associated_data();
        let payload = Payload {
            msg: value.expose().as_bytes(),
            aad: &aad,
        };
        let ciphertext = self
            .aead
            .encrypt(&nonce, payload)
            .map_err(|_| Error::Internal("sealing a secret failed".into()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(SealedSecret::from_bytes(out))
    }

    fn open(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SecretValue> {
        let (key_id, nonce, ciphertext) = Self::split(sealed).ok_or(Error::SecretUnreadable)?;
        if key_id != self.key_id {
            return Err(Error::SecretUnreadable);
        }
        let aad = binding.associated_data();
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plaintext = self
            .aead
            .decrypt(nonce, payload)
            .map_err(|_| Error::SecretUnreadable)?;
        match String::from_utf8(plaintext) {
            Ok(text) => Ok(SecretValue::new(text)),
            Err(err) => {
                err.into_bytes().zeroize();
                Err(Error::SecretUnreadable)
            }
        }
    }

    fn is_current(&self, sealed: &SealedSecret) -> bool {
        Self::split(sealed).is_some_and(|(key_id, _, _)| key_id == self.key_id)
    }

    fn rewrap(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SealedSecret> {
        self.seal(&self.open(sealed, binding)?, binding)
    }
}
