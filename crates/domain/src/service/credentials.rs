//! The credential rules every use case shares: which fields a provider has, what a value sent
//! for a secret means (a new key, a handed-out mask of the stored one, a removal), what a
//! non-secret field may hold, and where a stored key may be sent.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{CredentialField, ProviderSpec};
use crate::config::ProviderConfig;
use crate::error::{Error, Result};
use crate::mask::{looks_masked, SecretHints};
use crate::secret::SecretValue;
use crate::values::{origin_of, BaseUrl};

/// Longest accepted secret value (a service-account JSON is a few KiB).
pub const MAX_SECRET_BYTES: usize = 32 * 1024;
/// Longest accepted non-secret credential field.
pub const MAX_SETTING_BYTES: usize = 1024;

/// One provider's credentials after what a request sent was laid over what is stored.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    /// Secrets sent in plaintext: new keys, by field.
    pub fresh: BTreeMap<&'static str, SecretValue>,
    /// Stored secrets still in effect (named by a handed-out mask, or not mentioned).
    pub kept: BTreeSet<&'static str>,
    /// Non-secret fields in effect.
    pub settings: BTreeMap<String, String>,
}

impl Credentials {
    /// Lays `secrets` and `settings` (`None` removes a field) over the stored config's.
    ///
    /// `Validation` for a field the provider does not have, a blank, oversized or
    /// control-character value, or a malformed URL field; `MaskedSecretMismatch` for a value
    /// that looks masked but is no mask handed out for the stored secret.
    pub fn merge(
        spec: &'static ProviderSpec,
        stored: Option<&ProviderConfig>,
        secrets: &BTreeMap<String, Option<SecretValue>>,
        settings: &BTreeMap<String, Option<String>>,
    ) -> Result<Self> {
        let mut merged = Self {
            kept: stored
                .into_iter()
                .flat_map(|c| c.secrets.keys())
                .filter_map(|name| spec.field(name).map(|f| f.name))
                .collect(),
            settings: stored.map(|c| c.settings.clone()).unwrap_or_default(),
            ..Self::default()
        };
        for (name, value) in secrets {
            let field = known_field(spec, name, true)?;
            merged.kept.remove(field.name);
            let Some(value) = value else { continue };
            let hints = stored
                .and_then(|c| c.secrets.get(field.name))
                .map(|s| &s.hints);
            match classify_secret(field.name, value, hints)? {
                SecretChoice::KeepStored => {
                    merged.kept.insert(field.name);
                }
                SecretChoice::New => {
                    merged.fresh.insert(field.name, value.clone());
                }
            }
        }
        for (name, value) in settings {
            let field = known_field(spec, name, false)?;
            match value {
                None => merged.settings.remove(field.name),
                Some(value) => merged
                    .settings
                    .insert(field.name.to_owned(), setting_value(field, value)?),
            };
        }
        Ok(merged)
    }

    /// Whether a field (secret or not) has a value.
    pub fn has(&self, field: &CredentialField) -> bool {
        if field.secret {
            self.fresh.contains_key(field.name) || self.kept.contains(field.name)
        } else {
            self.settings.contains_key(field.name)
        }
    }

    /// The first required field of the provider without a value.
    pub fn missing_required(
        &self,
        spec: &'static ProviderSpec,
    ) -> Option<&'static CredentialField> {
        spec.fields.iter().find(|f| f.required && !self.has(f))
    }

    /// Whether a stored secret would be used (and so the outbound rule applies).
    pub fn uses_stored_secret(&self) -> bool {
        !self.kept.is_empty()
    }
}

/// The provider's credential field `name`, which must be secret (or not) as `secret` says.
fn known_field(
    spec: &'static ProviderSpec,
    name: &str,
    secret: bool,
) -> Result<&'static CredentialField> {
    spec.field(name)
        .filter(|f| f.secret == secret)
        .ok_or_else(|| {
            let known: Vec<_> = spec.fields.iter().map(|f| f.name).collect();
            let name = crate::error::shown(name);
            Error::invalid(
                name.clone(),
                format!(
                    "{name} is not a {}credential field of provider {} (known: {})",
                    if secret { "secret " } else { "" },
                    spec.id,
                    known.join(", ")
                ),
            )
        })
}

/// Checks and normalises the value of a non-secret field.
fn setting_value(field: &CredentialField, value: &str) -> Result<String> {
    let name = field.name;
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(name, format!("{name} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            name,
            format!("{name} must not contain control characters"),
        ));
    }
    if value.len() > MAX_SETTING_BYTES {
        return Err(Error::invalid(
            name,
            format!("{name} must be at most {MAX_SETTING_BYTES} bytes"),
        ));
    }
    if field.url {
        return Ok(BaseUrl::parse_field(name, value)?.as_str().to_owned());
    }
    Ok(value.to_owned())
}

/// What to do with a secret value sent by a client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SecretChoice {
    /// The value is a mask this service handed out for the stored secret.
    KeepStored,
    /// The value is a new secret.
    New,
}

/// Decides whether a value is a new secret or the round trip of a handed-out hint; a value
/// that looks masked but matches no hint is refused, never stored.
pub(crate) fn classify_secret(
    field: &str,
    value: &SecretValue,
    stored: Option<&SecretHints>,
) -> Result<SecretChoice> {
    if value.is_blank() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    let text = value.expose();
    if text.len() > MAX_SECRET_BYTES {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    // A service-account file may be pretty-printed; nothing else may hold control characters.
    let allowed = |c: char| field == "service_account_json" && matches!(c, '\n' | '\r' | '\t');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if stored.is_some_and(|hints| hints.is_handed_out_mask(text)) {
        return Ok(SecretChoice::KeepStored);
    }
    if looks_masked(text) {
        return Err(Error::MaskedSecretMismatch {
            field: field.to_owned(),
        });
    }
    Ok(SecretChoice::New)
}

/// A stored key is only ever sent to the origin (scheme, host, port) of its provider's own
/// endpoint or of the endpoint stored with it. Sending it to any other origin — another
/// base URL, or a changed URL-valued field such as Azure's `endpoint` — needs the key again.
///
/// `base_url` and `settings` are where the key would go; `Validation` naming the field that
/// points elsewhere.
pub(crate) fn check_stored_key_destination(
    spec: &'static ProviderSpec,
    stored: &ProviderConfig,
    base_url: Option<&BaseUrl>,
    settings: &BTreeMap<String, String>,
) -> Result<()> {
    if let Some(url) = base_url {
        let target = Some(url.origin());
        let own = spec.default_origin() == target
            || stored.base_url.as_ref().map(BaseUrl::origin) == target;
        if !own {
            return Err(key_required_for("base_url", spec));
        }
    }
    for field in spec.fields.iter().filter(|f| f.url) {
        let Some(value) = settings.get(field.name) else {
            continue;
        };
        let stored_origin = stored.settings.get(field.name).and_then(|s| origin_of(s));
        if stored_origin.is_none() || stored_origin != origin_of(value) {
            return Err(key_required_for(field.name, spec));
        }
    }
    Ok(())
}

fn key_required_for(field: &str, spec: &ProviderSpec) -> Error {
    let key = spec.primary_secret().map_or("api_key", |f| f.name);
    Error::invalid(
        field,
        format!(
            "a stored key is only sent to its provider's own origin or the one stored with it; \
             to use this {field}, send {key} again"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ProviderId;
    use crate::mask::SecretHints;
    use crate::owner::Owner;
    use crate::secret::{SealedSecret, StoredSecret};
    use crate::values::{ConfigId, Timestamp};

    const KEY: &str = "sk-proj-STOREDsecretVALUE0123456789abcdefYx4f";

    fn stored(provider: &str, base_url: Option<&str>) -> ProviderConfig {
        let at = Timestamp::from_unix_micros(0).unwrap();
        ProviderConfig {
            id: ConfigId(1),
            owner: Owner::Global,
            provider: ProviderId::lookup(provider).unwrap(),
            secrets: BTreeMap::from([(
                "api_key".to_owned(),
                StoredSecret {
                    sealed: SealedSecret::from_bytes(b"sealed".to_vec()),
                    hints: SecretHints::of(KEY),
                },
            )]),
            settings: BTreeMap::new(),
            model: None,
            base_url: base_url.map(|u| BaseUrl::parse(u).unwrap()),
            enabled: true,
            is_default: true,
            version: 1,
            last_test: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn check(config: &ProviderConfig, target: &str) -> Result<()> {
        check_stored_key_destination(
            config.provider.spec(),
            config,
            Some(&BaseUrl::parse(target).unwrap()),
            &BTreeMap::new(),
        )
    }

    #[test]
    fn a_stored_key_goes_only_to_its_providers_origin_or_the_stored_one() {
        let openai = stored("openai", None);
        assert!(check(&openai, "https://api.openai.com/v1").is_ok());
        assert!(check(&openai, "https://api.openai.com:443/other").is_ok());
        for elsewhere in [
            "http://api.openai.com/v1",
            "http://api.openai.com:8080/any",
            "https://api.openai.com:8443/v1",
            "https://gateway.example.com/v1",
        ] {
            let err = check(&openai, elsewhere).unwrap_err();
            assert_eq!(err.field(), Some("base_url"), "{elsewhere}");
        }
        let gateway = stored("openai", Some("http://127.0.0.1:9000/v1"));
        assert!(check(&gateway, "http://127.0.0.1:9000/v2").is_ok());
        assert!(check(&gateway, "http://127.0.0.1:9001/v1").is_err());
        assert!(check(&gateway, "https://127.0.0.1:9000/v1").is_err());
    }

    #[test]
    fn a_changed_url_field_needs_the_key_again() {
        let mut azure = stored("azure", None);
        azure
            .settings
            .insert("endpoint".into(), "https://acme.openai.azure.com".into());
        let spec = azure.provider.spec();
        let to = |endpoint: &str| BTreeMap::from([("endpoint".to_owned(), endpoint.to_owned())]);
        assert!(check_stored_key_destination(
            spec,
            &azure,
            None,
            &to("https://acme.openai.azure.com/")
        )
        .is_ok());
        let err = check_stored_key_destination(spec, &azure, None, &to("https://evil.example.com"))
            .unwrap_err();
        assert_eq!(err.field(), Some("endpoint"));
    }

    #[test]
    fn the_last_four_hint_handed_out_keeps_the_stored_key() {
        let hints = SecretHints::of(KEY);
        let choice = |v: &str| classify_secret("api_key", &SecretValue::new(v), Some(&hints));
        assert_eq!(choice(&hints.last4).unwrap(), SecretChoice::KeepStored);
        assert_eq!(
            choice(&hints.vendor_last4).unwrap(),
            SecretChoice::KeepStored
        );
        assert_eq!(
            choice("sk-proj-NEWsecret0123456789").unwrap(),
            SecretChoice::New
        );
        assert_eq!(
            choice("sk-...0000").unwrap_err().code(),
            "masked_key_mismatch"
        );
        assert_eq!(choice(" ").unwrap_err().code(), "validation_error");
    }

    #[test]
    fn unknown_and_malformed_fields_are_refused() {
        let spec = ProviderId::lookup("openai").unwrap().spec();
        let secrets = BTreeMap::from([("colour".to_owned(), Some(SecretValue::new("x")))]);
        let err = Credentials::merge(spec, None, &secrets, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.field(), Some("colour"));
        let settings = BTreeMap::from([("organization".to_owned(), Some("x".repeat(2000)))]);
        let err = Credentials::merge(spec, None, &BTreeMap::new(), &settings).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }
}
