//! `logmon detector`: a thin loop around `detect_incidents()`. It wakes on new data (LISTEN
//! logmon_ingest, debounced) and every `interval` (so quiet services and resolutions are still
//! evaluated), compacts the rollup, keeps the newest block ranges of the time index summarized,
//! runs partition maintenance, and survives database outages by
//! reconnecting with backoff. Any number may run at once: the SQL serialises them. Next to it
//! runs the notifier (`crate::notify`), which delivers the outbox.
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};
use tokio_postgres::Client;

use crate::db;

#[derive(Debug, Clone)]
pub struct DetectorConfig {
    pub database_url: String,
    pub interval: Duration,
    pub debounce: Duration,
    pub maintenance_interval: Duration,
    /// Notification targets; none = the outbox is left alone (another detector may deliver it).
    pub notify: crate::notify::NotifyConfig,
}

pub async fn run(cfg: DetectorConfig, shutdown: impl std::future::Future<Output = ()>) -> crate::Result {
    let instance = format!("{}:{}", hostname(), std::process::id());
    tokio::pin!(shutdown);
    // Dropped (aborted) when the detector stops: a delivery cut short is retried after its lease.
    let notifier = AbortOnDrop(tokio::spawn(crate::notify::run(cfg.notify.clone(), cfg.database_url.clone())));
    let mut backoff = Duration::from_millis(500);
    loop {
        let started = Instant::now();
        tokio::select! {
            _ = &mut shutdown => break,
            result = session(&cfg, &instance) => {
                let e = result.expect_err("a session only ends with an error");
                // A session that ran a while was a recovery: the next outage starts from a short wait.
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_millis(500);
                }
                tracing::warn!(error = %e, retry_in = ?backoff, "detector lost the database; reconnecting");
            }
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    drop(notifier);
    tracing::info!("detector stopped");
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "host".into())
}

/// One connected stretch: runs until the database goes away.
async fn session(cfg: &DetectorConfig, instance: &str) -> Result<(), db::DbError> {
    let mut listener = db::listen::listen(&cfg.database_url, "logmon_ingest").await?;
    let client = db::connect(&cfg.database_url).await?;
    client.batch_execute("SET application_name = 'logmon-detector'; SET statement_timeout = '60s'").await?;
    client
        .execute(
            "INSERT INTO detector_heartbeat (instance, started_at, last_tick_at) VALUES ($1, now(), now())
             ON CONFLICT (instance) DO UPDATE SET started_at = now()",
            &[&instance],
        )
        .await?;
    tracing::info!(interval = ?cfg.interval, "detector connected; listening for new data");
    let mut next_maintenance = Instant::now();
    let mut summarize_failures = Throttle::default();
    loop {
        if Instant::now() >= next_maintenance {
            let made = client.query("SELECT action, partition_name FROM maintain_partitions()", &[]).await?;
            for r in made {
                tracing::info!(
                    action = r.get::<_, String>(0),
                    partition = r.get::<_, String>(1),
                    "partition maintenance"
                );
            }
            let pruned: i64 = client.query_one("SELECT prune_notifications()", &[]).await?.get(0);
            if pruned > 0 {
                tracing::info!(pruned, "settled notifications past retention deleted");
            }
            next_maintenance = Instant::now() + cfg.maintenance_interval;
        }
        tick(&client, instance, &mut summarize_failures).await?;

        // Sleep until new data (then gather the burst for `debounce`) or the interval passes.
        match timeout(cfg.interval, listener.wakeups.recv()).await {
            Ok(Some(())) => {
                sleep(cfg.debounce).await;
                while listener.wakeups.try_recv().is_ok() {}
            }
            Ok(None) => return Err(db::DbError::ListenClosed),
            Err(_) => {}
        }
    }
}

async fn tick(client: &Client, instance: &str, summarize_failures: &mut Throttle) -> Result<(), db::DbError> {
    let started = Instant::now();
    let result = client
        .query("SELECT incident_id, action, service, incident_type, severity, summary FROM detect_incidents()", &[])
        .await;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(rows) => {
            for r in rows {
                let action: String = r.get(1);
                let (id, service, kind, severity, summary): (i64, String, String, String, String) =
                    (r.get(0), r.get(2), r.get(3), r.get(4), r.get(5));
                if action == "updated" {
                    tracing::debug!(id, action, service, incident_type = kind, severity, "incident {summary}");
                } else {
                    tracing::info!(id, action, service, incident_type = kind, severity, "incident {summary}");
                }
            }
            client.execute("SELECT compact_rollup(), compact_patterns()", &[]).await?;
            summarize_time_index(client, summarize_failures).await?;
            client
                .execute(
                    "UPDATE detector_heartbeat SET last_tick_at = now(), last_success_at = now(), last_duration_ms = $2,
                            ticks = ticks + 1, last_error = NULL WHERE instance = $1",
                    &[&instance, &took],
                )
                .await?;
            Ok(())
        }
        Err(e) => {
            let msg = db::describe(&e);
            tracing::error!(error = %msg, "detect_incidents() failed");
            let _ = client
                .execute(
                    "UPDATE detector_heartbeat SET last_tick_at = now(), last_error = $2 WHERE instance = $1",
                    &[&instance, &msg],
                )
                .await;
            if client.is_closed() { Err(e.into()) } else { Ok(()) }
        }
    }
}

/// Summarizes the time index's newest block ranges (sql/summarize_time_index.sql), which
/// autosummarize drops after bursts. Search is slower without it but nothing is wrong, so a
/// failure is logged (once a minute while it lasts: a missing grant would fail every tick) and
/// the tick goes on; a closed connection ends the session as elsewhere.
async fn summarize_time_index(client: &Client, failures: &mut Throttle) -> Result<(), db::DbError> {
    match client.query_one("SELECT summarize_time_index()", &[]).await {
        Ok(row) => {
            let summarized: i64 = row.get(0);
            if summarized > 0 {
                tracing::debug!(summarized, "time index block ranges summarized");
            }
            if failures.recovered() {
                tracing::info!("summarize_time_index() works again");
            }
            Ok(())
        }
        Err(e) if client.is_closed() => Err(e.into()),
        Err(e) => {
            if let Some(held_back) = failures.failed(Instant::now()) {
                tracing::warn!(error = %db::describe(&e), held_back, "summarize_time_index() failed");
            }
            Ok(())
        }
    }
}

/// A failure that repeats every tick, logged at most once per `THROTTLE`.
#[derive(Debug, Default)]
struct Throttle {
    /// When it was last logged, while it keeps failing.
    logged: Option<Instant>,
    /// Failures since then, not logged.
    held_back: u64,
}

const THROTTLE: Duration = Duration::from_secs(60);

impl Throttle {
    /// A failure at `now`: Some(failures held back since the last one logged) if it is to be logged.
    fn failed(&mut self, now: Instant) -> Option<u64> {
        match self.logged {
            Some(at) if now.duration_since(at) < THROTTLE => {
                self.held_back += 1;
                None
            }
            _ => {
                self.logged = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }

    /// A success: whether it ends a run of failures that was logged.
    fn recovered(&mut self) -> bool {
        self.held_back = 0;
        self.logged.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_that_repeats_every_tick_is_logged_once_a_minute_with_what_was_held_back() {
        let mut t = Throttle::default();
        let start = Instant::now();
        assert_eq!(t.failed(start), Some(0), "the first failure is logged");
        assert_eq!(t.failed(start + Duration::from_secs(1)), None);
        assert_eq!(t.failed(start + Duration::from_secs(59)), None);
        assert_eq!(t.failed(start + Duration::from_secs(60)), Some(2), "a minute later, with the two held back");
        assert!(t.recovered(), "a success after logged failures is a recovery");
        assert!(!t.recovered(), "and only once");
        assert_eq!(t.failed(start + Duration::from_secs(61)), Some(0), "a new failure is logged at once");
    }
}
