//! Detection benchmarks for scripts/bench.sh (kept out of the `logmon` binary).
//!
//!   detect_bench tick --db URL --calls N
//!       p50/p99 of one `SELECT * FROM detect_incidents()` call.
//!   detect_bench latency --db URL --collector URL --trials N
//!       time from the COMMIT of a batch that crosses ERROR_SPIKE's threshold (its 200 answer)
//!       to the incident being committed (its NOTIFY on logmon_incidents), with a detector running.
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

fn arg(args: &[String], name: &str) -> String {
    let i = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("missing {name}"));
    args[i + 1].clone()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = arg(&args, "--db");
    let (client, mut conn) = tokio_postgres::connect(&db, NoTls).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = s.next().await {
            if let AsyncMessage::Notification(n) = m {
                let _ = tx.send((Instant::now(), n.payload().to_string()));
            }
        }
    });
    match args[1].as_str() {
        "tick" => {
            let calls: usize = arg(&args, "--calls").parse().unwrap();
            let mut ms = Vec::new();
            for _ in 0..calls {
                let t = Instant::now();
                client.query("SELECT * FROM detect_incidents()", &[]).await.unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            println!(r#"{{"p50_ms": {:.2}, "p99_ms": {:.2}}}"#, pct(&mut ms, 0.5), pct(&mut ms, 0.99));
        }
        "latency" => {
            let url = format!("{}/logs", arg(&args, "--collector"));
            let trials: usize = arg(&args, "--trials").parse().unwrap();
            client.batch_execute("LISTEN logmon_incidents").await.unwrap();
            let http = reqwest::Client::new();
            let mut ms = Vec::new();
            for t in 0..trials {
                let service = format!("trial-{t}-{:x}", rand::random::<u32>());
                let body: Vec<_> = (0..600)
                    .map(|_| serde_json::json!({"service": service, "level": "ERROR", "message": "boom"}))
                    .collect();
                while rx.try_recv().is_ok() {}
                let r = http.post(&url).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let committed = Instant::now();
                let id: i64 = loop {
                    let (at, payload) =
                        tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.unwrap().unwrap();
                    let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
                    let id = v["id"].as_i64().unwrap();
                    let row = client.query_one("SELECT service FROM incidents WHERE id = $1", &[&id]).await.unwrap();
                    if row.get::<_, String>(0) == service && v["event"] == "opened" {
                        ms.push(at.duration_since(committed).as_secs_f64() * 1000.0);
                        break id;
                    }
                };
                let _ = id;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            println!(
                r#"{{"trials": {trials}, "p50_ms": {:.1}, "p99_ms": {:.1}}}"#,
                pct(&mut ms.clone(), 0.5),
                pct(&mut ms, 0.99)
            );
        }
        _ => eprintln!("usage: detect_bench tick|latency ..."),
    }
}
