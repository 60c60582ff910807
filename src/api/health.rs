//! GET /health: 200 when the database answers, 503 with the reason when it does not.
use std::time::Duration;

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::AppState;

pub async fn get(state: AppState) -> Response {
    let check = async {
        let client = state.pool.get().await?;
        client.query_one("SELECT 1", &[]).await?;
        Ok::<_, crate::db::DbError>(())
    };
    let queued = state.pipeline.batcher().queued_rows();
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(())) => warp::reply::json(
            &json!({"status": "ok", "database": "ok", "queued_rows": queued, "version": env!("CARGO_PKG_VERSION")}),
        )
        .into_response(),
        Ok(Err(e)) => unavailable(format!("database unreachable: {e}"), queued),
        Err(_) => unavailable("database did not answer within 3s".into(), queued),
    }
}

fn unavailable(reason: String, queued: usize) -> Response {
    let body = json!({"status": "unavailable", "database": "unreachable", "error": reason, "details": [], "queued_rows": queued});
    let mut r = warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE).into_response();
    r.headers_mut().insert("retry-after", 5.into());
    r
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    warp::path!("health").and(warp::get()).and(super::with_state(state)).then(get).boxed()
}
