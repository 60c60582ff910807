#!/usr/bin/env bash
# Benchmarks. Every figure is printed next to a baseline measured in the same run.
#
#   scripts/bench.sh ingest [ROWS]   raw psql \copy vs logmon over HTTP (batch 1000 and 30, 16 connections)
#   scripts/bench.sh stats           /stats p50/p99 at 10M rows vs the naive count(*) over raw rows
#   scripts/bench.sh detect          detection latency and tick cost at 1M vs 10M rows
#   scripts/bench.sh backtest        backtest_rules(): a week of 10 services at 1-minute steps, the last
#                                    hour at 1-second steps, at 1M and at 10M rows of history
#
# Uses the private cluster (scripts/pg.sh) unless DATABASE_URL is set; works in a database
# named logmon_bench that it recreates.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

if [ -z "${DATABASE_URL:-}" ]; then scripts/pg.sh start; DATABASE_URL=$(scripts/pg.sh url postgres); fi
ADMIN_URL=$DATABASE_URL
BENCH_URL=${ADMIN_URL%/*}/logmon_bench
WORK=.data/bench
mkdir -p "$WORK"
cargo build --release --quiet --bin logmon --example ingest_load --example detect_bench
BIN=target/release/logmon
LOAD=target/release/examples/ingest_load
DETECT=target/release/examples/detect_bench

fresh_db() {
  psql "$ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS logmon_bench" -c "CREATE DATABASE logmon_bench" >/dev/null
  $BIN migrate --database-url "$BENCH_URL" 2>/dev/null
}

rows_in_db() { psql "$BENCH_URL" -qAtX -c "SELECT count(*) FROM logs"; }

start_collector() {
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  RUST_LOG=warn $BIN collector --database-url "$BENCH_URL" --listen "127.0.0.1:$port" "$@" &
  COLLECTOR_PID=$!
  COLLECTOR_URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$COLLECTOR_URL/health" >/dev/null && return 0; sleep 0.1; done
  echo "collector did not start" >&2; exit 1
}

stop_collector() { kill "$COLLECTOR_PID"; wait "$COLLECTOR_PID" 2>/dev/null || true; }

peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$COLLECTOR_PID/status"; }

json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

bench_ingest() {
  local rows=${1:-1000000}
  local nd="$WORK/workload-$rows.ndjson" tsv="$WORK/workload-$rows.tsv"
  if [ ! -f "$tsv" ]; then echo "generating $rows rows of workload..." >&2; $LOAD gen --rows "$rows" --ndjson "$nd" --tsv "$tsv"; fi
  chmod a+r "$tsv"

  echo "== ingest: $rows rows, $(nproc) cores, $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  # (a) the physical baseline: psql \copy of the same rows into the same schema, straight into the
  # day's partition, as the collector writes (it writes its rollup itself; the statement triggers
  # on logs that do that for SQL writers see neither).
  fresh_db
  local t0 t1 a part
  part=$(psql "$BENCH_URL" -qAtX -c "SELECT log_partition_for(now())")
  t0=$(date +%s.%N)
  psql "$BENCH_URL" -qX -c "\\copy $part (ts, service, level, status_code, latency_ms, message, attrs) FROM '$tsv'"
  t1=$(date +%s.%N)
  a=$(python3 -c "print(round($rows / ($t1 - $t0)))")
  [ "$(rows_in_db)" = "$rows" ] || { echo "baseline lost rows" >&2; exit 1; }
  echo "(a) psql \\copy baseline:        $a rows/s"

  local results=()
  # (b) and (c): POST /logs (JSON) at two batch sizes; (d): POST /v1/logs (OTLP protobuf)
  for run in "b 1000 /logs" "c 30 /logs" "d 1000 /v1/logs"; do
    local label batch path; read -r label batch path <<<"$run"
    local otlp=(); [ "$path" = /v1/logs ] && otlp=(--otlp)
    fresh_db
    start_collector
    local out; out=$($LOAD send --ndjson "$nd" --url "$COLLECTOR_URL$path" --batch "$batch" --conns 16 "${otlp[@]}")
    local rss; rss=$(peak_rss_mb)
    stop_collector
    local got acked rate
    got=$(rows_in_db); acked=$(json_field "$out" rows); rate=$(json_field "$out" rows_per_s)
    [ "$got" = "$acked" ] || { echo "LOST ROWS: acked $acked, stored $got" >&2; exit 1; }
    printf '(%s) logmon %-8s batch %-4s x 16 conns: %s rows/s  ratio to (a): %s  peak RSS %s MB  retries %s  (acked %s = stored %s)\n' \
      "$label" "$path" "$batch" "$rate" "$(python3 -c "print(f'{$rate / $a:.2f}')")" "$rss" "$(json_field "$out" retries)" "$acked" "$got"
  done
}

# Adds ROWS synthetic rows to logs, spread over [now - SPAN, now - RECENT) for 3 services, plus
# RECENT_ROWS in the last RECENT, loaded like a DBA backfill through logs (the statement
# triggers write the rollup), then compacted as the detector would.
load_history() {
  local rows=$1 span=$2 recent_rows=${3:-0} recent=${4:-5 minutes}
  psql "$BENCH_URL" -qX -v ON_ERROR_STOP=1 <<SQL >/dev/null
INSERT INTO logs (ts, service, level, status_code, latency_ms, message)
SELECT now() - interval '$recent' - (g::float8 / $rows) * (interval '$span' - interval '$recent'),
       (ARRAY['auth-service','feed-service','db-service'])[1 + g % 3],
       CASE WHEN g % 200 = 0 THEN 'ERROR' ELSE 'INFO' END, CASE WHEN g % 200 = 0 THEN 500 ELSE 200 END,
       20 + (g % 97) * 3, 'request handled'
FROM generate_series(1, $rows) g;
INSERT INTO logs (ts, service, level, status_code, latency_ms, message)
SELECT now() - (g::float8 / greatest($recent_rows, 1)) * interval '$recent',
       (ARRAY['auth-service','feed-service','db-service'])[1 + g % 3],
       CASE WHEN g % 200 = 0 THEN 'ERROR' ELSE 'INFO' END, 200, 20 + (g % 97) * 3, 'request handled'
FROM generate_series(1, $recent_rows) g;
SELECT compact_rollup();
VACUUM ANALYZE logs; VACUUM ANALYZE log_rollup;
SQL
}

bench_detect() {
  echo "== detect: $(nproc) cores, $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  fresh_db
  load_history 1000000 '24 hours'
  local one ten
  one=$($DETECT tick --db "$BENCH_URL" --calls 50)
  echo "(b) detect_incidents() tick with  1M rows of history: p50 $(json_field "$one" p50_ms) ms  p99 $(json_field "$one" p99_ms) ms"
  load_history 9000000 '24 hours'
  ten=$($DETECT tick --db "$BENCH_URL" --calls 50)
  echo "(b) detect_incidents() tick with 10M rows of history: p50 $(json_field "$ten" p50_ms) ms  p99 $(json_field "$ten" p99_ms) ms"
  echo "    ratio 10M/1M (p50): $(python3 -c "print(f'{$(json_field "$ten" p50_ms) / $(json_field "$one" p50_ms):.2f}')")"

  start_collector
  RUST_LOG=warn $BIN detector --database-url "$BENCH_URL" &
  local det=$!
  sleep 1
  local lat; lat=$($DETECT latency --db "$BENCH_URL" --collector "$COLLECTOR_URL" --trials 20)
  kill $det; wait $det 2>/dev/null || true
  stop_collector
  echo "(a) detection latency, COMMIT of the crossing batch -> incident committed, 20 trials: p50 $(json_field "$lat" p50_ms) ms  p99 $(json_field "$lat" p99_ms) ms"
  echo "    (the original polled every 10 s)"
}

bench_stats() {
  echo "== stats: 10M rows of history, 1M of them in the last 5 minutes; $(nproc) cores, $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  fresh_db
  load_history 9000000 '24 hours' 1000000 '5 minutes'
  echo "rows: $(rows_in_db)"
  start_collector
  curl -sf "$COLLECTOR_URL/stats?window_minutes=5" >/dev/null   # warm the connection and plan
  local times; times=$(for _ in $(seq 200); do curl -s -o /dev/null -w '%{time_total}\n' "$COLLECTOR_URL/stats?window_minutes=5"; done)
  stop_collector
  local naive
  naive=$(for _ in 1 2 3 4 5; do
    psql "$BENCH_URL" -qAtX -c '\timing on' -c "SELECT service, count(*), count(*) FILTER (WHERE level IN ('ERROR','FATAL')) FROM logs WHERE ts > now() - interval '5 minutes' GROUP BY service" \
      | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
  done)
  python3 - "$times" "$naive" <<'PY'
import sys, statistics
t = sorted(float(x) * 1000 for x in sys.argv[1].split())
n = sorted(float(x) for x in sys.argv[2].split())
p = lambda v, q: v[min(len(v) - 1, round((len(v) - 1) * q))]
naive = statistics.median(n)
print(f"GET /stats?window_minutes=5 over HTTP, {len(t)} requests: p50 {p(t, .5):.2f} ms  p99 {p(t, .99):.2f} ms")
print(f"naive count(*) ... GROUP BY service over raw rows, same window (median of {len(n)}): {naive:.1f} ms")
print(f"ratio naive / p99: {naive / p(t, .99):.0f}x  (naive / p50: {naive / p(t, .5):.0f}x)")
PY
}

# Adds ROWS rows over the last SPAN for 10 services (svc-00 .. svc-09), 0.5% errors, latencies
# 20-310 ms, with a burst of errors on svc-03 two days ago and slow responses on svc-07 a day ago
# (so that the replay has incidents to find), through logs (the statement triggers write the
# rollup), then compacted as the detector would.
load_services_history() {
  local rows=$1 span=$2
  psql "$BENCH_URL" -qX -v ON_ERROR_STOP=1 <<SQL >/dev/null
INSERT INTO logs (ts, service, level, status_code, latency_ms, message)
SELECT ts, svc,
       CASE WHEN g % 200 = 0 OR (svc = 'svc-03' AND ts BETWEEN now() - interval '2 days' AND now() - interval '2 days' + interval '3 minutes')
            THEN 'ERROR' ELSE 'INFO' END,
       200,
       CASE WHEN svc = 'svc-07' AND ts BETWEEN now() - interval '1 day' AND now() - interval '1 day' + interval '10 minutes'
            THEN 900 + (g % 97) * 3 ELSE 20 + (g % 97) * 3 END,
       'request handled'
FROM (SELECT g, now() - (g::float8 / $rows) * interval '$span' AS ts, 'svc-0' || (g % 10) AS svc
      FROM generate_series(1, $rows) g) x;
SELECT compact_rollup();
VACUUM ANALYZE logs; VACUUM ANALYZE log_rollup; VACUUM ANALYZE log_rollup_minute;
SQL
}

# Median and best of N runs of one SQL statement, in ms (psql's \timing: the server's work plus one
# round trip).
time_sql() {
  local n=$1 sql=$2
  for _ in $(seq "$n"); do
    psql "$BENCH_URL" -qAtX -c '\timing on' -c "$sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
  done | sort -n | awk '{v[NR]=$1} END {printf "%.0f %.0f", v[int((NR+1)/2)], v[1]}'
}

bench_backtest() {
  echo "== backtest: 10 services, the 4 default rules; $(nproc) cores, $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  local week="SELECT count(*) FROM backtest_rules(now() - interval '7 days', step => '1 minute')"
  local hour="SELECT count(*) FROM backtest_rules(now() - interval '1 hour')"
  fresh_db
  load_services_history 1000000 '7 days'
  local results=()
  for size in 1M 10M; do
    if [ "$size" = 10M ]; then load_services_history 9000000 '7 days'; fi
    psql "$BENCH_URL" -qAtX -c "$week" -c "$hour" >/dev/null   # warm the cache and the plans
    local w h
    w=$(time_sql 5 "$week"); h=$(time_sql 5 "$hour")
    echo "rows: $(rows_in_db); incidents found in the week: $(psql "$BENCH_URL" -qAtX -c "$week"); in the hour: $(psql "$BENCH_URL" -qAtX -c "$hour")"
    echo "($size) a week at 1-minute steps:  median ${w% *} ms  best ${w#* } ms   $week"
    echo "($size) the last hour at 1 s steps: median ${h% *} ms  best ${h#* } ms   $hour"
    results+=("${w% *}" "${h% *}")
  done
  echo "ratio 10M/1M (medians): week $(python3 -c "print(f'{${results[2]} / ${results[0]}:.2f}')")  hour $(python3 -c "print(f'{${results[3]} / ${results[1]}:.2f}')")"
  echo "    (for scale: one evaluate_rules() per step, a week of minutes: $(time_sql 3 "SELECT count(*) FROM evaluate_rules()" | cut -d' ' -f1) ms x 10,080 steps)"
}

case "${1:-}" in
  ingest) shift; bench_ingest "$@" ;;
  stats) bench_stats ;;
  detect) bench_detect ;;
  backtest) bench_backtest ;;
  *) echo "usage: $0 ingest [ROWS] | stats | detect | backtest" >&2; exit 2 ;;
esac
