//! GET /: the overview (the dashboard), one of the pages of pages.rs: error rate and p95 latency
//! per service, the services' last logs, the last 24 hours of incidents, patterns and silences.
//! It draws what GET /timeseries, /stats, /incidents, /patterns and /silences answer.
use warp::reply::Response;

/// The overview's HTML (its script and style are files under /ui/).
pub fn page() -> Response {
    super::pages::html(super::pages::OVERVIEW)
}

pub fn routes() -> super::Routes {
    use warp::Filter;
    warp::path::end().and(warp::get()).map(page).boxed()
}
