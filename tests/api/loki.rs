//! POST /loki/api/v1/push: Loki's push API, from python-logging-loki (both of its JSON shapes)
//! and winston-loki (JSON and protobuf+snappy), and from hand-built pushes; answers as Loki's.
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::shippers::*;
use logmon::ingest::sources::loki::proto;

#[tokio::test]
async fn python_logging_loki_pushes_are_stored_with_service_level_and_labels() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let push = app.url("/loki/api/v1/push");
    // emitter "1" sends Loki's v1 JSON, "0" the legacy {"labels", "entries"} shape
    for (version, service) in [("1", "py-loki-v1"), ("0", "py-loki-v0")] {
        let (ok, out) = run_script(&python(), "loki_python.py", &[&push, service, version]);
        assert!(ok, "python-logging-loki reported a failure: {out}");
        assert_eq!(last_json(&out)["sent"], 9, "{out}");
        assert_eq!(
            levels(&db, service).await,
            counts(&[("DEBUG", 1), ("ERROR", 5), ("FATAL", 1), ("INFO", 1), ("WARN", 1)]),
            "the severity label python-logging-loki adds becomes the level"
        );
        let c = db.client().await;
        let r = c
            .query_one(
                "SELECT message, attrs->>'env', attrs->>'logger', attrs ? 'severity', attrs ? 'service',
                        abs(extract(epoch FROM now() - ts))::float8
                 FROM logs WHERE service = $1 AND level = 'ERROR' ORDER BY message LIMIT 1",
                &[&service],
            )
            .await
            .unwrap();
        assert_eq!(r.get::<_, String>(0), "payment failed attempt 0");
        assert_eq!((r.get::<_, String>(1), r.get::<_, String>(2)), ("test".into(), "checkout.http".into()));
        assert!(!r.get::<_, bool>(3) && !r.get::<_, bool>(4), "labels that became fields are not repeated in attrs");
        assert!(r.get::<_, f64>(5) < 300.0, "ts is the time the record was logged");
        let route: String = c
            .query_one("SELECT attrs->>'route' FROM logs WHERE service = $1 AND level = 'INFO'", &[&service])
            .await
            .unwrap()
            .get(0);
        assert_eq!(route, "/cart", "a per-record tag is a label, kept in attrs");
    }
    assert_eq!(metric(&app, r#"logmon_ingest_source_rows_total{source="loki",outcome="stored"}"#).await, 18.0);
}

#[tokio::test]
async fn winston_loki_sends_json_and_protobuf_with_snappy_and_both_are_stored() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    for (mode, service) in [("json", "node-json"), ("protobuf", "node-proto")] {
        let (ok, out) = run_script("node", "winston_loki.js", &[&app.base, service, mode]);
        assert!(ok, "winston-loki ({mode}) failed: {out}");
        let want = if mode == "json" { "application/json" } else { "application/x-protobuf" };
        assert_eq!(last_json(&out)["contentType"], want, "{out}");
        assert_eq!(levels(&db, service).await, counts(&[("DEBUG", 1), ("ERROR", 5), ("INFO", 1), ("WARN", 1)]));
        let c = db.client().await;
        let rows = c
            .query(
                "SELECT message, attrs FROM logs WHERE service = $1 AND level = 'ERROR' ORDER BY message",
                &[&service],
            )
            .await
            .unwrap();
        let (message, attrs): (String, Value) = (rows[0].get(0), rows[0].get(1));
        assert_eq!(
            message, r#"payment failed {"attempt":0,"level":"error"}"#,
            "winston-loki writes its meta into the line"
        );
        assert_eq!(attrs["env"], "test");
        if mode == "json" {
            assert_eq!(attrs["attempt"], "0", "JSON mode also sends the meta as structured metadata");
        }
    }
}

fn snappy(req: &proto::PushRequest) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap()
}

fn entry(ago: chrono::Duration, line: &str) -> proto::EntryAdapter {
    let t = chrono::Utc::now() - ago;
    proto::EntryAdapter {
        timestamp: Some(proto::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }),
        line: line.into(),
        structured_metadata: vec![],
    }
}

async fn push(app: &Proc, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    http().post(app.url("/loki/api/v1/push")).header("content-type", content_type).body(body).send().await.unwrap()
}

#[tokio::test]
async fn a_bad_entry_is_a_400_naming_it_while_the_rest_of_the_push_is_stored() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let req = proto::PushRequest {
        streams: vec![
            proto::StreamAdapter {
                labels: r#"{service_name="pay", level="error"}"#.into(),
                entries: vec![
                    entry(chrono::Duration::seconds(1), "ok 1"),
                    entry(chrono::Duration::days(400), "ancient"),
                    entry(chrono::Duration::seconds(1), "ok 2"),
                ],
                hash: 0,
            },
            proto::StreamAdapter {
                labels: "not a selector".into(),
                entries: vec![entry(chrono::Duration::seconds(1), "lost")],
                hash: 0,
            },
        ],
    };
    let r = push(&app, "application/x-protobuf", snappy(&req)).await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#"entry 1 of stream '{service_name="pay", level="error"}': timestamp"#), "{text}");
    assert!(text.contains("retention"), "{text}");
    assert!(text.contains("stream 1 'not a selector'"), "{text}");
    assert!(text.contains("2 of 4 entries stored"), "{text}");
    let stored: Vec<String> = db
        .client()
        .await
        .query("SELECT message FROM logs WHERE service = 'pay' AND level = 'ERROR' ORDER BY message", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, ["ok 1", "ok 2"]);

    let all_good = proto::PushRequest {
        streams: vec![proto::StreamAdapter {
            labels: r#"{app="pay"}"#.into(),
            entries: vec![entry(chrono::Duration::seconds(1), "level=warn msg=\"retrying\"")],
            hash: 0,
        }],
    };
    let r = push(&app, "application/x-protobuf", snappy(&all_good)).await;
    assert_eq!(r.status(), 204, "Loki answers a stored push with 204 and no body");
    assert_eq!(r.text().await.unwrap(), "");
    let level: String = db
        .client()
        .await
        .query_one("SELECT level FROM logs WHERE message LIKE 'level=warn%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(level, "WARN", "level= in a logfmt line");
}

#[tokio::test]
async fn gzip_json_is_read_and_unreadable_bodies_get_a_plain_400() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let ns = (chrono::Utc::now().timestamp_nanos_opt().unwrap()).to_string();
    let body = json!({"streams": [{"stream": {"job": "gz"}, "values": [[ns, "{\"level\":\"error\",\"msg\":\"x\"}"]]}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, body.to_string().as_bytes()).unwrap();
    let r = http()
        .post(app.url("/loki/api/v1/push"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let level: String =
        db.client().await.query_one("SELECT level FROM logs WHERE service = 'gz'", &[]).await.unwrap().get(0);
    assert_eq!(level, "ERROR", "a JSON line's level");

    let r = push(&app, "application/x-protobuf", b"\xff\xff\xff\xff\xff\xff".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(r.text().await.unwrap().contains("snappy"));
    let r = push(&app, "application/json", b"{\"streams\": 3}".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("streams"));

    let ready = http().get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap().trim(), "ready");
}

#[tokio::test]
async fn overload_is_answered_with_retry_after() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--max-queued-rows", "10"]).await;
    let values: Vec<Value> = (0..11).map(|i| json!(["0", format!("line {i}")])).collect();
    let body = json!({"streams": [{"stream": {"app": "busy"}, "values": values}]});
    let r = push(&app, "application/json", body.to_string().into_bytes()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.text().await.unwrap().contains("queue is full"));
}
