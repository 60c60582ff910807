//! `logmon collector`: builds the application (pool, group-commit writers, HTTP routes) and
//! serves it until Ctrl-C / SIGTERM, then stops accepting and finishes in-flight requests.
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Pool;

use crate::api::{self, ApiLimits, AppState};
use crate::db;
use crate::ingest::batcher::{Batcher, BatcherConfig};
use crate::ingest::pipeline::{IngestLimits, Pipeline};
use crate::ingest::validate::TsRange;
use crate::metrics::Metrics;
use crate::syslog;

#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub database_url: String,
    pub listen: SocketAddr,
    pub pool_size: usize,
    pub batcher: BatcherConfig,
    pub limits: ApiLimits,
    pub ingest: IngestLimits,
    pub server: crate::api::server::ServerLimits,
    pub syslog: crate::syslog::SyslogConfig,
}

pub async fn run(
    cfg: CollectorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> crate::Result {
    let pool = db::pool(&cfg.database_url, cfg.pool_size)?;
    let metrics = Arc::new(Metrics::new());
    let batcher = Batcher::start(cfg.database_url.clone(), cfg.batcher.clone(), metrics.clone());
    let ts_range = Arc::new(RwLock::new(default_ts_range()));
    tokio::spawn(refresh_ts_range(pool.clone(), ts_range.clone()));
    tokio::spawn(compact(pool.clone()));

    let pipeline = Pipeline::new(batcher, cfg.ingest.clone(), ts_range, metrics.clone());
    // One stop signal for the HTTP server and the syslog listeners. The syslog sockets are bound
    // first, so that once HTTP answers every listener does.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let syslog =
        syslog::Listeners::start(cfg.syslog.clone(), pipeline.clone(), metrics.clone(), stop_rx.clone()).await?;
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState { pool, pipeline, metrics, limits: Arc::new(cfg.limits.clone()) };
    tracing::info!(%addr, "collector listening on http://{addr}");
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut stopped = stop_rx.clone();
    let stopped = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    api::server::serve(api::routes(state), listener, cfg.server.clone(), stopped).await;
    syslog.join().await;
    tracing::info!("collector stopped");
    Ok(())
}

/// Until the database tells us its retention, assume the default (7 days back, 1 day ahead).
fn default_ts_range() -> TsRange {
    let now = Utc::now();
    TsRange {
        oldest: now - chrono::Duration::days(7) + chrono::Duration::minutes(5),
        newest: now + chrono::Duration::days(1),
    }
}

/// Keeps the accepted ts range in step with `logmon_settings` (a DBA may change retention).
async fn refresh_ts_range(pool: Pool, range: Arc<RwLock<TsRange>>) {
    loop {
        let fetched = async {
            let c = pool.get().await.ok()?;
            let row = c.query_one("SELECT oldest, newest FROM accepted_ts_range()", &[]).await.ok()?;
            Some(TsRange { oldest: row.get(0), newest: row.get(1) })
        }
        .await;
        if let Some(r) = fetched {
            *range.write().expect("ts range lock") = r;
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}

/// Folds rollup and pattern deltas every second, as every detector tick does: readers' cost must
/// not depend on whether a detector is running (a collector ingesting alone would otherwise pile
/// up deltas that every /stats, /patterns and search has to add up). Any number of collectors and
/// detectors may call it: one compacts at a time (an advisory lock), the others skip.
async fn compact(pool: Pool) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(c) = pool.get().await else { continue };
        if let Err(e) = c.batch_execute("SELECT compact_rollup(), compact_patterns()").await {
            tracing::debug!(error = %e, "compaction skipped");
        }
    }
}
