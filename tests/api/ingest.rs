//! POST /logs: formats, validation, limits, overload, group commit guarantees.
use std::io::Write;

use serde_json::{Value, json};

use crate::helpers::*;

async fn post(app: &Proc, ct: &str, body: Vec<u8>) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = http().post(app.url("/logs")).header("content-type", ct).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap(), headers)
}

async fn post_json(app: &Proc, v: &Value) -> (u16, Value) {
    let (s, b, _) = post(app, "application/json", serde_json::to_vec(v).unwrap()).await;
    (s, b)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn count(db: &TestDb, filter: &str) -> i64 {
    db.client().await.query_one(&format!("SELECT count(*) FROM logs WHERE {filter}"), &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_original_bare_array_is_stored_and_answered_with_ingested() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (s, b) = post_json(
        &app,
        &json!([{"service": "auth-service", "level": "INFO", "message": "ok", "latency_ms": 12.5, "status_code": 200},
                {"service": "auth-service", "level": "error", "message": "boom", "latency_ms": 900, "status_code": 503}]),
    )
    .await;
    assert_eq!((s, b), (200, json!({"ingested": 2})));
    assert_eq!(count(&db, "service = 'auth-service' AND level = 'ERROR' AND status_code = 503").await, 1);
}

#[tokio::test]
async fn single_object_ndjson_and_gzip_bodies_are_accepted() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let one = br#"{"service": "s", "level": "INFO"}"#.to_vec();
    assert_eq!(post(&app, "application/json", one.clone()).await.0, 200);
    let nd = b"{\"service\": \"s\", \"level\": \"WARN\"}\n\n{\"service\": \"s\", \"level\": \"DEBUG\"}\r\n".to_vec();
    let (s, b, _) = post(&app, "application/x-ndjson", nd.clone()).await;
    assert_eq!((s, b), (200, json!({"ingested": 2})));
    let r = http()
        .post(app.url("/logs"))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzip(&nd))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count(&db, "service = 's'").await, 5);
}

#[tokio::test]
async fn shipper_aliases_fill_the_columns_and_unknown_fields_land_in_attrs() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    // Fluent Bit's http output: float epoch "date", "log" for the message
    let date = (chrono::Utc::now().timestamp() - 3600) as f64 + 0.25;
    let (s, b) = post_json(&app, &json!([{"date": date, "log": "fb line", "service": "fb", "severity": "warning", "kubernetes": {"pod": "p-1"}}])).await;
    assert_eq!(s, 200, "{b}");
    let c = db.client().await;
    let row = c
        .query_one("SELECT level, message, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), attrs FROM logs WHERE service = 'fb'", &[])
        .await
        .unwrap();
    let (level, msg, ts, attrs): (String, String, String, Value) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((level.as_str(), msg.as_str()), ("WARN", "fb line"));
    let want =
        chrono::DateTime::from_timestamp(date as i64, 250_000_000).unwrap().format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    assert_eq!(ts, want);
    assert_eq!(attrs, json!({"kubernetes": {"pod": "p-1"}}));
}

#[tokio::test]
async fn one_bad_item_stores_nothing_and_every_error_names_item_and_field() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (s, b) = post_json(
        &app,
        &json!([{"service": "ok", "level": "INFO"},
                {"service": "ok", "level": "NOPE", "status_code": 99, "latency_ms": -3},
                {"level": "INFO", "ts": "not a time"},
                "just a string"]),
    )
    .await;
    assert_eq!(s, 400);
    let got: Vec<(u64, String)> = b["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["index"].as_u64().unwrap(), d["field"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "level".into()),
            (1, "status_code".into()),
            (1, "latency_ms".into()),
            (2, "service".into()),
            (2, "ts".into()),
            (3, "".into())
        ]
    );
    assert_eq!(count(&db, "true").await, 0, "nothing of a bad batch is stored");
}

#[tokio::test]
async fn malformed_bodies_get_clear_4xx_json_errors() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--max-body-bytes", "100000", "--max-items", "100"]).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", b"[{\"service\": \"a\", \"level\": \"INFO\"".to_vec(), 400, "invalid JSON"),
        ("application/json", b"42".to_vec(), 400, "expected a JSON array"),
        ("application/json", b"[{\"service\": \"a\xff\", \"level\": \"INFO\"}]".to_vec(), 400, "not valid UTF-8"),
        ("application/json", br#"[{"service": "a\u0000b", "level": "INFO"}]"#.to_vec(), 400, "invalid item"),
        ("application/json", format!("[{}]", "[".repeat(200) + &"]".repeat(200)).into_bytes(), 400, "invalid JSON"),
        ("text/plain", b"hello".to_vec(), 415, "not accepted"),
        ("application/json", vec![b' '; 100_001], 413, "exceeds the limit"),
        (
            "application/json",
            serde_json::to_vec(&vec![json!({"service": "a", "level": "INFO"}); 101]).unwrap(),
            413,
            "limit is 100",
        ),
    ];
    for (ct, body, want, text) in cases {
        let (s, b, _) = post(&app, ct, body).await;
        assert_eq!(s, want, "{b}");
        assert!(b["error"].as_str().unwrap().contains(text) || b["details"].to_string().contains(text), "{text}: {b}");
    }
    let (s, b) = post_json(&app, &json!([])).await;
    assert_eq!((s, b), (200, json!({"ingested": 0})));
    assert_eq!(count(&db, "true").await, 0);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_by_its_decompressed_size() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--max-body-bytes", "1000000"]).await;
    let bomb = gzip(&vec![b' '; 50_000_000]);
    assert!(bomb.len() < 1_000_000);
    let r = http()
        .post(app.url("/logs"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // and the collector still serves
    assert_eq!(post_json(&app, &json!({"service": "a", "level": "INFO"})).await.0, 200);
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_at_once() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--max-queued-rows", "10"]).await;
    let big = vec![json!({"service": "a", "level": "INFO"}); 11];
    let (s, b, h) = post(&app, "application/json", serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(s, 503, "{b}");
    assert!(h.get("retry-after").is_some());
    assert_eq!(post_json(&app, &json!(big[..10])).await.0, 200);
}

#[tokio::test]
async fn logs_for_a_missing_partition_are_stored_after_the_collector_creates_it() {
    let db = fresh_db().await;
    let c = db.client().await;
    // A DBA dropped tomorrow's partition; a sender's clock is a few hours ahead.
    let part: String =
        c.query_one("SELECT log_partition_holding(now() + interval '20 hours')", &[]).await.unwrap().get(0);
    c.batch_execute(&format!("DROP TABLE {part}")).await.unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let ts = (chrono::Utc::now() + chrono::Duration::hours(20)).to_rfc3339();
    let (s, b) =
        post_json(&app, &json!([{"service": "a", "level": "INFO", "ts": ts}, {"service": "b", "level": "INFO"}])).await;
    assert_eq!((s, b), (200, json!({"ingested": 2})));
    assert_eq!(count(&db, "true").await, 2);
}

#[tokio::test]
async fn timestamps_outside_retention_are_refused_per_item() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (s, b) = post_json(&app, &json!([{"service": "a", "level": "INFO", "ts": "2001-01-01T00:00:00Z"}])).await;
    assert_eq!(s, 400);
    assert_eq!(b["details"][0]["field"], "ts");
    assert!(b["details"][0]["error"].as_str().unwrap().contains("retention"), "{b}");
}

#[tokio::test]
async fn a_failed_commit_fails_exactly_its_requests_and_stores_none_of_their_rows() {
    let db = fresh_db().await;
    let c = db.client().await;
    // A deferred constraint trigger makes COMMIT itself fail for any transaction holding a "poison" row.
    c.batch_execute(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'poisoned commit'; END $$;
         CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON logs DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW WHEN (NEW.service = 'poison') EXECUTE FUNCTION poison();",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &["--writers", "1", "--linger-ms", "20"]).await;
    // Four waves of ten concurrent requests; only the second wave carries poison.
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for wave in 0..4 {
        let mut tasks = Vec::new();
        for j in 0..10 {
            let i = wave * 10 + j;
            let url = app.url("/logs");
            let service = if wave == 1 && j == 3 { "poison" } else { "good" };
            tasks.push(tokio::spawn(async move {
                let body = json!([{"service": service, "level": "INFO", "message": format!("req {i}")},
                                  {"service": "good", "level": "INFO", "message": format!("req {i}")}]);
                let r = http().post(url).json(&body).send().await.unwrap();
                (i, r.status().as_u16())
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                (i, 200) => acked.push(i),
                (i, 503) => refused.push(i),
                (_, other) => panic!("unexpected status {other}"),
            }
        }
    }
    assert!(refused.contains(&13), "the poisoned request fails");
    assert!(acked.iter().any(|i| *i < 10) && acked.iter().any(|i| *i >= 20), "requests in other transactions succeed");
    // every acknowledged request is fully stored; every refused one is fully absent
    for i in 0..40 {
        let n = count(&db, &format!("message = 'req {i}'")).await;
        assert_eq!(n, if acked.contains(&i) { 2 } else { 0 }, "request {i}");
    }
    assert_eq!(count(&db, "service = 'poison'").await, 0);
}

#[tokio::test]
async fn every_unreadable_ndjson_line_is_reported_and_counted_as_rejected() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let mut body = String::new();
    for i in 0..250 {
        body.push_str(if i % 2 == 0 { "{\"service\": \"a\", \"level\": \"INFO\"}\n" } else { "{not json\n" });
    }
    // NDJSON sent as application/json (as some shippers do) is read as NDJSON too
    for ct in ["application/x-ndjson", "application/json"] {
        let (s, b, _) = post(&app, ct, body.clone().into_bytes()).await;
        assert_eq!(s, 400, "{b}");
        let details = b["details"].as_array().unwrap();
        assert_eq!(details.len(), 101, "100 lines named, then a count of the rest: {b}");
        assert_eq!(details[0]["index"], 1);
        assert!(details[0]["error"].as_str().unwrap().starts_with("line 2: invalid JSON"), "{b}");
        assert_eq!(details[100]["error"], "and 25 more unreadable lines", "{b}");
        assert_eq!(details[99]["error"].as_str().unwrap().split(':').next(), Some("line 200"));
    }
    let (s, _) = post_json(&app, &json!([{"service": "a", "level": "INFO"}, {"service": "a", "level": "LOUD"}])).await;
    assert_eq!(s, 400);
    assert_eq!(count(&db, "true").await, 0);
    let metrics = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let rejected: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("logmon_ingest_rows_total{outcome=\"rejected\"} "))
        .expect("rejected rows counted")
        .parse()
        .unwrap();
    assert_eq!(rejected, 250.0 + 250.0 + 2.0, "every row of every refused batch");
}
