//! POST /v1/logs: OTLP/HTTP logs. Same limits, validation and group commit as POST /logs; what
//! differs is the protocol around them (OTLP/HTTP spec, "Failures" and "Partial Success"):
//! - answers are in the request's encoding: an `ExportLogsServiceResponse` on success, a
//!   `google.rpc.Status` (with a `google.rpc.BadRequest` naming each bad field) on failure;
//! - a batch with some invalid records stores the valid ones and reports the rest as
//!   `partialSuccess` (an OTLP exporter drops a 400'd batch whole, so one bad record must not
//!   cost its neighbours); a batch with no valid record at all is a 400.
use bytes::Buf;
use futures_util::Stream;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use prost::Message;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::AppState;
use super::body::read_limited;
use super::error::{ApiError, ItemError};
use crate::ingest::{
    self,
    error::IngestError,
    sources::otlp::{self, Encoding},
};

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
    let encoding = Encoding::from_content_type(content_type.as_deref());
    let result = match encoding {
        Some(enc) => export(enc, content_encoding, body, &state).await,
        None => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {:?} is not accepted on /v1/logs; send application/x-protobuf or application/json (OTLP/HTTP)",
            content_type.as_deref().unwrap_or("")
        ))),
    };
    state.metrics.request(super::logs::outcome(&result));
    let encoding = encoding.unwrap_or(Encoding::Json);
    match result {
        Ok(partial) => success(encoding, partial),
        Err(e) => failure(encoding, e),
    }
}

/// What was not stored of an accepted request.
struct Rejected {
    count: usize,
    errors: Vec<ItemError>,
}

async fn export<S, B>(
    encoding: Encoding,
    content_encoding: Option<String>,
    body: S,
    state: &AppState,
) -> Result<Rejected, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let limits = &state.limits;
    let raw = read_limited(body, limits.max_body_bytes, limits.body_timeout).await?;
    state.metrics.ingest_bytes.inc_by(raw.len() as u64);
    let raw = ingest::encoding::decompress(content_encoding.as_deref(), raw, limits.max_body_bytes)?;
    let request = otlp::decode(encoding, &raw).map_err(IngestError::body)?;
    state.pipeline.check_count(otlp::record_count(&request), "log records")?;
    let (paths, values): (Vec<String>, Vec<_>) = otlp::items(request).into_iter().map(|r| (r.path, r.item)).unzip();
    let outcome = state.pipeline.store_valid(values).await?;
    state.metrics.source_rows("otlp", "stored", outcome.stored);
    state.metrics.source_rows("otlp", "rejected", outcome.rejected.len() as u64);
    let errors: Vec<ItemError> = outcome
        .rejected
        .iter()
        .flat_map(|r| {
            let path = &paths[r.index];
            r.errors.iter().map(move |e| ItemError {
                field: Some(format!("{path}.{}", otlp::otlp_field(e.field.as_deref().unwrap_or("")))),
                ..e.clone()
            })
        })
        .collect();
    if outcome.stored == 0 && !errors.is_empty() {
        return Err(IngestError::Invalid(errors).into());
    }
    Ok(Rejected { count: outcome.rejected.len(), errors })
}

fn success(encoding: Encoding, rejected: Rejected) -> Response {
    let partial = (rejected.count > 0).then(|| ExportLogsPartialSuccess {
        rejected_log_records: rejected.count as i64,
        error_message: summary(&rejected.errors),
    });
    let body = match encoding {
        Encoding::Protobuf => ExportLogsServiceResponse { partial_success: partial }.encode_to_vec(),
        // OTLP/JSON writes int64 as a string, which serde's derive for this type does not.
        Encoding::Json => match partial {
            None => b"{}".to_vec(),
            Some(p) => json!({"partialSuccess": {"rejectedLogRecords": p.rejected_log_records.to_string(),
                                                 "errorMessage": p.error_message}})
            .to_string()
            .into_bytes(),
        },
    };
    reply(StatusCode::OK, encoding, body)
}

/// At most a few of the errors, each as `path.field: what`, for the one-line OTLP messages.
fn summary(errors: &[ItemError]) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = errors
        .iter()
        .take(SHOWN)
        .map(|e| match &e.field {
            Some(f) => format!("{f}: {}", e.error),
            None => e.error.clone(),
        })
        .collect();
    if errors.len() > SHOWN {
        parts.push(format!("and {} more", errors.len() - SHOWN));
    }
    parts.join("; ")
}

/// google.rpc.Status, google.protobuf.Any and google.rpc.BadRequest: the error body OTLP/HTTP
/// prescribes. Only the fields logmon fills are declared.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BadRequest {
    #[prost(message, repeated, tag = "1")]
    field_violations: Vec<FieldViolation>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FieldViolation {
    #[prost(string, tag = "1")]
    field: String,
    #[prost(string, tag = "2")]
    description: String,
}

const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";

fn failure(encoding: Encoding, e: ApiError) -> Response {
    let status = e.status();
    let retry_after = e.retry_after();
    // gRPC status codes, as the OTLP spec maps them.
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => 14,
        _ => 13,
    };
    let violations: Vec<FieldViolation> = match &e {
        ApiError::BadRequest { details, .. } => details
            .iter()
            .map(|d| FieldViolation { field: d.field.clone().unwrap_or_default(), description: d.error.clone() })
            .collect(),
        _ => Vec::new(),
    };
    let message = match &e {
        ApiError::BadRequest { details, .. } if !details.is_empty() => format!("{e}: {}", summary(details)),
        _ => e.to_string(),
    };
    let body = match encoding {
        Encoding::Protobuf => {
            let details = if violations.is_empty() {
                Vec::new()
            } else {
                let value = BadRequest { field_violations: violations }.encode_to_vec();
                vec![Any { type_url: BAD_REQUEST_TYPE.into(), value }]
            };
            Status { code, message, details }.encode_to_vec()
        }
        Encoding::Json => {
            let mut v = json!({"code": code, "message": message});
            if !violations.is_empty() {
                let fv: Vec<_> =
                    violations.iter().map(|f| json!({"field": f.field, "description": f.description})).collect();
                v["details"] = json!([{"@type": BAD_REQUEST_TYPE, "fieldViolations": fv}]);
            }
            v.to_string().into_bytes()
        }
    };
    let mut resp = reply(status, encoding, body);
    if let Some(s) = retry_after {
        resp.headers_mut().insert("retry-after", s.into());
    }
    resp
}

fn reply(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    warp::reply::with_status(warp::reply::with_header(body, "content-type", encoding.content_type()), status)
        .into_response()
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    warp::path!("v1" / "logs")
        .and(warp::post())
        .and(super::auth::require(state.limits.ingest_token.clone(), "ingestion"))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(super::body::declared_within(state.limits.max_body_bytes))
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(post)
        .boxed()
}
