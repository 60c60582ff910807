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
//! A transaction is an [`Open`]: started with the COPY of its first request's hour, fed request
//! by request while the batcher still gathers, ended by one commit.
//!
//! Rows are encoded in COPY's binary format by [`Encoded::new`], on the request's task (requests
//! run in parallel; every request of a batch waits for its commit): a request's rows go to the
//! connection as one buffer, not as `BinaryCopyInWriter`'s 4 kB chunks, each a hand-off to the
//! connection task. Each request's rollup and pattern deltas are computed there too, and merged
//! as requests are sent, not when the batch closes; the records are then dropped.
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::SinkExt;
use postgres_types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::LogRecord;
use super::pattern_counts::{Known, PatternDeltas};
use super::rollup::Deltas;
use crate::db::{self, DbError};

const COPY_COLUMNS: &str = "(ts, service, level, status_code, latency_ms, message, attrs, pattern_id)";
/// The binary COPY header: signature, flags, header extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a field count of -1.
const COPY_TRAILER: &[u8] = &[0xff, 0xff];
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

/// One request's rows as binary COPY tuples grouped by hour (usually one), with their rollup and
/// pattern deltas. The records themselves are dropped once encoded: a queued request holds its
/// rows once (with them, peak RSS at 1,000-row requests was 30-50 MB higher).
#[derive(Debug)]
pub struct Encoded {
    rows: usize,
    /// (hour, rows, tuples), in the order the hours first appear.
    tuples: Vec<(i64, u64, Bytes)>,
    deltas: Deltas,
    patterns: PatternDeltas,
}

impl Encoded {
    pub fn new(records: Vec<LogRecord>) -> Result<Encoded, SinkError> {
        let mut parts: Vec<(i64, u64, BytesMut)> = Vec::with_capacity(1);
        for r in &records {
            let hour = hour_of(&r.ts);
            let i = match parts.iter().position(|p| p.0 == hour) {
                Some(i) => i,
                None => {
                    parts.push((hour, 0, BytesMut::with_capacity(records.len() * 256)));
                    parts.len() - 1
                }
            };
            let part = &mut parts[i];
            put_row(&mut part.2, r).map_err(|e| SinkError::Data(format!("a row cannot be encoded for COPY: {e}")))?;
            part.1 += 1;
        }
        Ok(Encoded {
            rows: records.len(),
            tuples: parts.into_iter().map(|(h, n, b)| (h, n, b.freeze())).collect(),
            deltas: Deltas::of(&records),
            patterns: PatternDeltas::of(&records),
        })
    }

    /// The hour of the first row, which a COPY opened for this request goes into.
    pub fn first_hour(&self) -> Option<i64> {
        self.tuples.first().map(|t| t.0)
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

type EncodeError = Box<dyn std::error::Error + Sync + Send>;

/// One tuple: the field count, then each field as its length (-1 = NULL) and its binary form, in
/// `COPY_COLUMNS` order.
fn put_row(buf: &mut BytesMut, r: &LogRecord) -> Result<(), EncodeError> {
    buf.put_i16(8);
    put_field(buf, &r.ts, &Type::TIMESTAMPTZ)?;
    put_field(buf, &r.service, &Type::TEXT)?;
    put_field(buf, &r.level.as_str(), &Type::TEXT)?;
    put_field(buf, &r.status_code, &Type::INT4)?;
    put_field(buf, &r.latency_ms, &Type::FLOAT8)?;
    put_field(buf, &r.message, &Type::TEXT)?;
    put_field(buf, &r.attrs, &Type::JSONB)?;
    put_field(buf, &r.pattern_id, &Type::INT8)
}

fn put_field(buf: &mut BytesMut, v: &impl ToSql, ty: &Type) -> Result<(), EncodeError> {
    let at = buf.len();
    buf.put_i32(0);
    let len = match v.to_sql(ty, buf)? {
        IsNull::Yes => -1,
        IsNull::No => i32::try_from(buf.len() - at - 4)?,
    };
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
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

    /// Stores `batches` (each one HTTP request's rows) in one transaction; returns rows stored.
    pub async fn write(&self, batches: &[&Encoded]) -> Result<u64, SinkError> {
        let Some(hour) = batches.iter().find_map(|b| b.first_hour()) else { return Ok(0) };
        let mut open = self.open(hour).await?;
        open.send(batches).await;
        open.commit(batches).await
    }

    /// Opens a transaction with a COPY into the partition of `hour`, to be fed with
    /// [`Open::send`] and ended by [`Open::commit`] (dropped instead, it stores nothing, but
    /// leaves the connection in a failed transaction). The partition is looked up first, outside
    /// any transaction: a missing one fails here.
    pub async fn open(&self, hour: i64) -> Result<Open<'_>, SinkError> {
        let statement = self.copy_statement(hour).await?;
        match tokio::try_join!(self.client.batch_execute("BEGIN"), self.client.copy_in::<_, Bytes>(&statement)) {
            Ok((_, copy)) => {
                let mut pending = BytesMut::new();
                pending.put_slice(COPY_HEADER);
                Ok(Open {
                    sink: self,
                    hour,
                    copy: Box::pin(copy),
                    pending,
                    started: false,
                    failed: None,
                    deltas: Deltas::default(),
                    pattern_deltas: PatternDeltas::default(),
                })
            }
            Err(e) => {
                self.rollback().await;
                Err(e.into())
            }
        }
    }

    /// Leaves the connection outside any transaction after an error (an error mid-COPY leaves
    /// the transaction open, aborted).
    async fn rollback(&self) {
        if !self.client.is_closed() {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
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

    /// Creates missing partitions (when a row had none); the caller then retries its batch.
    pub async fn ensure_partitions(&self) -> Result<(), DbError> {
        self.client.batch_execute("SELECT count(*) FROM maintain_partitions()").await?;
        Ok(())
    }
}

/// A transaction with a COPY open into one hour's partition. Requests' rows of that hour are sent
/// as they arrive ([`Open::send`]), so that the database copies them while the batch still waits
/// (for its turn to commit, for more requests); rows of other hours are copied at commit.
///
/// Nothing is visible or acknowledged before [`Open::commit`] returns Ok: any error before or
/// during it rolls the whole transaction back, and the caller may write the same rows again.
pub struct Open<'a> {
    sink: &'a CopySink,
    hour: i64,
    copy: std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>,
    /// Tuples not handed to the connection yet (at first, the COPY header).
    pending: BytesMut,
    /// Whether anything (the header first) was handed to the connection.
    started: bool,
    /// The first error of a send; the COPY is dead after it, and commit reports it.
    failed: Option<SinkError>,
    /// The rollup and pattern deltas of every row sent, added as they are sent (not at commit,
    /// where every request of the batch waits).
    deltas: Deltas,
    pattern_deltas: PatternDeltas,
}

impl Open<'_> {
    /// Sends this COPY's hour's rows of `batches` (the other hours wait for the commit).
    pub async fn send(&mut self, batches: &[&Encoded]) {
        {
            let known = self.sink.known.lock().expect("known patterns");
            for b in batches {
                self.deltas.merge(&b.deltas);
                self.pattern_deltas.merge(&b.patterns, &known);
            }
        }
        for (_, _, tuples) in batches.iter().flat_map(|b| b.tuples.iter()).filter(|t| t.0 == self.hour) {
            self.pending.put_slice(tuples);
        }
        let unsent = self.pending.len() - if self.started { 0 } else { COPY_HEADER.len() };
        if self.failed.is_some() || unsent == 0 {
            return;
        }
        self.started = true;
        if let Err(e) = self.copy.send(self.pending.split().freeze()).await {
            self.failed = Some(e.into());
        }
    }

    /// Ends the COPY, copies the rows of `batches` of other hours, writes the rollup and pattern
    /// deltas of every row sent, and commits. `batches` must be what was sent, each once.
    pub async fn commit(self, batches: &[&Encoded]) -> Result<u64, SinkError> {
        let sink = self.sink;
        let result = self.commit_tx(batches).await;
        if result.is_err() {
            sink.rollback().await;
        }
        result
    }

    async fn commit_tx(mut self, batches: &[&Encoded]) -> Result<u64, SinkError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let sink = self.sink;
        let rows: u64 = batches.iter().flat_map(|b| b.tuples.iter()).map(|t| t.1).sum();
        // the other hours' tuples, one buffer per hour (around the turn of an hour)
        let mut others: BTreeMap<i64, BytesMut> = BTreeMap::new();
        for (hour, _, tuples) in batches.iter().flat_map(|b| b.tuples.iter()).filter(|t| t.0 != self.hour) {
            others
                .entry(*hour)
                .or_insert_with(|| {
                    let mut buf = BytesMut::new();
                    buf.put_slice(COPY_HEADER);
                    buf
                })
                .put_slice(tuples);
        }
        // The deltas first, so that the rollup and pattern inserts and COMMIT can follow the last
        // COPY's data without waiting for its answer.
        let c = self.deltas.columns();
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
        let pattern_deltas = std::mem::take(&mut self.pattern_deltas);
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

        self.pending.put_slice(COPY_TRAILER);
        self.copy.send(self.pending.split().freeze()).await?;
        // Dropping a COPY without finish() would discard its rows silently (FIELD-NOTES).
        let mut last = self.copy;
        if !others.is_empty() {
            last.as_mut().finish().await?;
            // Looked up inside the transaction: a missing partition rolls it back, and the caller
            // retries after creating it.
            let mut statements = Vec::with_capacity(others.len());
            for hour in others.keys() {
                statements.push(sink.copy_statement(*hour).await?);
            }
            let n = statements.len();
            for (i, (statement, mut tuples)) in statements.iter().zip(others.into_values()).enumerate() {
                tuples.put_slice(COPY_TRAILER);
                let mut copy = Box::pin(sink.client.copy_in::<_, Bytes>(statement).await?);
                copy.send(tuples.freeze()).await?;
                if i + 1 < n {
                    copy.as_mut().finish().await?;
                } else {
                    last = copy;
                }
            }
        }
        // The connection sends requests in order: the end of the COPY, the two inserts and
        // COMMIT leave together, one round trip. COMMIT after a failed statement would roll
        // back and still "succeed": check all four, the COPY's first (its error says why).
        let rollup = sink.client.execute(&sink.rollup, &params);
        let patterns = sink.client.execute(&sink.patterns, &pattern_params);
        let (copied, rolled, counted, committed) =
            tokio::join!(last.as_mut().finish(), rollup, patterns, sink.client.batch_execute("COMMIT"));
        copied?;
        rolled?;
        counted?;
        committed?;
        pattern_deltas.remember(&mut sink.known.lock().expect("known patterns"));
        Ok(rows)
    }
}
