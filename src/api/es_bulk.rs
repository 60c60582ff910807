//! Elasticsearch's bulk API, for Filebeat, Logstash, Fluent Bit, Vector, rsyslog's
//! omelasticsearch and the Elasticsearch client libraries: `POST|PUT /_bulk` and
//! `POST|PUT /{index}/_bulk`. Same limits, validation and group commit as `POST /logs`; the protocol
//! around them is Elasticsearch's:
//! - a bulk response (`took`, `errors`, `items[]`), one item per action in request order with
//!   its own `status` (201 stored) or `status` + `error`, so one bad document does not cost the
//!   others; the 200 comes only after the stored documents are committed;
//! - a request that cannot be read at all, overload and outages get Elasticsearch's error body
//!   (`{"error": {"root_cause", "type", "reason"}, "status"}`), with `Retry-After` when retrying
//!   helps;
//! - every answer carries `X-Elastic-Product: Elasticsearch`, which the official clients check
//!   before they believe a response (see also `GET /` in root.rs).
use std::time::Instant;

use bytes::Buf;
use futures_util::Stream;
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::AppState;
use super::body::read_limited;
use super::error::ApiError;
use crate::ingest::{
    self,
    sources::es_bulk::{self, Action, DocError},
};

const SOURCE: &str = "es_bulk";

/// The Elasticsearch version logmon presents: a current 8.x, which clients from 7.x to 9.x
/// accept (7.x clients also check the tagline, 8.x and 9.x the product header).
pub const VERSION: &str = "8.17.0";

pub async fn bulk<S, B>(
    index: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: S,
    state: AppState,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let started = Instant::now();
    let result = store(index, content_type, content_encoding, body, &state).await;
    state.metrics.request(super::logs::outcome(&result));
    match result {
        Ok(items) => {
            // Written as text: a 1,000-item answer built as a serde_json tree cost more than
            // storing the documents.
            let took = started.elapsed().as_millis();
            let body = format!("{{\"took\":{took},\"errors\":{},\"items\":[{}]}}", items.errors, items.json);
            let mut r = warp::reply::with_header(body, "content-type", "application/json").into_response();
            r.headers_mut().insert("x-elastic-product", warp::http::HeaderValue::from_static("Elasticsearch"));
            r
        }
        Err(e) => error_reply(e),
    }
}

async fn store<S, B>(
    index: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: S,
    state: &AppState,
) -> Result<Items, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    if let Some(ct) = content_type.as_deref()
        && !ct.to_ascii_lowercase().contains("json")
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {ct:?} is not supported on _bulk; send application/x-ndjson or application/json"
        )));
    }
    let limits = &state.limits;
    let raw = read_limited(body, limits.max_body_bytes, limits.body_timeout).await?;
    state.metrics.ingest_bytes.inc_by(raw.len() as u64);
    let raw = ingest::encoding::decompress(content_encoding.as_deref(), raw, limits.max_body_bytes)?;
    let ops = es_bulk::parse(&raw, index.as_deref()).map_err(|e| {
        state.metrics.source_rows(SOURCE, "malformed", 1);
        ApiError::bad_request(format!("{}: {}", e.kind, e.reason))
    })?;
    state.pipeline.check_count(ops.len(), "bulk actions")?;
    let mut docs = Vec::with_capacity(ops.len());
    let mut positions = Vec::with_capacity(ops.len());
    let mut ops: Vec<(Action, String, Option<String>, Option<DocError>)> = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let error = match op.doc {
                Ok(doc) => {
                    docs.push(doc);
                    positions.push(i);
                    None
                }
                Err(e) => Some(e),
            };
            (op.action, op.index, op.id, error)
        })
        .collect();
    let malformed = ops.iter().filter(|o| o.3.is_some()).count() as u64;
    let outcome = state.pipeline.store_valid(docs).await?;
    for r in &outcome.rejected {
        let reason: Vec<String> = r
            .errors
            .iter()
            .map(|e| match &e.field {
                Some(f) => format!("[{}] {}", es_field(f), e.error),
                None => e.error.clone(),
            })
            .collect();
        ops[positions[r.index]].3 = Some(DocError { kind: "document_parsing_exception", reason: reason.join("; ") });
    }
    state.metrics.source_rows(SOURCE, "stored", outcome.stored);
    state.metrics.source_rows(SOURCE, "rejected", outcome.rejected.len() as u64);
    state.metrics.source_rows(SOURCE, "malformed", malformed);
    let mut json = String::with_capacity(ops.len() * 200);
    let mut errors = false;
    let mut seq = 0u64;
    for (n, (action, index, id, error)) in ops.into_iter().enumerate() {
        use std::fmt::Write;
        if n > 0 {
            json.push(',');
        }
        let id = id.unwrap_or_else(new_id);
        let _ = write!(json, r#"{{"{}":"#, action.name());
        match error {
            Some(e) => {
                errors = true;
                let item = json!({"_index": index, "_id": id, "status": 400,
                                  "error": {"type": e.kind, "reason": e.reason, "index": index}});
                let _ = write!(json, "{item}}}");
            }
            None => {
                let _ = write!(
                    json,
                    r#"{{"_index":{},"_id":{},"_version":1,"result":"created","_shards":{{"total":1,"successful":1,"failed":0}},"_seq_no":{seq},"_primary_term":1,"status":201}}}}"#,
                    Value::String(index),
                    Value::String(id),
                );
                seq += 1;
            }
        }
    }
    Ok(Items { json, errors })
}

/// The `items` of a bulk answer, as JSON text, and whether any of them failed.
struct Items {
    json: String,
    errors: bool,
}

/// The document field a `/logs` field came from, for per-item reasons.
fn es_field(field: &str) -> String {
    let (head, rest) = field.split_once('.').unwrap_or((field, ""));
    let head = match head {
        "ts" => "@timestamp",
        "level" => "log.level",
        "service" => "service.name",
        "status_code" => "http.response.status_code",
        "attrs" => return rest.to_string(),
        other => other,
    };
    if rest.is_empty() { head.to_string() } else { format!("{head}.{rest}") }
}

/// Elasticsearch generates 20-character ids; so does logmon, for the senders that read them.
fn new_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..20).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// A JSON answer with the product header the official clients insist on.
pub fn reply(status: StatusCode, body: &Value) -> Response {
    let mut r = warp::reply::with_status(warp::reply::json(body), status).into_response();
    r.headers_mut().insert("x-elastic-product", warp::http::HeaderValue::from_static("Elasticsearch"));
    r
}

/// Elasticsearch's error body for a request refused whole.
pub fn error_reply(e: ApiError) -> Response {
    let status = e.status();
    let kind = match status {
        StatusCode::UNAUTHORIZED => "security_exception",
        StatusCode::PAYLOAD_TOO_LARGE => "content_too_long_exception",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "media_type_header_exception",
        StatusCode::REQUEST_TIMEOUT => "timeout_exception",
        StatusCode::SERVICE_UNAVAILABLE if matches!(e, ApiError::Overloaded { .. }) => {
            "es_rejected_execution_exception"
        }
        StatusCode::SERVICE_UNAVAILABLE => "cluster_block_exception",
        StatusCode::BAD_REQUEST => "illegal_argument_exception",
        _ => "exception",
    };
    let mut reason = e.to_string();
    if let ApiError::BadRequest { details, .. } = &e {
        for d in details {
            reason.push_str("; ");
            reason.push_str(&d.error);
        }
    }
    let cause = json!({"type": kind, "reason": reason});
    let mut r = reply(
        status,
        &json!({"error": {"root_cause": [cause], "type": kind, "reason": reason}, "status": status.as_u16()}),
    );
    if let Some(s) = e.retry_after() {
        r.headers_mut().insert("retry-after", s.into());
    }
    r
}

/// What `GET /` answers an Elasticsearch client.
pub fn info() -> Response {
    reply(
        StatusCode::OK,
        &json!({
            "name": "logmon",
            "cluster_name": "logmon",
            "cluster_uuid": "logmon-00000000000000",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "logmon",
                "build_hash": env!("CARGO_PKG_VERSION"),
                "build_date": "2026-01-01T00:00:00.000Z",
                "build_snapshot": false,
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"
            },
            "tagline": "You Know, for Search",
            "logmon": {"version": env!("CARGO_PKG_VERSION"), "accepts": ["POST /_bulk", "POST /{index}/_bulk"]}
        }),
    )
}

/// The cluster health probes: rsyslog's omelasticsearch calls `GET /_cat/health` when it
/// resumes after a failure (seen on the wire with rsyslog 8.2302), Vector's health check
/// `GET /_cluster/health`. Green while the database answers, red (503) while it does not.
async fn health(cat: bool, state: AppState) -> Response {
    let check = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        client.query_one("SELECT 1", &[]).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let ok = matches!(tokio::time::timeout(std::time::Duration::from_secs(3), check).await, Ok(Ok(())));
    let (status, color) = if ok { (StatusCode::OK, "green") } else { (StatusCode::SERVICE_UNAVAILABLE, "red") };
    if cat {
        let now = chrono::Utc::now();
        let line = format!("{} {} logmon {color} 1 1 0 0 0 0 0 0 - 100.0%\n", now.timestamp(), now.format("%H:%M:%S"));
        let mut r = warp::reply::with_status(
            warp::reply::with_header(line, "content-type", "text/plain; charset=UTF-8"),
            status,
        )
        .into_response();
        r.headers_mut().insert("x-elastic-product", warp::http::HeaderValue::from_static("Elasticsearch"));
        r
    } else {
        reply(
            status,
            &json!({"cluster_name": "logmon", "status": color, "timed_out": false, "number_of_nodes": 1,
                    "number_of_data_nodes": 1, "active_primary_shards": 0, "active_shards": 0,
                    "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
                    "active_shards_percent_as_number": 100.0}),
        )
    }
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    let headers = || {
        super::auth::require(state.limits.ingest_token.clone(), "ingestion")
            .and(warp::header::optional::<String>("content-type"))
            .and(warp::header::optional::<String>("content-encoding"))
            .and(warp::body::stream())
            .and(super::with_state(state))
    };
    // Elasticsearch takes both methods; the official clients send PUT, most shippers POST.
    let post = warp::path!("_bulk").and(warp::post()).map(|| None).and(headers()).then(bulk);
    let put = warp::path!("_bulk").and(warp::put()).map(|| None).and(headers()).then(bulk);
    let post_indexed = warp::path!(String / "_bulk").and(warp::post()).map(Some).and(headers()).then(bulk);
    let put_indexed = warp::path!(String / "_bulk").and(warp::put()).map(Some).and(headers()).then(bulk);
    let cat_health =
        warp::path!("_cat" / "health").and(warp::get()).map(|| true).and(super::with_state(state)).then(health);
    let cluster_health =
        warp::path!("_cluster" / "health").and(warp::get()).map(|| false).and(super::with_state(state)).then(health);
    post.or(put)
        .unify()
        .or(post_indexed)
        .unify()
        .or(put_indexed)
        .unify()
        .or(cat_health)
        .unify()
        .or(cluster_health)
        .unify()
        .boxed()
}
