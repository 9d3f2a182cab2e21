//! Encryption at rest for the LLM settings service: a keyring of 32-byte master keys and
//! XChaCha20-Poly1305 sealing that implements the domain's [`SecretCipher`] port.
//!
//! Every envelope names the key that sealed it, so rotating the active key leaves older rows
//! readable until they are re-wrapped. The associated data binds a ciphertext to its owner,
//! provider and field, so a ciphertext copied to another row fails to open. Key check values
//! let the service notice a wrong master key at start instead of at the first read.
//!
//! [`SecretCipher`]: llm_settings_domain::ports::SecretCipher

mod cipher;
mod envelope;
mod error;
mod key;
mod keyring;

pub use cipher::sealed_key_id;
pub use error::KeyringError;
pub use key::{KeyId, MasterKey, KEY_LEN, MAX_KEY_ID_LEN};
pub use keyring::{KeyCheck, Keyring};
