//! The one way in. Every source (JSON, OTLP, and the shippers' protocols) turns its wire format
//! into [`Item`]s (`/logs`-shaped fields) and hands them here: the same validation, limits, queue
//! and group commit for all of them, and the same guarantee (Ok = committed).
use std::sync::{Arc, RwLock};

use chrono::Utc;

use super::LogRecord;
use super::batcher::Batcher;
use super::error::{IngestError, ItemError};
use super::item::Item;
use super::validate::{Limits, TsRange, validate_item};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Pipeline {
    batcher: Batcher,
    fields: Limits,
    max_items: usize,
    ts_range: Arc<RwLock<TsRange>>,
    metrics: Arc<Metrics>,
}

/// What one request may carry, whatever its format.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Most log items in one request.
    pub max_items: usize,
    /// Per-field limits.
    pub fields: Limits,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits { max_items: 50_000, fields: Limits::default() }
    }
}

/// What became of the items of a request that stores what is valid.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows committed.
    pub stored: u64,
    /// Items refused, in order, each with every reason.
    pub rejected: Vec<Rejected>,
}

#[derive(Debug)]
pub struct Rejected {
    /// Position of the item in what the source handed over.
    pub index: usize,
    pub errors: Vec<ItemError>,
}

impl Pipeline {
    pub fn new(
        batcher: Batcher,
        limits: IngestLimits,
        ts_range: Arc<RwLock<TsRange>>,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        Pipeline { batcher, fields: limits.fields, max_items: limits.max_items, ts_range, metrics }
    }

    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    /// Refuses a request with more items than `--max-items` before any work is done on them.
    pub fn check_count(&self, n: usize, what: &str) -> Result<(), IngestError> {
        if n > self.max_items {
            return Err(IngestError::TooLarge(format!("{n} {what} in one request; the limit is {}", self.max_items)));
        }
        Ok(())
    }

    /// All or nothing (`POST /logs`, as the original collector): one invalid item refuses the
    /// batch, and the errors of every invalid item are returned.
    pub async fn store_all(&self, items: Vec<Item>) -> Result<u64, IngestError> {
        self.check_count(items.len(), "items")?;
        let n = items.len();
        let (records, rejected) = self.validate(items);
        if !rejected.is_empty() {
            self.metrics.rejected_rows(n);
            return Err(IngestError::Invalid(rejected.into_iter().flat_map(|r| r.errors).collect()));
        }
        self.submit(records).await
    }

    /// Stores the valid items and reports the others: for protocols whose senders drop a refused
    /// batch whole (OTLP, Loki, Elasticsearch bulk, syslog), one bad item must not cost the rest.
    pub async fn store_valid(&self, items: Vec<Item>) -> Result<Outcome, IngestError> {
        self.check_count(items.len(), "log records")?;
        let (records, rejected) = self.validate(items);
        self.metrics.rejected_rows(rejected.len());
        let stored = self.submit(records).await?;
        Ok(Outcome { stored, rejected })
    }

    fn validate(&self, items: Vec<Item>) -> (Vec<LogRecord>, Vec<Rejected>) {
        let range = *self.ts_range.read().expect("ts range lock");
        let now = Utc::now();
        let mut records = Vec::with_capacity(items.len());
        let mut rejected = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match validate_item(index, item, &self.fields, range, now) {
                // once one item is refused, an all-or-nothing caller drops the records anyway
                Ok(mut r) => {
                    r.pattern_id = r.message.as_deref().map(pattern_of);
                    records.push(r)
                }
                Err(errors) => rejected.push(Rejected { index, errors }),
            }
        }
        (records, rejected)
    }

    async fn submit(&self, records: Vec<LogRecord>) -> Result<u64, IngestError> {
        self.batcher.submit(records).await
    }
}

/// The pattern id of a message, computed here, on the request's thread (requests run in parallel;
/// the writers that COPY do not), with one reusable extractor per thread.
fn pattern_of(message: &str) -> i64 {
    thread_local! {
        static EXTRACTOR: std::cell::RefCell<crate::pattern::Extractor> = Default::default();
    }
    EXTRACTOR.with(|x| x.borrow_mut().extract(message).0)
}
