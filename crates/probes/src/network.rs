//! The pooled HTTP clients every outbound request goes through, one per policy class.
//!
//! A URL first passes the static checks of the [`TargetPolicy`] (scheme, credentials,
//! IP-literal hosts in any spelling, allow-list `host:port` entries); it is then sent with the
//! client of its class, whose DNS resolver checks every address a name resolves to and hands
//! the connector only checked addresses. So the address that was checked is the one
//! connected, on every new connection of the pool, without building a client per call
//! (the idea of vaultwarden's `src/http_client.rs`). No proxy, no redirects followed.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::policy::{CheckedUrl, Reach, Refusal};

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Which resolver rules a client applies after resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Public addresses, and private ones in the allow list's networks.
    Cloud,
    /// As `Cloud`, plus the local providers' networks.
    Local,
    /// The host (and port) is named by a list: private addresses too, never forbidden ones.
    Named,
}

/// A name that could not be resolved (kept apart from policy refusals).
#[derive(Debug, thiserror::Error)]
#[error("the endpoint's host name could not be resolved")]
pub(crate) struct Unresolvable;

/// Resolves with the system resolver, then refuses the whole answer if any address breaks
/// the policy of its class.
#[derive(Debug)]
struct PolicyResolver {
    reach: Arc<Reach>,
    class: Class,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = Arc::clone(&self.reach);
        let class = self.class;
        Box::pin(async move {
            let host = name.as_str();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
                .await
                .map_err(|_| Box::new(Unresolvable) as Box<dyn StdError + Send + Sync>)?
                .collect();
            if resolved.is_empty() {
                return Err(Box::new(Unresolvable) as Box<dyn StdError + Send + Sync>);
            }
            let policy = reach.policy(class == Class::Local);
            for addr in &resolved {
                if let Err(refusal) = policy.check_address(addr.ip(), class == Class::Named) {
                    tracing::info!(
                        target: "llm_settings_probes",
                        host,
                        "outbound request refused after resolution: {refusal}"
                    );
                    return Err(Box::new(refusal) as Box<dyn StdError + Send + Sync>);
                }
            }
            Ok(Box::new(resolved.into_iter()) as Addrs)
        })
    }
}

/// The outbound policy and its pooled clients.
#[derive(Debug)]
pub(crate) struct Network {
    reach: Arc<Reach>,
    cloud: reqwest::Client,
    local: reqwest::Client,
    named: reqwest::Client,
}

impl Network {
    /// Builds one pooled client per class; `connect_timeout` bounds resolution and connect.
    pub(crate) fn new(reach: Reach, connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        let reach = Arc::new(reach);
        let client = |class| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .dns_resolver(Arc::new(PolicyResolver {
                    reach: Arc::clone(&reach),
                    class,
                }))
                .connect_timeout(connect_timeout)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .tcp_nodelay(true)
                .build()
        };
        Ok(Self {
            cloud: client(Class::Cloud)?,
            local: client(Class::Local)?,
            named: client(Class::Named)?,
            reach,
        })
    }

    /// Checks `url` without DNS and picks the client whose resolver enforces the rest.
    pub(crate) fn route(
        &self,
        url: &Url,
        local: bool,
    ) -> Result<(&reqwest::Client, CheckedUrl), Refusal> {
        let checked = self.reach.policy(local).check_url(url).inspect_err(|refusal| {
            tracing::info!(target: "llm_settings_probes", "outbound request refused: {refusal}");
        })?;
        let client = if checked.host_allowed {
            &self.named
        } else if local {
            &self.local
        } else {
            &self.cloud
        };
        Ok((client, checked))
    }
}

/// The policy refusal or resolution failure behind a transport error, if that is what it is.
pub(crate) enum Cause<'e> {
    Refused(&'e Refusal),
    Unresolvable,
    Other,
}

/// Finds why a request failed before anything was sent, walking the error's sources.
pub(crate) fn cause_of(error: &reqwest::Error) -> Cause<'_> {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(current) = source {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return Cause::Refused(refusal);
        }
        if current.downcast_ref::<Unresolvable>().is_some() {
            return Cause::Unresolvable;
        }
        source = current.source();
    }
    Cause::Other
}
