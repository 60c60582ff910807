//! The HTTP API (DESIGN §4): routes, shared state, and how every handler's error becomes a
//! JSON response (`error.rs`).
pub mod body;
pub mod error;
pub mod health;
pub mod logs;

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
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 16 * 1024 * 1024,
            max_items: 50_000,
            body_timeout: std::time::Duration::from_secs(30),
            fields: Limits::default(),
        }
    }
}

/// Handlers return `Result<Response, ApiError>`; this is where the error becomes a response.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| e.into_response())
}

pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let with_state = warp::any().map(move || state.clone());

    let health = warp::path!("health").and(warp::get()).and(with_state.clone()).then(health::get);
    let post_logs = warp::path!("logs")
        .and(warp::post())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::stream())
        .and(with_state.clone())
        .then(logs::post);

    health.or(post_logs).unify().recover(error::recover).unify()
}
