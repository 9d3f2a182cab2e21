//! Configuration: every setting from the environment or a TOML file (`--config FILE`, the same
//! names in lower case without the `LLM_SETTINGS_` prefix); the environment wins. The names are
//! stable — scripts and operators rely on them. Each setting is declared once, below: its
//! variable, its meaning and its default, which `--help` lists.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use llm_settings_http::limits::{Rate, RateSettings};

/// The longest `LLM_SETTINGS_CHAIN_CACHE_TTL_MS` accepted.
pub const MAX_CHAIN_CACHE_TTL_MS: u64 = 1000;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.trim().to_owned()))
}

/// The settings of the service.
#[derive(Debug, Clone, Args)]
#[command(
    next_help_heading = "Configuration (environment, or the same names in lower case without LLM_SETTINGS_ in a --config TOML file; the environment wins)"
)]
pub struct Config {
    /// postgres://… for Postgres, sqlite://PATH for SQLite [default: sqlite://<data dir>/llm-settings.sqlite3]
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Listen address
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: String,
    /// Where the embedded default keeps its database and generated keys
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    /// Keyring: comma-separated ID:BASE64_32_BYTES, the first one active [default: generated into the data dir for SQLite only]
    #[arg(long, global = true, env = "LLM_SETTINGS_MASTER_KEYS", hide_env_values = true, value_parser = secret)]
    pub master_keys: Option<SecretString>,
    /// HS256 secret for bearer tokens (at least 32 bytes) [default: generated into the data dir for SQLite only]
    #[arg(long, global = true, env = "LLM_SETTINGS_JWT_SECRET", hide_env_values = true, value_parser = secret)]
    pub jwt_secret: Option<SecretString>,
    /// PEM public key (RS256/ES256/EdDSA) instead of the secret; the PEM text or a file path
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_JWT_PUBLIC_KEY",
        hide_env_values = true
    )]
    pub jwt_public_key: Option<String>,
    /// Required `iss` claim
    #[arg(long, global = true, env = "LLM_SETTINGS_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim (a token's `aud` may also be an array containing it)
    #[arg(long, global = true, env = "LLM_SETTINGS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Seconds of clock skew tolerated on a token's `exp` and `nbf`
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_JWT_LEEWAY_SECS",
        default_value_t = 30
    )]
    pub jwt_leeway_secs: u64,
    /// Comma-separated provider ids offered [default: all]
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_PROVIDERS",
        value_delimiter = ','
    )]
    pub providers: Option<Vec<String>>,
    /// Hosts, host:port or CIDRs probes may reach although private or loopback [default: none]
    #[arg(long, global = true, env = "LLM_SETTINGS_PROBE_ALLOW_HOSTS")]
    pub probe_allow_hosts: Option<String>,
    /// Deadline of one probe, in milliseconds
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_PROBE_TIMEOUT_MS",
        default_value = "10000"
    )]
    pub probe_timeout_ms: String,
    /// Hosts, host:port or CIDRs that the local providers (ollama, deepseek_local) may reach [default: loopback only: localhost, 127.0.0.0/8, ::1]
    #[arg(long, global = true, env = "LLM_SETTINGS_LOCAL_PROVIDER_HOSTS")]
    pub local_provider_hosts: Option<String>,
    /// Gateway: milliseconds to connect to a provider
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_GATEWAY_CONNECT_TIMEOUT_MS",
        default_value = "10000"
    )]
    pub gateway_connect_timeout_ms: String,
    /// Gateway: milliseconds until the provider's first byte
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_GATEWAY_FIRST_BYTE_TIMEOUT_MS",
        default_value = "300000"
    )]
    pub gateway_first_byte_timeout_ms: String,
    /// Gateway: milliseconds allowed between two chunks of an answer
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_GATEWAY_IDLE_TIMEOUT_MS",
        default_value = "120000"
    )]
    pub gateway_idle_timeout_ms: String,
    /// Gateway: milliseconds one call may last in all
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_GATEWAY_TOTAL_TIMEOUT_MS",
        default_value = "900000"
    )]
    pub gateway_total_timeout_ms: String,
    /// Gateway: largest request body, in bytes
    #[arg(long, global = true, env = "LLM_SETTINGS_GATEWAY_MAX_BODY_BYTES", default_value_t = 20 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub gateway_max_body_bytes: u64,
    /// Milliseconds a resolution chain read from the store is reused (resolve and gateway calls), at most 1000; 0 turns the cache off. A change through this process is seen by its next call at once, a change through another process sharing the database within this time
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_CHAIN_CACHE_TTL_MS",
        default_value_t = 1000
    )]
    pub chain_cache_ttl_ms: u64,
    /// Comma-separated origins whose pages may call the API from a browser (an application embedding the settings component), e.g. https://app.example.com [default: none]
    #[arg(long, global = true, env = "LLM_SETTINGS_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// Comma-separated origins whose pages may show the settings page in a frame [default: none: the page refuses framing]
    #[arg(long, global = true, env = "LLM_SETTINGS_FRAME_ANCESTORS")]
    pub frame_ancestors: Option<String>,
    /// Days audit events are kept; older ones are pruned in the background
    #[arg(long, global = true, env = "LLM_SETTINGS_AUDIT_RETENTION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub audit_retention_days: u32,
    /// Milliseconds a client may take to send a request's headers, and again its body
    #[arg(long, global = true, env = "LLM_SETTINGS_REQUEST_TIMEOUT_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// Connections served at once (split over the worker threads); more wait to be accepted
    #[arg(long, global = true, env = "LLM_SETTINGS_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_connections: u64,
    /// Address of a separate listener serving only /metrics (Prometheus text format) [default: none: /metrics is served on the main listener]
    #[arg(long, global = true, env = "LLM_SETTINGS_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Connection tests per token subject: N/s, N/min or N/h (up to N at once, then refilled evenly), or off [default: 10/min]
    #[arg(long, global = true, env = "LLM_SETTINGS_RATE_LIMIT_CONNECTION_TESTS")]
    pub rate_limit_connection_tests: Option<String>,
    /// Gateway calls per token subject, as above [default: 6000/min]
    #[arg(long, global = true, env = "LLM_SETTINGS_RATE_LIMIT_GATEWAY_CALLS")]
    pub rate_limit_gateway_calls: Option<String>,
    /// Credential resolutions per token subject, as above [default: 6000/min]
    #[arg(long, global = true, env = "LLM_SETTINGS_RATE_LIMIT_RESOLUTIONS")]
    pub rate_limit_resolutions: Option<String>,
    /// Refused bearer tokens per source address, as above; over it the answer is 429 instead of 401 [default: 30/min]
    #[arg(
        long,
        global = true,
        env = "LLM_SETTINGS_RATE_LIMIT_FAILED_AUTHENTICATIONS"
    )]
    pub rate_limit_failed_authentications: Option<String>,
    /// Log filter (`info`, `llm_settings_http=debug` …)
    #[arg(long, global = true, env = "LLM_SETTINGS_LOG", default_value = "info")]
    pub log: String,
    /// `text`, or `json` for JSON lines
    #[arg(long, global = true, env = "LLM_SETTINGS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The store's URL: `DATABASE_URL`, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match self
            .database_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            Some(url) => url.to_owned(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("llm-settings.sqlite3").display()
            ),
        }
    }

    /// Whether the store is the embedded SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The settings with every optional value given as empty (or blank) treated as unset.
    pub fn normalized(mut self) -> Self {
        fn text(value: Option<String>) -> Option<String> {
            value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
        }
        fn secret(value: Option<SecretString>) -> Option<SecretString> {
            value.filter(|v| !v.expose_secret().is_empty())
        }
        self.database_url = text(self.database_url);
        self.master_keys = secret(self.master_keys);
        self.jwt_secret = secret(self.jwt_secret);
        self.jwt_public_key = text(self.jwt_public_key);
        self.jwt_issuer = text(self.jwt_issuer);
        self.jwt_audience = text(self.jwt_audience);
        self.probe_allow_hosts = text(self.probe_allow_hosts);
        self.local_provider_hosts = text(self.local_provider_hosts);
        self.cors_origins = text(self.cors_origins);
        self.frame_ancestors = text(self.frame_ancestors);
        self.metrics_bind = text(self.metrics_bind);
        self.rate_limit_connection_tests = text(self.rate_limit_connection_tests);
        self.rate_limit_gateway_calls = text(self.rate_limit_gateway_calls);
        self.rate_limit_resolutions = text(self.rate_limit_resolutions);
        self.rate_limit_failed_authentications = text(self.rate_limit_failed_authentications);
        self.providers = self
            .providers
            .filter(|p| p.iter().any(|v| !v.trim().is_empty()));
        self
    }

    /// The rate limits: each configured budget, or its default.
    pub fn rate_settings(&self) -> anyhow::Result<RateSettings> {
        fn rate(value: Option<&str>, default: &str, variable: &str) -> anyhow::Result<Rate> {
            value
                .unwrap_or(default)
                .parse()
                .with_context(|| variable.to_owned())
        }
        Ok(RateSettings {
            connection_tests: rate(
                self.rate_limit_connection_tests.as_deref(),
                RateSettings::DEFAULT_CONNECTION_TESTS,
                "LLM_SETTINGS_RATE_LIMIT_CONNECTION_TESTS",
            )?,
            gateway_calls: rate(
                self.rate_limit_gateway_calls.as_deref(),
                RateSettings::DEFAULT_GATEWAY_CALLS,
                "LLM_SETTINGS_RATE_LIMIT_GATEWAY_CALLS",
            )?,
            resolutions: rate(
                self.rate_limit_resolutions.as_deref(),
                RateSettings::DEFAULT_RESOLUTIONS,
                "LLM_SETTINGS_RATE_LIMIT_RESOLUTIONS",
            )?,
            failed_authentications: rate(
                self.rate_limit_failed_authentications.as_deref(),
                RateSettings::DEFAULT_FAILED_AUTHENTICATIONS,
                "LLM_SETTINGS_RATE_LIMIT_FAILED_AUTHENTICATIONS",
            )?,
        })
    }

    /// Refuses values no run could use.
    pub fn check(&self) -> anyhow::Result<()> {
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite://");
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| *p != ":memory:")
        {
            check_sqlite_directory(Path::new(path), &self.data_dir)?;
        }
        self.rate_settings()?;
        // Other processes sharing the database see a change once their cached chains have
        // aged past this: the service promises it within 1 s.
        if self.chain_cache_ttl_ms > MAX_CHAIN_CACHE_TTL_MS {
            bail!(
                "LLM_SETTINGS_CHAIN_CACHE_TTL_MS must be at most {MAX_CHAIN_CACHE_TTL_MS} (0 turns the cache off)"
            );
        }
        Ok(())
    }

    /// How long a resolution chain read from the store is reused; zero: not at all.
    pub fn chain_cache_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.chain_cache_ttl_ms)
    }
}

/// A SQLite file's missing directory is created only inside the data directory: a mistyped
/// URL (`sqlite:///data/x.sqlite3` for `sqlite://data/x.sqlite3`) must not build directories
/// from the filesystem root.
fn check_sqlite_directory(path: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() || lexical_absolute(dir)?.starts_with(lexical_absolute(data_dir)?) {
        return Ok(());
    }
    bail!(
        "DATABASE_URL names a SQLite file in {}, a directory that does not exist and is outside \
         the data directory {}; create that directory first, or keep the database in the data \
         directory (sqlite://PATH is a relative path, sqlite:///PATH an absolute one)",
        dir.display(),
        data_dir.display()
    )
}

/// `path` made absolute with `.` and `..` resolved by name (nothing is looked up).
fn lexical_absolute(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("cannot resolve the path {}", path.display()))?;
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The names a `--config` file may use: the settings' own.
fn known_keys() -> Vec<String> {
    Config::augment_args(clap::Command::new("settings"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// A TOML value as the text a setting takes (arrays are comma-joined).
fn text(key: &str, value: toml::Value, path: &Path) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => bail!(
            "`{key}` in {} must be a string, not {}",
            path.display(),
            other.type_str()
        ),
    })
}

/// The command line with the `--config` file's values as the settings' defaults, so the
/// environment (and a flag) still win over the file.
pub fn with_file(command: clap::Command, path: &Path) -> anyhow::Result<clap::Command> {
    let content = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = content
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let known = known_keys();
    let mut command = command;
    for (key, value) in table {
        if !known.contains(&key) {
            bail!(
                "unknown key `{key}` in {} (known: {})",
                path.display(),
                known.join(", ")
            );
        }
        let value = text(&key, value, path)?;
        command = command.mut_arg(key.as_str(), |arg| arg.default_value(value));
    }
    Ok(command)
}

/// Parses a command line whose type embeds [`Config`] and names the file in `config_file`.
pub fn parse<C, I>(args: I, config_file: impl Fn(&C) -> Option<PathBuf>) -> anyhow::Result<C>
where
    C: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = OsString>,
{
    let args: Vec<OsString> = args.into_iter().collect();
    let matches = C::command()
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| e.exit());
    let first = C::from_arg_matches(&matches)?;
    let Some(path) = config_file(&first) else {
        return Ok(first);
    };
    let matches: ArgMatches = with_file(C::command(), &path)?
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| e.exit());
    Ok(C::from_arg_matches(&matches)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Config,
    }

    fn load(args: &[&str]) -> anyhow::Result<Config> {
        let args = std::iter::once("llm-settings").chain(args.iter().copied());
        parse::<Cli, _>(args.map(OsString::from), |c| c.config.clone())
            .map(|c| c.settings.normalized())
    }

    /// One test touches the process environment, so no other test sees it changed.
    #[test]
    fn defaults_then_the_file_then_the_environment() {
        let c = load(&[]).unwrap();
        assert_eq!(c.database_url(), "sqlite://./data/llm-settings.sqlite3");
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert!(c.is_sqlite());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!((c.jwt_leeway_secs, c.request_timeout_ms), (30, 5000));
        assert!(c.master_keys.is_none());
        assert_eq!(c.rate_settings().unwrap(), RateSettings::default());
        assert!(c.metrics_bind.is_none());
        let c = load(&[
            "--rate-limit-connection-tests",
            "off",
            "--rate-limit-resolutions",
            " ",
        ])
        .unwrap();
        let rates = c.rate_settings().unwrap();
        assert_eq!(rates.connection_tests, Rate::Off);
        assert_eq!(rates.resolutions, RateSettings::default().resolutions);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:9000\"\nproviders = [\"openai\", \"anthropic\"]\nprobe_timeout_ms = 2500\njwt_secret = \"from-file\"\njwt_leeway_secs = 5\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        std::env::set_var("LLM_SETTINGS_BIND", "127.0.0.1:1");
        std::env::set_var("DATABASE_URL", "postgres://x/y");
        let c = load(&["--config", path]);
        std::env::remove_var("LLM_SETTINGS_BIND");
        std::env::remove_var("DATABASE_URL");
        let c = c.unwrap();
        assert_eq!(c.bind, "127.0.0.1:1", "the environment wins");
        assert_eq!(c.providers.as_deref().unwrap(), ["openai", "anthropic"]);
        assert_eq!(c.probe_timeout_ms, "2500");
        assert_eq!(c.jwt_leeway_secs, 5);
        assert_eq!(c.jwt_secret.as_ref().unwrap().expose_secret(), "from-file");
        assert!(!c.is_sqlite());

        std::fs::write(&file, "bindd = \"x\"\n").unwrap();
        let err = load(&["--config", path]).unwrap_err().to_string();
        assert!(err.contains("unknown key `bindd`"), "{err}");
        let bad = load(&["--database-url", "mysql://x"]).unwrap();
        assert!(bad.check().is_err());
        let bad = load(&["--rate-limit-resolutions", "lots"]).unwrap();
        let err = format!("{:#}", bad.check().unwrap_err());
        assert!(err.contains("LLM_SETTINGS_RATE_LIMIT_RESOLUTIONS"), "{err}");
    }

    #[test]
    fn a_sqlite_directory_is_created_only_inside_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let at = |url: &str| {
            let data = data.display().to_string();
            load(&["--data-dir", &data, "--database-url", url])
                .unwrap()
                .check()
        };
        let inside = format!("sqlite://{}/sub/../new/db.sqlite3", data.display());
        assert!(at(&inside).is_ok(), "inside the data directory");
        let existing = format!("sqlite://{}/db.sqlite3", dir.path().display());
        assert!(at(&existing).is_ok(), "an existing directory");
        assert!(at("sqlite::memory:").is_ok());
        let outside = format!("sqlite://{}/missing/db.sqlite3", dir.path().display());
        let err = at(&outside).unwrap_err().to_string();
        assert!(err.contains("does not exist and is outside"), "{err}");
        let sneaky = format!("sqlite://{}/../missing/db.sqlite3", data.display());
        assert!(at(&sneaky).is_err(), "`..` leaves the data directory");
    }

    #[test]
    fn the_chain_cache_lives_at_most_one_second() {
        let c = load(&[]).unwrap();
        assert_eq!(c.chain_cache_ttl(), std::time::Duration::from_secs(1));
        c.check().unwrap();
        let off = load(&["--chain-cache-ttl-ms", "0"]).unwrap();
        assert!(off.chain_cache_ttl().is_zero());
        off.check().unwrap();
        let long = load(&["--chain-cache-ttl-ms", "1001"]).unwrap();
        let err = long.check().unwrap_err().to_string();
        assert!(err.contains("LLM_SETTINGS_CHAIN_CACHE_TTL_MS"), "{err}");
    }

    #[test]
    fn every_setting_is_in_the_help() {
        let help = Cli::command().render_long_help().to_string();
        for name in [
            "DATABASE_URL",
            "LLM_SETTINGS_BIND",
            "LLM_SETTINGS_JWT_LEEWAY_SECS",
            "LLM_SETTINGS_REQUEST_TIMEOUT_MS",
            "LLM_SETTINGS_MAX_CONNECTIONS",
            "LLM_SETTINGS_LOG_FORMAT",
            "LLM_SETTINGS_METRICS_BIND",
            "LLM_SETTINGS_RATE_LIMIT_CONNECTION_TESTS",
            "LLM_SETTINGS_RATE_LIMIT_FAILED_AUTHENTICATIONS",
            "LLM_SETTINGS_CHAIN_CACHE_TTL_MS",
        ] {
            assert!(help.contains(name), "{name} missing from the help");
        }
    }
}
