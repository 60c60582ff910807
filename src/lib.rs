//! logmon: log ingestion and incident detection on PostgreSQL. The module tree follows the data:
//! `api` (HTTP) and `syslog` (TCP/UDP listeners) -> `ingest` (decode, validate, group commit, COPY) -> PostgreSQL (`sql/`) ->
//! `detector` (thin loop around `detect_incidents()`) -> `notify` (outbox -> webhooks, Slack,
//! Alertmanager). `rules` is the `logmon rules` subcommand: list the rules, replay them over past
//! traffic.
pub mod api;
pub mod cli;
pub mod collector;
pub mod db;
pub mod detector;
pub mod generator;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod pattern;
pub mod rules;
pub mod syslog;
pub mod telemetry;
pub mod up;

/// Errors at the top of a subcommand: printed once, then the process exits non-zero.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T = ()> = std::result::Result<T, BoxError>;

/// Resolves on Ctrl-C or SIGTERM: every long-running subcommand stops cleanly on either. A
/// second signal while stopping ends the process at once.
pub async fn shutdown_signal() {
    signal().await;
    tracing::info!("shutdown requested (a second Ctrl-C or SIGTERM exits at once)");
    tokio::spawn(async {
        signal().await;
        eprintln!("logmon: second shutdown signal; exiting now");
        std::process::exit(130);
    });
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
