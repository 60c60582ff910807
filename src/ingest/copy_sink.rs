//! Writes one group-commit batch: `COPY logs FROM STDIN (FORMAT binary)` plus the rollup deltas
//! of the same rows, in one transaction. Either all of it commits or none of it does.
use deadpool_postgres::Pool;
use futures_util::pin_mut;
use postgres_types::Type;
use tokio_postgres::binary_copy::BinaryCopyInWriter;

use super::LogRecord;
use super::rollup::Deltas;
use crate::db::DbError;

const COPY_SQL: &str = "COPY logs (ts, service, level, status_code, latency_ms, message, attrs) FROM STDIN (FORMAT binary)";
const TYPES: &[Type] = &[
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::FLOAT8,
    Type::TEXT,
    Type::JSONB,
];

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The rows themselves were refused (a constraint the validator does not know about).
    #[error("rows refused by the database: {0}")]
    Data(String),
    /// A row's ts has no partition (maintenance has not run): worth one retry after it does.
    #[error("no partition for a row: {0}")]
    NoPartition(String),
    /// The database is unreachable or failed: retryable by the sender.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for SinkError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            if db.message().starts_with("no partition of relation") {
                return SinkError::NoPartition(db.message().to_string());
            }
            // Class 22 (data exception) and 23 (integrity constraint): the data, not the database.
            if code.starts_with("22") || code.starts_with("23") {
                return SinkError::Data(crate::db::describe(&e));
            }
        }
        SinkError::Db(DbError::Postgres(e))
    }
}

/// Stores `batches` (each one HTTP request's records) in one transaction; returns rows stored.
pub async fn write(pool: &Pool, batches: &[&[LogRecord]]) -> Result<u64, SinkError> {
    let mut client = pool.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await?;
    // The rollup deltas below account for these rows, so the logs trigger must skip them.
    tx.batch_execute("SET LOCAL logmon.rollup_recorded = 'on'")
        .await?;

    let sink = tx.copy_in(COPY_SQL).await?;
    let writer = BinaryCopyInWriter::new(sink, TYPES);
    pin_mut!(writer);
    let mut deltas = Deltas::default();
    let mut rows = 0u64;
    for batch in batches {
        for r in batch.iter() {
            writer
                .as_mut()
                .write(&[
                    &r.ts,
                    &r.service,
                    &r.level.as_str(),
                    &r.status_code,
                    &r.latency_ms,
                    &r.message,
                    &r.attrs,
                ])
                .await?;
            deltas.add(r);
            rows += 1;
        }
    }
    // Dropping the writer without finish() would discard the batch silently (FIELD-NOTES).
    writer.finish().await?;

    let c = deltas.columns();
    tx.execute(
        "SELECT record_rollup($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &c.services,
            &c.buckets,
            &c.totals,
            &c.errors,
            &c.latency_counts,
            &c.latency_sums,
            &c.latency_maxes,
            &c.hists,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Creates missing partitions (when a row had none); the caller then retries its batch.
pub async fn ensure_partitions(pool: &Pool) -> Result<(), DbError> {
    let client = pool.get().await?;
    client
        .execute("SELECT count(*) FROM maintain_partitions()", &[])
        .await?;
    Ok(())
}
