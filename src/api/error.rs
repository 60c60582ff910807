//! Every error the HTTP API can answer, and the one place that turns them into responses:
//! always JSON `{"error": ..., "details": [...]}`, never HTML, plain text or an empty body.
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::ingest::error::IngestError;
pub use crate::ingest::error::ItemError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, details: Vec<ItemError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{message}")]
    Overloaded { message: String, retry_after_s: u32 },
    #[error("{message}")]
    Unavailable { message: String, retry_after_s: u32 },
    #[error("{0}")]
    Internal(String),
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { message: message.into(), details: vec![] }
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::Unavailable { message: message.into(), retry_after_s: 1 }
    }

    /// Seconds a client should wait before retrying (the Retry-After header), for the errors
    /// that are worth retrying.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::Overloaded { retry_after_s, .. } | ApiError::Unavailable { retry_after_s, .. } => {
                Some(*retry_after_s)
            }
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded { .. } | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let message = e.to_string();
        match e {
            IngestError::Invalid(details) => ApiError::BadRequest { message, details },
            IngestError::TooLarge(m) => ApiError::PayloadTooLarge(m),
            IngestError::Unsupported(m) => ApiError::UnsupportedMediaType(m),
            IngestError::Timeout(m) => ApiError::Timeout(m),
            IngestError::Overloaded(_) => ApiError::Overloaded { message, retry_after_s: 1 },
            IngestError::Unavailable(_) => ApiError::Unavailable { message, retry_after_s: 2 },
            IngestError::Rejected(_) => ApiError::bad_request(message),
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        tracing::warn!(error = %e, "database error while serving a request");
        ApiError::unavailable(e.to_string())
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The database refusing the data a client sent (class 22, data exception: an invalid
        // regex, a NUL byte, an out-of-range value) is the client's 400, not our outage.
        if let Some(db) = e.as_db_error()
            && db.code().code().starts_with("22")
        {
            return ApiError::BadRequest {
                message: match db.column() {
                    Some(c) => format!("invalid {c}: {}", db.message()),
                    None => format!("invalid value: {}", db.message()),
                },
                details: vec![ItemError {
                    index: None,
                    field: db.column().map(str::to_string),
                    error: db.message().into(),
                }],
            };
        }
        ApiError::from(crate::db::DbError::Postgres(e))
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: String,
            details: &'a [ItemError],
        }
        let status = self.status();
        let details: &[ItemError] = match &self {
            ApiError::BadRequest { details, .. } => details,
            _ => &[],
        };
        let mut resp = warp::reply::with_status(warp::reply::json(&Body { error: self.to_string(), details }), status)
            .into_response();
        if let Some(s) = self.retry_after() {
            resp.headers_mut().insert("retry-after", s.into());
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert("www-authenticate", warp::http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Turns every rejection (ours and warp's own) into a JSON error.
pub async fn recover(rej: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    let err = if let Some(e) = rej.find::<ApiError>() {
        return Ok(e.clone().into_response());
    } else if rej.is_not_found() {
        ApiError::NotFound("no such endpoint".into())
    } else if let Some(e) = rej.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("invalid query string: {e}"))
    } else if rej.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge("request body too large".into())
    } else if let Some(e) = rej.find::<warp::reject::UnsupportedMediaType>() {
        ApiError::UnsupportedMediaType(e.to_string())
    } else if let Some(e) = rej.find::<warp::reject::InvalidHeader>() {
        ApiError::bad_request(e.to_string())
    } else if let Some(e) = rej.find::<warp::reject::MissingHeader>() {
        ApiError::bad_request(e.to_string())
    } else if let Some(e) = rej.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::bad_request(format!("invalid JSON body: {e}"))
    } else if rej.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::bad_request("a Content-Length header is required")
    } else if rej.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed("method not allowed for this endpoint".into())
    } else {
        tracing::error!(rejection = ?rej, "unhandled rejection");
        ApiError::Internal("internal error".into())
    };
    Ok(err.into_response())
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::from(crate::db::DbError::from(e))
    }
}
