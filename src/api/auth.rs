//! Optional bearer tokens: `--ingest-token` guards the ingest endpoints, `--admin-token` the
//! lifecycle endpoints. Checked before the body is read; compared in constant time.
use std::sync::Arc;

use warp::{Filter, Rejection};

use super::error::ApiError;

/// A token that never prints itself (Debug shows `***`), so no log line can leak it.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(s: &str) -> Secret {
        Secret(s.into())
    }
    fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Passes when no token is configured, or when `Authorization: Bearer <token>` matches it.
pub fn require(token: Option<Secret>, what: &'static str) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let token = token.clone();
            async move {
                let Some(expected) = token else { return Ok(()) };
                let given =
                    header.as_deref().and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
                match given {
                    Some(g) if constant_time_eq(g.trim().as_bytes(), expected.expose()) => Ok(()),
                    Some(_) => {
                        Err(warp::reject::custom(ApiError::Unauthorized(format!("invalid bearer token for {what}"))))
                    }
                    None => Err(warp::reject::custom(ApiError::Unauthorized(format!(
                        "{what} requires an Authorization: Bearer token"
                    )))),
                }
            }
        })
        .untuple_one()
}

/// Compares without an early exit, so the time taken does not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff)) as usize;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equal_only_when_equal() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
