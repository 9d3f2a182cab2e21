//! Configuration: every setting from the environment or a TOML file (`--config FILE`); the
//! environment wins. The names are stable — scripts and operators rely on them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use secrecy::SecretString;

/// One setting: its environment variable, its TOML key, what it means and its default.
#[derive(Debug)]
pub struct Setting {
    pub env: &'static str,
    pub key: &'static str,
    pub meaning: &'static str,
    pub default: &'static str,
}

/// Every setting, in the order `--help` and the README list them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        env: "DATABASE_URL",
        key: "database_url",
        meaning: "postgres://… for Postgres, sqlite://PATH for SQLite",
        default: "sqlite://<data dir>/llm-settings.sqlite3",
    },
    Setting {
        env: "LLM_SETTINGS_BIND",
        key: "bind",
        meaning: "listen address",
        default: "127.0.0.1:8080",
    },
    Setting {
        env: "LLM_SETTINGS_DATA_DIR",
        key: "data_dir",
        meaning: "where the embedded default keeps its database and generated keys",
        default: "./data",
    },
    Setting {
        env: "LLM_SETTINGS_MASTER_KEYS",
        key: "master_keys",
        meaning: "keyring: comma-separated ID:BASE64_32_BYTES, the first one active",
        default: "generated into the data dir for SQLite only",
    },
    Setting {
        env: "LLM_SETTINGS_JWT_SECRET",
        key: "jwt_secret",
        meaning: "HS256 secret for bearer tokens (at least 32 bytes)",
        default: "generated into the data dir for SQLite only",
    },
    Setting {
        env: "LLM_SETTINGS_JWT_PUBLIC_KEY",
        key: "jwt_public_key",
        meaning:
            "PEM public key (RS256/ES256/EdDSA) instead of the secret; the PEM text or a file path",
        default: "-",
    },
    Setting {
        env: "LLM_SETTINGS_JWT_ISSUER",
        key: "jwt_issuer",
        meaning: "required `iss` claim",
        default: "-",
    },
    Setting {
        env: "LLM_SETTINGS_JWT_AUDIENCE",
        key: "jwt_audience",
        meaning: "required `aud` claim",
        default: "-",
    },
    Setting {
        env: "LLM_SETTINGS_PROVIDERS",
        key: "providers",
        meaning: "comma-separated provider ids offered",
        default: "all",
    },
    Setting {
        env: "LLM_SETTINGS_PROBE_ALLOW_HOSTS",
        key: "probe_allow_hosts",
        meaning: "hosts, host:port or CIDRs probes may reach although private or loopback",
        default: "none",
    },
    Setting {
        env: "LLM_SETTINGS_PROBE_TIMEOUT_MS",
        key: "probe_timeout_ms",
        meaning: "deadline of one probe",
        default: "10000",
    },
    Setting {
        env: "LLM_SETTINGS_LOG",
        key: "log",
        meaning: "log filter",
        default: "info",
    },
    Setting {
        env: "LLM_SETTINGS_LOG_FORMAT",
        key: "log_format",
        meaning: "`text` or `json` (JSON lines)",
        default: "text",
    },
];

/// The settings table for `--help`.
pub fn help_table() -> String {
    let mut out = String::from("Configuration (environment, or the same keys in a --config TOML file; the environment wins):\n");
    for s in SETTINGS {
        let _ = writeln!(
            out,
            "  {:<32} {} [default: {}]",
            s.env, s.meaning, s.default
        );
    }
    out
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub database_url: String,
    pub bind: String,
    pub data_dir: PathBuf,
    pub master_keys: Option<SecretString>,
    pub jwt_secret: Option<SecretString>,
    pub jwt_public_key: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub providers: Option<Vec<String>>,
    pub probe_allow_hosts: Option<String>,
    pub probe_timeout_ms: Option<String>,
    pub log: String,
    pub log_format: LogFormat,
}

impl Config {
    /// Whether the store is the embedded SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Loads from an optional TOML file and an environment lookup (the environment wins).
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the configuration file {}", path.display())
            })?;
            let table: toml::Table = text
                .parse()
                .with_context(|| format!("{} is not valid TOML", path.display()))?;
            for (key, value) in table {
                let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
                    let known: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
                    bail!(
                        "unknown key `{key}` in {} (known: {})",
                        path.display(),
                        known.join(", ")
                    );
                };
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => bail!(
                        "`{key}` in {} must be a string, not {}",
                        path.display(),
                        other.type_str()
                    ),
                };
                values.insert(setting.key, text);
            }
        }
        for setting in SETTINGS {
            if let Some(v) = env(setting.env) {
                values.insert(setting.key, v);
            }
        }
        let mut take = |key: &str| {
            values
                .remove(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let data_dir = PathBuf::from(take("data_dir").unwrap_or_else(|| "./data".into()));
        let database_url = take("database_url").unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                data_dir.join("llm-settings.sqlite3").display()
            )
        });
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite://");
        }
        let log_format = match take("log_format").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("LLM_SETTINGS_LOG_FORMAT must be `text` or `json`, not `{other}`"),
        };
        Ok(Self {
            database_url,
            bind: take("bind").unwrap_or_else(|| "127.0.0.1:8080".into()),
            data_dir,
            master_keys: take("master_keys").map(SecretString::from),
            jwt_secret: take("jwt_secret").map(SecretString::from),
            jwt_public_key: take("jwt_public_key"),
            jwt_issuer: take("jwt_issuer"),
            jwt_audience: take("jwt_audience"),
            providers: take("providers")
                .map(|p| p.split(',').map(|s| s.trim().to_owned()).collect()),
            probe_allow_hosts: take("probe_allow_hosts"),
            probe_timeout_ms: take("probe_timeout_ms"),
            log: take("log").unwrap_or_else(|| "info".into()),
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_the_embedded_sqlite_setup() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.database_url, "sqlite://./data/llm-settings.sqlite3");
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert!(c.is_sqlite());
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.master_keys.is_none());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:9000\"\nproviders = [\"openai\", \"anthropic\"]\nprobe_timeout_ms = 2500\njwt_secret = \"from-file\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("LLM_SETTINGS_BIND", "127.0.0.1:1"),
                ("DATABASE_URL", "postgres://x/y"),
            ]),
        )
        .unwrap();
        assert_eq!(c.bind, "127.0.0.1:1");
        assert_eq!(c.providers.as_deref().unwrap(), ["openai", "anthropic"]);
        assert_eq!(c.probe_timeout_ms.as_deref(), Some("2500"));
        assert_eq!(c.jwt_secret.as_ref().unwrap().expose_secret(), "from-file");
        assert!(!c.is_sqlite());
    }

    #[test]
    fn mistakes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "bindd = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(err.contains("unknown key `bindd`"), "{err}");
        assert!(Config::load(None, env(&[("DATABASE_URL", "mysql://x")])).is_err());
        assert!(Config::load(None, env(&[("LLM_SETTINGS_LOG_FORMAT", "xml")])).is_err());
    }

    #[test]
    fn every_setting_is_in_the_help() {
        let help = help_table();
        for s in SETTINGS {
            assert!(help.contains(s.env));
        }
    }
}
