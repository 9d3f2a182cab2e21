//! Properties of sealing: whatever the owner, provider, field and plaintext, a sealed secret
//! opens to the same plaintext under the same binding and key, and fails after any change of
//! binding, key or envelope byte.

// Helpers outside `#[test]` functions build fixtures that are valid by construction.
#![allow(clippy::unwrap_used)]

use llm_settings_crypto::{sealed_key_id, KeyId, Keyring, MasterKey};
use llm_settings_domain::ports::SecretCipher;
use llm_settings_domain::{
    Catalog, Error, InstanceId, Owner, ProviderId, SealedSecret, SecretBinding, SecretValue, UserId,
};
use proptest::prelude::*;
use proptest::sample::{select, Index};

fn owner() -> impl Strategy<Value = Owner> {
    let id = "[A-Za-z0-9@._:|-]{1,40}";
    prop_oneof![
        Just(Owner::Global),
        id.prop_map(|id| Owner::Instance(InstanceId::parse(id).unwrap())),
        id.prop_map(|id| Owner::User(UserId::parse(id).unwrap())),
    ]
}

fn provider() -> impl Strategy<Value = ProviderId> {
    select(Catalog::all().providers().collect::<Vec<_>>())
}

fn field() -> impl Strategy<Value = String> {
    "[a-z_]{1,24}"
}

fn binding() -> impl Strategy<Value = SecretBinding> {
    (owner(), provider(), field()).prop_map(|(o, p, f)| SecretBinding::new(&o, p, &f))
}

fn ring(id: &str, material: [u8; 32]) -> Keyring {
    let key = MasterKey::from_bytes(KeyId::parse(id).unwrap(), &material).unwrap();
    Keyring::new(vec![key]).unwrap()
}

fn seal(ring: &Keyring, plaintext: &str, binding: &SecretBinding) -> SealedSecret {
    ring.seal(&SecretValue::new(plaintext), binding).unwrap()
}

proptest! {
    #[test]
    fn seal_then_open_round_trips(
        binding in binding(),
        plaintext in any::<String>(),
        material in any::<[u8; 32]>(),
    ) {
        let ring = ring("k1", material);
        let sealed = seal(&ring, &plaintext, &binding);
        let opened = ring.open(&sealed, &binding).unwrap();
        prop_assert_eq!(opened.expose(), plaintext.as_str());
        prop_assert!(ring.is_current(&sealed));
        prop_assert_eq!(sealed_key_id(&sealed), Some(KeyId::parse("k1").unwrap()));
    }

    #[test]
    fn another_owner_cannot_open(
        binding in binding(),
        other in owner(),
        plaintext in any::<String>(),
    ) {
        prop_assume!(other != binding.owner);
        let ring = ring("k1", [7; 32]);
        let sealed = seal(&ring, &plaintext, &binding);
        let moved = SecretBinding::new(&other, binding.provider, &binding.field);
        prop_assert_eq!(ring.open(&sealed, &moved), Err(Error::SecretUnreadable));
    }

    #[test]
    fn another_provider_cannot_open(
        binding in binding(),
        other in provider(),
        plaintext in any::<String>(),
    ) {
        prop_assume!(other != binding.provider);
        let ring = ring("k1", [7; 32]);
        let sealed = seal(&ring, &plaintext, &binding);
        let moved = SecretBinding::new(&binding.owner, other, &binding.field);
        prop_assert_eq!(ring.open(&sealed, &moved), Err(Error::SecretUnreadable));
    }

    #[test]
    fn another_field_cannot_open(
        binding in binding(),
        other in field(),
        plaintext in any::<String>(),
    ) {
        prop_assume!(other != binding.field);
        let ring = ring("k1", [7; 32]);
        let sealed = seal(&ring, &plaintext, &binding);
        let moved = SecretBinding::new(&binding.owner, binding.provider, &other);
        prop_assert_eq!(ring.open(&sealed, &moved), Err(Error::SecretUnreadable));
    }

    #[test]
    fn another_key_cannot_open(
        binding in binding(),
        plaintext in any::<String>(),
        material in any::<[u8; 32]>(),
        other in any::<[u8; 32]>(),
    ) {
        prop_assume!(material != other);
        let sealed = seal(&ring("k1", material), &plaintext, &binding);
        // Same id, other material: the wrong master key.
        prop_assert_eq!(ring("k1", other).open(&sealed, &binding), Err(Error::SecretUnreadable));
        // Same material, other id: the envelope names a key this keyring does not hold.
        prop_assert_eq!(ring("k2", material).open(&sealed, &binding), Err(Error::SecretUnreadable));
    }

    #[test]
    fn any_changed_byte_fails_to_open(
        binding in binding(),
        plaintext in any::<String>(),
        at in any::<Index>(),
        flip in 1u8..=255,
    ) {
        let ring = ring("k1", [7; 32]);
        let sealed = seal(&ring, &plaintext, &binding);
        let mut bytes = sealed.as_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        let tampered = SealedSecret::from_bytes(bytes);
        prop_assert_eq!(ring.open(&tampered, &binding), Err(Error::SecretUnreadable));
    }

    #[test]
    fn truncation_fails_to_open(
        binding in binding(),
        plaintext in any::<String>(),
        at in any::<Index>(),
    ) {
        let ring = ring("k1", [7; 32]);
        let sealed = seal(&ring, &plaintext, &binding);
        let cut = at.index(sealed.as_bytes().len());
        let truncated = SealedSecret::from_bytes(sealed.as_bytes()[..cut].to_vec());
        prop_assert_eq!(ring.open(&truncated, &binding), Err(Error::SecretUnreadable));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        binding in binding(),
        bytes in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let ring = ring("k1", [7; 32]);
        let sealed = SealedSecret::from_bytes(bytes);
        prop_assert_eq!(ring.open(&sealed, &binding), Err(Error::SecretUnreadable));
        let _ = ring.is_current(&sealed);
        let _ = sealed_key_id(&sealed);
    }

    #[test]
    fn rewrap_after_rotation_keeps_the_plaintext(
        binding in binding(),
        plaintext in any::<String>(),
        old in any::<[u8; 32]>(),
        new in any::<[u8; 32]>(),
    ) {
        let before = ring("old", old);
        let sealed = seal(&before, &plaintext, &binding);
        let after = before
            .rotate(MasterKey::from_bytes(KeyId::parse("new").unwrap(), &new).unwrap())
            .unwrap();
        prop_assert!(!after.is_current(&sealed));
        prop_assert_eq!(after.open(&sealed, &binding), Ok(SecretValue::new(plaintext.as_str())));
        let moved = after.rewrap(&sealed, &binding).unwrap();
        prop_assert!(after.is_current(&moved));
        prop_assert_eq!(after.open(&moved, &binding), Ok(SecretValue::new(plaintext.as_str())));
    }
}
