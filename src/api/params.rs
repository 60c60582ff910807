//! Query parameters, validated with errors that say which parameter and why (the original
//! answered 500 to several of these).
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::error::ApiError;

pub type Query = HashMap<String, String>;

fn bad(param: &str, msg: String) -> ApiError {
    ApiError::BadRequest {
        message: format!("invalid query parameter {param}: {msg}"),
        details: vec![crate::ingest::error::ItemError { index: None, field: Some(param.to_string()), error: msg }],
    }
}

/// An integer in `range`, or `default` when absent.
pub fn int_in(q: &Query, param: &str, range: std::ops::RangeInclusive<i64>, default: i64) -> Result<i64, ApiError> {
    let Some(raw) = q.get(param) else { return Ok(default) };
    let v: i64 = raw.trim().parse().map_err(|_| {
        bad(param, format!("must be an integer between {} and {}, got {raw:?}", range.start(), range.end()))
    })?;
    if !range.contains(&v) {
        return Err(bad(param, format!("must be between {} and {}, got {v}", range.start(), range.end())));
    }
    Ok(v)
}

pub fn one_of<'a>(q: &'a Query, param: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
    match q.get(param) {
        None => Ok(None),
        Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v.as_str())),
        Some(v) => Err(bad(param, format!("must be one of {}, got {v:?}", allowed.join(", ")))),
    }
}

pub fn text<'a>(q: &'a Query, param: &str) -> Result<Option<&'a str>, ApiError> {
    match q.get(param) {
        Some(v) if v.is_empty() || v.len() > 256 || v.contains('\0') => {
            Err(bad(param, "must be 1 to 256 characters without NUL".into()))
        }
        other => Ok(other.map(String::as_str)),
    }
}

pub fn timestamp(q: &Query, param: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = q.get(param) else { return Ok(None) };
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|d| Some(d.with_timezone(&Utc)))
        .map_err(|e| bad(param, format!("must be an RFC 3339 timestamp like 2026-11-24T06:00:00Z ({e}), got {raw:?}")))
}

/// A numeric path segment such as the `{id}` of `/incidents/{id}`: anything else is a 400 naming
/// the parameter, not a "no such endpoint".
pub fn path_id(name: &'static str) -> impl warp::Filter<Extract = (i64,), Error = warp::Rejection> + Clone {
    use warp::Filter;
    warp::path::param::<String>().and_then(move |raw: String| async move {
        raw.parse::<i64>().map_err(|_| {
            warp::reject::custom(ApiError::BadRequest {
                message: format!("invalid path parameter {name}: must be an integer, got {raw:?}"),
                details: vec![crate::ingest::error::ItemError {
                    index: None,
                    field: Some(name.to_string()),
                    error: format!("must be an integer, got {raw:?}"),
                }],
            })
        })
    })
}
