//! Load tool for scripts/bench.sh (kept out of the `logmon` binary).
//!
//!   ingest_load gen  --rows N --ndjson FILE --tsv FILE     one realistic workload, two encodings
//!   ingest_load send --ndjson FILE --url URL --batch B --conns C [--otlp]
//!
//! With `--otlp`, each batch is sent as an OTLP/HTTP protobuf ExportLogsServiceRequest (one
//! ResourceLogs per service, as an OpenTelemetry SDK or Collector batches) to /v1/logs.
//! `send` pre-builds every request body, then C connections POST them as fast as they are
//! answered (retrying 429/503 after Retry-After), and prints one JSON line with the results.
use std::io::{BufRead, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;

fn arg(args: &[String], name: &str) -> String {
    let i = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("missing {name}"));
    args[i + 1].clone()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => generate(arg(&args, "--rows").parse().unwrap(), &arg(&args, "--ndjson"), &arg(&args, "--tsv")),
        Some("send") => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(send(
                &arg(&args, "--ndjson"),
                &arg(&args, "--url"),
                arg(&args, "--batch").parse().unwrap(),
                arg(&args, "--conns").parse().unwrap(),
                args.iter().any(|a| a == "--otlp"),
            ));
        }
        _ => eprintln!("usage: ingest_load gen|send ..."),
    }
}

/// Three services, long-tailed latencies, ~1% errors, a few attrs: what the generator sends.
/// Timestamps advance through the last 10 minutes in order, with jitter, as a live stream's do.
fn generate(rows: usize, ndjson: &str, tsv: &str) {
    let mut rng = rand::rng();
    let mut nd = BufWriter::new(std::fs::File::create(ndjson).unwrap());
    let mut tv = BufWriter::new(std::fs::File::create(tsv).unwrap());
    let services = ["auth-service", "feed-service", "db-service"];
    let now = chrono::Utc::now();
    for i in 0..rows {
        let service = services[i % 3];
        let error = rng.random_bool(0.01);
        let level = if error {
            "ERROR"
        } else if rng.random_bool(0.05) {
            "WARN"
        } else {
            "INFO"
        };
        let status =
            if error { 500 + rng.random_range(0..4) } else { [200, 200, 200, 201, 204, 304][rng.random_range(0..6)] };
        let u: f64 = rng.random_range(0.0001..1.0f64);
        let latency = (20.0 * (-u.ln()).powf(1.6) * 3.0 * 100.0).round() / 100.0;
        let age_ms = 600_000 - (i as i64 * 600_000 / rows as i64) + rng.random_range(0..50);
        let ts = now - chrono::Duration::milliseconds(age_ms);
        let ts_s = ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let msg = format!("{} request {} handled", service, i);
        let req = format!("{:016x}", rng.random::<u64>());
        writeln!(
            nd,
            r#"{{"ts":"{ts_s}","service":"{service}","level":"{level}","message":"{msg}","latency_ms":{latency},"status_code":{status},"request_id":"{req}","host":"node-{}"}}"#,
            i % 7
        )
        .unwrap();
        writeln!(tv, "{ts_s}\t{service}\t{level}\t{status}\t{latency}\t{msg}\t{{\"host\": \"node-{}\", \"request_id\": \"{req}\"}}", i % 7)
            .unwrap();
    }
}

async fn send(ndjson: &str, url: &str, batch: usize, conns: usize, otlp: bool) {
    let file = std::io::BufReader::new(std::fs::File::open(ndjson).unwrap());
    let lines: Vec<String> = file.lines().map(|l| l.unwrap()).collect();
    let content_type = if otlp { "application/x-protobuf" } else { "application/json" };
    let bodies: Arc<Vec<(usize, bytes::Bytes)>> = Arc::new(
        lines
            .chunks(batch)
            .map(|c| {
                let body = if otlp { otlp_body(c) } else { bytes::Bytes::from(format!("[{}]", c.join(","))) };
                (c.len(), body)
            })
            .collect(),
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(conns).build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let ingested = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (bodies, next, ingested, retries, failures, client, url) = (
            bodies.clone(),
            next.clone(),
            ingested.clone(),
            retries.clone(),
            failures.clone(),
            client.clone(),
            url.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((n, body)) = bodies.get(i) else { return };
                loop {
                    let r = client.post(&url).header("content-type", content_type).body(body.clone()).send().await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let body = r.bytes().await.unwrap();
                            if otlp {
                                // an empty ExportLogsServiceResponse: no partial success, all stored
                                assert!(body.is_empty(), "partial success: {body:?}");
                            } else {
                                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                                assert_eq!(v["ingested"].as_u64(), Some(*n as u64));
                            }
                            ingested.fetch_add(*n as u64, Ordering::Relaxed);
                            break;
                        }
                        Ok(r) if r.status() == 429 || r.status() == 503 => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            let wait = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok()?.parse().ok())
                                .unwrap_or(1u64);
                            tokio::time::sleep(Duration::from_secs(wait)).await;
                        }
                        Ok(r) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            eprintln!("status {}: {}", r.status(), r.text().await.unwrap_or_default());
                            break;
                        }
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            eprintln!("request error: {e}");
                            break;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = ingested.load(Ordering::Relaxed);
    println!(
        r#"{{"rows": {n}, "seconds": {secs:.3}, "rows_per_s": {:.0}, "retries": {}, "failures": {}}}"#,
        n as f64 / secs,
        retries.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );
}

/// The same logs as an OTLP protobuf request: service.name on the resource, the rest attributes.
fn otlp_body(lines: &[String]) -> bytes::Bytes {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    let kv = |k: &str, v: V| KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() };
    let mut by_service: std::collections::BTreeMap<String, Vec<LogRecord>> = Default::default();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap()).unwrap();
        let severity = match v["level"].as_str().unwrap() {
            "ERROR" => 17,
            "WARN" => 13,
            _ => 9,
        };
        by_service.entry(v["service"].as_str().unwrap().to_string()).or_default().push(LogRecord {
            time_unix_nano: ts.timestamp_nanos_opt().unwrap() as u64,
            severity_number: severity,
            body: Some(AnyValue { value: Some(V::StringValue(v["message"].as_str().unwrap().into())) }),
            attributes: vec![
                kv("http.response.status_code", V::IntValue(v["status_code"].as_i64().unwrap())),
                kv("latency_ms", V::DoubleValue(v["latency_ms"].as_f64().unwrap())),
                kv("request_id", V::StringValue(v["request_id"].as_str().unwrap().into())),
                kv("host", V::StringValue(v["host"].as_str().unwrap().into())),
            ],
            ..Default::default()
        });
    }
    let resource_logs = by_service
        .into_iter()
        .map(|(service, records)| ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", V::StringValue(service))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }.encode_to_vec().into()
}
