//! `POST /logs` bodies: a JSON array of log objects (the original collector's format), one
//! object, or NDJSON. Turns bytes into JSON items; what a log looks like is `validate`'s business.
use serde_json::Value;

use crate::ingest::error::{IngestError, ItemError};

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

/// The items of a body, each still raw JSON. Syntax errors name the item (NDJSON line) or the
/// position in the body.
pub fn items(format: BodyFormat, body: &[u8]) -> Result<Vec<Value>, IngestError> {
    match format {
        BodyFormat::Json => {
            let v: Value = serde_json::from_slice(body).map_err(|e| IngestError::body(format!("invalid JSON: {e}")))?;
            match v {
                Value::Array(items) => Ok(items),
                Value::Object(_) => Ok(vec![v]),
                other => Err(IngestError::body(format!(
                    "expected a JSON array of log objects or one log object, got {}",
                    kind(&other)
                ))),
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
            if errors.is_empty() { Ok(out) } else { Err(IngestError::Invalid(errors)) }
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
