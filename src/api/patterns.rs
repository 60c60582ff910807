//! GET /patterns: the top message patterns per service over a window, from top_patterns()
//! (exact counts, the psql twin), with `new` marking patterns first seen inside the window.
use serde::Serialize;
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::json::{ts, ts_opt};
use super::params::{self, Query};
use super::search::format_pattern_id;
use super::{AppState, respond};

#[derive(Debug, Serialize)]
pub struct PatternRank {
    pub service: String,
    pub pattern_id: String,
    pub template: Option<String>,
    pub example: Option<String>,
    pub levels: Vec<String>,
    pub count: i64,
    pub share: f64,
    pub previous: i64,
    pub new: bool,
    #[serde(serialize_with = "ts_opt")]
    pub first_seen: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(serialize_with = "ts_opt")]
    pub last_seen: Option<chrono::DateTime<chrono::Utc>>,
    pub window_minutes: i64,
    #[serde(serialize_with = "ts")]
    pub until: chrono::DateTime<chrono::Utc>,
}

const LEVELS: &[&str] = &["DEBUG", "INFO", "WARN", "ERROR", "FATAL", "debug", "info", "warn", "error", "fatal"];

pub async fn get(q: Query, state: AppState) -> Response {
    respond(inner(q, &state).await)
}

async fn inner(q: Query, state: &AppState) -> Result<Response, ApiError> {
    let minutes = params::int_in(&q, "window_minutes", 1..=10080, 60)?;
    let limit = params::int_in(&q, "limit", 1..=1000, 10)? as i32;
    let service = params::text(&q, "service")?;
    let level = params::one_of(&q, "level", LEVELS)?;
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT service, pattern_id, template, example, levels, count, share, previous, new, first_seen, last_seen, now()
             FROM top_patterns($1, make_interval(mins => $2::int), $3, $4)",
        )
        .await?;
    let rows = client.query(&stmt, &[&service, &(minutes as i32), &level, &limit]).await?;
    let ranks: Vec<PatternRank> = rows
        .iter()
        .map(|r| PatternRank {
            service: r.get(0),
            pattern_id: format_pattern_id(r.get(1)),
            template: r.get(2),
            example: r.get(3),
            levels: r.get::<_, Option<Vec<String>>>(4).unwrap_or_default(),
            count: r.get(5),
            share: r.get::<_, Option<f64>>(6).unwrap_or(0.0),
            previous: r.get(7),
            new: r.get(8),
            first_seen: r.get(9),
            last_seen: r.get(10),
            window_minutes: minutes,
            until: r.get(11),
        })
        .collect();
    Ok(warp::reply::json(&ranks).into_response())
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    warp::path!("patterns").and(warp::get()).and(warp::query::<Query>()).and(super::with_state(state)).then(get).boxed()
}
