#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration tests against a real
# PostgreSQL (the private cluster of scripts/pg.sh unless DATABASE_URL is set) and real programs.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then echo "test.sh: cargo is required" >&2; exit 1; fi
source scripts/lib/tools.sh
ensure_test_tools

if [ -z "${DATABASE_URL:-}" ]; then
  scripts/pg.sh start
  export DATABASE_URL=$(scripts/pg.sh url postgres)
fi
echo "test.sh: database $DATABASE_URL" >&2

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# Tests start many processes and databases at once; two cores go further with a few threads.
cargo test --quiet -- --test-threads="${TEST_THREADS:-6}"
