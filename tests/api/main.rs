//! Integration tests: real PostgreSQL (DATABASE_URL, set by scripts/test.sh), real `logmon`
//! binary, real sockets. One test binary, one module per area.
mod helpers;

mod deploy;
mod detection;
mod detector;
mod e2e;
mod health;
mod ingest;
mod read_api;
mod rollup;
mod schema;
