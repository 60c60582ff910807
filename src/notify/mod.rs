//! Notifications out: the detector's delivery loop. It leases due deliveries from the outbox
//! (claim_notifications()), renders each for its target (render_notification()), POSTs them
//! concurrently, and reports every outcome to record_delivery(), where the retry policy lives.
//! It wakes on NOTIFY logmon_incidents and polls for retries that come due. For Alertmanager,
//! which forgets an alert that is not re-sent, it also re-posts every unresolved incident each
//! `resend` (alertmanager_alerts()), as Prometheus does.
pub mod send;
pub mod target;

use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};
use tokio_postgres::Client;

use crate::db::{self, DbError};
use crate::detector::listener;
pub use target::{Kind, Target};

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub targets: Vec<Target>,
    /// Where people reach logmon's API and dashboard: links in notifications.
    pub public_url: String,
    /// Longest wait before looking for due retries.
    pub poll: Duration,
    /// How often firing alerts are re-posted to Alertmanager.
    pub resend: Duration,
    /// Per-request HTTP timeout.
    pub timeout: Duration,
}

impl NotifyConfig {
    pub fn new(targets: Vec<Target>, public_url: String) -> NotifyConfig {
        NotifyConfig {
            targets,
            public_url,
            poll: Duration::from_secs(1),
            resend: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// How long a claimed delivery stays ours: past it, another detector may retry it.
const LEASE_SECONDS: f64 = 60.0;
const CLAIM_BATCH: i32 = 50;

/// Runs until the task is dropped; reconnects with backoff when the database goes away.
pub async fn run(cfg: NotifyConfig, database_url: String) {
    if cfg.targets.is_empty() {
        return;
    }
    let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
    tracing::info!(targets = ?names, "delivering notifications");
    let http = send::client(cfg.timeout);
    let mut backoff = Duration::from_millis(500);
    loop {
        let e = session(&cfg, &database_url, &http).await.expect_err("a session only ends with an error");
        tracing::warn!(error = %e, retry_in = ?backoff, "notifier lost the database; reconnecting");
        sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn session(cfg: &NotifyConfig, url: &str, http: &reqwest::Client) -> Result<(), DbError> {
    let mut wakeups = listener::listen(url, "logmon_incidents").await?;
    let client = db::connect(url).await?;
    client.batch_execute("SET application_name = 'logmon-notifier'; SET statement_timeout = '30s'").await?;
    let mut next_resend = Instant::now();
    loop {
        if Instant::now() >= next_resend {
            resend_firing(cfg, &client, http).await?;
            next_resend = Instant::now() + cfg.resend;
        }
        while deliver_due(cfg, &client, http).await? > 0 {}
        // Woken by a new incident change, or by the poll for retries that came due.
        if let Ok(None) = timeout(cfg.poll, wakeups.wakeups.recv()).await {
            return Err(DbError::ListenClosed);
        }
    }
}

/// One claim: delivers what was due and returns how many that was.
async fn deliver_due(cfg: &NotifyConfig, client: &Client, http: &reqwest::Client) -> Result<usize, DbError> {
    let names: Vec<String> = cfg.targets.iter().map(|t| t.name.clone()).collect();
    let formats: Vec<String> = cfg.targets.iter().map(|t| t.kind.format().to_string()).collect();
    let claimed = client
        .query(
            "SELECT c.delivery_id, c.target, c.kind, c.attempt, c.idempotency_key,
                    render_notification(c.outbox_id, t.format, $3)
             FROM claim_notifications($1, $4, make_interval(secs => $5)) c
             JOIN unnest($1::text[], $2::text[]) AS t (name, format) ON t.name = c.target",
            &[&names, &formats, &cfg.public_url, &CLAIM_BATCH, &LEASE_SECONDS],
        )
        .await?;
    let attempts = claimed.iter().map(|row| {
        let target = cfg.targets.iter().find(|t| t.name == row.get::<_, String>(1)).expect("claimed for our targets");
        let key: String = row.get(4);
        let body: serde_json::Value = row.get(5);
        async move { send::post(http, target, &body, Some(&key)).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    for (row, attempt) in claimed.iter().zip(results) {
        let (id, target, kind, n): (i64, String, String, i32) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let status: String = client
            .query_one(
                "SELECT record_delivery($1, $2, $3, make_interval(secs => $4))",
                &[&id, &attempt.http_status, &attempt.error, &attempt.retry_after.map(|d| d.as_secs_f64())],
            )
            .await?
            .get(0);
        match status.as_str() {
            "delivered" => tracing::info!(delivery = id, target, kind, attempt = n, "notification delivered"),
            "pending" => {
                tracing::warn!(delivery = id, target, kind, attempt = n, error = ?attempt.error, "notification failed; will retry")
            }
            _ => {
                tracing::error!(delivery = id, target, kind, attempt = n, error = ?attempt.error, "notification {status}")
            }
        }
    }
    Ok(claimed.len())
}

/// Alertmanager resolves an alert nobody re-sends within its endsAt: keep the live ones alive.
async fn resend_firing(cfg: &NotifyConfig, client: &Client, http: &reqwest::Client) -> Result<(), DbError> {
    let managers: Vec<&Target> = cfg.targets.iter().filter(|t| t.kind == Kind::Alertmanager).collect();
    if managers.is_empty() {
        return Ok(());
    }
    let hold = cfg.resend.as_secs_f64() * 5.0;
    let alerts: serde_json::Value = client
        .query_one("SELECT alertmanager_alerts($1, make_interval(secs => $2))", &[&cfg.public_url, &hold])
        .await?
        .get(0);
    if alerts.as_array().is_some_and(|a| a.is_empty()) {
        return Ok(());
    }
    for am in managers {
        let attempt = send::post(http, am, &alerts, None).await;
        if attempt.error.is_some() {
            tracing::warn!(target = am.name, error = ?attempt.error, "re-sending firing alerts to Alertmanager failed");
        }
    }
    Ok(())
}
