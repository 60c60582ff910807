//! Writes one group-commit batch: `COPY logs FROM STDIN (FORMAT binary)` plus the rollup deltas
//! of the same rows, in one transaction. Either all of it commits or none of it does.
//!
//! Each writer owns one connection with its statements prepared, and pipelines what it can:
//! BEGIN with the start of the COPY, and the rollup insert with COMMIT. A batch costs three
//! round trips, which is what makes small batches (30 rows) cheap.
use futures_util::pin_mut;
use postgres_types::Type;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, Statement};

use super::LogRecord;
use super::rollup::Deltas;
use crate::db::{self, DbError};

const COPY_SQL: &str =
    "COPY logs (ts, service, level, status_code, latency_ms, message, attrs) FROM STDIN (FORMAT binary)";
const TYPES: &[Type] = &[Type::TIMESTAMPTZ, Type::TEXT, Type::TEXT, Type::INT4, Type::FLOAT8, Type::TEXT, Type::JSONB];
const ROLLUP_SQL: &str = "SELECT record_rollup($1, $2, $3, $4, $5, $6, $7, $8)";

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
        if let Some(dbe) = e.as_db_error() {
            let code = dbe.code().code();
            if dbe.message().starts_with("no partition of relation") {
                return SinkError::NoPartition(dbe.message().to_string());
            }
            // Class 22 (data exception) and 23 (integrity constraint): the data, not the database.
            if code.starts_with("22") || code.starts_with("23") {
                return SinkError::Data(db::describe(&e));
            }
        }
        SinkError::Db(DbError::Postgres(e))
    }
}

/// One writer's connection, statements prepared.
pub struct CopySink {
    client: Client,
    copy: Statement,
    rollup: Statement,
}

impl CopySink {
    pub async fn connect(url: &str) -> Result<CopySink, DbError> {
        let client = db::connect(url).await?;
        // The rollup deltas written below account for this connection's rows, so the logs
        // trigger (which does the same for SQL writers) must skip them.
        client.batch_execute("SET logmon.rollup_recorded = 'on'; SET application_name = 'logmon-writer'").await?;
        let copy = client.prepare(COPY_SQL).await?;
        let rollup = client.prepare(ROLLUP_SQL).await?;
        Ok(CopySink { client, copy, rollup })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Stores `batches` (each one HTTP request's records) in one transaction; returns rows stored.
    pub async fn write(&self, batches: &[&[LogRecord]]) -> Result<u64, SinkError> {
        let result = self.write_tx(batches).await;
        if result.is_err() && !self.client.is_closed() {
            // The transaction may still be open (an error mid-COPY); leave the connection clean.
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
        result
    }

    async fn write_tx(&self, batches: &[&[LogRecord]]) -> Result<u64, SinkError> {
        let (_, sink) = tokio::try_join!(self.client.batch_execute("BEGIN"), self.client.copy_in(&self.copy))?;
        let writer = BinaryCopyInWriter::new(sink, TYPES);
        pin_mut!(writer);
        let mut deltas = Deltas::default();
        let mut rows = 0u64;
        for batch in batches {
            for r in batch.iter() {
                writer
                    .as_mut()
                    .write(&[&r.ts, &r.service, &r.level.as_str(), &r.status_code, &r.latency_ms, &r.message, &r.attrs])
                    .await?;
                deltas.add(r);
                rows += 1;
            }
        }
        // Dropping the writer without finish() would discard the batch silently (FIELD-NOTES).
        writer.finish().await?;

        let c = deltas.columns();
        let params: [&(dyn postgres_types::ToSql + Sync); 8] = [
            &c.services,
            &c.buckets,
            &c.totals,
            &c.errors,
            &c.latency_counts,
            &c.latency_sums,
            &c.latency_maxes,
            &c.hists,
        ];
        let rollup = self.client.execute(&self.rollup, &params);
        // COMMIT after a failed statement would roll back and still "succeed": check both.
        let (rolled, committed) = tokio::join!(rollup, self.client.batch_execute("COMMIT"));
        rolled?;
        committed?;
        Ok(rows)
    }

    /// Creates missing partitions (when a row had none); the caller then retries its batch.
    pub async fn ensure_partitions(&self) -> Result<(), DbError> {
        self.client.batch_execute("SELECT count(*) FROM maintain_partitions()").await?;
        Ok(())
    }
}
