#!/usr/bin/env bash
# The whole system in one command: build (release), start the private PostgreSQL cluster unless
# DATABASE_URL is set, create the `logsdb` database, then `logmon up` (migrate + collector +
# detector + generator with the demo failure schedule). Ctrl-C stops everything; data is kept
# in .data/. Extra arguments go to `logmon up` (e.g. --rate 1000, --scenario none, --no-generator).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "up.sh: cargo (Rust) is required" >&2; exit 1; }
echo "up.sh: building logmon (release; the first build takes a few minutes)..." >&2
cargo build --release --bin logmon

if [ -z "${DATABASE_URL:-}" ]; then
  scripts/pg.sh start
  admin=$(scripts/pg.sh url postgres)
  if [ "$(psql "$admin" -qAtX -c "SELECT 1 FROM pg_database WHERE datname = 'logsdb'")" != 1 ]; then
    psql "$admin" -qX -c "CREATE DATABASE logsdb" >/dev/null
  fi
  export DATABASE_URL=$(scripts/pg.sh url logsdb)
fi
exec target/release/logmon up "$@"
