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
    let mut unrecorded = Vec::new();
    loop {
        let started = Instant::now();
        let e =
            session(&cfg, &database_url, &http, &mut unrecorded).await.expect_err("a session only ends with an error");
        // A session that ran a while was a recovery: the next outage starts from a short wait.
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(500);
        }
        tracing::warn!(error = %e, retry_in = ?backoff, "notifier lost the database; reconnecting");
        sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// What a receiver answered while the database could not be told: kept (at most one claim's
/// worth, CLAIM_BATCH) and recorded first when the database is back. Sending again instead would
/// deliver twice a notification the receiver already accepted; the lease (LEASE_SECONDS) keeps
/// other detectors off these deliveries meanwhile. An outage longer than the lease, or a detector
/// that dies holding them, still means at-least-once: receivers dedupe by Idempotency-Key.
struct Outcome {
    delivery: i64,
    target: String,
    kind: String,
    n: i32,
    attempt: send::Attempt,
}

async fn session(
    cfg: &NotifyConfig,
    url: &str,
    http: &reqwest::Client,
    unrecorded: &mut Vec<Outcome>,
) -> Result<(), DbError> {
    let mut wakeups = db::listen::listen(url, "logmon_incidents").await?;
    let client = db::connect(url).await?;
    client.batch_execute("SET application_name = 'logmon-notifier'; SET statement_timeout = '30s'").await?;
    record_all(&client, unrecorded).await?;
    let mut next_resend = Instant::now();
    loop {
        if Instant::now() >= next_resend {
            resend_firing(cfg, &client, http).await?;
            next_resend = Instant::now() + cfg.resend;
        }
        while deliver_due(cfg, &client, http, unrecorded).await? > 0 {}
        // Woken by a new incident change, or by the poll for retries that came due.
        if let Ok(None) = timeout(cfg.poll, wakeups.wakeups.recv()).await {
            return Err(DbError::ListenClosed);
        }
    }
}

/// One claim: delivers what was due and returns how many that was.
async fn deliver_due(
    cfg: &NotifyConfig,
    client: &Client,
    http: &reqwest::Client,
    unrecorded: &mut Vec<Outcome>,
) -> Result<usize, DbError> {
    let names: Vec<String> = cfg.targets.iter().map(|t| t.name.clone()).collect();
    let claimed = client
        .query(
            "SELECT delivery_id, outbox_id, target, kind, attempt, idempotency_key
             FROM claim_notifications($1, $2, make_interval(secs => $3))",
            &[&names, &CLAIM_BATCH, &LEASE_SECONDS],
        )
        .await?;
    let mut ready = Vec::with_capacity(claimed.len());
    for row in &claimed {
        let (id, outbox_id, name): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
        let target = cfg.targets.iter().find(|t| t.name == name).expect("claimed for our targets");
        // Rendered one by one: a notification that cannot be rendered fails alone, it does not
        // stop the others.
        let rendered = client
            .query_one("SELECT render_notification($1, $2, $3)", &[&outbox_id, &target.kind.format(), &cfg.public_url])
            .await;
        match rendered {
            Ok(r) => ready.push((row, target, r.get::<_, serde_json::Value>(0))),
            Err(e) if e.as_db_error().is_some() => {
                let attempt = send::Attempt {
                    http_status: None,
                    error: Some(format!("render_notification failed: {}", db::describe(&e))),
                    retry_after: None,
                };
                record(client, id, &name, row.get(3), row.get(4), &attempt).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let attempts = ready.iter().map(|(row, target, body)| {
        let key: String = row.get(5);
        async move { send::post(http, target, body, Some(&key)).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    unrecorded.extend(ready.iter().zip(results).map(|((row, target, _), attempt)| Outcome {
        delivery: row.get(0),
        target: target.name.clone(),
        kind: row.get(3),
        n: row.get(4),
        attempt,
    }));
    record_all(client, unrecorded).await?;
    Ok(claimed.len())
}

/// Records the outcomes in order; those the database could not take (it went away) stay for the
/// next session. One the database refuses (e.g. its delivery was pruned meanwhile) is dropped
/// with an error: kept, it would end every session.
async fn record_all(client: &Client, outcomes: &mut Vec<Outcome>) -> Result<(), DbError> {
    while let Some(o) = outcomes.first() {
        match record(client, o.delivery, &o.target, o.kind.clone(), o.n, &o.attempt).await {
            Ok(()) => {}
            Err(DbError::Postgres(e)) if refused(&e) => {
                tracing::error!(delivery = o.delivery, error = %db::describe(&e), "could not record a notification's outcome");
            }
            Err(e) => return Err(e),
        }
        outcomes.remove(0);
    }
    Ok(())
}

/// The server answered and said no, as opposed to a connection that failed or a server going
/// down (classes 08, 57, 53) or a transient conflict (40): retrying would not help.
fn refused(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| !["08", "57", "53", "40"].contains(&&d.code().code()[..2]))
}

async fn record(
    client: &Client,
    id: i64,
    target: &str,
    kind: String,
    n: i32,
    attempt: &send::Attempt,
) -> Result<(), DbError> {
    let status: String = client
        .query_one(
            "SELECT record_delivery($1, $2, $3, make_interval(secs => $4))",
            &[&id, &attempt.http_status, &attempt.error, &attempt.retry_after.map(|d| d.as_secs_f64())],
        )
        .await?
        .get(0);
    let error = &attempt.error;
    match status.as_str() {
        "delivered" => tracing::info!(delivery = id, target, kind, attempt = n, "notification delivered"),
        "pending" => {
            tracing::warn!(delivery = id, target, kind, attempt = n, ?error, "notification failed; will retry")
        }
        _ => tracing::error!(delivery = id, target, kind, attempt = n, ?error, "notification {status}"),
    }
    Ok(())
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
