//! `llm-settings`: the LLM settings service and its administrative commands.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Data;
use actix_web::HttpServer;
use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use llm_settings_crypto::{KeyId, Keyring};
use llm_settings_domain::{ConfigId, InstanceId, Role, Scope, UserId};
use llm_settings_http::cors::Origins;
use llm_settings_http::limits::RateLimits;
use llm_settings_http::{AppState, Audience, Claims};
use llm_settings_server::config::{self, Config, LogFormat};
use llm_settings_server::keys::KeySource;
use llm_settings_server::{keys, service, store, Wired};

/// The LLM settings service: stores LLM provider credentials encrypted, serves them masked.
#[derive(Debug, Parser)]
#[command(name = "llm-settings", version)]
struct Cli {
    /// A TOML file with any of the settings below (lower-case keys, e.g. `bind = "0.0.0.0:8080"`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve {
        /// Apply pending database migrations before serving (SQLite always does).
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Mint a bearer token with the configured HS256 secret; prints only the token.
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// Space-separated scopes: `read`, `write`, `use`.
        #[arg(long, default_value = "read write")]
        scope: String,
        /// A role (`admin`, `superadmin`, `service`); repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The tenant instance the token acts for.
        #[arg(long)]
        instance: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Master-key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new master key as `ID:BASE64`; put it first in LLM_SETTINGS_MASTER_KEYS to make
    /// it active, keep the old ones after it, then run `keys rewrap`.
    Generate {
        /// Key id (1–32 of A-Z a-z 0-9 _ -).
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-encrypt every stored secret under the active master key. Resumable with --after.
    Rewrap {
        /// Resume after this config id (printed as progress).
        #[arg(long)]
        after: Option<i64>,
        /// Configs per batch.
        #[arg(long, default_value_t = 100)]
        batch: u32,
    },
}

/// Whether log lines may carry colour codes: only on a terminal, and not when `NO_COLOR` is
/// set to anything but the empty string (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .map_err(|e| anyhow!("LLM_SETTINGS_LOG is not a valid filter: {e}"))?;
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .init(),
    }
    Ok(())
}

/// Whether JSON logs were asked for, even when the command line could not be read.
fn wants_json(cli: &anyhow::Result<Cli>) -> bool {
    match cli {
        Ok(cli) => cli.settings.log_format == LogFormat::Json,
        Err(_) => std::env::var("LLM_SETTINGS_LOG_FORMAT")
            .is_ok_and(|f| f.trim().eq_ignore_ascii_case("json")),
    }
}

/// Writes the error that stops the process: a JSON line shaped like the service's JSON logs
/// when those were asked for, otherwise one line of text.
fn report_fatal(err: &anyhow::Error, json: bool) {
    let message = format!("{err:#}");
    if json {
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = serde_json::json!({
            "timestamp": at,
            "level": "ERROR",
            "fields": {"message": message},
            "target": "llm_settings",
        });
        eprintln!("{line}");
    } else {
        eprintln!("llm-settings: {message}");
    }
}

/// Prints a command's output on stdout. A reader that went away (`llm-settings openapi |
/// head`) is not an error: the output is simply no longer wanted.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    let cli = config::parse::<Cli, _>(std::env::args_os(), |c| c.config.clone());
    let json = wants_json(&cli);
    match cli.and_then(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            report_fatal(&err, json);
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.settings.normalized();
    config.check()?;
    match cli.command.unwrap_or(Command::Serve { migrate: false }) {
        Command::Openapi => print_out(&llm_settings_http::openapi().to_pretty_json()?),
        Command::Keys {
            command: KeysCommand::Generate { id },
        } => {
            let id = id.unwrap_or_else(|| {
                let today = time::OffsetDateTime::now_utc().date();
                format!("k{}", today.to_string().replace('-', ""))
            });
            let id = KeyId::parse(&id).map_err(|e| anyhow!("{e}"))?;
            let keyring = Keyring::generate(id).map_err(|e| anyhow!("{e}"))?;
            print_out(keyring.export().expose_secret())
        }
        Command::Token {
            sub,
            scope,
            roles,
            instance,
            ttl,
        } => {
            init_logging(&config)?;
            check_token_claims(&sub, &scope, &roles, instance.as_deref())?;
            let issuer = keys::issuer(&config)?;
            let exp = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64 + ttl;
            let claims = Claims {
                sub,
                scope,
                roles,
                instance,
                exp,
                nbf: None,
                iss: config.jwt_issuer.clone(),
                aud: config.jwt_audience.clone().map(Audience::One),
            };
            print_out(&issuer.mint(&claims)?)
        }
        command => {
            init_logging(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async move {
                match command {
                    Command::Migrate => migrate(&config).await,
                    Command::Keys {
                        command: KeysCommand::Rewrap { after, batch },
                    } => rewrap(&config, after, batch).await,
                    Command::Serve { migrate } => serve(config, migrate).await,
                    _ => Ok(()),
                }
            })
        }
    }
}

/// Refuses a subject or instance the service would refuse and a role or scope it would ignore,
/// so `token` never prints a token that fails or silently lacks what was asked for.
fn check_token_claims(
    sub: &str,
    scope: &str,
    roles: &[String],
    instance: Option<&str>,
) -> anyhow::Result<()> {
    UserId::parse(sub).map_err(|e| anyhow!("--sub: {e}"))?;
    if let Some(instance) = instance {
        InstanceId::parse(instance).map_err(|e| anyhow!("--instance: {e}"))?;
    }
    if let Some(role) = roles.iter().find(|r| Role::parse(r).is_none()) {
        let accepted: Vec<&str> = Role::ALL.iter().map(Role::as_str).collect();
        return Err(anyhow!(
            "unknown role {role:?}: the accepted roles are {}",
            accepted.join(", ")
        ));
    }
    if let Some(item) = scope.split_whitespace().find(|s| Scope::parse(s).is_none()) {
        let accepted: Vec<&str> = Scope::ALL.iter().map(Scope::as_str).collect();
        return Err(anyhow!(
            "unknown scope {item:?}: the accepted scopes are {}",
            accepted.join(", ")
        ));
    }
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = store::open(&config.database_url(), false, config.chain_cache_ttl()).await?;
    let applied = store
        .migrate()
        .await
        .map_err(|e| anyhow!("migration failed: {e}"))?;
    if applied.is_empty() {
        eprintln!("the database is up to date");
    }
    for version in applied {
        eprintln!("applied migration {version}");
    }
    Ok(())
}

async fn rewrap(config: &Config, after: Option<i64>, batch: u32) -> anyhow::Result<()> {
    let service = service(config, false).await?.service;
    let report = service
        .rewrap_all(after.map(ConfigId), batch, |progress| {
            eprintln!(
                "scanned {} configs, re-encrypted {}, already current {}; resume with --after {}",
                progress.scanned,
                progress.rewrapped,
                progress.current,
                progress.last_id.map_or(0, |id| id.0)
            );
        })
        .await
        .map_err(|e| {
            anyhow!("rewrap stopped: {e}; run the command again with the last --after value")
        })?;
    eprintln!(
        "done: {} configs scanned, {} re-encrypted under the active key, {} already current",
        report.scanned, report.rewrapped, report.current
    );
    Ok(())
}

/// The one start-up line: where the service listens, which store and data directory it uses,
/// where its keys came from and which providers it offers — never a credential.
fn announce(config: &Config, addresses: &[String], wired: &Wired, token_key: &KeySource) {
    let (store_kind, store_location) = store::describe(&config.database_url());
    let providers: Vec<&str> = wired
        .service
        .catalog()
        .providers()
        .map(|p| p.as_str())
        .collect();
    tracing::info!(
        store = %store_kind,
        store_location = %store_location,
        data_dir = %config.data_dir.display(),
        master_keys = %wired.master_keys,
        token_key = %token_key,
        bind = %config.bind,
        providers = %providers.join(","),
        "llm-settings listening on {}",
        addresses.join(" ")
    );
    if token_key.is_data_dir_default() {
        tracing::info!(
            "mint a token to try the API: llm-settings token --sub <user-id> --scope 'read write' (with cargo: cargo run --release -- token --sub me)"
        );
    }
}

async fn serve(config: Config, migrate: bool) -> anyhow::Result<()> {
    let (auth, token_key) = keys::authenticator(&config)?;
    let wired = service(&config, migrate).await?;
    let pruning = llm_settings_server::retention::spawn_pruning(
        wired.service.clone(),
        config.audit_retention_days,
        Duration::from_secs(3600),
    );
    let store_kind = if config.is_sqlite() {
        "sqlite"
    } else {
        "postgres"
    };
    let scrape = llm_settings_server::metrics::install(wired.store.clone(), store_kind)?;
    if let Some(bind) = &config.metrics_bind {
        llm_settings_server::metrics::serve_separately(bind, scrape.clone())?;
    }
    let (service, store) = (wired.service.clone(), wired.store.clone());
    let request_timeout = Duration::from_millis(config.request_timeout_ms);
    let state = Data::new(AppState {
        service,
        auth,
        readiness: Arc::new(store::StoreReadiness(store)),
        request_timeout,
        cors_origins: Origins::parse(config.cors_origins.as_deref())
            .map_err(|e| anyhow!("LLM_SETTINGS_CORS_ORIGINS: {e}"))?,
        gateway_max_body_bytes: usize::try_from(config.gateway_max_body_bytes)?,
        frame_ancestors: Origins::parse(config.frame_ancestors.as_deref())
            .map_err(|e| anyhow!("LLM_SETTINGS_FRAME_ANCESTORS: {e}"))?,
        limits: RateLimits::new(config.rate_settings()?),
        metrics: config.metrics_bind.is_none().then_some(scrape),
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_worker = usize::try_from(config.max_connections)?
        .div_ceil(workers)
        .max(1);
    let server = HttpServer::new(move || llm_settings_http::app(state.clone()))
        .workers(workers)
        .max_connections(per_worker)
        .client_request_timeout(request_timeout)
        .shutdown_timeout(30)
        // Streamed answers are many small writes (the head, then each event): without
        // TCP_NODELAY a chunk can wait for the client's delayed ACK of the previous write.
        .tcp_nodelay(true)
        .bind(&config.bind)
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addresses: Vec<String> = server
        .addrs()
        .iter()
        .map(|a| format!("http://{a}"))
        .collect();
    announce(&config, &addresses, &wired, &token_key);
    let audit_writer = wired.audit_writer;
    drop((wired.service, wired.store));
    server
        .run()
        .await
        .context("the server stopped with an error")?;
    pruning.abort();
    // Every handle of the audit queue went with the server's state: the writer drains it.
    if tokio::time::timeout(Duration::from_secs(10), audit_writer)
        .await
        .is_err()
    {
        tracing::warn!("queued audit events were not all written before shutdown");
    }
    tracing::info!("shut down");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = OsStr::new("1");
        let empty = OsStr::new("");
        assert!(colour(true, None));
        assert!(colour(true, Some(empty)), "an empty NO_COLOR is unset");
        assert!(!colour(true, Some(set)));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(empty)));
    }
}
