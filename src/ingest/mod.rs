//! Ingestion, as a one-way pipeline: bytes -> [`encoding`] (gzip, limits) -> [`sources`] (one
//! module per wire format, each producing `/logs`-shaped [`item::Item`]s) -> [`pipeline`] -> [`validate`]
//! (one typed [`LogRecord`] per item, or every item's errors) -> [`batcher`] (bounded queue,
//! group commit) -> [`copy_sink`] (one `COPY ... BINARY` + rollup deltas per transaction).
//! Errors are [`error::IngestError`]; `api` decides what they mean in HTTP.
pub mod batcher;
pub mod copy_sink;
pub mod encoding;
pub mod error;
pub mod item;
pub mod pattern_counts;
pub mod pipeline;
pub mod record;
pub mod rollup;
pub mod sources;
pub mod validate;

pub use record::{Level, LogRecord};
