//! Load tool for scripts/bench.sh (kept out of the `logmon` binary).
//!
//!   ingest_load gen  --rows N --ndjson FILE --tsv FILE     one realistic workload, two encodings
//!   ingest_load send --ndjson FILE --url URL --batch B --conns C [--otlp | --loki | --es]
//!   ingest_load syslog --ndjson FILE --addr HOST:PORT --conns C --metrics URL
//!
//! With `--otlp`, each batch is sent as an OTLP/HTTP protobuf ExportLogsServiceRequest (one
//! ResourceLogs per service, as an OpenTelemetry SDK or Collector batches) to /v1/logs; with
//! `--loki` as a Loki PushRequest, protobuf + snappy, one stream per (service, level) as
//! Promtail groups lines; with `--es` as an Elasticsearch bulk request of ECS documents.
//! `send` pre-builds every request body, then C connections POST them as fast as they are
//! answered (retrying 429/503 after Retry-After), and prints one JSON line with the results.
//! `syslog` writes the same rows as RFC 5424 octet-counted frames over C TCP connections and
//! reports rows/s until the last one is committed (the collector's per-source stored counter in
//! /metrics, cheap to poll; bench.sh then checks count(*) in the database).
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
            let kind = if args.iter().any(|a| a == "--otlp") {
                Kind::Otlp
            } else if args.iter().any(|a| a == "--loki") {
                Kind::Loki
            } else if args.iter().any(|a| a == "--es") {
                Kind::Es
            } else {
                Kind::Json
            };
            rt.block_on(send(
                &arg(&args, "--ndjson"),
                &arg(&args, "--url"),
                arg(&args, "--batch").parse().unwrap(),
                arg(&args, "--conns").parse().unwrap(),
                kind,
            ));
        }
        Some("syslog") => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(syslog(
                &arg(&args, "--ndjson"),
                &arg(&args, "--addr"),
                arg(&args, "--conns").parse().unwrap(),
                &arg(&args, "--metrics"),
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

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Json,
    Otlp,
    Loki,
    Es,
}

async fn send(ndjson: &str, url: &str, batch: usize, conns: usize, kind: Kind) {
    let file = std::io::BufReader::new(std::fs::File::open(ndjson).unwrap());
    let lines: Vec<String> = file.lines().map(|l| l.unwrap()).collect();
    let content_type = match kind {
        Kind::Otlp | Kind::Loki => "application/x-protobuf",
        Kind::Es => "application/x-ndjson",
        Kind::Json => "application/json",
    };
    let bodies: Arc<Vec<(usize, bytes::Bytes)>> = Arc::new(
        lines
            .chunks(batch)
            .map(|c| {
                let body = match kind {
                    Kind::Otlp => otlp_body(c),
                    Kind::Loki => loki_body(c),
                    Kind::Es => es_body(c),
                    Kind::Json => bytes::Bytes::from(format!("[{}]", c.join(","))),
                };
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
                        Ok(r) if r.status() == 200 || r.status() == 204 => {
                            let status = r.status();
                            let body = r.bytes().await.unwrap();
                            match kind {
                                // an empty ExportLogsServiceResponse: no partial success, all stored
                                Kind::Otlp => assert!(body.is_empty(), "partial success: {body:?}"),
                                // Loki's "all stored"
                                Kind::Loki => assert_eq!(status, 204, "{body:?}"),
                                Kind::Es => {
                                    // checked as text: parsing 1,000 answers per request here would
                                    // take the collector's CPU (same machine)
                                    let text = std::str::from_utf8(&body).unwrap();
                                    assert!(text.contains(r#""errors":false"#), "{text}");
                                    assert_eq!(text.matches(r#""status":201"#).count(), *n);
                                }
                                Kind::Json => {
                                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                                    assert_eq!(v["ingested"].as_u64(), Some(*n as u64));
                                }
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

/// The same logs as a Loki push: one stream per (service, level), as Promtail groups lines by
/// their labels; request id, host, status and latency as structured metadata; protobuf + snappy.
fn loki_body(lines: &[String]) -> bytes::Bytes {
    use logmon::ingest::sources::loki::proto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
    use prost::Message;

    let mut streams: std::collections::BTreeMap<(String, String), Vec<EntryAdapter>> = Default::default();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap()).unwrap();
        let meta = |k: &str, x: String| LabelPairAdapter { name: k.into(), value: x };
        let key = (v["service"].as_str().unwrap().to_string(), v["level"].as_str().unwrap().to_lowercase());
        streams.entry(key).or_default().push(EntryAdapter {
            timestamp: Some(Timestamp { seconds: ts.timestamp(), nanos: ts.timestamp_subsec_nanos() as i32 }),
            line: v["message"].as_str().unwrap().into(),
            structured_metadata: vec![
                meta("request_id", v["request_id"].as_str().unwrap().into()),
                meta("host", v["host"].as_str().unwrap().into()),
                meta("status_code", v["status_code"].to_string()),
                meta("latency_ms", v["latency_ms"].to_string()),
            ],
        });
    }
    let req = PushRequest {
        streams: streams
            .into_iter()
            .map(|((service, level), entries)| StreamAdapter {
                labels: format!("{{service_name=\"{service}\", level=\"{level}\"}}"),
                entries,
                hash: 0,
            })
            .collect(),
    };
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap().into()
}

/// The same logs as an Elasticsearch bulk request of ECS documents, as Filebeat writes them.
fn es_body(lines: &[String]) -> bytes::Bytes {
    let mut out = String::with_capacity(lines.len() * 300);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        out.push_str("{\"create\":{\"_index\":\"logs-bench\"}}\n");
        let doc = serde_json::json!({
            "@timestamp": v["ts"], "message": v["message"], "log": {"level": v["level"]},
            "service": {"name": v["service"]}, "http": {"response": {"status_code": v["status_code"]}},
            "latency_ms": v["latency_ms"], "request_id": v["request_id"], "host": {"name": v["host"]},
        });
        out.push_str(&doc.to_string());
        out.push('\n');
    }
    out.into()
}

/// The rows as RFC 5424 octet-counted frames over `conns` TCP connections (rows dealt out in
/// turn); rows/s counts from the first byte to the moment the database holds them all.
async fn syslog(ndjson: &str, addr: &str, conns: usize, metrics: &str) {
    use tokio::io::AsyncWriteExt;

    let file = std::io::BufReader::new(std::fs::File::open(ndjson).unwrap());
    let mut payloads = vec![Vec::new(); conns];
    let mut rows = 0u64;
    for (i, line) in file.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let sev = match v["level"].as_str().unwrap() {
            "ERROR" => 3,
            "WARN" => 4,
            _ => 6,
        };
        let msg = format!(
            "<{}>1 {} {} {} - - [req id=\"{}\" status=\"{}\" latency_ms=\"{}\"] {}",
            16 * 8 + sev,
            v["ts"].as_str().unwrap(),
            v["host"].as_str().unwrap(),
            v["service"].as_str().unwrap(),
            v["request_id"].as_str().unwrap(),
            v["status_code"],
            v["latency_ms"],
            v["message"].as_str().unwrap()
        );
        let p = &mut payloads[i % conns];
        p.extend_from_slice(format!("{} ", msg.len()).as_bytes());
        p.extend_from_slice(msg.as_bytes());
        rows += 1;
    }
    let http = reqwest::Client::new();
    let stored_rows = || async {
        let text = http.get(metrics).send().await.unwrap().text().await.unwrap();
        let series = r#"logmon_ingest_source_rows_total{source="syslog_tcp",outcome="stored"} "#;
        text.lines().find_map(|l| l.strip_prefix(series)).map_or(0, |v| v.trim().parse::<f64>().unwrap() as i64)
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in payloads {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(&p).await.unwrap();
            s.shutdown().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let written = started.elapsed().as_secs_f64();
    let mut stored: i64 = 0;
    let mut last_change = Instant::now();
    while stored < rows as i64 && last_change.elapsed() < Duration::from_secs(30) {
        let n = stored_rows().await;
        if n != stored {
            stored = n;
            last_change = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        r#"{{"sent": {rows}, "stored": {stored}, "seconds": {secs:.3}, "written_in_s": {written:.3}, "rows_per_s": {:.0}}}"#,
        stored as f64 / secs
    );
}
