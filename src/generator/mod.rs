//! `logmon generator`: simulated services sending logs at `--rate` in batches of `--batch`, with
//! scheduled failure scenarios. It never drops a batch silently: 429/503 and connection errors
//! are retried after Retry-After; anything else is counted as failed and reported.
pub mod messages;
pub mod scenario;
pub mod traffic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use scenario::Scenario;
use traffic::Traffic;

#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// The collector's base URL (`/logs` is appended unless present).
    pub url: String,
    pub rate: f64,
    pub batch: usize,
    pub services: Vec<String>,
    pub seed: u64,
    pub duration: Option<Duration>,
    pub scenarios: Vec<Scenario>,
    /// Repeat the demo schedule every 10 minutes (when no scenario is given).
    pub demo: bool,
    pub senders: usize,
    pub report_every: Duration,
}

#[derive(Default)]
struct Counters {
    generated: AtomicU64,
    acked: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    /// Batches (and their logs) given up at shutdown without an acknowledgement.
    dropped_batches: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn drop_batch(&self, logs: usize) {
        self.dropped_batches.fetch_add(1, Ordering::Relaxed);
        self.dropped.fetch_add(logs as u64, Ordering::Relaxed);
    }
}

pub struct Summary {
    pub generated: u64,
    pub acked: u64,
    pub retried: u64,
    pub failed: u64,
    pub dropped: u64,
}

/// At shutdown, how long queued and in-flight batches may still take to be acknowledged.
const FLUSH: Duration = Duration::from_secs(3);

pub async fn run(cfg: GeneratorConfig, shutdown: impl std::future::Future<Output = ()>) -> crate::Result<Summary> {
    let url = if cfg.url.trim_end_matches('/').ends_with("/logs") {
        cfg.url.clone()
    } else {
        format!("{}/logs", cfg.url.trim_end_matches('/'))
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let counters = Arc::new(Counters::default());
    let (tx, rx) = mpsc::channel::<(usize, String)>(cfg.senders.max(1) * 4);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut senders = Vec::new();
    for _ in 0..cfg.senders.max(1) {
        senders.push(tokio::spawn(sender(client.clone(), url.clone(), rx.clone(), counters.clone(), stopping.clone())));
    }

    let mut traffic = Traffic::new(cfg.seed, traffic::profiles(&cfg.services));
    let batch = cfg.batch.max(1);
    let period = Duration::from_secs_f64(batch as f64 / cfg.rate.max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut report = tokio::time::interval(cfg.report_every);
    report.tick().await;
    let started = Instant::now();
    let end = cfg.duration.map(|d| started + d);
    tokio::pin!(shutdown);
    println!(
        "generator: {} logs/s in batches of {batch} to {url} for {}; seed {}",
        cfg.rate,
        cfg.services.join(", "),
        cfg.seed
    );
    'generate: loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = report.tick() => println!("{}", progress(&counters, &active_labels(&cfg, started.elapsed()), started.elapsed())),
            _ = ticker.tick() => {
                let elapsed = started.elapsed();
                if end.is_some_and(|e| Instant::now() >= e) {
                    break;
                }
                let scheduled = schedule(&cfg, elapsed);
                let active: Vec<&Scenario> = scheduled.iter().filter(|s| s.active(elapsed)).collect();
                let logs: Vec<_> = (0..batch).filter_map(|_| traffic.next_log(&active)).collect();
                if logs.is_empty() {
                    continue;
                }
                counters.generated.fetch_add(logs.len() as u64, Ordering::Relaxed);
                let body = serde_json::to_string(&logs)?;
                // A full queue means the collector is slower than --rate (or down): wait, never
                // drop; but a shutdown request ends the wait.
                let n = logs.len();
                tokio::select! {
                    sent = tx.send((n, body)) => if sent.is_err() { break },
                    _ = &mut shutdown => {
                        counters.drop_batch(n);
                        break 'generate;
                    }
                }
            }
        }
    }
    // Queued and in-flight batches get FLUSH to be acknowledged; then the senders give up
    // (the collector may be gone, or the database with it), and what they drop is counted.
    drop(tx);
    let mut senders = futures_util::future::join_all(senders);
    if tokio::time::timeout(FLUSH, &mut senders).await.is_err() {
        let _ = stop.send(true);
        senders.await;
    }
    while let Ok((n, _)) = rx.lock().await.try_recv() {
        counters.drop_batch(n);
    }
    let summary = Summary {
        generated: counters.generated.load(Ordering::Relaxed),
        acked: counters.acked.load(Ordering::Relaxed),
        retried: counters.retried.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        dropped: counters.dropped.load(Ordering::Relaxed),
    };
    println!(
        "generator summary: {:.0}s, generated {}, acked {}, retried {} times, failed {}",
        started.elapsed().as_secs_f64(),
        summary.generated,
        summary.acked,
        summary.retried,
        summary.failed
    );
    let dropped_batches = counters.dropped_batches.load(Ordering::Relaxed);
    if dropped_batches > 0 {
        println!(
            "generator: {dropped_batches} batches ({} logs) were never acknowledged and were dropped at shutdown",
            summary.dropped
        );
    }
    Ok(summary)
}

fn schedule(cfg: &GeneratorConfig, elapsed: Duration) -> Vec<Scenario> {
    let mut all = cfg.scenarios.clone();
    if cfg.demo {
        let cycle = (elapsed.as_secs() / 600) as u32;
        all.extend(scenario::demo_schedule(cycle));
    }
    all
}

fn active_labels(cfg: &GeneratorConfig, elapsed: Duration) -> String {
    let active: Vec<String> = schedule(cfg, elapsed)
        .iter()
        .filter(|s| s.active(elapsed))
        .map(|s| format!("{} ({}s left)", s.label(), (s.at + s.duration - elapsed).as_secs()))
        .collect();
    if active.is_empty() { "normal traffic".into() } else { active.join(", ") }
}

fn progress(c: &Counters, scenario: &str, elapsed: Duration) -> String {
    format!(
        "generator: t={:>4}s sent {} acked {} retried {} failed {} | {scenario}",
        elapsed.as_secs(),
        c.generated.load(Ordering::Relaxed),
        c.acked.load(Ordering::Relaxed),
        c.retried.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed)
    )
}

async fn sender(
    client: reqwest::Client,
    url: String,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<(usize, String)>>>,
    counters: Arc<Counters>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = async { rx.lock().await.recv().await } => next,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some((n, body)) = next else { return };
        let mut backoff = Duration::from_millis(200);
        loop {
            let attempt = client.post(&url).header("content-type", "application/json").body(body.clone()).send();
            let r = tokio::select! {
                r = attempt => r,
                _ = stop.wait_for(|s| *s) => {
                    counters.drop_batch(n);
                    return;
                }
            };
            let wait = match r {
                Ok(r) if r.status().is_success() => {
                    counters.acked.fetch_add(n as u64, Ordering::Relaxed);
                    break;
                }
                Ok(r) if r.status() == 429 || r.status().is_server_error() => {
                    let after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    after.map(Duration::from_secs).unwrap_or(backoff)
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    tracing::error!(%status, body = %text, rows = n, "collector refused a batch; not retrying it");
                    counters.failed.fetch_add(n as u64, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "collector unreachable; retrying");
                    backoff
                }
            };
            counters.retried.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => {
                    counters.drop_batch(n);
                    return;
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}
