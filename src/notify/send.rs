//! One HTTP attempt and what it means for the retry policy (which itself lives in SQL:
//! record_delivery()). Only the facts are reported: the status, an error text, a Retry-After.
use std::time::Duration;

use serde_json::Value;

use super::target::Target;

#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// None: no HTTP answer at all (connection refused, timeout).
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("logmon/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client")
}

pub async fn post(client: &reqwest::Client, target: &Target, body: &Value, idempotency_key: Option<&str>) -> Attempt {
    let mut req = client.post(target.url.clone()).json(body);
    if let Some(key) = idempotency_key {
        req = req.header("idempotency-key", key);
    }
    match req.send().await {
        // without_url: the URL may be a secret (Slack's is), and this text is stored in SQL.
        Err(e) => Attempt { http_status: None, error: Some(describe(&e.without_url())), retry_after: None },
        Ok(resp) => {
            let status = resp.status();
            let retry_after =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            if status.is_success() {
                return Attempt { http_status: Some(status.as_u16() as i32), error: None, retry_after: None };
            }
            let text = resp.text().await.unwrap_or_default();
            let snippet: String = text.chars().take(300).collect();
            Attempt {
                http_status: Some(status.as_u16() as i32),
                error: Some(format!("HTTP {}: {}", status.as_u16(), snippet.trim())),
                retry_after,
            }
        }
    }
}

/// Seconds, or an HTTP date (RFC 9110 allows both).
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
