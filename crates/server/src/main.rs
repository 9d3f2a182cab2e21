//! `llm-settings`: the LLM settings service and its administrative commands.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Data;
use actix_web::HttpServer;
use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use llm_settings_crypto::{KeyId, Keyring};
use llm_settings_domain::{ConfigId, Role, Scope};
use llm_settings_http::cors::Origins;
use llm_settings_http::{AppState, Audience, Claims};
use llm_settings_server::config::{self, Config, LogFormat};
use llm_settings_server::{keys, service, store};

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

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .map_err(|e| anyhow!("LLM_SETTINGS_LOG is not a valid filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = config::parse::<Cli, _>(std::env::args_os(), |c| c.config.clone());
    match cli.and_then(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("llm-settings: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.settings.normalized();
    config.check()?;
    match cli.command.unwrap_or(Command::Serve { migrate: false }) {
        Command::Openapi => {
            println!("{}", llm_settings_http::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Generate { id },
        } => {
            let id = id.unwrap_or_else(|| {
                let today = time::OffsetDateTime::now_utc().date();
                format!("k{}", today.to_string().replace('-', ""))
            });
            let id = KeyId::parse(&id).map_err(|e| anyhow!("{e}"))?;
            let keyring = Keyring::generate(id).map_err(|e| anyhow!("{e}"))?;
            println!("{}", keyring.export().expose_secret());
            Ok(())
        }
        Command::Token {
            sub,
            scope,
            roles,
            instance,
            ttl,
        } => {
            init_logging(&config)?;
            check_token_claims(&scope, &roles)?;
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
            println!("{}", issuer.mint(&claims)?);
            Ok(())
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

/// Refuses a role or scope the service would ignore, so `token` never prints a token that
/// silently lacks what was asked for.
fn check_token_claims(scope: &str, roles: &[String]) -> anyhow::Result<()> {
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

async fn serve(config: Config, migrate: bool) -> anyhow::Result<()> {
    let auth = keys::authenticator(&config)?;
    let wired = service(&config, migrate).await?;
    let pruning = llm_settings_server::retention::spawn_pruning(
        wired.service.clone(),
        config.audit_retention_days,
        Duration::from_secs(3600),
    );
    let (service, store) = (wired.service, wired.store);
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
        .bind(&config.bind)
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    for address in server.addrs() {
        tracing::info!(%address, "llm-settings listening on http://{address}");
    }
    if config.jwt_public_key.is_none() {
        tracing::info!(
            "mint a token to try the API: llm-settings token --sub <user-id> --scope 'read write' (with cargo: cargo run --release -- token --sub me)"
        );
    }
    server
        .run()
        .await
        .context("the server stopped with an error")?;
    pruning.abort();
    // Every handle of the audit queue went with the server's state: the writer drains it.
    if tokio::time::timeout(Duration::from_secs(10), wired.audit_writer)
        .await
        .is_err()
    {
        tracing::warn!("queued audit events were not all written before shutdown");
    }
    tracing::info!("shut down");
    Ok(())
}
