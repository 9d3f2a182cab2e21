//! Master keys and the token secret: from configuration, or generated into the data directory
//! for the embedded SQLite setup (owner-only permissions).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use llm_settings_crypto::{KeyId, Keyring};
use llm_settings_http::{Authenticator, TokenIssuer};

use crate::config::Config;
use crate::store::Store;

const KEYRING_FILE: &str = "master.keys";
const JWT_SECRET_FILE: &str = "jwt.secret";

/// Where a master keyring or token key came from, for the start-up line (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The named setting (environment, `--config` file or flag).
    Setting(&'static str),
    /// A file of the data directory written by an earlier start.
    DataFile(PathBuf),
    /// Generated into the data directory by this start.
    Generated(PathBuf),
    /// A public key file named by the setting.
    PublicKeyFile(PathBuf),
}

impl KeySource {
    /// Whether the secret is the embedded default's, kept in the data directory (where the
    /// `token` command finds it without any configuration).
    pub fn is_data_dir_default(&self) -> bool {
        matches!(self, Self::DataFile(_) | Self::Generated(_))
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Setting(name) => write!(f, "env ({name})"),
            Self::DataFile(path) => write!(f, "file ({})", path.display()),
            Self::Generated(path) => write!(f, "generated ({})", path.display()),
            Self::PublicKeyFile(path) => write!(f, "file ({})", path.display()),
        }
    }
}

fn data_file(config: &Config, name: &str) -> PathBuf {
    config.data_dir.join(name)
}

fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Reads a generated secret file, creating it with mode 0600 on first use; says which.
fn read_or_create(
    path: &Path,
    make: impl FnOnce() -> anyhow::Result<SecretString>,
) -> anyhow::Result<(SecretString, KeySource)> {
    let found = || KeySource::DataFile(path.to_path_buf());
    if path.exists() {
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "secret file is readable by other users; chmod 600 it");
        }
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok((SecretString::from(text.trim().to_owned()), found()));
    }
    if let Some(dir) = path.parent() {
        ensure_data_dir(dir)?;
    }
    // Write the whole file under a private name, then link it into place: a concurrent start
    // (the service and a `token` command, say) either wins or reads the winner's file.
    let secret = make()?;
    let staging = path.with_extension(format!(
        "tmp-{}-{:016x}",
        std::process::id(),
        rand::rngs::OsRng.next_u64()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    file.write_all(secret.expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    let linked = fs::hard_link(&staging, path);
    let _ = fs::remove_file(&staging);
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), "generated a new secret file (mode 0600)");
            Ok((secret, KeySource::Generated(path.to_path_buf())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((SecretString::from(text.trim().to_owned()), found()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// The master keyring: `LLM_SETTINGS_MASTER_KEYS`, or (SQLite only) the data directory's;
/// and where it came from.
pub fn keyring(config: &Config) -> anyhow::Result<(Keyring, KeySource)> {
    let (text, source) = match (&config.master_keys, config.is_sqlite()) {
        (Some(keys), _) => (keys.clone(), KeySource::Setting("LLM_SETTINGS_MASTER_KEYS")),
        (None, true) => read_or_create(&data_file(config, KEYRING_FILE), || {
            let id = KeyId::parse("k1").map_err(|e| anyhow!("{e}"))?;
            Ok(Keyring::generate(id).map_err(|e| anyhow!("{e}"))?.export())
        })?,
        (None, false) => bail!(
            "LLM_SETTINGS_MASTER_KEYS is not set. A Postgres deployment never invents a master key: \
             every service process must share one keyring. Generate one with \
             `llm-settings keys generate` and set LLM_SETTINGS_MASTER_KEYS to it on every node."
        ),
    };
    let keyring = Keyring::parse(text.expose_secret())
        .map_err(|e| anyhow!("LLM_SETTINGS_MASTER_KEYS is invalid: {e}"))?;
    Ok((keyring, source))
}

/// The HS256 token secret: `LLM_SETTINGS_JWT_SECRET`, or (SQLite only) the data directory's,
/// generated there on first use; and where it came from.
pub fn jwt_secret(config: &Config) -> anyhow::Result<(SecretString, KeySource)> {
    match (&config.jwt_secret, config.is_sqlite()) {
        (Some(secret), _) => Ok((
            secret.clone(),
            KeySource::Setting("LLM_SETTINGS_JWT_SECRET"),
        )),
        (None, true) => read_or_create(&data_file(config, JWT_SECRET_FILE), || {
            let mut bytes = [0u8; 48];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            Ok(SecretString::from(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            ))
        }),
        (None, false) => bail!(
            "neither LLM_SETTINGS_JWT_SECRET nor LLM_SETTINGS_JWT_PUBLIC_KEY is set; a Postgres \
             deployment needs one of them shared by every node"
        ),
    }
}

/// The token verifier from configuration, and where its key came from.
pub fn authenticator(config: &Config) -> anyhow::Result<(Authenticator, KeySource)> {
    let iss = config.jwt_issuer.as_deref();
    let aud = config.jwt_audience.as_deref();
    let (auth, source) = if let Some(key) = &config.jwt_public_key {
        let (pem, source) = if key.trim_start().starts_with("-----BEGIN") {
            (
                key.clone(),
                KeySource::Setting("LLM_SETTINGS_JWT_PUBLIC_KEY"),
            )
        } else {
            let pem = fs::read_to_string(key)
                .with_context(|| format!("cannot read the JWT public key file {key}"))?;
            (pem, KeySource::PublicKeyFile(PathBuf::from(key)))
        };
        let auth = Authenticator::public_key_pem(pem.as_bytes(), iss, aud)
            .map_err(|e| anyhow!("LLM_SETTINGS_JWT_PUBLIC_KEY: {e}"))?;
        (auth, source)
    } else {
        let (secret, source) = jwt_secret(config)?;
        let auth = Authenticator::hs256(secret.expose_secret().as_bytes(), iss, aud)
            .map_err(|e| anyhow!("LLM_SETTINGS_JWT_SECRET: {e}"))?;
        (auth, source)
    };
    Ok((auth.with_leeway(config.jwt_leeway_secs), source))
}

/// The token minter (HS256 only: with a public key, tokens come from the identity provider).
/// It uses the configured secret or the one the service generated in the data directory, and
/// never creates one: a secret made here would sign tokens the running service refuses.
pub fn issuer(config: &Config) -> anyhow::Result<TokenIssuer> {
    if config.jwt_public_key.is_some() {
        bail!("tokens are verified with LLM_SETTINGS_JWT_PUBLIC_KEY; mint them with the identity provider that holds the private key");
    }
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => {
            let path = data_file(config, JWT_SECRET_FILE);
            if !config.is_sqlite() || !path.exists() {
                let shown =
                    std::path::absolute(&config.data_dir).unwrap_or(config.data_dir.clone());
                bail!(
                    "no token secret: LLM_SETTINGS_JWT_SECRET is not set and the data directory {} has no {JWT_SECRET_FILE}. \
                     Run this command where the service runs (or set LLM_SETTINGS_DATA_DIR to its data directory), \
                     or set LLM_SETTINGS_JWT_SECRET (or jwt_secret in --config) to the service's secret.",
                    shown.display()
                );
            }
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            SecretString::from(text.trim().to_owned())
        }
    };
    Ok(TokenIssuer::hs256(secret.expose_secret().as_bytes()))
}

/// Refuses a keyring that does not match the one this database was sealed with, and records
/// the check value of every key seen for the first time.
pub async fn verify_against_store(keyring: &Keyring, store: &dyn Store) -> anyhow::Result<()> {
    let recorded = store
        .key_checks()
        .await
        .map_err(|e| anyhow!("cannot read the recorded master-key checks: {e}"))?;
    let check = keyring
        .verify_check_values(recorded.iter().map(|(id, v)| (id.as_str(), v.as_str())))
        .map_err(|e| anyhow!("wrong master key: {e}. Set LLM_SETTINGS_MASTER_KEYS to the keyring this database was sealed with."))?;
    if !recorded.is_empty() && check.verified.is_empty() {
        bail!(
            "wrong master key: none of the configured keys was ever used with this database (it knows {}). \
             Set LLM_SETTINGS_MASTER_KEYS to the keyring this database was sealed with.",
            check.missing.join(", ")
        );
    }
    for (id, value) in check.unrecorded {
        store
            .save_key_check(id.as_str(), &value)
            .await
            .map_err(|e| anyhow!("cannot record the check value of key {id}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_first_starts_agree_on_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.secret");
        let values: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let path = path.clone();
                    scope.spawn(move || {
                        read_or_create(&path, || Ok(SecretString::from(format!("secret-{i}"))))
                            .unwrap()
                            .0
                            .expose_secret()
                            .to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), values[0]);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no staging file is left behind"
        );
    }
}
