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
mod health;
mod hostile;
mod ingest;
mod notify;
mod otlp;
mod read_api;
mod receiver;
mod reliability;
mod roles;
mod rollup;
mod rules;
mod schema;
mod silences;
