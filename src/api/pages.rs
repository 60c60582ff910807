//! The browser pages: the overview (`GET /`, dashboard.rs), an incident's page (`GET
//! /incidents/{id}` when the client asks for HTML: the link every notification carries), the log
//! explorer (`GET /explore`) and the files they share (`GET /ui/{file}`). Every file is embedded
//! in the binary (no CDN, no build step, works offline); the pages draw what the JSON API answers
//! and run no query of their own.
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::error::ApiError;

/// Scripts and styles come only from /ui/ of this origin, data only from this origin's API: no
/// inline script or style (log text can never become code), no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub const OVERVIEW: &str = include_str!("ui/overview.html");
const INCIDENT: &str = include_str!("ui/incident.html");
const EXPLORE: &str = include_str!("ui/explore.html");

/// (name, content type, body) of every file under /ui/.
pub const FILES: &[(&str, &str, &str)] = &[
    ("logmon.css", "text/css; charset=utf-8", include_str!("ui/logmon.css")),
    ("logmon.js", "text/javascript; charset=utf-8", include_str!("ui/logmon.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("ui/charts.js")),
    ("lines.js", "text/javascript; charset=utf-8", include_str!("ui/lines.js")),
    ("overview.js", "text/javascript; charset=utf-8", include_str!("ui/overview.js")),
    ("incident.js", "text/javascript; charset=utf-8", include_str!("ui/incident.js")),
    ("explore.js", "text/javascript; charset=utf-8", include_str!("ui/explore.js")),
    ("logmon.svg", "image/svg+xml", include_str!("ui/logmon.svg")),
];

/// Whether the client prefers a web page: browsers list `text/html` in Accept (a browser's
/// navigation does); curl, fetch() and API clients send `*/*`, JSON types, or nothing.
pub fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut fields = part.split(';');
            let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused =
                fields.any(|f| matches!(f.trim().strip_prefix("q="), Some(q) if q.trim().parse::<f32>() == Ok(0.0)));
            (media == "text/html" || media == "application/xhtml+xml") && !refused
        })
    })
}

/// An HTML page with the headers every page carries. `Vary: Accept`: the same URL answers JSON
/// to API clients, so a cache must keep the two apart.
pub fn html(body: &'static str) -> Response {
    let mut resp = warp::reply::html(body).into_response();
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("vary", HeaderValue::from_static("accept"));
    resp
}

/// The page of one incident; it reads the incident from the same URL as JSON.
pub fn incident() -> Response {
    html(INCIDENT)
}

/// A file under /ui/, revalidated on each use (no-cache + ETag: a new binary serves new files at
/// once, an unchanged one answers 304).
fn file(name: String, if_none_match: Option<String>) -> Response {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        let known: Vec<&str> = FILES.iter().map(|(n, _, _)| *n).collect();
        let shown: String = name.chars().take(64).collect();
        return ApiError::NotFound(format!("/ui/ has no file {shown:?}; its files: {}", known.join(", ")))
            .into_response();
    };
    let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    let mut resp = if if_none_match.as_deref().is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        warp::reply::with_status(warp::reply(), StatusCode::NOT_MODIFIED).into_response()
    } else {
        let mut r = Response::new((*body).into());
        r.headers_mut().insert("content-type", HeaderValue::from_static(content_type));
        r
    };
    let h = resp.headers_mut();
    h.insert("etag", HeaderValue::from_str(&etag).expect("hex is header-safe"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// A stable hash of a file's bytes for its ETag (the same binary always names a file alike).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3))
}

pub fn routes() -> super::Routes {
    use warp::Filter;
    let explore = warp::path!("explore").and(warp::get()).map(|| html(EXPLORE));
    let files =
        warp::path!("ui" / String).and(warp::get()).and(warp::header::optional::<String>("if-none-match")).map(file);
    explore.or(files).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::wants_html;

    #[test]
    fn browsers_get_html_and_api_clients_do_not() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(wants_html(Some(chromium)));
        assert!(wants_html(Some("TEXT/HTML")));
        for api in [None, Some("*/*"), Some("application/json"), Some("text/html;q=0, application/json")] {
            assert!(!wants_html(api), "{api:?}");
        }
    }
}
