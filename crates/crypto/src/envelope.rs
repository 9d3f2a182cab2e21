//! The byte layout of a sealed secret.
//!
//! ```text
//! format (1 byte, 0x01) | key id length (1 byte, 1..=32) | key id (ASCII)
//!   | nonce (24 bytes) | ciphertext | Poly1305 tag (16 bytes)
//! ```
//!
//! The header (format byte and key id) is authenticated too: it is prepended to the
//! binding's associated data, so no byte of an envelope can change without `open` failing.

use crate::key::{is_valid_key_id, KeyId};

/// The only envelope format so far.
pub(crate) const FORMAT_V1: u8 = 0x01;

/// XChaCha20 nonce length.
pub(crate) const NONCE_LEN: usize = 24;

/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;

/// A parsed view of envelope bytes; every slice borrows from the input.
#[derive(Debug)]
pub(crate) struct Envelope<'a> {
    /// Format byte and length-prefixed key id, exactly as stored.
    pub header: &'a [u8],
    /// The id of the key that sealed it (validated ASCII).
    pub key_id: &'a str,
    /// The random nonce.
    pub nonce: &'a [u8; NONCE_LEN],
    /// Encrypted plaintext, without the tag.
    pub ciphertext: &'a [u8],
    /// The authentication tag.
    pub tag: &'a [u8; TAG_LEN],
}

impl<'a> Envelope<'a> {
    /// Parses envelope bytes; `None` for anything malformed, truncated or of an unknown format.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT_V1 {
            return None;
        }
        let (&id_len, rest) = rest.split_first()?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len {
            return None;
        }
        let (id, rest) = rest.split_at(id_len);
        if !is_valid_key_id(id) {
            return None;
        }
        let key_id = std::str::from_utf8(id).ok()?;
        let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>()?;
        let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>()?;
        Some(Self {
            header: bytes.get(..2 + id_len)?,
            key_id,
            nonce,
            ciphertext,
            tag,
        })
    }
}

/// The header of an envelope sealed under `key_id`.
pub(crate) fn header(key_id: &KeyId) -> Vec<u8> {
    let id = key_id.as_str().as_bytes();
    let mut out = Vec::with_capacity(2 + id.len());
    out.push(FORMAT_V1);
    // A valid key id is at most 32 bytes, so its length always fits in one byte.
    out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(id);
    out
}

/// Associated data for the AEAD: the envelope header, then the binding's own bytes.
pub(crate) fn associated_data(header: &[u8], binding: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + binding.len());
    out.extend_from_slice(header);
    out.extend_from_slice(binding);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut bytes = header(&KeyId::parse("k1").unwrap());
        bytes.extend_from_slice(&[9u8; NONCE_LEN]);
        bytes.extend_from_slice(b"abc");
        bytes.extend_from_slice(&[7u8; TAG_LEN]);
        bytes
    }

    #[test]
    fn parses_its_own_layout() {
        let bytes = sample();
        let env = Envelope::parse(&bytes).unwrap();
        assert_eq!(env.header, &[1, 2, b'k', b'1']);
        assert_eq!(env.key_id, "k1");
        assert_eq!(env.nonce, &[9u8; NONCE_LEN]);
        assert_eq!(env.ciphertext, b"abc");
        assert_eq!(env.tag, &[7u8; TAG_LEN]);
    }

    #[test]
    fn every_truncation_is_rejected_without_panicking() {
        let bytes = sample();
        // The shortest valid envelope has an empty ciphertext: 3 bytes shorter than the sample.
        for len in 0..bytes.len() - 3 {
            assert!(Envelope::parse(&bytes[..len]).is_none(), "length {len}");
        }
        assert!(Envelope::parse(&bytes[..bytes.len() - 3]).is_some());
    }

    #[test]
    fn bad_headers_are_rejected() {
        let mut wrong_format = sample();
        wrong_format[0] = 0x02;
        assert!(Envelope::parse(&wrong_format).is_none());

        let mut zero_id = sample();
        zero_id[1] = 0;
        assert!(Envelope::parse(&zero_id).is_none());

        let mut long_id = sample();
        long_id[1] = 200;
        assert!(Envelope::parse(&long_id).is_none());

        let mut bad_char = sample();
        bad_char[2] = b':';
        assert!(Envelope::parse(&bad_char).is_none());

        let mut non_ascii = sample();
        non_ascii[2] = 0xff;
        assert!(Envelope::parse(&non_ascii).is_none());
    }
}
