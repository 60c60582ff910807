//! POST /logs: decode, validate every item, then wait for the group commit that stores them.
use bytes::Buf;
use futures_util::Stream;
use serde_json::json;
use warp::reply::{Reply, Response};

use super::body::read_limited;
use super::error::ApiError;
use super::{AppState, respond};
use crate::ingest::encoding;
use crate::ingest::sources::json::{self, BodyFormat};

pub async fn post<S, B>(
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: S,
    state: AppState,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let result = ingest(content_type, content_encoding, body, &state).await;
    state.metrics.request(outcome(&result));
    respond(result.map(|n| warp::reply::json(&json!({"ingested": n})).into_response()))
}

/// The `outcome` label of logmon_ingest_requests_total, shared by both ingest endpoints.
pub(super) fn outcome<T>(result: &Result<T, ApiError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ApiError::Overloaded { .. }) => "overloaded",
        Err(ApiError::Unavailable { .. }) => "unavailable",
        Err(_) => "rejected",
    }
}

async fn ingest<S, B>(
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: S,
    state: &AppState,
) -> Result<u64, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let limits = &state.limits;
    let format = BodyFormat::from_content_type(content_type.as_deref()).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type {:?} is not accepted; send application/json (an array or one object) or application/x-ndjson",
            content_type.as_deref().unwrap_or("")
        ))
    })?;
    let raw = read_limited(body, limits.max_body_bytes, limits.body_timeout).await?;
    state.metrics.ingest_bytes.inc_by(raw.len() as u64);
    let raw = encoding::decompress(content_encoding.as_deref(), raw, limits.max_body_bytes)?;
    let items = json::items(format, &raw).inspect_err(|_| {
        // a refused body's lines count as rejected rows (an unreadable JSON text has no rows to count)
        if format == BodyFormat::NdJson || raw.first() == Some(&b'{') {
            let n = json::line_count(&raw);
            state.metrics.rejected_rows(n);
            state.metrics.source_rows("json", "rejected", n as u64);
        }
    })?;
    let n = items.len() as u64;
    let result = state.pipeline.store_all(items).await;
    match &result {
        Ok(stored) => state.metrics.source_rows("json", "stored", *stored),
        Err(crate::ingest::error::IngestError::Invalid(_)) => state.metrics.source_rows("json", "rejected", n),
        Err(_) => {}
    }
    Ok(result?)
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    let search = warp::path!("logs")
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(warp::header::optional::<String>("accept"))
        .and(super::with_state(state))
        .then(|pairs, accept, state| {
            super::search::get(super::search::Source::All, "/logs".into(), pairs, accept, state)
        });
    let ingest = warp::path!("logs")
        .and(warp::post())
        .and(super::auth::require(state.limits.ingest_token.clone(), "ingestion"))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(super::body::declared_within(state.limits.max_body_bytes))
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(post);
    search.or(ingest).unify().boxed()
}
