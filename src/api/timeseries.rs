//! GET /timeseries: per-service error rate and p95 latency per step over the last window, from
//! `service_timeseries()` (rollup-backed). Feeds the dashboard's charts; handy for curl too.
use serde::Serialize;
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::json::ts;
use super::params::{self, Query};
use super::{AppState, respond};

#[derive(Debug, Serialize)]
pub struct Point {
    pub service: String,
    /// Start of the step.
    #[serde(serialize_with = "ts")]
    pub ts: chrono::DateTime<chrono::Utc>,
    pub total: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

/// The most points per service one request may ask for.
const MAX_STEPS: i64 = 2000;

pub async fn get(q: Query, state: AppState) -> Response {
    respond(inner(q, &state).await)
}

async fn inner(q: Query, state: &AppState) -> Result<Response, ApiError> {
    let minutes = params::int_in(&q, "window_minutes", 1..=10080, 60)?;
    let asked = params::int_in(&q, "step_minutes", 1..=1440, 1)?;
    // At most MAX_STEPS points per service: a finer step than that is raised (and said so in the
    // Logmon-Step-Minutes header), rather than refused.
    let step = asked.max((minutes + MAX_STEPS - 1) / MAX_STEPS);
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT service, bucket, total, errors, coalesce(error_rate, 0), p95_ms
             FROM service_timeseries(make_interval(mins => $1::int), make_interval(mins => $2::int))",
        )
        .await?;
    let rows = client.query(&stmt, &[&(minutes as i32), &(step as i32)]).await?;
    let points: Vec<Point> = rows
        .iter()
        .map(|r| Point {
            service: r.get(0),
            ts: r.get(1),
            total: r.get(2),
            errors: r.get(3),
            error_rate: r.get(4),
            p95_ms: r.get(5),
        })
        .collect();
    let mut resp = warp::reply::json(&points).into_response();
    resp.headers_mut().insert("logmon-step-minutes", step.into());
    Ok(resp)
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    warp::path!("timeseries")
        .and(warp::get())
        .and(warp::query::<Query>())
        .and(super::with_state(state))
        .then(get)
        .boxed()
}
