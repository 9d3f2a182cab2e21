//! Rate limits: connection tests, gateway calls and resolutions per token subject, failed
//! authentications per source address. Each limit is a budget of `N` requests per period that
//! refills evenly (GCRA, crate `governor`): up to `N` may come at once, then one more every
//! `period / N`. Over the limit a request is answered 429 with `Retry-After`, in the shape of
//! the surface it was sent to, and counted in `/metrics`.
//!
//! The state lives in this process: several processes behind one balancer each allow the
//! budget.

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use llm_settings_domain::{Actor, UserId};

use crate::error::ApiError;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Connection tests, per token subject.
    ConnectionTest,
    /// Gateway calls, per token subject.
    GatewayCall,
    /// Credential resolutions, per token subject.
    Resolution,
    /// Refused bearer tokens, per source address.
    FailedAuthentication,
}

impl Limited {
    /// The `limit` label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionTest => "connection_test",
            Self::GatewayCall => "gateway_call",
            Self::Resolution => "resolution",
            Self::FailedAuthentication => "failed_authentication",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::ConnectionTest => "connection tests for this token's subject",
            Self::GatewayCall => "gateway calls for this token's subject",
            Self::Resolution => "credential resolutions for this token's subject",
            Self::FailedAuthentication => "failed authentications from this address",
        }
    }
}

/// A budget: `count` requests per `period`, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Off,
    Per { count: NonZeroU32, period: Duration },
}

/// Why a rate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a rate: write N/s, N/min or N/h with N at least 1 (e.g. 10/min), or off")]
pub struct RateSyntaxError(String);

impl FromStr for Rate {
    type Err = RateSyntaxError;

    /// `10/min`, `5/s`, `100/h`, or `off`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let err = || RateSyntaxError(text.to_owned());
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        let (count, unit) = text.split_once('/').ok_or_else(err)?;
        let count = count.trim().parse::<NonZeroU32>().map_err(|_| err())?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        Ok(Self::Per { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Per { count, period } => {
                let unit = match period.as_secs() {
                    1 => "second",
                    60 => "minute",
                    3600 => "hour",
                    _ => return write!(f, "{count} per {} s", period.as_secs()),
                };
                write!(f, "{count} per {unit}")
            }
        }
    }
}

impl Rate {
    fn quota(self) -> Option<Quota> {
        match self {
            Self::Off => None,
            Self::Per { count, period } => {
                let interval = period / count.get();
                Quota::with_period(interval).map(|q| q.allow_burst(count))
            }
        }
    }
}

/// The configured budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSettings {
    pub connection_tests: Rate,
    pub gateway_calls: Rate,
    pub resolutions: Rate,
    pub failed_authentications: Rate,
}

impl RateSettings {
    /// Connection tests: the budget of one person checking a key or two.
    pub const DEFAULT_CONNECTION_TESTS: &'static str = "10/min";
    /// Gateway calls: an application's traffic.
    pub const DEFAULT_GATEWAY_CALLS: &'static str = "6000/min";
    /// Resolutions: an application backend's traffic.
    pub const DEFAULT_RESOLUTIONS: &'static str = "6000/min";
    /// Failed authentications from one address.
    pub const DEFAULT_FAILED_AUTHENTICATIONS: &'static str = "30/min";
}

impl Default for RateSettings {
    fn default() -> Self {
        let rate = |text: &str| text.parse().unwrap_or(Rate::Off);
        Self {
            connection_tests: rate(Self::DEFAULT_CONNECTION_TESTS),
            gateway_calls: rate(Self::DEFAULT_GATEWAY_CALLS),
            resolutions: rate(Self::DEFAULT_RESOLUTIONS),
            failed_authentications: rate(Self::DEFAULT_FAILED_AUTHENTICATIONS),
        }
    }
}

/// Checks between two sweeps of keys that have been idle long enough to be forgotten.
const SWEEP_EVERY: u64 = 4096;

/// One limit over keys of type `K`.
struct Keyed<K: Hash + Eq + Clone> {
    kind: Limited,
    rate: Rate,
    limiter: RateLimiter<K, DashMapStateStore<K>, DefaultClock>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(kind: Limited, rate: Rate) -> Option<Self> {
        let quota = rate.quota()?;
        Some(Self {
            kind,
            rate,
            limiter: RateLimiter::dashmap(quota),
            checks: AtomicU64::new(0),
        })
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = u32::try_from(secs).unwrap_or(u32::MAX).max(1);
            metrics::counter!("llm_settings_rate_limited_total", "limit" => self.kind.as_str())
                .increment(1);
            ApiError::rate_limited(
                format!(
                    "too many {}: at most {}; retry in {secs} s",
                    self.kind.what(),
                    self.rate
                ),
                secs,
            )
        })
    }
}

/// Every limit of the process.
pub struct RateLimits {
    connection_tests: Option<Keyed<UserId>>,
    gateway_calls: Option<Keyed<UserId>>,
    resolutions: Option<Keyed<UserId>>,
    failed_authentications: Option<Keyed<IpAddr>>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = |k: Option<Rate>| k.unwrap_or(Rate::Off).to_string();
        f.debug_struct("RateLimits")
            .field(
                "connection_tests",
                &rate(self.connection_tests.as_ref().map(|k| k.rate)),
            )
            .field(
                "gateway_calls",
                &rate(self.gateway_calls.as_ref().map(|k| k.rate)),
            )
            .field(
                "resolutions",
                &rate(self.resolutions.as_ref().map(|k| k.rate)),
            )
            .field(
                "failed_authentications",
                &rate(self.failed_authentications.as_ref().map(|k| k.rate)),
            )
            .finish()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(RateSettings::default())
    }
}

impl RateLimits {
    /// Limits with the given budgets.
    pub fn new(settings: RateSettings) -> Self {
        Self {
            connection_tests: Keyed::new(Limited::ConnectionTest, settings.connection_tests),
            gateway_calls: Keyed::new(Limited::GatewayCall, settings.gateway_calls),
            resolutions: Keyed::new(Limited::Resolution, settings.resolutions),
            failed_authentications: Keyed::new(
                Limited::FailedAuthentication,
                settings.failed_authentications,
            ),
        }
    }

    /// No limit at all.
    pub fn off() -> Self {
        Self::new(RateSettings {
            connection_tests: Rate::Off,
            gateway_calls: Rate::Off,
            resolutions: Rate::Off,
            failed_authentications: Rate::Off,
        })
    }

    /// Counts one request of `kind` by the actor's subject; a 429 when over its budget.
    pub fn admit(&self, kind: Limited, actor: &Actor) -> Result<(), ApiError> {
        let limit = match kind {
            Limited::ConnectionTest => &self.connection_tests,
            Limited::GatewayCall => &self.gateway_calls,
            Limited::Resolution => &self.resolutions,
            Limited::FailedAuthentication => return Ok(()),
        };
        match limit {
            Some(limit) => limit.check(&actor.subject),
            None => Ok(()),
        }
    }

    /// Counts one refused token from `address`; a 429 (instead of the 401) when the address
    /// is over its budget.
    pub fn failed_authentication(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        match (&self.failed_authentications, address) {
            (Some(limit), Some(address)) => limit.check(&address),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn actor(sub: &str) -> Actor {
        Actor::new(UserId::parse(sub).unwrap(), [], [], None)
    }

    #[test]
    fn rates_read_and_print() {
        assert_eq!(
            "10/min".parse::<Rate>().unwrap().to_string(),
            "10 per minute"
        );
        assert_eq!(
            " 5 / s ".parse::<Rate>().unwrap().to_string(),
            "5 per second"
        );
        assert_eq!("100/h".parse::<Rate>().unwrap().to_string(), "100 per hour");
        assert_eq!("OFF".parse::<Rate>().unwrap(), Rate::Off);
        for bad in ["", "10", "0/min", "-1/min", "10/day", "ten/min"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_eleventh_test_in_a_minute_is_refused_for_that_subject_only() {
        let limits = RateLimits::default();
        let (alice, bob) = (actor("alice"), actor("bob"));
        for _ in 0..10 {
            limits.admit(Limited::ConnectionTest, &alice).unwrap();
        }
        let refused = limits.admit(Limited::ConnectionTest, &alice).unwrap_err();
        assert_eq!(refused.status().as_u16(), 429);
        assert!((1..=6).contains(&refused.retry_after_secs.unwrap()));
        limits.admit(Limited::ConnectionTest, &bob).unwrap();
        // Other kinds keep their own budgets.
        limits.admit(Limited::Resolution, &alice).unwrap();
    }

    #[test]
    fn failed_authentications_count_per_address() {
        let limits = RateLimits::new(RateSettings {
            failed_authentications: "2/min".parse().unwrap(),
            ..RateSettings::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        limits.failed_authentication(Some(a)).unwrap();
        limits.failed_authentication(Some(a)).unwrap();
        assert!(limits.failed_authentication(Some(a)).is_err());
        limits.failed_authentication(Some(b)).unwrap();
        let off = RateLimits::off();
        for _ in 0..100 {
            off.failed_authentication(Some(a)).unwrap();
            off.admit(Limited::ConnectionTest, &actor("x")).unwrap();
        }
    }
}
