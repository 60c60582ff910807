//! Integration tests: real PostgreSQL (DATABASE_URL, set by scripts/test.sh), real `logmon`
//! binary, real sockets. One test binary, one module per area.
mod helpers;

mod alertmanager;
mod browser;
mod contract;
mod deploy;
mod detection;
mod detector;
mod e2e;
mod early_answers;
mod es_bulk;
mod explorer;
mod health;
mod hostile;
mod incident_page;
mod ingest;
mod loki;
mod new_patterns;
mod notify;
mod otlp;
mod overview;
mod pages;
mod pattern_counts;
mod patterns;
mod read_api;
mod receiver;
mod reliability;
mod roles;
mod rollup;
mod same_answers;
mod scale_out;
mod schema;
mod search;
mod shippers;
mod silences;
mod syslog;
