//! Hostile input: every bad request gets a 4xx JSON answer quickly, the process keeps serving,
//! and valid requests interleaved with the bad ones all succeed. Also: bearer tokens.
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Bad {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

fn bad(name: &'static str, body: impl Into<Vec<u8>>) -> Bad {
    Bad {
        name,
        method: "POST",
        path: "/logs".into(),
        headers: vec![("content-type", "application/json")],
        body: body.into(),
    }
}

fn corpus() -> Vec<Bad> {
    let sqlish = "'; DROP TABLE logs; --";
    let mut v = vec![
        bad("truncated JSON", "[{\"service\": \"a\", \"level\": "),
        bad("not JSON at all", "<xml/>"),
        bad("a bare string", "\"hello\""),
        bad("null", "null"),
        bad("deeply nested", "[".repeat(100_000) + &"]".repeat(100_000)),
        bad(
            "deep object",
            format!(r#"[{{"service":"a","level":"INFO","x":{}1{}}}]"#, "{\"a\":".repeat(5000), "}".repeat(5000)),
        ),
        bad("over the size limit", vec![b' '; 2_000_001]),
        bad("NUL in service", r#"[{"service":"a\u0000","level":"INFO"}]"#),
        bad("NUL in an attr key", r#"[{"service":"a","level":"INFO","k\u0000":1}]"#),
        bad("invalid UTF-8", b"[{\"service\":\"\xc3\x28\",\"level\":\"INFO\"}]".to_vec()),
        bad("lone surrogate", r#"[{"service":"\ud800","level":"INFO"}]"#),
        bad("huge latency", r#"[{"service":"a","level":"INFO","latency_ms":1e308}]"#),
        bad("overflowing number", r#"[{"service":"a","level":"INFO","latency_ms":1e999}]"#),
        bad("huge status", r#"[{"service":"a","level":"INFO","status_code":100000000000000000000}]"#),
        bad("negative status", r#"[{"service":"a","level":"INFO","status_code":-200}]"#),
        bad("year 9999", r#"[{"service":"a","level":"INFO","ts":"9999-12-31T23:59:59Z"}]"#),
        bad("year 0", r#"[{"service":"a","level":"INFO","ts":"0000-01-01T00:00:00Z"}]"#),
        bad("epoch 1e30", r#"[{"service":"a","level":"INFO","ts":1e30}]"#),
        bad("long service", format!(r#"[{{"service":"{}","level":"INFO"}}]"#, "s".repeat(10_000))),
        bad("SQL in level", format!(r#"[{{"service":"a","level":"{sqlish}"}}]"#)),
        bad("too many items", serde_json::to_vec(&vec![json!({"service": "a", "level": "INFO"}); 1001]).unwrap()),
        Bad {
            name: "gzip bomb",
            method: "POST",
            path: "/logs".into(),
            headers: vec![("content-type", "application/json"), ("content-encoding", "gzip")],
            body: gzip(&vec![b'['; 40_000_000]),
        },
        Bad {
            name: "broken gzip",
            method: "POST",
            path: "/logs".into(),
            headers: vec![("content-type", "application/json"), ("content-encoding", "gzip")],
            body: b"not gzip".to_vec(),
        },
        Bad {
            name: "brotli",
            method: "POST",
            path: "/logs".into(),
            headers: vec![("content-type", "application/json"), ("content-encoding", "br")],
            body: b"[]".to_vec(),
        },
        Bad {
            name: "xml content type",
            method: "POST",
            path: "/logs".into(),
            headers: vec![("content-type", "application/xml")],
            body: b"[]".to_vec(),
        },
        Bad { name: "PUT /logs", method: "PUT", path: "/logs".into(), headers: vec![], body: b"[]".to_vec() },
        Bad { name: "unknown path", method: "GET", path: "/admin".into(), headers: vec![], body: vec![] },
        Bad {
            name: "huge id",
            method: "GET",
            path: "/incidents/99999999999999999999999".into(),
            headers: vec![],
            body: vec![],
        },
    ];
    for (param, value) in [("limit", sqlish), ("status", sqlish), ("since", sqlish), ("service", "x\u{0}y")] {
        let enc: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
        v.push(Bad {
            name: "SQL in a query parameter",
            method: "GET",
            path: format!("/incidents?{param}={enc}"),
            headers: vec![],
            body: vec![],
        });
    }
    v.push(Bad {
        name: "SQL in window",
        method: "GET",
        path: "/stats?window_minutes=1%20OR%201%3D1".into(),
        headers: vec![],
        body: vec![],
    });
    v
}

#[tokio::test]
async fn every_hostile_request_gets_a_quick_4xx_json_and_valid_neighbours_succeed() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--max-body-bytes", "2000000", "--max-items", "1000"]).await;
    let client = http();
    let mut valid_sent = 0;
    for b in corpus() {
        let started = Instant::now();
        let mut req = client.request(b.method.parse().unwrap(), app.url(&b.path)).body(b.body);
        for (k, v) in &b.headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", b.name));
        assert!((400..500).contains(&status), "{}: status {status} {body}", b.name);
        assert!(body["error"].is_string(), "{}: {body}", b.name);
        assert!(started.elapsed() < Duration::from_secs(5), "{}: took {:?}", b.name, started.elapsed());
        // a valid neighbour right after each bad request
        let ok = client
            .post(app.url("/logs"))
            .json(&json!([{"service": "'; DROP TABLE logs; --", "level": "INFO", "message": "Robert'); --"}]))
            .send()
            .await
            .unwrap_or_else(|e| panic!("valid request after {}: {e:?}", b.name));
        assert_eq!(ok.status(), 200, "valid request after {}", b.name);
        valid_sent += 1;
    }
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM logs WHERE service = '''; DROP TABLE logs; --' AND message = 'Robert''); --'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, valid_sent, "SQL metacharacters are stored as data, verbatim");
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_do_not_stall_others() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--body-timeout", "1", "--header-timeout", "1"]).await;
    // a body that never finishes: 408 once --body-timeout passes
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    s.write_all(b"POST /logs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n[{")
        .await
        .unwrap();
    // headers that never finish: the connection is closed
    let mut h = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    h.write_all(b"POST /logs HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    // meanwhile others are served
    let r = http().post(app.url("/logs")).json(&json!({"service": "a", "level": "INFO"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("answered").unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let n = tokio::time::timeout(Duration::from_secs(10), h.read(&mut buf)).await.expect("closed").unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "slow headers: {text}");
}

#[tokio::test]
async fn bearer_tokens_guard_ingest_and_lifecycle_with_401_json() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--ingest-token", "in-s3cret", "--admin-token", "adm-s3cret"]).await;
    let body = json!({"service": "a", "level": "INFO"});
    for auth in [None, Some("Bearer wrong"), Some("Bearer adm-s3cret"), Some("in-s3cret")] {
        let mut req = http().post(app.url("/logs")).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let j: serde_json::Value = r.json().await.unwrap();
        assert!(j["error"].as_str().unwrap().contains("token"), "{j}");
    }
    let r = http().post(app.url("/logs")).bearer_auth("in-s3cret").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(http().post(app.url("/incidents/1/ack")).bearer_auth("in-s3cret").send().await.unwrap().status(), 401);
    assert_eq!(http().post(app.url("/incidents/1/ack")).bearer_auth("adm-s3cret").send().await.unwrap().status(), 404);
    // reads stay open
    assert_eq!(http().get(app.url("/stats")).send().await.unwrap().status(), 200);
}
