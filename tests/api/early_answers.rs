//! Answers given before the body arrives must reach the client: a sender told 413 splits its
//! batch, a sender that sees a broken pipe retries the same batch forever.
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// POSTs `mb` megabytes with Python's urllib, which writes the whole body before it reads the
/// answer; returns what it printed: the status and body, or the connection error it got.
fn urllib_post(url: &str, mb: usize) -> String {
    let script = r#"
import sys, urllib.request, urllib.error
data = b'[' + b' ' * (int(sys.argv[2]) * 1024 * 1024) + b']'
req = urllib.request.Request(sys.argv[1], data=data, headers={'Content-Type': 'application/json'})
try:
    r = urllib.request.urlopen(req, timeout=120)
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except Exception as e:
    print('connection error:', type(e).__name__, e)
"#;
    let out = std::process::Command::new("python3").args(["-c", script, url, &mb.to_string()]).output().unwrap();
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn an_oversized_body_written_without_waiting_gets_the_413_not_a_broken_pipe() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let url = app.url("/logs");
    let answer = tokio::task::spawn_blocking(move || urllib_post(&url, 300)).await.unwrap();
    let (status, body) = answer.split_once(' ').unwrap_or((&answer, ""));
    assert_eq!(status, "413", "{answer}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON error body: {answer}"));
    assert!(body["error"].as_str().unwrap().contains("exceeds the limit"), "{body}");
    // the connection it lingered on does not cost the next sender anything
    let r = http().post(app.url("/logs")).json(&serde_json::json!({"service": "a", "level": "INFO"})).send().await;
    assert_eq!(r.unwrap().status(), 200);
}

/// Sends only the headers with `Expect: 100-continue` and returns the first line of the answer.
async fn first_line_after_expect(port: u16, path: &str, extra_headers: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 314572800\r\n\
         Expect: 100-continue\r\n{extra_headers}\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("an answer").unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string()
}

#[tokio::test]
async fn expect_100_continue_is_answered_with_the_refusal_before_the_body_is_sent() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--ingest-token", "s3cret"]).await;
    // too large: 413 instead of "100 Continue"
    let line = first_line_after_expect(app.port, "/logs", "Authorization: Bearer s3cret\r\n").await;
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    let line = first_line_after_expect(app.port, "/v1/logs", "Authorization: Bearer s3cret\r\n").await;
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    // no token: 401
    let line = first_line_after_expect(app.port, "/logs", "").await;
    assert!(line.starts_with("HTTP/1.1 401"), "{line}");
}

#[tokio::test]
async fn expect_100_continue_gets_a_415_for_a_content_type_that_would_be_refused() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    s.write_all(b"POST /logs HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 415"), "{text}");
}
