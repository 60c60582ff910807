//! GET /stats: per-service figures over the last `window_minutes`, from `service_stats()`
//! (rollup-backed, so its cost does not grow with raw rows; counts exact).
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::json::ServiceStats;
use super::params::{self, Query};
use super::{AppState, respond};

pub async fn get(q: Query, state: AppState) -> Response {
    respond(inner(q, &state).await)
}

async fn inner(q: Query, state: &AppState) -> Result<Response, ApiError> {
    let minutes = params::int_in(&q, "window_minutes", 1..=10080, 5)?;
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT service, total, errors, coalesce(error_rate, 0), p50_ms, p95_ms, p99_ms, avg_latency_ms, max_latency_ms
             FROM service_stats(make_interval(mins => $1::int))",
        )
        .await?;
    let rows = client.query(&stmt, &[&(minutes as i32)]).await?;
    let stats: Vec<ServiceStats> = rows
        .iter()
        .map(|r| ServiceStats {
            service: r.get(0),
            window_minutes: minutes,
            total: r.get(1),
            errors: r.get(2),
            error_rate: r.get(3),
            p50_ms: r.get(4),
            p95_ms: r.get(5),
            p99_ms: r.get(6),
            avg_latency_ms: r.get(7),
            max_latency_ms: r.get(8),
        })
        .collect();
    Ok(warp::reply::json(&stats).into_response())
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    warp::path!("stats").and(warp::get()).and(warp::query::<Query>()).and(super::with_state(state)).then(get).boxed()
}
