//! Connections to PostgreSQL: the pool used by the HTTP API and the ingest writers, and
//! dedicated connections for LISTEN and migrations.
pub mod listen;
pub mod migrate;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{Client, NoTls};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("database: the LISTEN connection closed")]
    ListenClosed,
    #[error("invalid database url: {0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("sql/{0} failed: {1}")]
    SqlFile(String, String),
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => DbError::Postgres(e),
            other => DbError::Pool(other.to_string()),
        }
    }
}

/// tokio-postgres prints "db error" for server errors; the server's message is what helps.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

pub fn parse_config(url: &str) -> Result<tokio_postgres::Config, DbError> {
    let mut cfg: tokio_postgres::Config =
        url.parse().map_err(|e: tokio_postgres::Error| DbError::Config(e.to_string()))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(5));
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("logmon");
    }
    Ok(cfg)
}

/// The API's connections. Every statement is bounded (the functions behind the API keep well
/// inside it; this is the backstop that no request can hold a connection longer).
pub fn pool(url: &str, size: usize) -> Result<Pool, DbError> {
    let mut cfg = parse_config(url)?;
    let options = format!("{} -c statement_timeout=15s", cfg.get_options().unwrap_or_default());
    cfg.options(options.trim());
    let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(mgr)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

/// A dedicated connection; the driver task is spawned and logs when the connection ends.
pub async fn connect(url: &str) -> Result<Client, DbError> {
    let cfg = parse_config(url)?;
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}
