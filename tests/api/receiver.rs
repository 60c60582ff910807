//! A local HTTP receiver for notification tests: records every request and answers as told.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use warp::{Filter, Reply};

use crate::helpers::{free_port, wait_for_port};

/// One request a receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub key: Option<String>,
    pub body: Value,
    pub answered: u16,
    pub at: Instant,
}

/// A local HTTP receiver. `answer(path, n)` decides the status of the n-th request (0-based) to
/// `path`, with an optional Retry-After.
pub struct Receiver {
    base: String,
    log: Arc<Mutex<Vec<Received>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(answer: impl Fn(&str, usize) -> (u16, Option<u64>) + Send + Sync + 'static) -> Receiver {
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answer = Arc::new(answer);
        let state = log.clone();
        let route = warp::post()
            .and(warp::path::full())
            .and(warp::header::optional::<String>("idempotency-key"))
            .and(warp::body::json())
            .map(move |path: warp::path::FullPath, key: Option<String>, body: Value| {
                let mut log = state.lock().unwrap();
                let n = log.iter().filter(|r| r.path == path.as_str()).count();
                let (status, retry_after) = answer(path.as_str(), n);
                log.push(Received { path: path.as_str().into(), key, body, answered: status, at: Instant::now() });
                let mut resp =
                    warp::reply::with_status("ok", warp::http::StatusCode::from_u16(status).unwrap()).into_response();
                if let Some(s) = retry_after {
                    resp.headers_mut().insert("retry-after", s.into());
                }
                resp
            });
        let port = free_port();
        let server = tokio::spawn(warp::serve(route).run(([127, 0, 0, 1], port)));
        wait_for_port(port).await;
        Receiver { base: format!("http://127.0.0.1:{port}"), log, _server: server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.log.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    pub async fn wait_until(&self, what: &str, ok: impl Fn(&Receiver) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ok(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}; got {:#?}", self.log.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
