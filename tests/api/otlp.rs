//! POST /v1/logs: OTLP/HTTP logs from the official OpenTelemetry Python SDK and from hand-built
//! protobuf / OTLP/JSON requests; the answers follow the OTLP/HTTP spec.
use std::process::Command;

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::*;

/// The venv scripts/test.sh creates under .data/ (LOGMON_OTEL_PYTHON overrides).
fn otel_python() -> String {
    let py = std::env::var("LOGMON_OTEL_PYTHON")
        .unwrap_or_else(|_| repo().join(".data/otel-venv/bin/python").to_string_lossy().into_owned());
    assert!(
        std::path::Path::new(&py).exists(),
        "{py} is missing: scripts/test.sh installs the OpenTelemetry Python SDK there (pip, in a venv)"
    );
    py
}

fn send_with_python_sdk(app: &Proc, service: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new(otel_python())
        .arg(repo().join("tests/otel/send_logs.py"))
        .arg(app.url("/v1/logs"))
        .arg(service)
        .args(extra)
        .output()
        .expect("run the OpenTelemetry Python SDK");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn levels(db: &TestDb, service: &str) -> Vec<(String, i64)> {
    let rows = db
        .client()
        .await
        .query("SELECT level, count(*) FROM logs WHERE service = $1 GROUP BY level ORDER BY level", &[&service])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test]
async fn logs_from_the_opentelemetry_python_sdk_are_stored_with_their_fields_mapped() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (ok, out) = send_with_python_sdk(&app, "py-checkout", &[]);
    assert!(ok, "the SDK's exporter reported a failure: {out}");
    assert!(out.contains(r#""exported": 24"#), "{out}");

    let by_level = levels(&db, "py-checkout").await;
    let expect: Vec<(String, i64)> =
        [("DEBUG", 1), ("ERROR", 20), ("FATAL", 1), ("INFO", 1), ("WARN", 1)].map(|(l, n)| (l.into(), n)).into();
    assert_eq!(by_level, expect);
    let c = db.client().await;
    let r = c
        .query_one(
            "SELECT count(*), min(latency_ms), max(latency_ms), min(message), min(attrs->>'otel.scope.name'),
                    min(attrs->>'host.name'), count(*) FILTER (WHERE attrs ? 'attempt'),
                    max(abs(extract(epoch FROM now() - ts)))::float8
             FROM logs WHERE service = 'py-checkout' AND level = 'ERROR' AND status_code = 503",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 20);
    assert_eq!((r.get::<_, f64>(1), r.get::<_, f64>(2)), (30.0, 49.0));
    assert_eq!(r.get::<_, String>(3), "payment failed");
    assert_eq!(r.get::<_, String>(4), "checkout.http");
    assert_eq!(r.get::<_, String>(5), "test-host");
    assert_eq!(r.get::<_, i64>(6), 20);
    assert!(r.get::<_, f64>(7) < 300.0, "ts is the time the record was logged");
}

#[tokio::test]
async fn the_python_sdk_can_send_gzip_with_a_bearer_token() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--ingest-token", "s3cret"]).await;
    let (ok, out) = send_with_python_sdk(&app, "py-gzip", &["--gzip", "--token", "s3cret"]);
    assert!(ok, "{out}");
    assert_eq!(levels(&db, "py-gzip").await.iter().map(|(_, n)| n).sum::<i64>(), 24);
    let gzipped = ingest_bytes(&app).await;
    // the same logs uncompressed, to show the SDK really sent gzip (the collector counts wire bytes)
    let (ok, out) = send_with_python_sdk(&app, "py-plain", &["--token", "s3cret"]);
    assert!(ok, "{out}");
    let plain = ingest_bytes(&app).await - gzipped;
    assert!(gzipped < plain, "gzip body {gzipped} bytes, plain body {plain} bytes");

    let (ok, out) = send_with_python_sdk(&app, "py-intruder", &["--token", "wrong"]);
    assert!(!ok, "a wrong token must be refused: {out}");
    assert!(levels(&db, "py-intruder").await.is_empty());
}

/// logmon_ingest_bytes_total: request body bytes as received, before decompression.
async fn ingest_bytes(app: &Proc) -> f64 {
    let text = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("logmon_ingest_bytes_total ")).expect("the metric is exported");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn otlp_json(records: Value) -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp-svc"}}]},
        "scopeLogs": [{"scope": {"name": "t"}, "logRecords": records}]}]})
}

fn nanos_ago(d: chrono::Duration) -> String {
    (chrono::Utc::now() - d).timestamp_nanos_opt().unwrap().to_string()
}

async fn post_otlp(app: &Proc, ct: &str, body: Vec<u8>) -> reqwest::Response {
    http().post(app.url("/v1/logs")).header("content-type", ct).body(body).send().await.unwrap()
}

#[tokio::test]
async fn one_invalid_record_is_reported_as_partial_success_and_its_neighbours_are_stored() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let req: ExportLogsServiceRequest = serde_json::from_value(otlp_json(json!([
        {"timeUnixNano": nanos_ago(chrono::Duration::seconds(1)), "severityNumber": 17, "body": {"stringValue": "a"}},
        {"timeUnixNano": nanos_ago(chrono::Duration::days(400)), "severityNumber": 9, "body": {"stringValue": "old"}},
        {"severityNumber": 9, "body": {"stringValue": "c"}}
    ])))
    .unwrap();
    let r = post_otlp(&app, "application/x-protobuf", req.encode_to_vec()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let resp = ExportLogsServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
    let partial = resp.partial_success.expect("partial_success is set");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("resourceLogs[0].scopeLogs[0].logRecords[1].timeUnixNano")
            && partial.error_message.contains("retention"),
        "{}",
        partial.error_message
    );
    let stored: Vec<String> = db
        .client()
        .await
        .query("SELECT message FROM logs WHERE service = 'otlp-svc' ORDER BY message", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, ["a", "c"]);
}

#[tokio::test]
async fn otlp_json_is_answered_in_json_and_a_request_with_no_valid_record_is_a_400_naming_the_field() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let ok = otlp_json(json!([{"severityText": "WARN", "body": {"stringValue": "fine"},
        "attributes": [{"key": "http.status_code", "value": {"intValue": "502"}}]}]));
    let r = post_otlp(&app, "application/json", ok.to_string().into_bytes()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}), "full success: an empty ExportLogsServiceResponse");

    let bad = otlp_json(json!([{"severityNumber": 9, "attributes": [
        {"key": "http.response.status_code", "value": {"intValue": "999"}}]}]));
    let r = post_otlp(&app, "application/json", bad.to_string().into_bytes()).await;
    assert_eq!(r.status(), 400);
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["code"], 3, "INVALID_ARGUMENT: {status}");
    let violation = &status["details"][0];
    assert_eq!(violation["@type"], "type.googleapis.com/google.rpc.BadRequest");
    assert_eq!(
        violation["fieldViolations"][0]["field"],
        "resourceLogs[0].scopeLogs[0].logRecords[0].attributes[http.response.status_code]"
    );
    let n: i64 =
        db.client().await.query_one("SELECT count(*) FROM logs WHERE status_code = 502", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);

    // protobuf field names (snake_case) would decode as an empty request: refused, naming the field
    let snake = json!({"resource_logs": [{"scope_logs": [{"log_records": [{"body": {"string_value": "lost"}}]}]}]});
    let r = post_otlp(&app, "application/json", snake.to_string().into_bytes()).await;
    assert_eq!(r.status(), 400);
    let status: Value = r.json().await.unwrap();
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("\"resource_logs\"") && message.contains("\"resourceLogs\""), "{status}");
}

/// google.rpc.Status as the test reads it (code and message only).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[tokio::test]
async fn undecodable_protobuf_is_a_400_with_a_protobuf_status_and_the_collector_keeps_serving() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let r = post_otlp(&app, "application/x-protobuf", vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]).await;
    assert_eq!(r.status(), 400);
    let status = RpcStatus::decode(r.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.contains("protobuf"), "{}", status.message);

    let r = post_otlp(&app, "text/plain", b"hello".to_vec()).await;
    assert_eq!(r.status(), 415);
    let empty = ExportLogsServiceRequest::default().encode_to_vec();
    assert_eq!(post_otlp(&app, "application/x-protobuf", empty).await.status(), 200);
}

#[tokio::test]
async fn overload_is_a_retryable_503_with_retry_after() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--max-queued-rows", "10"]).await;
    let records: Vec<Value> = (0..11).map(|_| json!({"severityNumber": 9})).collect();
    let r = post_otlp(&app, "application/json", otlp_json(json!(records)).to_string().into_bytes()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 14, "UNAVAILABLE");
}
