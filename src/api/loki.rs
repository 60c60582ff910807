//! Loki's push API, for Promtail, Grafana Alloy, the Docker Loki driver and the Loki client
//! libraries: `POST /loki/api/v1/push` and the `GET /ready` they probe. Same limits,
//! validation and group commit as `POST /logs`; the protocol around them is Loki's:
//! - 204 with no body once every line is committed;
//! - lines that fail validation are reported in a plain-text 400 while the valid lines of the
//!   same push are stored, as Loki's distributor does (its clients never retry a 400, so a bad
//!   line must not cost its neighbours);
//! - overload and database outages are answered with `Retry-After`, which the clients retry.
use bytes::Buf;
use futures_util::Stream;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::AppState;
use super::body::read_limited;
use super::error::ApiError;
use crate::ingest::{
    self,
    error::IngestError,
    sources::loki::{self, Encoding},
};

const SOURCE: &str = "loki";

pub async fn push<S, B>(
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: S,
    state: AppState,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let result = store(content_type, content_encoding, body, &state).await;
    state.metrics.request(super::logs::outcome(&result));
    match result {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(report)) => text(StatusCode::BAD_REQUEST, report, None),
        Err(e) => {
            let mut msg = e.to_string();
            if let ApiError::BadRequest { details, .. } = &e {
                for d in details {
                    msg.push('\n');
                    msg.push_str(&d.error);
                }
            }
            text(e.status(), msg, e.retry_after())
        }
    }
}

/// `Ok(None)`: everything stored; `Ok(Some(report))`: the valid lines are stored and the report
/// says which were not and why (one line each, as Loki words its 400s).
async fn store<S, B>(
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: S,
    state: &AppState,
) -> Result<Option<String>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let limits = &state.limits;
    let raw = read_limited(body, limits.max_body_bytes, limits.body_timeout).await?;
    state.metrics.ingest_bytes.inc_by(raw.len() as u64);
    let raw = ingest::encoding::decompress(content_encoding.as_deref(), raw, limits.max_body_bytes)?;
    let encoding = Encoding::from_content_type(content_type.as_deref());
    let streams = loki::decode(encoding, &raw, limits.max_body_bytes).map_err(|e| {
        state.metrics.source_rows(SOURCE, "malformed", 1);
        IngestError::body(e)
    })?;
    state.pipeline.check_count(streams.iter().map(|s| s.entries.len()).sum(), "log lines")?;
    let (items, bad_streams) = loki::items(&streams);
    let mut problems: Vec<String> = bad_streams
        .iter()
        .map(|(i, why)| format!("stream {i} '{}': {why}; its entries were not stored", streams[*i].selector))
        .collect();
    let malformed: usize = bad_streams.iter().map(|(i, _)| streams[*i].entries.len().max(1)).sum();
    state.metrics.source_rows(SOURCE, "malformed", malformed as u64);
    let places: Vec<(usize, usize)> = items.iter().map(|i| (i.stream, i.entry)).collect();
    let outcome = state.pipeline.store_valid(items.into_iter().map(|l| l.item).collect()).await?;
    state.metrics.source_rows(SOURCE, "stored", outcome.stored);
    state.metrics.source_rows(SOURCE, "rejected", outcome.rejected.len() as u64);
    for r in &outcome.rejected {
        let (s, e) = places[r.index];
        for err in &r.errors {
            let field = err.field.as_deref().map(loki_field).unwrap_or("entry");
            problems.push(format!("entry {e} of stream '{}': {field}: {}", streams[s].selector, err.error));
        }
    }
    if problems.is_empty() {
        return Ok(None);
    }
    let total: usize = streams.iter().map(|s| s.entries.len()).sum();
    problems.push(format!("{} of {total} entries stored; the others were refused as above", outcome.stored));
    Ok(Some(problems.join("\n")))
}

/// What a `/logs` field is called in a push, for error messages.
fn loki_field(field: &str) -> &str {
    match field.split('.').next().unwrap_or(field) {
        "ts" => "timestamp",
        "message" => "line",
        "service" => "label service_name",
        "attrs" => "labels",
        other => other,
    }
}

fn text(status: StatusCode, body: String, retry_after: Option<u32>) -> Response {
    let mut r = warp::reply::with_status(
        warp::reply::with_header(body + "\n", "content-type", "text/plain; charset=utf-8"),
        status,
    )
    .into_response();
    if let Some(s) = retry_after {
        r.headers_mut().insert("retry-after", s.into());
    }
    r
}

/// Loki's readiness probe: ready while the database answers.
async fn ready(state: AppState) -> Response {
    let check = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        client.query_one("SELECT 1", &[]).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), check).await {
        Ok(Ok(())) => text(StatusCode::OK, "ready".into(), None),
        Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("database unreachable: {e}"), Some(5)),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "database did not answer within 3s".into(), Some(5)),
    }
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    let push = warp::path!("loki" / "api" / "v1" / "push")
        .and(warp::post())
        .and(super::auth::require(state.limits.ingest_token.clone(), "ingestion"))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(push);
    let ready = warp::path!("ready").and(warp::get()).and(super::with_state(state)).then(ready);
    push.or(ready).unify().boxed()
}
