//! Reading a request body with a size limit and a deadline: a body larger than the limit is
//! refused as soon as it crosses it (413), and a client that sends too slowly gets 408.
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::error::ApiError;

pub async fn read_limited<S, B>(stream: S, limit: usize, timeout: std::time::Duration) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let read = async {
        let mut out = BytesMut::new();
        futures_util::pin_mut!(stream);
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk.map_err(|e| ApiError::bad_request(format!("error reading the request body: {e}")))?;
            if out.len() + chunk.remaining() > limit {
                return Err(ApiError::PayloadTooLarge(format!("request body exceeds the limit of {limit} bytes")));
            }
            while chunk.has_remaining() {
                let c = chunk.chunk();
                out.extend_from_slice(c);
                let n = c.len();
                chunk.advance(n);
            }
        }
        Ok(out.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(ApiError::Timeout(format!("request body not received within {}s", timeout.as_secs()))))
}

/// Refuses a request whose `Content-Length` already says it is over `limit`, before a byte of the
/// body is read. With `Expect: 100-continue` the client then never sends the body: hyper only
/// answers "100 Continue" once a handler starts reading it.
pub fn declared_within(limit: usize) -> impl warp::Filter<Extract = (), Error = warp::Rejection> + Clone {
    use warp::Filter;
    warp::header::optional::<u64>("content-length")
        .and_then(move |declared: Option<u64>| async move {
            match declared {
                Some(n) if n > limit as u64 => Err(warp::reject::custom(ApiError::PayloadTooLarge(format!(
                    "request body of {n} bytes (Content-Length) exceeds the limit of {limit} bytes"
                )))),
                _ => Ok(()),
            }
        })
        .untuple_one()
}

/// Who made a change, from an optional JSON body `{"by": "alice"}` (the lifecycle endpoints and
/// DELETE /silences/{id}); "api" when the body or the key is absent.
pub fn actor(body: &[u8]) -> Result<String, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("api".to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("body must be JSON like {{\"by\": \"alice\"}}: {e}")))?;
    match v.get("by") {
        None | Some(serde_json::Value::Null) => Ok("api".to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.chars().count() <= 256 && !s.contains('\0') => {
            Ok(s.clone())
        }
        Some(_) => Err(ApiError::bad_request("\"by\" must be a non-empty string of at most 256 characters")),
    }
}
