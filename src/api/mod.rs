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
pub mod pages;
pub mod params;
pub mod patterns;
pub mod root;
pub mod rules;
pub mod search;
pub mod server;
pub mod silences;
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
    /// Most lines one NDJSON export of GET /logs may stream.
    pub max_export_rows: usize,
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
            max_export_rows: 100_000,
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
    ("GET", "/logs"),
    ("POST", "/v1/logs"),
    ("GET", "/incidents"),
    ("GET", "/incidents/{id}"),
    ("GET", "/incidents/{id}/logs"),
    ("POST", "/incidents/{id}/ack"),
    ("POST", "/incidents/{id}/resolve"),
    ("GET", "/stats"),
    ("GET", "/patterns"),
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
    ("GET", "/silences"),
    ("POST", "/silences"),
    ("POST", "/silences/preview"),
    ("GET", "/silences/{id}"),
    ("DELETE", "/silences/{id}"),
    ("GET", "/api/v2/silences"),
    ("POST", "/api/v2/silences"),
    ("GET", "/api/v2/silence/{id}"),
    ("DELETE", "/api/v2/silence/{id}"),
    ("GET", "/rules"),
    ("POST", "/rules"),
    ("POST", "/rules/backtest"),
    ("PATCH", "/rules/{id}"),
    ("DELETE", "/rules/{id}"),
    ("GET", "/rules/{id}/history"),
    ("GET", "/explore"),
    ("GET", "/ui/{file}"),
];

pub const OPENAPI: &str = include_str!("openapi.json");

/// Every endpoint: each resource module contributes its own `routes()`, boxed so that adding
/// one does not grow the type (and compile time) of the whole tree.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    root::routes()
        .or(pages::routes())
        .unify()
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
        .or(patterns::routes(&state))
        .unify()
        .or(timeseries::routes(&state))
        .unify()
        .or(metrics::routes(&state))
        .unify()
        .or(silences::routes(&state))
        .unify()
        .or(rules::routes(&state))
        .unify()
        .or(openapi())
        .unify()
        .or(method_not_allowed())
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

/// A known path asked with a method it does not serve: 405 with the `Allow` header RFC 9110
/// requires, from the same ROUTES table the OpenAPI document is checked against. Any other
/// request falls through to the rejections the routes gave (404, 401, 400...).
fn method_not_allowed() -> Routes {
    warp::path::full()
        .and(warp::method())
        .and_then(|path: warp::path::FullPath, method: warp::http::Method| async move {
            // the most specific templates win: /silences/preview is not a /silences/{id}
            let matching: Vec<&(&str, &str)> = ROUTES.iter().filter(|(_, p)| path_matches(p, path.as_str())).collect();
            let literal = |p: &str| p.split('/').filter(|s| !s.starts_with('{')).count();
            let best = matching.iter().map(|(_, p)| literal(p)).max().unwrap_or(0);
            let allowed: Vec<&str> = matching.iter().filter(|(_, p)| literal(p) == best).map(|(m, _)| *m).collect();
            if allowed.is_empty() || allowed.contains(&method.as_str()) {
                return Err(warp::reject::not_found());
            }
            let mut resp = ApiError::MethodNotAllowed(format!(
                "{method} is not allowed on {}; allowed: {}",
                path.as_str(),
                allowed.join(", ")
            ))
            .into_response();
            resp.headers_mut().insert(
                "allow",
                warp::http::HeaderValue::from_str(&allowed.join(", ")).expect("method names are header-safe"),
            );
            Ok::<_, warp::Rejection>(resp)
        })
        .boxed()
}

/// `/incidents/{id}` matches `/incidents/42`: each `{...}` stands for one path segment.
fn path_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

fn openapi() -> Routes {
    warp::path!("openapi.json")
        .and(warp::get())
        .map(|| warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response())
        .boxed()
}
