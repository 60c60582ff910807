//! The HTTP API (DESIGN §4): routes, shared state, and how every handler's error becomes a
//! JSON response (`error.rs`).
pub mod auth;
pub mod body;
pub mod dashboard;
pub mod error;
pub mod es_bulk;
pub mod health;
pub mod incidents;
pub mod json;
pub mod logs;
pub mod loki;
pub mod metrics;
pub mod otlp;
pub mod params;
pub mod root;
pub mod server;
pub mod stats;
pub mod timeseries;

use std::sync::Arc;

use deadpool_postgres::Pool;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::{Reply, Response};

use crate::ingest::pipeline::Pipeline;
use crate::metrics::Metrics;
use error::ApiError;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub pipeline: Pipeline,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<ApiLimits>,
}

#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body, after decompression.
    pub max_body_bytes: usize,
    /// How long a client may take to send its body.
    pub body_timeout: std::time::Duration,
    /// Bearer token required by POST /logs (None: open).
    pub ingest_token: Option<auth::Secret>,
    /// Bearer token required by the lifecycle endpoints (None: open).
    pub admin_token: Option<auth::Secret>,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 16 * 1024 * 1024,
            body_timeout: std::time::Duration::from_secs(30),
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
    ("HEAD", "/"),
    ("POST", "/loki/api/v1/push"),
    ("GET", "/ready"),
    ("POST", "/_bulk"),
    ("PUT", "/_bulk"),
    ("POST", "/{index}/_bulk"),
    ("PUT", "/{index}/_bulk"),
    ("GET", "/_cat/health"),
    ("GET", "/_cluster/health"),
];

pub const OPENAPI: &str = include_str!("openapi.json");

/// Every endpoint: each resource module contributes its own `routes()`, boxed so that adding
/// one does not grow the type (and compile time) of the whole tree.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    root::routes()
        .or(health::routes(&state))
        .unify()
        .or(logs::routes(&state))
        .unify()
        .or(otlp::routes(&state))
        .unify()
        .or(loki::routes(&state))
        .unify()
        .or(es_bulk::routes(&state))
        .unify()
        .or(incidents::routes(&state))
        .unify()
        .or(stats::routes(&state))
        .unify()
        .or(timeseries::routes(&state))
        .unify()
        .or(metrics::routes(&state))
        .unify()
        .or(openapi())
        .unify()
        .recover(error::recover)
        .unify()
}

/// What each resource's `routes()` returns.
pub type Routes = BoxedFilter<(Response,)>;

/// A filter handing every request a clone of the shared state.
pub fn with_state(
    state: &AppState,
) -> impl Filter<Extract = (AppState,), Error = std::convert::Infallible> + Clone + use<> {
    let state = state.clone();
    warp::any().map(move || state.clone())
}

fn openapi() -> Routes {
    warp::path!("openapi.json")
        .and(warp::get())
        .map(|| warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response())
        .boxed()
}
