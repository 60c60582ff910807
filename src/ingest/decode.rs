//! From HTTP body bytes to JSON items: content types, gzip, size limits. Knows nothing about
//! what a log looks like; see `validate` for that.
use std::io::Read;

use serde_json::Value;

use crate::api::error::{ApiError, ItemError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// A JSON array of objects, or a single object.
    Json,
    /// One JSON object per line.
    NdJson,
}

impl BodyFormat {
    /// `None` = a content type logmon does not read (415). A missing content type is read as JSON,
    /// as the original collector did.
    pub fn from_content_type(ct: Option<&str>) -> Option<BodyFormat> {
        let Some(ct) = ct else {
            return Some(BodyFormat::Json);
        };
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "text/json" | "" => Some(BodyFormat::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(BodyFormat::NdJson),
            e if e.ends_with("+json") => Some(BodyFormat::Json),
            _ => None,
        }
    }
}

/// Undo `Content-Encoding`, refusing to produce more than `limit` bytes (gzip bombs).
pub fn decompress(encoding: Option<&str>, body: bytes::Bytes, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
    match enc.as_deref() {
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity((body.len() * 4).min(limit));
            let mut dec = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
            dec.read_to_end(&mut out).map_err(|e| ApiError::bad_request(format!("body is not valid gzip: {e}")))?;
            if out.len() > limit {
                return Err(ApiError::PayloadTooLarge(format!("decompressed body exceeds the limit of {limit} bytes")));
            }
            Ok(out.into())
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported (use gzip or none)"
        ))),
    }
}

/// The items of a body, each still raw JSON. Syntax errors name the item (NDJSON line) or the
/// position in the body.
pub fn items(format: BodyFormat, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    match format {
        BodyFormat::Json => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::invalid_items(vec![ItemError::body(format!("invalid JSON: {e}"))]))?;
            match v {
                Value::Array(items) => Ok(items),
                Value::Object(_) => Ok(vec![v]),
                other => Err(ApiError::invalid_items(vec![ItemError::body(format!(
                    "expected a JSON array of log objects or one log object, got {}",
                    kind(&other)
                ))])),
            }
        }
        BodyFormat::NdJson => {
            let mut out = Vec::new();
            let mut errors = Vec::new();
            for line in body.split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(v) => out.push(v),
                    Err(e) => errors.push(ItemError::new(out.len() + errors.len(), None, format!("invalid JSON: {e}"))),
                }
            }
            if errors.is_empty() { Ok(out) } else { Err(ApiError::invalid_items(errors)) }
        }
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
