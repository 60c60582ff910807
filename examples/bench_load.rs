//! History for scripts/bench.sh, written the way the collector writes (kept out of the binary):
//! the generator's realistic services and messages, validated and given their pattern in Rust,
//! COPYed straight into their partitions with the rollup and pattern deltas in each transaction
//! (`ingest::copy_sink`), so every figure stays exact without a rebuild.
//!
//!   bench_load --db URL --rows N [--services S] [--span SECONDS] [--late F --late-max SECONDS]
//!              [--shuffle] [--tsv FILE]
//!
//! Rows' timestamps run evenly over the last `span` seconds, in order (a live stream), except a
//! share `late` of them stamped up to `late-max` seconds earlier (late arrivals, backfills), or
//! in random order with `--shuffle`. With `--tsv FILE` the rows are written to a file for a plain
//! `\copy logs FROM ...` instead (the SQL writers' path). Prints one JSON line.
use std::io::Write;
use std::time::Instant;

use chrono::{Duration, Utc};
use logmon::generator::traffic::{Traffic, profiles};
use logmon::ingest::LogRecord;
use logmon::ingest::copy_sink::{CopySink, Encoded};
use logmon::ingest::item::Item;
use logmon::ingest::validate::{Limits, TsRange, validate_item};
use rand::{RngExt, SeedableRng};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).map(|i| args[i + 1].clone())
}

const BATCH: usize = 10_000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = arg(&args, "--db").expect("--db URL");
    let rows: usize = arg(&args, "--rows").expect("--rows N").parse().unwrap();
    let services: usize = arg(&args, "--services").map(|s| s.parse().unwrap()).unwrap_or(20);
    let span: f64 = arg(&args, "--span").map(|s| s.parse().unwrap()).unwrap_or(3600.0);
    let late: f64 = arg(&args, "--late").map(|s| s.parse().unwrap()).unwrap_or(0.0);
    let late_max: f64 = arg(&args, "--late-max").map(|s| s.parse().unwrap()).unwrap_or(3600.0);
    let shuffle = args.iter().any(|a| a == "--shuffle");
    let tsv = arg(&args, "--tsv");

    let names: Vec<String> = (0..services).map(|i| format!("svc-{i:02}")).collect();
    let mut traffic = Traffic::new(rows as u64 ^ 0x5eed, profiles(&names));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let now = Utc::now();
    let range = TsRange { oldest: now - Duration::days(7), newest: now + Duration::days(1) };
    let limits = Limits::default();
    let mut extractor = logmon::pattern::Extractor::new();
    let sink = if tsv.is_none() { Some(CopySink::connect(&db).await.expect("connect")) } else { None };
    let compactor = logmon::db::connect(&db).await.expect("connect");
    let mut file = tsv.as_ref().map(|p| std::io::BufWriter::new(std::fs::File::create(p).unwrap()));

    let started = Instant::now();
    let mut batch: Vec<LogRecord> = Vec::with_capacity(BATCH);
    for i in 0..rows {
        let g = traffic.next_generated(&[]).expect("no scenario, no outage");
        let mut age = span * (1.0 - (i as f64 + 0.5) / rows as f64);
        if shuffle {
            age = rng.random::<f64>() * span;
        } else if late > 0.0 && rng.random_bool(late) {
            age += rng.random::<f64>() * late_max;
        }
        let ts = now - Duration::microseconds((age * 1e6) as i64);
        let mut item = g.to_json();
        item["ts"] = serde_json::Value::String(ts.to_rfc3339());
        let mut r = validate_item(i, Item::from_value(item), &limits, range, now).expect("generated logs are valid");
        r.pattern_id = r.message.as_deref().map(|m| extractor.extract(m).0);
        if let Some(f) = file.as_mut() {
            let attrs = r.attrs.as_ref().map(|a| a.to_string()).unwrap_or_else(|| "\\N".into());
            writeln!(
                f,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.ts.to_rfc3339(),
                r.service,
                r.level.as_str(),
                r.status_code.map(|c| c.to_string()).unwrap_or_else(|| "\\N".into()),
                r.latency_ms.map(|l| l.to_string()).unwrap_or_else(|| "\\N".into()),
                r.message.as_deref().unwrap_or("").replace('\\', "\\\\").replace('\t', " "),
                attrs.replace('\\', "\\\\"),
            )
            .unwrap();
            continue;
        }
        batch.push(r);
        if batch.len() == BATCH {
            let rows = Encoded::new(std::mem::take(&mut batch)).expect("encode");
            sink.as_ref().unwrap().write(&[&rows]).await.expect("COPY");
            // as collectors and detectors do every second: deltas never pile up
            if (i / BATCH).is_multiple_of(10) {
                compactor.batch_execute("SELECT compact_rollup(), compact_patterns()").await.expect("compact");
            }
        }
    }
    if let Some(s) = sink.as_ref()
        && !batch.is_empty()
    {
        s.write(&[&Encoded::new(batch).expect("encode")]).await.expect("COPY");
    }
    if let Some(mut f) = file {
        f.flush().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(r#"{{"rows": {rows}, "seconds": {secs:.1}, "rows_per_s": {:.0}}}"#, rows as f64 / secs);
}
