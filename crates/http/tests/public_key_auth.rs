//! Tokens verified with an operator's public key: EdDSA and ES256 keys made fresh for the test,
//! and the classic algorithm-confusion forgery (HS256 keyed with the public key) refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use llm_settings_http::auth::AuthError;
use llm_settings_http::{Audience, Authenticator, Claims};

/// DER prefixes of SubjectPublicKeyInfo for the two key types.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn pem(prefix: &[u8], public: &[u8]) -> String {
    let der = [prefix, public].concat();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

fn claims() -> Claims {
    Claims {
        sub: "idp-user".into(),
        scope: "read".into(),
        roles: vec!["superadmin".into()],
        instance: None,
        exp: time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 600,
        nbf: None,
        iss: Some("https://idp.example".into()),
        aud: Some(Audience::One("llm-settings".into())),
    }
}

fn sign(alg: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims(), key).unwrap()
}

#[test]
fn eddsa_tokens_verify_and_forgeries_do_not() {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public_pem = pem(ED25519_SPKI_PREFIX, pair.public_key().as_ref());
    let auth = Authenticator::public_key_pem(
        public_pem.as_bytes(),
        Some("https://idp.example"),
        Some("llm-settings"),
    )
    .unwrap();

    let token = sign(Algorithm::EdDSA, &EncodingKey::from_ed_der(pkcs8.as_ref()));
    let actor = auth.verify(&token).unwrap();
    assert_eq!(actor.subject.as_str(), "idp-user");

    // Algorithm confusion: HS256 keyed with the public key's PEM text.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    );
    assert_eq!(auth.verify(&forged).unwrap_err(), AuthError::Algorithm);

    // Another key pair's signature.
    let other = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let foreign = sign(Algorithm::EdDSA, &EncodingKey::from_ed_der(other.as_ref()));
    assert_eq!(auth.verify(&foreign).unwrap_err(), AuthError::BadSignature);
}

#[test]
fn es256_tokens_verify_and_other_algorithms_are_refused() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public_pem = pem(P256_SPKI_PREFIX, pair.public_key().as_ref());
    let auth = Authenticator::public_key_pem(
        public_pem.as_bytes(),
        Some("https://idp.example"),
        Some("llm-settings"),
    )
    .unwrap();

    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    assert!(auth.verify(&sign(Algorithm::ES256, &key)).is_ok());
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    );
    assert_eq!(auth.verify(&forged).unwrap_err(), AuthError::Algorithm);
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let other_algorithm = sign(Algorithm::EdDSA, &EncodingKey::from_ed_der(ed.as_ref()));
    assert_eq!(
        auth.verify(&other_algorithm).unwrap_err(),
        AuthError::Algorithm
    );
}
