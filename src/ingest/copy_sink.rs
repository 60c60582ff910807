//! Writes one group-commit batch: `COPY ... FROM STDIN (FORMAT binary)` plus the rollup deltas
//! of the same rows, in one transaction. Either all of it commits or none of it does.
//!
//! The rows go straight into their hourly partition (`log_partition_holding(ts)`, usually one per
//! batch), not through `logs`: the statement triggers on `logs` that keep the rollup exact for SQL writers
//! would otherwise fire here too, and a transition-table trigger makes a COPY into a partitioned
//! table row-at-a-time. The collector writes its own deltas instead (`record_rollup()`).
//!
//! Each writer owns one connection with its statements prepared, and pipelines what it can:
//! BEGIN with the start of the COPY, and the end of the COPY with the rollup and pattern inserts
//! and COMMIT. A batch costs two round trips, which is what makes small batches (30 rows) cheap.
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures_util::pin_mut;
use postgres_types::Type;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, Statement};

use super::LogRecord;
use super::pattern_counts::{Known, PatternDeltas};
use super::rollup::Deltas;
use crate::db::{self, DbError};

const COPY_COLUMNS: &str = "(ts, service, level, status_code, latency_ms, message, attrs, pattern_id)";
const TYPES: &[Type] =
    &[Type::TIMESTAMPTZ, Type::TEXT, Type::TEXT, Type::INT4, Type::FLOAT8, Type::TEXT, Type::JSONB, Type::INT8];
const ROLLUP_SQL: &str = "SELECT record_rollup($1, $2, $3, $4, $5, $6, $7, $8)";
const PATTERNS_SQL: &str = "SELECT record_patterns($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The rows themselves were refused (a constraint the validator does not know about).
    #[error("rows refused by the database: {0}")]
    Data(String),
    /// A row's partition does not exist (maintenance has not run): worth one retry after it does.
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
            // 42P01 undefined_table: the partition a row belongs in is missing
            if code == "42P01" || dbe.message().starts_with("no partition of relation") {
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

/// The hour a row belongs to (its partition's key: partitions are hourly, or daily when an
/// earlier version made them).
fn hour_of(ts: &DateTime<Utc>) -> i64 {
    ts.timestamp().div_euclid(3600)
}

/// One writer's connection, statements prepared.
pub struct CopySink {
    client: Client,
    /// `COPY <partition>` statements by hour, prepared on first use.
    copies: Mutex<HashMap<i64, Statement>>,
    rollup: Statement,
    patterns: Statement,
    /// Patterns this connection has put in the catalogue already.
    known: Mutex<Known>,
}

impl CopySink {
    pub async fn connect(url: &str) -> Result<CopySink, DbError> {
        let client = db::connect(url).await?;
        client.batch_execute("SET application_name = 'logmon-writer'").await?;
        let rollup = client.prepare(ROLLUP_SQL).await?;
        let patterns = client.prepare(PATTERNS_SQL).await?;
        Ok(CopySink {
            client,
            copies: Mutex::new(HashMap::new()),
            rollup,
            patterns,
            known: Mutex::new(Known::default()),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Stores `batches` (each one HTTP request's records) in one transaction; returns rows stored.
    pub async fn write(&self, batches: &[&[LogRecord]]) -> Result<u64, SinkError> {
        let result = self.write_tx(batches).await;
        // A missing partition is found before BEGIN; any other error may leave the transaction
        // open (an error mid-COPY): leave the connection clean.
        if result.as_ref().is_err_and(|e| !matches!(e, SinkError::NoPartition(_))) && !self.client.is_closed() {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
        result
    }

    async fn copy_statement(&self, hour: i64) -> Result<Statement, SinkError> {
        if let Some(s) = self.copies.lock().expect("statement cache").get(&hour) {
            return Ok(s.clone());
        }
        // PostgreSQL checks a COPY's table only when it runs, and a COPY that fails to start
        // leaves tokio-postgres's connection unusable: ask which partition holds the hour first.
        let ts = DateTime::<Utc>::from_timestamp(hour * 3600, 0).expect("a validated hour");
        let partition: Option<String> = self.client.query_one("SELECT log_partition_holding($1)", &[&ts]).await?.get(0);
        let Some(partition) = partition else {
            return Err(SinkError::NoPartition(format!("no partition holds {ts}")));
        };
        let sql = format!("COPY {partition} {COPY_COLUMNS} FROM STDIN (FORMAT binary)");
        let stmt = self.client.prepare(&sql).await?;
        let mut cache = self.copies.lock().expect("statement cache");
        // partitions come and go by the hour: keep only the recent ones
        if cache.len() > 48 {
            cache.clear();
        }
        cache.insert(hour, stmt.clone());
        Ok(stmt)
    }

    async fn write_tx(&self, batches: &[&[LogRecord]]) -> Result<u64, SinkError> {
        if batches.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        // rows by hour (one, except around the turn of an hour)
        let mut parts: BTreeMap<i64, Vec<&LogRecord>> = BTreeMap::new();
        for r in batches.iter().flat_map(|b| b.iter()) {
            let key = hour_of(&r.ts);
            match parts.get_mut(&key) {
                Some(v) => v.push(r),
                None => {
                    parts.insert(key, vec![r]);
                }
            }
        }
        // Prepared before BEGIN: a missing partition fails here, outside any transaction.
        let mut statements = Vec::with_capacity(parts.len());
        for hour in parts.keys() {
            statements.push(self.copy_statement(*hour).await?);
        }
        // The deltas first, so that the rollup and pattern inserts and COMMIT can follow the last
        // COPY's data without waiting for its answer.
        let mut deltas = Deltas::default();
        let mut pattern_deltas = PatternDeltas::default();
        {
            let known = self.known.lock().expect("known patterns");
            for r in parts.values().flatten() {
                deltas.add(r);
                pattern_deltas.add(r, &known);
            }
        }
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
        let p = pattern_deltas.columns();
        let pattern_params: [&(dyn postgres_types::ToSql + Sync); 10] = [
            &p.services,
            &p.ids,
            &p.levels,
            &p.buckets,
            &p.counts,
            &p.new_services,
            &p.new_ids,
            &p.new_templates,
            &p.new_examples,
            &p.new_first,
        ];

        let mut rows = 0u64;
        let last = statements.len() - 1;
        for (i, (stmt, records)) in statements.iter().zip(parts.values()).enumerate() {
            let sink = if i > 0 {
                self.client.copy_in(stmt).await?
            } else {
                tokio::try_join!(self.client.batch_execute("BEGIN"), self.client.copy_in(stmt))?.1
            };
            let writer = BinaryCopyInWriter::new(sink, TYPES);
            pin_mut!(writer);
            for r in records {
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
                        &r.pattern_id,
                    ])
                    .await?;
                rows += 1;
            }
            // Dropping the writer without finish() would discard the batch silently (FIELD-NOTES).
            if i < last {
                writer.finish().await?;
                continue;
            }
            // The connection sends requests in order: the end of the COPY, the two inserts and
            // COMMIT leave together, one round trip. COMMIT after a failed statement would roll
            // back and still "succeed": check all four, the COPY's first (its error says why).
            let rollup = self.client.execute(&self.rollup, &params);
            let patterns = self.client.execute(&self.patterns, &pattern_params);
            let (copied, rolled, counted, committed) =
                tokio::join!(writer.finish(), rollup, patterns, self.client.batch_execute("COMMIT"));
            copied?;
            rolled?;
            counted?;
            committed?;
        }
        pattern_deltas.remember(&mut self.known.lock().expect("known patterns"));
        Ok(rows)
    }

    /// Creates missing partitions (when a row had none); the caller then retries its batch.
    pub async fn ensure_partitions(&self) -> Result<(), DbError> {
        self.client.batch_execute("SELECT count(*) FROM maintain_partitions()").await?;
        Ok(())
    }
}
