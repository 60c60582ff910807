//! `GET /` and `HEAD /` serve two audiences at one address. A browser asks for `text/html` and
//! gets the dashboard; anything else (Elasticsearch clients and shippers probing the server
//! before they send, `curl`) gets Elasticsearch's info document with the
//! `X-Elastic-Product: Elasticsearch` header the official clients check. `HEAD /` is the ping
//! those clients send, answered the same way without a body.
use warp::reply::Response;

use super::{dashboard, es_bulk};

/// Whether the client prefers a web page: browsers list `text/html` in Accept, API clients
/// send `*/*`, JSON types, or nothing.
fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .any(|m| m == "text/html" || m == "application/xhtml+xml")
    })
}

fn get(accept: Option<String>) -> Response {
    if wants_html(accept.as_deref()) { dashboard::page() } else { es_bulk::info() }
}

pub fn routes() -> super::Routes {
    use warp::Filter;
    let get = warp::path::end().and(warp::get()).and(warp::header::optional::<String>("accept")).map(get);
    let head = warp::path::end().and(warp::head()).map(es_bulk::info);
    get.or(head).unify().boxed()
}

#[cfg(test)]
mod tests {
    #[test]
    fn browsers_get_html_and_api_clients_do_not() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(super::wants_html(Some(chromium)));
        for api in
            [None, Some("*/*"), Some("application/vnd.elasticsearch+json; compatible-with=9"), Some("application/json")]
        {
            assert!(!super::wants_html(api), "{api:?}");
        }
    }
}
