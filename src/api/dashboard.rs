//! The overview (the dashboard, served by `GET /` to browsers, see root.rs), one of the pages of pages.rs: error rate and p95 latency
//! per service, the services' last logs, the last 24 hours of incidents, patterns and silences.
//! It draws what GET /timeseries, /stats, /incidents, /patterns and /silences answer.
use warp::reply::Response;

/// The overview's HTML (its script and style are files under /ui/).
pub fn page() -> Response {
    super::pages::html(super::pages::OVERVIEW)
}
