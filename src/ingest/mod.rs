//! Ingestion, as a one-way pipeline: HTTP body -> [`decode`] (formats, gzip, limits) ->
//! [`validate`] (one typed [`LogRecord`] per item, or every item's errors) -> [`batcher`]
//! (bounded queue, group commit) -> [`copy_sink`] (one `COPY ... BINARY` + rollup deltas per
//! transaction).
pub mod batcher;
pub mod copy_sink;
pub mod decode;
pub mod otlp;
pub mod record;
pub mod rollup;
pub mod validate;

pub use record::{Level, LogRecord};
