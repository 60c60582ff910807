//! The dashboard (served by `GET /` to browsers, see root.rs), one self-contained HTML page (no CDN: logmon often runs where there is
//! no internet). It draws what GET /timeseries and GET /incidents return.
use warp::reply::{Reply, Response};

const PAGE: &str = include_str!("dashboard.html");

pub fn page() -> Response {
    let mut resp = warp::reply::html(PAGE).into_response();
    let h = resp.headers_mut();
    // Its script is inline and it only talks to this origin.
    h.insert(
        "content-security-policy",
        warp::http::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'",
        ),
    );
    h.insert("x-content-type-options", warp::http::HeaderValue::from_static("nosniff"));
    h.insert("cache-control", warp::http::HeaderValue::from_static("no-cache"));
    resp
}
