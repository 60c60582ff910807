//! Integration tests: real PostgreSQL (DATABASE_URL, set by scripts/test.sh), real `logmon`
//! binary, real sockets. One test binary, one module per area.
mod helpers;

mod alertmanager;
mod backtest;
mod contract;
mod dashboard;
mod deploy;
mod detection;
mod detector;
mod e2e;
mod early_answers;
mod es_bulk;
mod health;
mod hostile;
mod ingest;
mod loki;
mod notify;
mod otlp;
mod pattern_counts;
mod patterns;
mod read_api;
mod receiver;
mod reliability;
mod roles;
mod rollup;
mod rules;
mod schema;
mod search;
mod shippers;
mod silences;
mod syslog;
