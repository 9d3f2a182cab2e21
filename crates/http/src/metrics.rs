//! `/metrics` in the Prometheus text format (crates `metrics` and
//! `metrics-exporter-prometheus`), and what the transport records: requests by surface, route
//! template, method and status with their latency; connection tests by provider and outcome;
//! gateway calls by provider, credential source and upstream status with latency and bytes;
//! resolutions by outcome. Routes are labelled by their registered template, never by the
//! path a client sent; paths that match no route share one label.
//!
//! Recording goes through the `metrics` facade: without an installed recorder (the transport's
//! own tests) it costs next to nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{get, HttpResponse};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use llm_settings_domain::{ConnectionTestResult, Error as DomainError, OwnerKind, ProviderId};

use crate::error::ApiError;
use crate::surface::Surface;
use crate::AppState;

/// HTTP requests answered.
pub const HTTP_REQUESTS: &str = "llm_settings_http_requests_total";
/// Time to the response head, in seconds.
pub const HTTP_DURATION: &str = "llm_settings_http_request_duration_seconds";
/// Connection tests that ran (or were refused by the domain).
pub const CONNECTION_TESTS: &str = "llm_settings_connection_tests_total";
/// Gateway calls.
pub const GATEWAY_CALLS: &str = "llm_settings_gateway_calls_total";
/// Time until the provider's answer began, in seconds.
pub const GATEWAY_DURATION: &str = "llm_settings_gateway_upstream_duration_seconds";
/// Request body bytes forwarded to providers.
pub const GATEWAY_SENT: &str = "llm_settings_gateway_request_bytes_total";
/// Answer body bytes streamed back from providers.
pub const GATEWAY_RECEIVED: &str = "llm_settings_gateway_response_bytes_total";
/// Credential resolutions.
pub const RESOLUTIONS: &str = "llm_settings_resolutions_total";

/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Short requests: reads, writes, resolutions.
const REQUEST_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Providers may think for minutes before they answer.
const UPSTREAM_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// The installed recorder: renders a scrape, after `refresh` has set the figures read at
/// scrape time (the store's pool).
#[derive(Clone)]
pub struct Scrape {
    handle: PrometheusHandle,
    refresh: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

impl Scrape {
    /// Installs the process's Prometheus recorder (once per process); `refresh` runs before
    /// each scrape.
    pub fn install(refresh: impl Fn() + Send + Sync + 'static) -> Result<Self, BuildError> {
        let handle = PrometheusBuilder::new()
            .set_buckets(&REQUEST_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(GATEWAY_DURATION.into()), &UPSTREAM_BUCKETS)?
            .install_recorder()?;
        describe();
        Ok(Self {
            handle,
            refresh: Arc::new(refresh),
        })
    }

    /// The current figures in the Prometheus text format.
    pub fn render(&self) -> String {
        (self.refresh)();
        self.handle.render()
    }

    /// Folds recorded latencies into their buckets; run every few seconds so memory stays
    /// flat between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn respond(&self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
            .body(self.render())
    }
}

fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by surface, route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response head"
    );
    describe_counter!(
        CONNECTION_TESTS,
        "Connection tests by provider and outcome (success, a failure class, or the error that stopped the test)"
    );
    describe_counter!(
        GATEWAY_CALLS,
        "Gateway calls by provider, credential source and upstream status (or the error code when no provider answered)"
    );
    describe_histogram!(
        GATEWAY_DURATION,
        Unit::Seconds,
        "Time until the provider's answer began"
    );
    describe_counter!(
        GATEWAY_SENT,
        Unit::Bytes,
        "Request body bytes forwarded to providers"
    );
    describe_counter!(
        GATEWAY_RECEIVED,
        Unit::Bytes,
        "Answer body bytes streamed back from providers"
    );
    describe_counter!(
        RESOLUTIONS,
        "Credential resolutions by outcome (resolved, or the error code)"
    );
    describe_counter!(
        "llm_settings_rate_limited_total",
        "Requests refused with 429, by limit"
    );
}

/// The method as a label: the standard ones by name, anything else as `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware: counts every answered request and its latency, labelled by surface, route
/// template, method and status.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let surface = Surface::of_path(req.path()).operation_prefix;
    let route = req
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let method = method_label(req.method());
    let res = next.call(req).await?;
    let labels = [
        ("surface", surface.to_owned()),
        ("route", route),
        ("method", method.to_owned()),
        ("status", res.status().as_str().to_owned()),
    ];
    metrics::histogram!(HTTP_DURATION, &labels[..3]).record(started.elapsed());
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    Ok(res)
}

/// Counts a connection test by provider and outcome.
pub(crate) fn connection_test(
    provider: ProviderId,
    result: &Result<ConnectionTestResult, DomainError>,
) {
    let outcome = match result {
        Ok(r) => r.outcome.failure.map_or("success", |f| f.as_str()),
        Err(e) => e.kind().as_str(),
    };
    metrics::counter!(CONNECTION_TESTS, "provider" => provider.as_str(), "outcome" => outcome)
        .increment(1);
}

/// Counts a resolution by outcome.
pub(crate) fn resolution<T>(result: &Result<T, DomainError>) {
    let outcome = match result {
        Ok(_) => "resolved",
        Err(e) => e.kind().as_str(),
    };
    metrics::counter!(RESOLUTIONS, "outcome" => outcome).increment(1);
}

/// One gateway call on its way: records the call once the provider answered (or failed).
pub(crate) struct GatewayCallMetrics {
    provider: &'static str,
    started: Instant,
}

impl GatewayCallMetrics {
    /// A call to `provider` forwarding `sent` body bytes.
    pub(crate) fn start(provider: ProviderId, sent: usize) -> Self {
        metrics::counter!(GATEWAY_SENT, "provider" => provider.as_str())
            .increment(u64::try_from(sent).unwrap_or(u64::MAX));
        Self {
            provider: provider.as_str(),
            started: Instant::now(),
        }
    }

    /// The provider answered with `status` using the credential of `source`; returns the
    /// counter of the answer's bytes.
    pub(crate) fn answered(self, source: OwnerKind, status: u16) -> metrics::Counter {
        let elapsed: Duration = self.started.elapsed();
        metrics::histogram!(GATEWAY_DURATION, "provider" => self.provider).record(elapsed);
        metrics::counter!(
            GATEWAY_CALLS,
            "provider" => self.provider,
            "source" => source.as_str(),
            "status" => status.to_string()
        )
        .increment(1);
        metrics::counter!(GATEWAY_RECEIVED, "provider" => self.provider)
    }

    /// No provider answered: the error's code stands for the status.
    pub(crate) fn failed(self, err: &ApiError) {
        metrics::counter!(
            GATEWAY_CALLS,
            "provider" => self.provider,
            "source" => "none",
            "status" => err.code.as_str()
        )
        .increment(1);
    }
}

/// `/metrics` on the main listener, when no separate `LLM_SETTINGS_METRICS_BIND` is set.
#[get("/metrics")]
pub async fn metrics_route(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    match &state.metrics {
        Some(scrape) => Ok(scrape.respond()),
        None => Err(ApiError::not_found(
            "metrics are served on the address in LLM_SETTINGS_METRICS_BIND",
        )),
    }
}

async fn scrape_only(recorder: Data<Scrape>) -> HttpResponse {
    recorder.respond()
}

/// The application of a separate metrics listener: `/metrics` and nothing else.
pub fn app(
    scrape: Scrape,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(Data::new(scrape))
        .route("/metrics", actix_web::web::get().to(scrape_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_methods_share_a_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap_or(Method::TRACE)),
            "OTHER"
        );
    }
}
