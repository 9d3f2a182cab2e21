//! [`SecretCipher`] for the keyring: XChaCha20-Poly1305 with a random 24-byte nonce per seal.

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{AeadInPlace, OsRng};
use chacha20poly1305::XNonce;
use llm_settings_domain::ports::SecretCipher;
use llm_settings_domain::{Error, Result, SealedSecret, SecretBinding, SecretValue};
use zeroize::{Zeroize, Zeroizing};

use crate::envelope::{self, Envelope, NONCE_LEN, TAG_LEN};
use crate::key::KeyId;
use crate::keyring::Keyring;

impl SecretCipher for Keyring {
    fn seal(&self, value: &SecretValue, binding: &SecretBinding) -> Result<SealedSecret> {
        let key = self.active();
        let header = envelope::header(key.id());
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.try_fill_bytes(&mut nonce).map_err(|e| {
            Error::Internal(format!("could not draw a nonce to seal a secret: {e}"))
        })?;
        let aad = envelope::associated_data(&header, &binding.associated_data());

        let plaintext = value.expose().as_bytes();
        let mut out = Vec::with_capacity(header.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        let body = out.len();
        out.extend_from_slice(plaintext);
        let nonce: &XNonce = (&nonce).into();
        match key
            .aead()
            .encrypt_in_place_detached(nonce, &aad, &mut out[body..])
        {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(SealedSecret::from_bytes(out))
            }
            Err(_) => {
                out.zeroize();
                Err(Error::Internal(format!(
                    "sealing a secret of {} bytes failed",
                    plaintext.len()
                )))
            }
        }
    }

    fn open(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SecretValue> {
        let envelope = Envelope::parse(sealed.as_bytes()).ok_or(Error::SecretUnreadable)?;
        let key = self.get(envelope.key_id).ok_or(Error::SecretUnreadable)?;
        let aad = envelope::associated_data(envelope.header, &binding.associated_data());
        let mut plaintext = Zeroizing::new(envelope.ciphertext.to_vec());
        key.aead()
            .decrypt_in_place_detached(
                envelope.nonce.into(),
                &aad,
                plaintext.as_mut_slice(),
                envelope.tag.into(),
            )
            .map_err(|_| Error::SecretUnreadable)?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| Error::SecretUnreadable)?;
        // Exact capacity, so wrapping it as a boxed secret does not reallocate and leave a copy.
        let mut value = String::with_capacity(text.len());
        value.push_str(text);
        Ok(SecretValue::new(value))
    }

    fn is_current(&self, sealed: &SealedSecret) -> bool {
        Envelope::parse(sealed.as_bytes())
            .is_some_and(|envelope| envelope.key_id == self.active().id().as_str())
    }

    fn rewrap(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SealedSecret> {
        let value = self.open(sealed, binding)?;
        self.seal(&value, binding)
    }
}

/// The id of the key an envelope names, or `None` if the bytes are not a known envelope format;
/// lets an operator see which keys stored rows still depend on before retiring one.
pub fn sealed_key_id(sealed: &SealedSecret) -> Option<KeyId> {
    Envelope::parse(sealed.as_bytes()).and_then(|envelope| KeyId::parse(envelope.key_id).ok())
}

#[cfg(test)]
mod tests {
    use llm_settings_domain::{InstanceId, Owner, ProviderId, UserId};

    use super::*;
    use crate::key::MasterKey;

    const PLANTED: &str = "sk-planted-secret-0123456789abcdef";
    const A_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B_B64: &str = "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA=";

    fn key(id: &str, b64: &str) -> MasterKey {
        MasterKey::from_base64(KeyId::parse(id).unwrap(), b64).unwrap()
    }

    fn binding() -> SecretBinding {
        let owner = Owner::User(UserId::parse("alice").unwrap());
        SecretBinding::new(&owner, ProviderId::lookup("openai").unwrap(), "api_key")
    }

    fn secret() -> SecretValue {
        SecretValue::new(PLANTED)
    }

    fn opens(ring: &Keyring, sealed: &SealedSecret) -> bool {
        ring.open(sealed, &binding()).is_ok()
    }

    #[test]
    fn seal_then_open_round_trips() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        for plaintext in ["", "x", PLANTED, "ключ-🔑", &"long".repeat(4096)] {
            let value = SecretValue::new(plaintext);
            let sealed = ring.seal(&value, &binding()).unwrap();
            assert_eq!(ring.open(&sealed, &binding()).unwrap(), value);
            assert_eq!(
                sealed.as_bytes().len(),
                1 + 1 + 1 + 24 + plaintext.len() + 16
            );
        }
    }

    #[test]
    fn envelopes_have_the_documented_layout() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        let sealed = ring.seal(&secret(), &binding()).unwrap();
        let bytes = sealed.as_bytes();
        assert_eq!(&bytes[..3], &[0x01, 1, b'a']);
        assert!(!bytes
            .windows(8)
            .any(|w| PLANTED.as_bytes().windows(8).any(|p| p == w)));
        assert_eq!(sealed_key_id(&sealed), Some(KeyId::parse("a").unwrap()));
        assert_eq!(sealed_key_id(&SealedSecret::from_bytes(vec![1, 2])), None);
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        let one = ring.seal(&secret(), &binding()).unwrap();
        let two = ring.seal(&secret(), &binding()).unwrap();
        assert_ne!(one, two);
        assert_ne!(one.as_bytes()[3..27], two.as_bytes()[3..27]);
    }

    #[test]
    fn rotation_keeps_old_envelopes_readable_and_rewrap_moves_them() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        let old = ring.seal(&secret(), &binding()).unwrap();
        assert!(ring.is_current(&old));

        let ring = ring.rotate(key("b", B_B64)).unwrap();
        assert!(!ring.is_current(&old));
        assert_eq!(ring.open(&old, &binding()).unwrap(), secret());

        let moved = ring.rewrap(&old, &binding()).unwrap();
        assert!(ring.is_current(&moved));
        assert_eq!(sealed_key_id(&moved), Some(KeyId::parse("b").unwrap()));
        assert_eq!(ring.open(&moved, &binding()).unwrap(), secret());

        // Once rewrapped, the old key can be retired without losing anything.
        let only_b = Keyring::new(vec![key("b", B_B64)]).unwrap();
        assert_eq!(only_b.open(&moved, &binding()).unwrap(), secret());
        assert_eq!(only_b.open(&old, &binding()), Err(Error::SecretUnreadable));
        assert_eq!(
            only_b.rewrap(&old, &binding()),
            Err(Error::SecretUnreadable)
        );

        // New seals go under the active key.
        assert!(ring.is_current(&ring.seal(&secret(), &binding()).unwrap()));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        let sealed = ring.seal(&secret(), &binding()).unwrap();
        for i in 0..sealed.as_bytes().len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut bytes = sealed.as_bytes().to_vec();
                bytes[i] ^= mask;
                let tampered = SealedSecret::from_bytes(bytes);
                assert_eq!(
                    ring.open(&tampered, &binding()),
                    Err(Error::SecretUnreadable),
                    "byte {i} ^ {mask:#x}"
                );
            }
        }
    }

    #[test]
    fn truncated_extended_and_garbage_envelopes_are_unreadable() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        let sealed = ring.seal(&secret(), &binding()).unwrap();
        let bytes = sealed.as_bytes();
        for len in 0..bytes.len() {
            let cut = SealedSecret::from_bytes(bytes[..len].to_vec());
            assert_eq!(ring.open(&cut, &binding()), Err(Error::SecretUnreadable));
            // `is_current` reads the header only; authenticity is `open`'s job.
            assert_eq!(ring.is_current(&cut), len >= 3 + NONCE_LEN + TAG_LEN);
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(!opens(&ring, &SealedSecret::from_bytes(longer)));
        for garbage in [
            vec![],
            vec![0u8; 100],
            vec![0xffu8; 100],
            PLANTED.as_bytes().to_vec(),
        ] {
            let garbage = SealedSecret::from_bytes(garbage);
            assert!(!opens(&ring, &garbage));
            assert!(!ring.is_current(&garbage));
            assert_eq!(
                ring.rewrap(&garbage, &binding()),
                Err(Error::SecretUnreadable)
            );
        }
    }

    #[test]
    fn unknown_keys_and_wrong_material_are_unreadable() {
        let sealed = Keyring::new(vec![key("a", A_B64)])
            .unwrap()
            .seal(&secret(), &binding())
            .unwrap();
        let other_id = Keyring::new(vec![key("z", A_B64)]).unwrap();
        assert!(!opens(&other_id, &sealed));
        let other_material = Keyring::new(vec![key("a", B_B64)]).unwrap();
        assert!(!opens(&other_material, &sealed));
        assert!(other_material.is_current(&sealed), "names the active id");
    }

    #[test]
    fn the_key_id_in_the_header_is_authenticated() {
        // Two ids with the same material: relabelling an envelope must still fail.
        let ring = Keyring::new(vec![key("k1", A_B64), key("k2", A_B64)]).unwrap();
        let sealed = ring.seal(&secret(), &binding()).unwrap();
        let mut bytes = sealed.as_bytes().to_vec();
        assert_eq!(&bytes[2..4], b"k1");
        bytes[3] = b'2';
        assert!(!opens(&ring, &SealedSecret::from_bytes(bytes)));
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_does_not_open() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        let sealed = ring.seal(&secret(), &binding()).unwrap();
        let openai = ProviderId::lookup("openai").unwrap();
        let others = [
            SecretBinding::new(
                &Owner::User(UserId::parse("bob").unwrap()),
                openai,
                "api_key",
            ),
            SecretBinding::new(
                &Owner::Instance(InstanceId::parse("alice").unwrap()),
                openai,
                "api_key",
            ),
            SecretBinding::new(&Owner::Global, openai, "api_key"),
            SecretBinding::new(
                &Owner::User(UserId::parse("alice").unwrap()),
                ProviderId::lookup("anthropic").unwrap(),
                "api_key",
            ),
            SecretBinding::new(
                &Owner::User(UserId::parse("alice").unwrap()),
                openai,
                "organization",
            ),
        ];
        for other in others {
            assert_eq!(
                ring.open(&sealed, &other),
                Err(Error::SecretUnreadable),
                "{other:?}"
            );
            assert_eq!(ring.rewrap(&sealed, &other), Err(Error::SecretUnreadable));
        }
    }

    #[test]
    fn errors_never_carry_the_secret() {
        let ring = Keyring::new(vec![key("a", A_B64)]).unwrap();
        let sealed = ring.seal(&secret(), &binding()).unwrap();
        let mut bytes = sealed.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = ring
            .open(&SealedSecret::from_bytes(bytes), &binding())
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("planted"), "{shown}");
        assert!(!format!("{ring:?} {sealed:?}").contains("planted"));
    }
}
