//! The HTTP API (DESIGN §4): routes, shared state, and how every handler's error becomes a
//! JSON response (`error.rs`).
pub mod auth;
pub mod body;
pub mod dashboard;
pub mod error;
pub mod health;
pub mod incidents;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod params;
pub mod server;
pub mod stats;
pub mod timeseries;

use std::sync::{Arc, RwLock};

use deadpool_postgres::Pool;
use warp::Filter;
use warp::reply::{Reply, Response};

use crate::ingest::batcher::Batcher;
use crate::ingest::validate::{Limits, TsRange};
use crate::metrics::Metrics;
use error::ApiError;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<ApiLimits>,
    pub ts_range: Arc<RwLock<TsRange>>,
}

#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body, after decompression.
    pub max_body_bytes: usize,
    /// Most log items in one request.
    pub max_items: usize,
    /// How long a client may take to send its body.
    pub body_timeout: std::time::Duration,
    pub fields: Limits,
    /// Bearer token required by POST /logs (None: open).
    pub ingest_token: Option<auth::Secret>,
    /// Bearer token required by the lifecycle endpoints (None: open).
    pub admin_token: Option<auth::Secret>,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 16 * 1024 * 1024,
            max_items: 50_000,
            body_timeout: std::time::Duration::from_secs(30),
            fields: Limits::default(),
            ingest_token: None,
            admin_token: None,
        }
    }
}

/// Handlers return `Result<Response, ApiError>`; this is where the error becomes a response.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| e.into_response())
}

/// Every route the server answers, as (method, OpenAPI path). `routes()` serves exactly these and
/// src/api/openapi.json documents exactly these (tests check both).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/health"),
    ("POST", "/logs"),
    ("POST", "/v1/logs"),
    ("GET", "/incidents"),
    ("GET", "/incidents/{id}"),
    ("POST", "/incidents/{id}/ack"),
    ("POST", "/incidents/{id}/resolve"),
    ("GET", "/stats"),
    ("GET", "/timeseries"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    use incidents::Transition;
    let ingest_auth = auth::require(state.limits.ingest_token.clone(), "ingestion");
    let admin_auth = auth::require(state.limits.admin_token.clone(), "incident lifecycle");
    let with_state = warp::any().map(move || state.clone());
    let query = warp::query::<params::Query>();

    let dashboard = warp::path::end().and(warp::get()).map(dashboard::page);
    let health = warp::path!("health").and(warp::get()).and(with_state.clone()).then(health::get);
    let post_logs = warp::path!("logs")
        .and(warp::post())
        .and(ingest_auth.clone())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::stream())
        .and(with_state.clone())
        .then(logs::post);
    let post_otlp_logs = warp::path!("v1" / "logs")
        .and(warp::post())
        .and(ingest_auth)
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::stream())
        .and(with_state.clone())
        .then(otlp::post);
    let list_incidents =
        warp::path!("incidents").and(warp::get()).and(query).and(with_state.clone()).then(incidents::list);
    let get_incident = warp::path!("incidents" / i64).and(warp::get()).and(with_state.clone()).then(incidents::get);
    let ack = warp::path!("incidents" / i64 / "ack")
        .and(warp::post())
        .and(admin_auth.clone())
        .map(|id| (id, Transition::Acknowledge))
        .untuple_one()
        .and(warp::body::stream())
        .and(with_state.clone())
        .then(incidents::transition);
    let resolve = warp::path!("incidents" / i64 / "resolve")
        .and(warp::post())
        .and(admin_auth)
        .map(|id| (id, Transition::Resolve))
        .untuple_one()
        .and(warp::body::stream())
        .and(with_state.clone())
        .then(incidents::transition);
    let stats = warp::path!("stats").and(warp::get()).and(query).and(with_state.clone()).then(stats::get);
    let timeseries =
        warp::path!("timeseries").and(warp::get()).and(query).and(with_state.clone()).then(timeseries::get);
    let metrics = warp::path!("metrics").and(warp::get()).and(with_state).then(metrics::get);
    let openapi = warp::path!("openapi.json")
        .and(warp::get())
        .map(|| warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response());

    dashboard
        .or(health)
        .unify()
        .or(post_logs)
        .unify()
        .or(post_otlp_logs)
        .unify()
        .or(list_incidents)
        .unify()
        .or(get_incident)
        .unify()
        .or(ack)
        .unify()
        .or(resolve)
        .unify()
        .or(stats)
        .unify()
        .or(timeseries)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .recover(error::recover)
        .unify()
}
