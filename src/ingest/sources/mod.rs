//! One module per wire format. Each turns what its senders write into `/logs`-shaped JSON items
//! (`service`, `level`, `message`, `ts`, `latency_ms`, `status_code`, anything else -> attrs)
//! and its parse errors into `ItemError`s; `Pipeline` does the rest, the same for all.
pub mod es_bulk;
pub mod json;
pub mod loki;
pub mod otlp;
pub mod syslog;
