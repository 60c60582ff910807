//! Integration tests: real PostgreSQL (DATABASE_URL, set by scripts/test.sh), real `logmon`
//! binary, real sockets. One test binary, one module per area.
mod helpers;

mod detection;
mod detector;
mod health;
mod ingest;
mod read_api;
mod rollup;
mod schema;
