//! How a connection is opened: the URL's libpq TLS parameters (`sslmode`, `sslrootcert`)
//! turned into a rustls client (ring provider) for tokio-postgres, and the connection
//! wrapped into diesel-async's `AsyncPgConnection`.
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | no |
//! | `require` | always | no (as libpq: like `verify-ca` when `sslrootcert` is given) |
//! | `verify-ca` | always | chain, against the roots |
//! | `verify-full` | always | chain and host name |
//!
//! The roots are the PEM file `sslrootcert` names, else the web PKI roots built into the
//! binary (the Mozilla set), so a distroless image verifies like any other.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use diesel::ConnectionResult;
use diesel_async::AsyncPgConnection;
use llm_settings_domain::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values this store supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, Error> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(Error::invalid(
                "sslmode",
                format!(
                    "the PostgreSQL URL's sslmode {:?} is not supported; use disable, prefer, \
                     require, verify-ca or verify-full",
                    shorten(other)
                ),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A bad value is quoted back only briefly: it is never a secret, but may be long.
fn shorten(value: &str) -> String {
    value.chars().take(40).collect()
}

/// Everything needed to open a connection to one database: tokio-postgres's configuration
/// (without the TLS parameters it does not know) and the TLS client.
#[derive(Clone)]
pub(crate) struct ConnectTarget {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    mode: SslMode,
    /// Where the roots come from, for messages.
    roots: Roots,
}

impl fmt::Debug for ConnectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The configuration holds the password: only the TLS choice is shown.
        f.debug_struct("ConnectTarget")
            .field("sslmode", &self.mode.name())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
enum Roots {
    BuiltIn,
    File(String),
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BuiltIn => f.write_str("the built-in web PKI roots"),
            Self::File(path) => write!(f, "sslrootcert {path}"),
        }
    }
}

impl ConnectTarget {
    /// Parses a `postgres://` URL (or a libpq `key=value` string, whose `sslmode` may then
    /// only be `disable`, `prefer` or `require`).
    ///
    /// `Validation` for a malformed URL or an unsupported `sslmode`, `Unavailable` when
    /// the `sslrootcert` file cannot be read. No message quotes the password.
    pub(crate) fn parse(database_url: &str) -> Result<Self, Error> {
        let split = split_tls_params(database_url)?;
        let mut config: tokio_postgres::Config = split.rest.parse().map_err(|e| {
            Error::invalid(
                "DATABASE_URL",
                format!("the PostgreSQL URL is not valid: {}", chain(&e)),
            )
        })?;
        let mode = match split.sslmode {
            Some(mode) => mode,
            None => match config.get_ssl_mode() {
                WireSslMode::Disable => SslMode::Disable,
                WireSslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
        };
        // libpq: `require` with a root certificate behaves as `verify-ca`.
        let mode = match (mode, &split.sslrootcert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        };
        config.ssl_mode(match mode {
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (verifier, roots): (Arc<dyn ServerCertVerifier>, Roots) = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => (
                Arc::new(RelaxedVerifier {
                    chain: None,
                    provider: provider.clone(),
                }),
                Roots::BuiltIn,
            ),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let (store, roots) = match &split.sslrootcert {
                    Some(path) => (read_roots(path)?, Roots::File(path.clone())),
                    None => (
                        RootCertStore {
                            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                        },
                        Roots::BuiltIn,
                    ),
                };
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| {
                            Error::invalid(
                                "sslrootcert",
                                format!("the PostgreSQL root certificates are unusable: {e}"),
                            )
                        })?;
                let verifier: Arc<dyn ServerCertVerifier> = if mode == SslMode::VerifyCa {
                    Arc::new(RelaxedVerifier {
                        chain: Some(webpki),
                        provider: provider.clone(),
                    })
                } else {
                    webpki
                };
                (verifier, roots)
            }
        };
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal(format!("the TLS client could not be built: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config,
            tls: MakeRustlsConnect::new(tls),
            mode,
            roots,
        })
    }

    /// Opens one connection, TLS as the URL asks.
    pub(crate) async fn connect(&self) -> ConnectionResult<AsyncPgConnection> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(self.describe(&e)))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }

    /// The failure of opening a connection, with what to do about a rejected certificate.
    /// tokio-postgres messages name the host and the cause, never the password.
    fn describe(&self, err: &tokio_postgres::Error) -> String {
        let mut message = chain(err);
        let hint = match rustls_cause(err) {
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                Some(format!(
                    "the server's certificate is not trusted: none of {} issued it \
                     (sslmode={}; name the server's CA with sslrootcert=PATH)",
                    self.roots,
                    self.mode.name()
                ))
            }
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Some(format!(
                "the server's certificate does not name the host connected to \
                 (sslmode={}; connect by a name the certificate was issued for, or use \
                 sslmode=verify-ca)",
                self.mode.name()
            )),
            Some(rustls::Error::InvalidCertificate(other)) => Some(format!(
                "the server's certificate was rejected ({other}; sslmode={})",
                self.mode.name()
            )),
            _ => None,
        };
        if let Some(hint) = hint {
            message = format!("{message}; {hint}");
        }
        message
    }
}

/// An error and its causes, `: `-separated (tokio-postgres shows only its own kind).
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut message = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        next = cause.source();
    }
    message
}

/// The rustls error somewhere in a tokio-postgres error's chain (TLS failures arrive as an
/// `io::Error` wrapping it).
fn rustls_cause(err: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(found) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                return Some(found);
            }
        }
        next = current.source();
    }
    None
}

/// Reads the PEM root certificates of `sslrootcert`.
fn read_roots(path: &str) -> Result<RootCertStore, Error> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::Unavailable(format!(
            "the PostgreSQL sslrootcert {path} cannot be read: {e}"
        ))
    })?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            Error::invalid(
                "sslrootcert",
                format!("the PostgreSQL sslrootcert {path} is not valid PEM: {e}"),
            )
        })?;
        store.add(cert).map_err(|e| {
            Error::invalid(
                "sslrootcert",
                format!("the PostgreSQL sslrootcert {path} holds an unusable certificate: {e}"),
            )
        })?;
    }
    if store.is_empty() {
        return Err(Error::invalid(
            "sslrootcert",
            format!("the PostgreSQL sslrootcert {path} holds no PEM certificate"),
        ));
    }
    Ok(store)
}

/// A URL with the TLS parameters taken out.
#[derive(Debug)]
struct Split {
    rest: String,
    sslmode: Option<SslMode>,
    sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query (tokio-postgres
/// knows neither `verify-*` nor `sslrootcert`); other parameters are kept verbatim.
/// A `key=value` connection string is returned untouched.
fn split_tls_params(url: &str) -> Result<Split, Error> {
    let untouched = Split {
        rest: url.to_owned(),
        sslmode: None,
        sslrootcert: None,
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(untouched);
    }
    let Some((base, query)) = url.split_once('?') else {
        return Ok(untouched);
    };
    let mut kept = Vec::new();
    let (mut sslmode, mut sslrootcert) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key, "a URL parameter name")?.as_str() {
            "sslmode" => sslmode = Some(SslMode::parse(&percent_decode(value, "sslmode")?)?),
            "sslrootcert" => sslrootcert = Some(percent_decode(value, "sslrootcert")?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(Split {
        rest,
        sslmode,
        sslrootcert: sslrootcert.filter(|path| !path.is_empty()),
    })
}

/// Decodes `%XX` escapes (a `+` stays a plus, as libpq reads URLs).
fn percent_decode(text: &str, what: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "DATABASE_URL",
                        format!("the PostgreSQL URL's {what} has a malformed %-escape"),
                    )
                })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        Error::invalid(
            "DATABASE_URL",
            format!("the PostgreSQL URL's {what} is not UTF-8"),
        )
    })
}

/// The certificate checks of libpq's weaker modes. `prefer` and `require` (`chain: None`):
/// encrypt, but take any certificate. `verify-ca`: the chain must lead to a root, the host
/// name is not compared (webpki checks the chain before the name, so a name mismatch means
/// the chain passed). Either way the handshake signatures are checked, so the peer holds
/// the key of the certificate it shows (which SCRAM channel binding then ties the password
/// exchange to).
#[derive(Debug)]
struct RelaxedVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_kept() {
        let split = split_tls_params(
            "postgres://u:p@h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca+1.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            split.rest,
            "postgres://u:p@h/db?application_name=x&connect_timeout=5"
        );
        assert_eq!(split.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(split.sslrootcert.as_deref(), Some("/etc/ca+1.pem"));

        let split = split_tls_params("postgresql://h/db?sslmode=disable").unwrap();
        assert_eq!(split.rest, "postgresql://h/db");
        assert_eq!(split.sslmode, Some(SslMode::Disable));

        let split = split_tls_params("host=h sslmode=require").unwrap();
        assert_eq!(split.rest, "host=h sslmode=require");
        assert_eq!(split.sslmode, None);
    }

    #[test]
    fn the_default_is_prefer_and_require_with_a_root_verifies_the_chain() {
        let target = ConnectTarget::parse("postgres://u:p@h/db").unwrap();
        assert_eq!(target.mode, SslMode::Prefer);
        assert_eq!(target.config.get_ssl_mode(), WireSslMode::Prefer);
        let target = ConnectTarget::parse("host=h sslmode=require").unwrap();
        assert_eq!(target.mode, SslMode::Require);
        let target = ConnectTarget::parse("postgres://h/db?sslmode=verify-full").unwrap();
        assert_eq!(target.config.get_ssl_mode(), WireSslMode::Require);
        assert!(matches!(target.roots, Roots::BuiltIn));
    }

    #[test]
    fn an_unknown_sslmode_is_a_validation_error_without_the_password() {
        let err = ConnectTarget::parse("postgres://u:hunter2@h/db?sslmode=bogus").unwrap_err();
        assert!(
            matches!(&err, Error::Validation { field: Some(f), .. } if f == "sslmode"),
            "{err:?}"
        );
        assert!(err.to_string().contains("bogus"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = ConnectTarget::parse("postgres://u:hunter2@h/db?sslmode=%zz").unwrap_err();
        assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    }

    #[test]
    fn a_missing_or_empty_root_file_is_named() {
        let err = ConnectTarget::parse(
            "postgres://u:hunter2@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("sslrootcert /nonexistent/root.crt"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let empty = std::env::temp_dir().join(format!("empty-root-{}.pem", std::process::id()));
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let url = format!(
            "postgres://h/db?sslmode=verify-full&sslrootcert={}",
            empty.display()
        );
        let err = ConnectTarget::parse(&url).unwrap_err();
        let _ = std::fs::remove_file(&empty);
        assert!(
            matches!(&err, Error::Validation { field: Some(f), .. } if f == "sslrootcert"),
            "{err:?}"
        );
    }

    #[test]
    fn the_debug_form_hides_the_configuration() {
        let target = ConnectTarget::parse("postgres://u:hunter2@h/db?sslmode=require").unwrap();
        let shown = format!("{target:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("require"), "{shown}");
    }
}
