//! The overview (the dashboard, served by `GET /` to browsers, see root.rs), one of the pages of pages.rs: error rate and p95 latency
//! per service, the services' last logs, the last 24 hours of incidents, patterns, silences and
//! the rules (the incidents each opened in 7 days, and what a replay of them over the same days
//! opens). It draws what GET /timeseries, /stats, /incidents, /patterns, /silences, /rules and
//! POST /rules/backtest answer.
use warp::reply::Response;

/// The overview's HTML (its script and style are files under /ui/).
pub fn page() -> Response {
    super::pages::html(super::pages::OVERVIEW)
}
