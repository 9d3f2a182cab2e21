//! The keyring: every master key the service knows, the first one active.

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use subtle::ConstantTimeEq;

use crate::error::KeyringError;
use crate::key::{KeyId, MasterKey};

/// The master keys the service knows, the first one active. New secrets are sealed under the
/// active key; older envelopes name their own key and are opened with it.
pub struct Keyring {
    /// The key new secrets are sealed under.
    active: MasterKey,
    /// Older keys, newest first; ids are unique across the whole keyring.
    older: Vec<MasterKey>,
}

/// What [`Keyring::verify_check_values`] found when every shared key matched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCheck {
    /// Keys whose material matches the check value recorded for their id.
    pub verified: Vec<KeyId>,
    /// Keys with no recorded check value yet, with the value to record now.
    pub unrecorded: Vec<(KeyId, String)>,
    /// Recorded ids that are not in the keyring: envelopes sealed under them cannot be opened.
    pub missing: Vec<String>,
}

impl Keyring {
    /// Builds a keyring; the first key is active. Fails when empty or when ids repeat.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, KeyringError> {
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|earlier| earlier.id() == key.id()) {
                return Err(KeyringError::DuplicateId {
                    id: key.id().clone(),
                });
            }
        }
        let mut keys = keys.into_iter();
        let active = keys.next().ok_or(KeyringError::Empty)?;
        Ok(Self {
            active,
            older: keys.collect(),
        })
    }

    /// Parses the operator's `ID:BASE64_32_BYTES,ID:BASE64_32_BYTES,…` configuration (the
    /// format of `LLM_SETTINGS_MASTER_KEYS`); whitespace around entries and parts is ignored.
    pub fn parse(config: &str) -> Result<Self, KeyringError> {
        if config.trim().is_empty() {
            return Err(KeyringError::Empty);
        }
        let keys = config
            .split(',')
            .enumerate()
            .map(|(i, entry)| MasterKey::parse_entry(entry, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// A keyring holding one freshly generated key.
    pub fn generate(id: KeyId) -> Result<Self, KeyringError> {
        Self::new(vec![MasterKey::generate(id)?])
    }

    /// Makes `key` the active key, keeping every current key for opening older envelopes.
    /// Fails (dropping the keyring) when `key`'s id is already present.
    pub fn rotate(self, key: MasterKey) -> Result<Self, KeyringError> {
        let mut keys = Vec::with_capacity(self.older.len() + 2);
        keys.push(key);
        keys.push(self.active);
        keys.extend(self.older);
        Self::new(keys)
    }

    /// The key new secrets are sealed under.
    pub fn active(&self) -> &MasterKey {
        &self.active
    }

    /// The key with this id, if the keyring holds it.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys().find(|key| key.id().as_str() == id)
    }

    /// Every key, the active one first.
    pub fn keys(&self) -> impl Iterator<Item = &MasterKey> + '_ {
        std::iter::once(&self.active).chain(self.older.iter())
    }

    /// The keyring in its configuration form, active key first, for the command that prints it.
    pub fn export(&self) -> SecretString {
        let commas = self.older.len();
        let mut out =
            String::with_capacity(self.keys().map(MasterKey::entry_len).sum::<usize>() + commas);
        for (i, key) in self.keys().enumerate() {
            if i > 0 {
                out.push(',');
            }
            key.write_entry(&mut out);
        }
        SecretString::from(out)
    }

    /// The check value of every key, active first, for recording next to the sealed data.
    pub fn check_values(&self) -> Vec<(KeyId, String)> {
        self.keys()
            .map(|key| (key.id().clone(), key.check_value()))
            .collect()
    }

    /// Compares the configured keys with check values recorded earlier (id → hex value), so a
    /// wrong master key stops the service at start. Fails naming every id whose material
    /// differs; otherwise reports which ids matched, which are new and which are gone.
    pub fn verify_check_values<I, K, V>(&self, recorded: I) -> Result<KeyCheck, KeyringError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut report = KeyCheck::default();
        let mut mismatched: Vec<KeyId> = Vec::new();
        let mut seen: Vec<&KeyId> = Vec::new();
        for (id, value) in recorded {
            let (id, value) = (
                id.as_ref().trim(),
                value.as_ref().trim().to_ascii_lowercase(),
            );
            match self.get(id) {
                Some(key) => {
                    let matches: bool = key.check_value().as_bytes().ct_eq(value.as_bytes()).into();
                    let list = if matches {
                        &mut report.verified
                    } else {
                        &mut mismatched
                    };
                    if !list.contains(key.id()) {
                        list.push(key.id().clone());
                    }
                    seen.push(key.id());
                }
                None => {
                    if !report.missing.iter().any(|m| m == id) {
                        report.missing.push(id.to_owned());
                    }
                }
            }
        }
        if !mismatched.is_empty() {
            return Err(KeyringError::CheckValueMismatch { ids: mismatched });
        }
        report.unrecorded = self
            .keys()
            .filter(|key| !seen.contains(&key.id()))
            .map(|key| (key.id().clone(), key.check_value()))
            .collect();
        Ok(report)
    }
}

impl FromStr for Keyring {
    type Err = KeyringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active().id().as_str())
            .field(
                "keys",
                &self.keys().map(|k| k.id().as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// Key material planted in configurations so tests can prove no message repeats it.
    const A_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B_B64: &str = "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA=";

    fn id(s: &str) -> KeyId {
        KeyId::parse(s).unwrap()
    }

    fn assert_no_material(err: &KeyringError, config: &str) {
        let shown = format!("{err} / {err:?}");
        for entry in config.split(',') {
            let material = entry.split_once(':').map_or(entry, |(_, m)| m).trim();
            let material = material.trim_end_matches('=');
            if material.len() >= 4 {
                assert!(
                    !shown.contains(material),
                    "{shown:?} repeats material {material:?}"
                );
            }
        }
        for planted in [A_B64, B_B64, "AAECAwQF", "//79/Pv6"] {
            assert!(!shown.contains(planted), "{shown:?} repeats {planted:?}");
        }
    }

    fn parse_err(config: &str) -> KeyringError {
        let err = Keyring::parse(config).unwrap_err();
        assert_no_material(&err, config);
        err
    }

    #[test]
    fn parses_a_keyring_with_the_first_key_active() {
        let ring = Keyring::parse(&format!(" new:{B_B64} ,\n old : {A_B64} ")).unwrap();
        assert_eq!(ring.active().id().as_str(), "new");
        let ids: Vec<_> = ring.keys().map(|k| k.id().as_str().to_owned()).collect();
        assert_eq!(ids, ["new", "old"]);
        assert!(ring.get("old").is_some());
        assert!(ring.get("nope").is_none());
        let parsed: Keyring = format!("k:{A_B64}").parse().unwrap();
        assert_eq!(parsed.active().id().as_str(), "k");
    }

    #[test]
    fn export_round_trips_in_order() {
        let config = format!("new:{B_B64},old:{A_B64}");
        let ring = Keyring::parse(&config).unwrap();
        assert_eq!(ring.export().expose_secret(), config);
        let again = Keyring::parse(ring.export().expose_secret()).unwrap();
        assert_eq!(again.check_values(), ring.check_values());
    }

    #[test]
    fn empty_configurations_are_rejected() {
        for config in ["", "   ", "\n\t"] {
            assert_eq!(parse_err(config), KeyringError::Empty);
        }
        assert_eq!(Keyring::new(Vec::new()).unwrap_err(), KeyringError::Empty);
        assert!(KeyringError::Empty
            .to_string()
            .contains("ID:BASE64_32_BYTES"));
    }

    #[test]
    fn blank_entries_are_rejected_by_position() {
        assert_eq!(parse_err(","), KeyringError::EmptyEntry { position: 1 });
        assert_eq!(
            parse_err(&format!("a:{A_B64},")),
            KeyringError::EmptyEntry { position: 2 }
        );
        assert_eq!(
            parse_err(&format!("a:{A_B64}, ,b:{B_B64}")),
            KeyringError::EmptyEntry { position: 2 }
        );
        assert!(KeyringError::EmptyEntry { position: 2 }
            .to_string()
            .contains("entry 2"));
    }

    #[test]
    fn entries_without_an_id_are_rejected() {
        // A bare key (the most likely mistake) must not be echoed back.
        assert_eq!(
            parse_err(A_B64),
            KeyringError::MalformedEntry { position: 1 }
        );
        assert_eq!(
            parse_err(&format!("a:{A_B64},{B_B64}")),
            KeyringError::MalformedEntry { position: 2 }
        );
    }

    #[test]
    fn bad_ids_are_rejected_without_echoing_them() {
        for config in [
            format!(":{A_B64}"),
            format!("key one:{A_B64}"),
            format!("{}:{A_B64}", "k".repeat(33)),
            format!("k.1:{A_B64}"),
            // Material and id swapped: the "id" is key material and must not be shown.
            format!("{A_B64}:k1"),
        ] {
            assert_eq!(
                parse_err(&config),
                KeyringError::InvalidEntryId { position: 1 },
                "{config}"
            );
        }
    }

    #[test]
    fn bad_base64_is_rejected_naming_the_id() {
        for material in [
            "not base64!",
            // URL-safe alphabet is not the standard one.
            "__79_Pv6-fj39vX08_Lx8O_u7ezr6uno5-bl5OPi4eA=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=x",
            "AAECAwQFBgcICQoL DA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ] {
            let err = parse_err(&format!("k1:{material}"));
            assert_eq!(
                err,
                KeyringError::InvalidBase64 { id: id("k1") },
                "{material}"
            );
            assert!(err.to_string().contains("k1"));
        }
    }

    #[test]
    fn wrong_lengths_are_rejected_naming_the_id() {
        for (material, len) in [
            ("", 0),
            ("AAECAwQFBgcICQoLDA0ODw==", 16),
            ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 33),
        ] {
            let err = parse_err(&format!("k1:{material}"));
            assert_eq!(err, KeyringError::WrongLength { id: id("k1"), len });
            assert!(err.to_string().contains(&format!("{len} bytes")));
        }
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let err = parse_err(&format!("k1:{A_B64},k2:{B_B64},k1:{B_B64}"));
        assert_eq!(err, KeyringError::DuplicateId { id: id("k1") });
        assert!(err.to_string().contains("k1"));

        let ring = Keyring::parse(&format!("k1:{A_B64}")).unwrap();
        let again = MasterKey::from_base64(id("k1"), B_B64).unwrap();
        assert_eq!(
            ring.rotate(again).unwrap_err(),
            KeyringError::DuplicateId { id: id("k1") }
        );
    }

    #[test]
    fn rotation_puts_the_new_key_first() {
        let ring = Keyring::parse(&format!("a:{A_B64}")).unwrap();
        let ring = ring.rotate(MasterKey::generate(id("b")).unwrap()).unwrap();
        assert_eq!(ring.active().id().as_str(), "b");
        let ids: Vec<_> = ring.check_values().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [id("b"), id("a")]);
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = Keyring::parse(&format!("new:{B_B64},old:{A_B64}")).unwrap();
        let shown = format!("{ring:?} {:?}", ring.active());
        assert!(shown.contains("new") && shown.contains("old"));
        assert!(!shown.contains("AAECAwQF") && !shown.contains("//79/Pv6"));
        assert!(!shown.contains("[0, 1, 2") && !shown.contains("[255, 254"));
    }

    #[test]
    fn check_values_verify_against_what_was_recorded() {
        let ring = Keyring::parse(&format!("new:{B_B64},old:{A_B64}")).unwrap();
        let recorded = ring.check_values();
        assert_eq!(recorded.len(), 2);
        assert_ne!(recorded[0].1, recorded[1].1);

        let report = ring.verify_check_values(recorded.clone()).unwrap();
        assert_eq!(report.verified, [id("new"), id("old")]);
        assert!(report.unrecorded.is_empty() && report.missing.is_empty());

        // Upper-case hex and surrounding whitespace, as a database or operator might store it.
        let shouty: Vec<_> = recorded
            .iter()
            .map(|(id, v)| (id.as_str().to_owned(), format!(" {} ", v.to_uppercase())))
            .collect();
        assert!(ring.verify_check_values(shouty).is_ok());
    }

    #[test]
    fn new_and_retired_keys_are_reported() {
        let old = Keyring::parse(&format!("gone:{B_B64},old:{A_B64}")).unwrap();
        let recorded = old.check_values();
        let ring = Keyring::parse(&format!("old:{A_B64}"))
            .unwrap()
            .rotate(MasterKey::generate(id("fresh")).unwrap())
            .unwrap();
        let report = ring.verify_check_values(recorded).unwrap();
        assert_eq!(report.verified, [id("old")]);
        assert_eq!(report.missing, ["gone"]);
        assert_eq!(report.unrecorded.len(), 1);
        assert_eq!(report.unrecorded[0].0, id("fresh"));
        assert_eq!(report.unrecorded[0].1, ring.active().check_value());
    }

    #[test]
    fn a_wrong_master_key_is_named() {
        let recorded = Keyring::parse(&format!("new:{B_B64},old:{A_B64}"))
            .unwrap()
            .check_values();
        // Same ids, but "old" now carries other material.
        let other = MasterKey::generate(id("x")).unwrap();
        let other_b64 = other.export();
        let other_b64 = other_b64.expose_secret().trim_start_matches("x:");
        let config = format!("new:{B_B64},old:{other_b64}");
        let ring = Keyring::parse(&config).unwrap();

        let err = ring.verify_check_values(recorded.clone()).unwrap_err();
        assert_eq!(
            err,
            KeyringError::CheckValueMismatch {
                ids: vec![id("old")]
            }
        );
        let shown = err.to_string();
        assert!(shown.contains("old") && !shown.contains("new"), "{shown}");
        assert_no_material(&err, &config);

        // Both wrong: both named.
        let swapped = Keyring::parse(&format!("new:{A_B64},old:{B_B64}")).unwrap();
        let err = swapped.verify_check_values(recorded).unwrap_err();
        assert_eq!(
            err,
            KeyringError::CheckValueMismatch {
                ids: vec![id("new"), id("old")]
            }
        );
        assert!(err.to_string().contains("new, old"));
    }

    #[test]
    fn a_malformed_recorded_value_is_a_mismatch() {
        let ring = Keyring::parse(&format!("k1:{A_B64}")).unwrap();
        for bad in ["", "zz", &ring.active().check_value()[..30]] {
            assert_eq!(
                ring.verify_check_values([("k1", bad)]).unwrap_err(),
                KeyringError::CheckValueMismatch {
                    ids: vec![id("k1")]
                }
            );
        }
    }
}
