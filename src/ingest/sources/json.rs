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

/// Most per-line errors reported for one NDJSON body; the rest are counted in a last entry.
const MAX_LINE_ERRORS: usize = 100;

/// The items of a body, each still raw JSON. Syntax errors name the item (NDJSON line) or the
/// position in the body. A JSON body that turns out to be NDJSON (one object per line, sent
/// with a JSON content type, as several shippers do) is read as NDJSON.
pub fn items(format: BodyFormat, body: &[u8]) -> Result<Vec<Value>, IngestError> {
    match format {
        BodyFormat::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(v @ Value::Object(_)) => Ok(vec![v]),
            Ok(other) => Err(IngestError::body(format!(
                "expected a JSON array of log objects or one log object, got {}",
                kind(&other)
            ))),
            Err(_) if looks_like_ndjson(body) => ndjson(body),
            Err(e) => Err(IngestError::body(json_error(body, &e))),
        },
        BodyFormat::NdJson => ndjson(body),
    }
}

/// Non-empty NDJSON lines in `body`: how many items a refused NDJSON body held.
pub fn line_count(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count()
}

fn ndjson(body: &[u8]) -> Result<Vec<Value>, IngestError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut bad = 0usize;
    let mut item = 0usize;
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => out.push(v),
            Err(e) => {
                bad += 1;
                if errors.len() < MAX_LINE_ERRORS {
                    errors.push(ItemError::new(item, None, format!("line {}: {}", n + 1, json_error(line, &e))));
                }
            }
        }
        item += 1;
    }
    if bad > errors.len() {
        errors.push(ItemError::body(format!("and {} more unreadable lines", bad - errors.len())));
    }
    if errors.is_empty() { Ok(out) } else { Err(IngestError::Invalid(errors)) }
}

/// serde_json's message, except for bytes that are not UTF-8, which it reports as a syntax error
/// at a position that does not say so.
fn json_error(text: &[u8], e: &serde_json::Error) -> String {
    match std::str::from_utf8(text) {
        Err(u) => format!("not valid UTF-8 (JSON text must be UTF-8): invalid byte at offset {}", u.valid_up_to()),
        Ok(_) => format!("invalid JSON: {e}"),
    }
}

/// Two or more lines, each starting with `{`: NDJSON sent as application/json.
fn looks_like_ndjson(body: &[u8]) -> bool {
    let mut lines = body.split(|b| *b == b'\n').map(|l| l.trim_ascii()).filter(|l| !l.is_empty());
    let mut n = 0;
    for l in lines.by_ref() {
        if !l.starts_with(b"{") {
            return false;
        }
        n += 1;
    }
    n >= 2
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
