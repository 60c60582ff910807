#!/usr/bin/env bash
# Benchmarks. Every figure is printed next to a baseline measured in the same run.
#
#   scripts/bench.sh ingest [ROWS]   raw psql \copy vs logmon over HTTP (batch 1000 and 30, 16 connections),
#                                    OTLP, Loki push, Elasticsearch bulk, syslog over TCP (one connection, and a
#                                    queue kept full: sent = stored)
#   scripts/bench.sh stats           /stats p50/p99 at 10M rows vs the naive count(*) over raw rows, and
#                                    with rows arriving out of order / right after a plain \copy
#   scripts/bench.sh detect          detection latency and tick cost at 1M vs 10M rows, and with rows
#                                    arriving out of order / right after a plain \copy
#   scripts/bench.sh search          GET /logs and GET /incidents/{id}/logs p99 at 10M rows while
#                                    ingesting 1,000 logs/s
#   scripts/bench.sh scale ["SIZES"] every figure at 10M and at 100M rows a day (detect tick, /stats,
#                                    search, patterns, ingest b/a, disk and bytes per row)
#   scripts/bench.sh patterns [DIR]  template extraction: ns/line and grouping accuracy (corpus,
#                                    LogHub 2k samples in DIR if given, generator), SQL twin us/row
#   scripts/bench.sh backtest        backtest_rules(): a week of 10 services at 1-minute steps, the last
#                                    hour at 1-second steps, at 1M and at 10M rows of history
#   scripts/bench.sh ui [LOADS]      incident page at 10M rows of history: "content drawn" p50/p99 in
#                                    Chromium (navigation timing), next to its JSON calls over curl
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
cargo build --release --quiet --bin logmon --example ingest_load --example detect_bench --example pattern_bench \
  --example bench_load
BIN=target/release/logmon
LOAD=target/release/examples/ingest_load
DETECT=target/release/examples/detect_bench
HISTORY=target/release/examples/bench_load

# p50 and p99 (ms) of curl's time_total (s) lines on stdin: "p50 X ms  p99 Y ms"
percentiles() {
  python3 -c '
import sys
t = sorted(float(x) * 1000 for x in sys.stdin.read().split())
p = lambda q: t[min(len(t) - 1, round((len(t) - 1) * q))]
print(f"p50 {p(.5):.2f} ms  p99 {p(.99):.2f} ms")'
}

# N timings of GET $COLLECTOR_URL$1
timed_gets() {
  local path=$1 n=${2:-200}
  curl -sf "$COLLECTOR_URL$path" >/dev/null   # warm the connection and plan
  for _ in $(seq "$n"); do curl -s -o /dev/null -w '%{time_total}\n' "$COLLECTOR_URL$path"; done
}

compact() {
  psql "$BENCH_URL" -qAtX -c "SELECT compact_rollup(), compact_patterns()" -c "VACUUM ANALYZE logs" \
    -c "VACUUM ANALYZE log_rollup" -c "VACUUM ANALYZE log_rollup_minute" -c "VACUUM ANALYZE log_pattern_counts" \
    -c "VACUUM ANALYZE log_pattern_counts_10m" >/dev/null
}

fresh_db() {
  psql "$ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS logmon_bench" -c "CREATE DATABASE logmon_bench" >/dev/null
  $BIN migrate --database-url "$BENCH_URL" 2>/dev/null
}

rows_in_db() { psql "$BENCH_URL" -qAtX -c "SELECT count(*) FROM logs"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_collector() {
  local port; port=$(free_port)
  RUST_LOG=warn $BIN collector --database-url "$BENCH_URL" --listen "127.0.0.1:$port" "$@" &
  COLLECTOR_PID=$!
  COLLECTOR_URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$COLLECTOR_URL/health" >/dev/null && return 0; sleep 0.1; done
  echo "collector did not start" >&2; exit 1
}

stop_collector() { kill "$COLLECTOR_PID"; wait "$COLLECTOR_PID" 2>/dev/null || true; }

peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$COLLECTOR_PID/status"; }

json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# psql \copy of a TSV straight into the hourly partitions of its rows; prints rows/s.
copy_baseline() {
  local tsv=$1 t0 t1 hour rows
  rows=$(wc -l < "$tsv")
  rm -f "$WORK"/hour-*.tsv
  awk -v dir="$WORK" '{ print > (dir "/hour-" substr($1, 1, 13) ".tsv") }' "$tsv"
  chmod a+r "$WORK"/hour-*.tsv
  t0=$(date +%s.%N)
  for f in "$WORK"/hour-*.tsv; do
    hour=$(basename "$f" .tsv); hour=${hour#hour-}
    psql "$BENCH_URL" -qX -c "\\copy $(psql "$BENCH_URL" -qAtX -c "SELECT log_partition_holding('$hour:00:00Z')") (ts, service, level, status_code, latency_ms, message, attrs) FROM '$f'"
  done
  t1=$(date +%s.%N)
  python3 -c "print(round($rows / ($t1 - $t0)))"
}

bench_ingest() {
  local rows=${1:-1000000}
  local nd="$WORK/workload-$rows.ndjson" tsv="$WORK/workload-$rows.tsv"
  if [ ! -f "$tsv" ]; then echo "generating $rows rows of workload..." >&2; $LOAD gen --rows "$rows" --ndjson "$nd" --tsv "$tsv"; fi
  chmod a+r "$tsv"

  echo "== ingest: $rows rows, $(nproc) cores, $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  # (a) the physical baseline: psql \copy of the same rows into the same schema, straight into
  # their hourly partitions, as the collector writes (it writes its rollup itself; the statement
  # triggers on logs that do that for SQL writers see neither). The rows are split by hour first.
  fresh_db
  local a; a=$(copy_baseline "$tsv")
  [ "$(rows_in_db)" = "$rows" ] || { echo "baseline lost rows" >&2; exit 1; }
  echo "(a) psql \\copy baseline:        $a rows/s"

  local results=()
  # (b) and (c): POST /logs (JSON) at two batch sizes; (d): POST /v1/logs (OTLP protobuf)
  # (e): POST /loki/api/v1/push (protobuf + snappy); (f): POST /_bulk (Elasticsearch NDJSON)
  for run in "b 1000 /logs" "c 30 /logs" "d 1000 /v1/logs --otlp" "e 1000 /loki/api/v1/push --loki" "f 1000 /_bulk --es"; do
    local label batch path kind; read -r label batch path kind <<<"$run"
    local flags=(); [ -n "$kind" ] && flags=("$kind")
    fresh_db
    start_collector
    local out; out=$($LOAD send --ndjson "$nd" --url "$COLLECTOR_URL$path" --batch "$batch" --conns 16 "${flags[@]}")
    local rss; rss=$(peak_rss_mb)
    stop_collector
    local got acked rate
    got=$(rows_in_db); acked=$(json_field "$out" rows); rate=$(json_field "$out" rows_per_s)
    [ "$got" = "$acked" ] || { echo "LOST ROWS: acked $acked, stored $got" >&2; exit 1; }
    printf '(%s) logmon %-18s batch %-4s x 16 conns: %s rows/s  ratio to (a): %s  peak RSS %s MB  retries %s  (acked %s = stored %s)\n' \
      "$label" "$path" "$batch" "$rate" "$(python3 -c "print(f'{$rate / $a:.2f}')")" "$rss" "$(json_field "$out" retries)" "$acked" "$got"
  done

  # (g) syslog over TCP, one connection, octet-counted RFC 5424; (h) the same rows over 4
  # connections into a queue of 1,000 rows and one writer, so the queue is full most of the time
  # and connections must wait: every line sent must be stored.
  for run in "g 1 200000" "h 4 1000"; do
    local label conns queue; read -r label conns queue <<<"$run"
    fresh_db
    local sport; sport=$(free_port)
    start_collector --syslog-tcp "127.0.0.1:$sport" --max-queued-rows "$queue" $([ "$label" = h ] && echo --writers 1)
    local out; out=$($LOAD syslog --ndjson "$nd" --addr "127.0.0.1:$sport" --conns "$conns" --metrics "$COLLECTOR_URL/metrics")
    local deferred; deferred=$(curl -s "$COLLECTOR_URL/metrics" | sed -n 's/^logmon_ingest_source_rows_total{source="syslog_tcp",outcome="deferred"} //p')
    local rss; rss=$(peak_rss_mb)
    stop_collector
    local got sent rate
    got=$(rows_in_db); sent=$(json_field "$out" sent); rate=$(json_field "$out" rows_per_s)
    [ "$got" = "$sent" ] || { echo "LOST SYSLOG LINES: sent $sent, stored $got" >&2; exit 1; }
    printf '(%s) logmon syslog TCP, %s conn(s), queue %-6s: %s rows/s  ratio to (a): %s  peak RSS %s MB  lines that waited for the queue: %s  (sent %s = stored %s)\n' \
      "$label" "$conns" "$queue" "$rate" "$(python3 -c "print(f'{$rate / $a:.2f}')")" "$rss" "${deferred:-0}" "$sent" "$got"
  done
}

# Adds ROWS realistic rows (20 services, the generator's messages) over the last SPAN seconds,
# plus RECENT_ROWS over the last RECENT seconds, written as the collector writes (COPY into the
# partitions with rollup and pattern deltas), then compacted as the detector would.
load_history() {
  local rows=$1 span=$2 recent_rows=${3:-0} recent=${4:-300}
  $HISTORY --db "$BENCH_URL" --rows "$rows" --span "$span" >/dev/null
  [ "$recent_rows" = 0 ] || $HISTORY --db "$BENCH_URL" --rows "$recent_rows" --span "$recent" >/dev/null
  compact
}

# A fresh database holding 5M rows over the last hour (20 services) in the given order:
# ordered (time-ordered, compacted), late (10% up to 1 h late, compacted), copy (random order
# through a plain \copy into logs, not compacted). Shared by `stats` and `detect`.
load_order_case() {
  fresh_db
  case $1 in
    ordered) load_history 5000000 3600 ;;
    late) $HISTORY --db "$BENCH_URL" --rows 5000000 --span 3600 --late 0.1 --late-max 3600 >/dev/null; compact ;;
    copy) $HISTORY --db "$BENCH_URL" --rows 5000000 --span 3600 --shuffle --tsv "$WORK/shuffled.tsv" >/dev/null
          chmod a+r "$WORK/shuffled.tsv"
          psql "$BENCH_URL" -qX -c "\\copy logs (ts, service, level, status_code, latency_ms, message, attrs) FROM '$WORK/shuffled.tsv'"
          psql "$BENCH_URL" -qAtX -c "ANALYZE logs" >/dev/null ;;
  esac
  # Every case ends with a last minute of logs, written by SQL (so nothing compacts the copy
  # case's deltas): the \copy takes minutes, and without it the newest rows would be minutes old,
  # NO_DATA would open for all 20 services, and the copy case would time 20 incidents' lifecycle
  # instead of the windows' reads.
  psql "$BENCH_URL" -qAtX -c "INSERT INTO logs (ts, service, level, status_code, latency_ms, message)
      SELECT now() - (g % 60) * interval '1 second' - random() * interval '1 second', 'svc-' || lpad((g % 20)::text, 2, '0'),
             'INFO', 200, 20 + g % 300, 'request handled'
      FROM generate_series(1, 100000) g" >/dev/null
}

bench_detect() {
  echo "== detect: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  fresh_db
  load_history 1000000 86400
  local one ten
  one=$($DETECT tick --db "$BENCH_URL" --calls 50)
  echo "(b) detect_incidents() tick with  1M rows of history: p50 $(json_field "$one" p50_ms) ms  p99 $(json_field "$one" p99_ms) ms"
  load_history 9000000 86400
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

  # Rows out of time order: 5M over the last hour (20 services), (c) in order, (d) 10% of them up
  # to an hour late, (e) in random order through a plain \copy into logs, no compaction since.
  echo "-- 5M rows over the last hour, 20 services:"
  local base
  for case in ordered late copy; do
    load_order_case "$case"
    local t; t=$($DETECT tick --db "$BENCH_URL" --calls 50)
    [ "$case" = ordered ] && base=$(json_field "$t" p50_ms)
    printf '   %-8s detect_incidents() tick: p50 %s ms  p99 %s ms  (p50 ratio to in-order: %s)\n' "$case" \
      "$(json_field "$t" p50_ms)" "$(json_field "$t" p99_ms)" "$(python3 -c "print(f'{$(json_field "$t" p50_ms) / $base:.2f}')")"
  done
  echo "   (ordered: time-ordered, compacted; late: 10% up to 1 h late, compacted; copy: random order by a plain \\copy, not compacted; each then a last minute written by SQL)"
}

bench_stats() {
  echo "== stats: 10M rows of history, 1M of them in the last 5 minutes; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  fresh_db
  load_history 9000000 86400 1000000 300
  echo "rows: $(rows_in_db)"
  start_collector
  local times; times=$(timed_gets "/stats?window_minutes=5")
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

  echo "-- 5M rows over the last hour, 20 services; GET /stats?window_minutes=60, 200 requests:"
  local base=""
  for case in ordered late copy; do
    load_order_case "$case"
    start_collector
    local r; r=$(timed_gets "/stats?window_minutes=60" | percentiles)
    stop_collector
    local p50; p50=$(echo "$r" | awk '{print $2}')
    [ -z "$base" ] && base=$p50
    printf '   %-8s %s  (p50 ratio to in-order: %s)\n' "$case" "$r" "$(python3 -c "print(f'{$p50 / $base:.2f}')")"
  done
  echo "   (ordered: time-ordered, compacted; late: 10% up to 1 h late, compacted; copy: random order by a plain \\copy, not compacted; each then a last minute written by SQL)"
}

bench_search() {
  echo "== search: 10M rows of history (9M over 24 h, 1M in the last hour), 20 services, while ingesting 1,000 logs/s; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) =="
  fresh_db
  load_history 9000000 86400 1000000 3600
  echo "rows: $(rows_in_db)"
  local id
  id=$(psql "$BENCH_URL" -qAtX -c "INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at,
          window_start, window_end, breach_start, observed, threshold, peak, rule_id)
        SELECT 'svc-03', 'ERROR_SPIKE', 'HIGH', 'bench', now() - interval '5 minutes', now(), now() - interval '10 minutes',
               now(), now() - interval '10 minutes', 1, 1, 1, id FROM detection_rules WHERE name = 'ERROR_SPIKE' AND service IS NULL
        RETURNING id")
  start_collector
  RUST_LOG=warn $BIN generator --url "$COLLECTOR_URL" --rate 1000 --batch 50 --scenario none --services "$(seq -f 'svc-%02g' -s, 0 19 | sed 's/,$//')" >/dev/null &
  local gen=$!
  sleep 3
  for q in "/logs?service=svc-03&level=ERROR&since=15m&limit=100 newest 100 ERROR lines of one service, last 15 min (target p99 < 20 ms)" \
           "/logs?service=svc-03&since=15m&limit=100 newest 100 lines of one service, any level, last 15 min (target p99 < 30 ms)" \
           "/logs?service=svc-03&since=15m&q=timed%20out&limit=100 q= substring over one service's last 15 min (target p99 < 250 ms)" \
           "/incidents/$id/logs first page of an incident's lines (target p99 < 30 ms)" \
           "/patterns?window_minutes=60 GET /patterns, last hour, every service (target p99 < 20 ms)" \
           "/incidents/$id one incident with its context (target p99 < 20 ms)"; do
    local path=${q%% *} what=${q#* }
    printf '   %-75s %s\n' "$what" "$(timed_gets "$path" 200 | percentiles)"
  done
  kill $gen; wait $gen 2>/dev/null || true
  stop_collector
}

# ROWS rows over the last 24 hours for six services, each message from one of a few templates per
# service (0.5% errors), carrying the pattern id the collector would store (computed once per
# template and checked on a sample), then 20,000 errors of feed-service in the last 15 minutes,
# half of them a message never seen before. Written straight into the day partitions (the bulk
# path: no trigger) and rolled up with rebuild_rollup(), as the README's backfill recipe says.
load_ui_history() {
  local rows=$1
  PGOPTIONS="-c logmon.bench_rows=$rows" psql "$BENCH_URL" -qX -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE TABLE bench_templates AS
SELECT s, k, svc, lvl, fmt, status, log_pattern_id(format(fmt, 1234, 56, 78)) AS pid
FROM (VALUES
  (0, 0, 'auth-service', 'INFO', 'user %s logged in from 10.0.%s.%s', 200),
  (0, 1, 'auth-service', 'INFO', 'issued token %s for user %s (expires in %s s)', 200),
  (0, 2, 'auth-service', 'WARN', 'password check slow for user %s: %s ms (%s retries)', 200),
  (0, 3, 'auth-service', 'ERROR', 'login failed for user %s from 10.1.%s.%s: bad password', 401),
  (1, 0, 'feed-service', 'INFO', 'rendered feed for user %s: %s items in %s ms', 200),
  (1, 1, 'feed-service', 'INFO', 'fetched %s posts from shard %s in %s ms', 200),
  (1, 2, 'feed-service', 'INFO', 'cache hit for feed %s (age %s s, %s bytes)', 200),
  (1, 3, 'feed-service', 'ERROR', 'ranking service returned 503 after %s ms (attempt %s of %s)', 503),
  (2, 0, 'db-service', 'INFO', 'query ok: select on table t%s returned %s rows in %s ms', 200),
  (2, 1, 'db-service', 'INFO', 'committed transaction %s (%s statements) in %s ms', 200),
  (2, 2, 'db-service', 'WARN', 'connection pool %s has %s waiting (max %s)', 200),
  (2, 3, 'db-service', 'ERROR', 'deadlock detected on relation %s (pid %s, %s ms)', 500),
  (3, 0, 'search-service', 'INFO', 'query %s answered with %s hits in %s ms', 200),
  (3, 1, 'search-service', 'INFO', 'index segment %s merged (%s docs, %s ms)', 200),
  (3, 2, 'search-service', 'INFO', 'suggestions for prefix %s: %s in %s ms', 200),
  (3, 3, 'search-service', 'ERROR', 'shard %s timed out after %s ms (%s replicas)', 504),
  (4, 0, 'payments', 'INFO', 'payment %s captured: %s cents in %s ms', 200),
  (4, 1, 'payments', 'INFO', 'refund %s queued (%s cents, batch %s)', 200),
  (4, 2, 'payments', 'INFO', 'card %s verified in %s ms (%s checks)', 200),
  (4, 3, 'payments', 'ERROR', 'card %s declined: code %s after %s ms', 402),
  (5, 0, 'notifications', 'INFO', 'sent %s emails in batch %s (%s ms)', 200),
  (5, 1, 'notifications', 'INFO', 'push %s delivered to device %s in %s ms', 200),
  (5, 2, 'notifications', 'INFO', 'digest %s built for %s users in %s ms', 200),
  (5, 3, 'notifications', 'ERROR', 'smtp relay %s refused message %s after %s ms', 500),
  (1, 4, 'feed-service', 'ERROR', 'connection to ranking-%s refused (pool %s, attempt %s)', 503)
) v(s, k, svc, lvl, fmt, status);
-- every message of a template gets that template's pattern (checked on a sample)
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM bench_templates t, generate_series(1, 200) g
             WHERE log_pattern_id(format(t.fmt, g * 7919 % 100000, g % 251, g % 97)) <> t.pid) THEN
    RAISE EXCEPTION 'a bench template does not give one pattern id';
  END IF;
END $$;
CREATE FUNCTION pg_temp.bench_rows(lo bigint, hi bigint, n bigint, t0 timestamptz, span interval, day_lo timestamptz, day_hi timestamptz)
RETURNS TABLE (ts timestamptz, service text, level text, message text, status_code int, latency_ms float8, pattern_id bigint)
LANGUAGE sql AS $f$
  SELECT x.ts, t.svc, t.lvl, format(t.fmt, x.g * 7919 % 100000, x.g % 251, x.g % 97), t.status,
         (5 + (x.g * 31) % 120 + CASE WHEN x.g % 50 = 0 THEN 600 ELSE 0 END)::float8, t.pid
  FROM (SELECT g, t0 + span * (g::float8 / n) AS ts,
               (g % 6)::int AS s, CASE WHEN (g / 6) % 200 = 0 THEN 3 ELSE ((g / 6) % 3)::int END AS k
        FROM generate_series(lo, hi) g) x
  JOIN bench_templates t ON t.s = x.s AND t.k = x.k
  WHERE x.ts >= day_lo AND x.ts < day_hi
$f$;
DO $$
DECLARE
  n bigint := current_setting('logmon.bench_rows')::bigint;
  t0 timestamptz := now() - interval '24 hours';
  span interval := interval '24 hours';
  a timestamptz;
  b timestamptz;
  lo bigint;
  hi bigint;
BEGIN
  CREATE TABLE bench_clock AS SELECT now() AS at;  -- when the history ends
  -- straight into each hour's partition (no trigger), as the collector writes
  FOR a IN SELECT generate_series(date_trunc('hour', t0), now(), interval '1 hour') LOOP
    b := a + interval '1 hour';
    lo := greatest(1, floor(extract(epoch FROM a - t0) / extract(epoch FROM span) * n)::bigint - 1);
    hi := least(n, ceil(extract(epoch FROM b - t0) / extract(epoch FROM span) * n)::bigint + 1);
    CONTINUE WHEN lo > hi;
    EXECUTE format('INSERT INTO %I (ts, service, level, message, status_code, latency_ms, pattern_id)
                    SELECT * FROM pg_temp.bench_rows($1, $2, $3, $4, $5, $6, $7)', log_partition_for(a))
      USING lo, hi, n, t0, span, a, b;
  END LOOP;
  -- the failure: feed-service's usual error, and one never seen before, for the last 15 minutes
  FOR a IN SELECT generate_series(date_trunc('hour', now() - interval '15 minutes'), now(), interval '1 hour') LOOP
    EXECUTE format('INSERT INTO %I (ts, service, level, message, status_code, latency_ms, pattern_id)
                    SELECT x.ts, t.svc, t.lvl, format(t.fmt, mod(g, 40), mod(g, 7), mod(g, 5)), t.status, 20 + mod(g, 300), t.pid
                    FROM generate_series(1, 20000) g
                    CROSS JOIN LATERAL (SELECT now() - interval ''15 minutes'' + g * interval ''45 milliseconds'' AS ts) x
                    JOIN bench_templates t ON t.s = 1 AND t.k = 3 + mod(g, 2)
                    WHERE x.ts < now() AND x.ts >= $1 AND x.ts < $1 + interval ''1 hour''', log_partition_for(a))
      USING a;
  END LOOP;
END $$;
SELECT rebuild_rollup(now() - interval '25 hours', now() + interval '1 minute');
SELECT compact_rollup();
SELECT compact_patterns();
DROP TABLE bench_templates;
-- detection as a detector running beside the senders would see it, at the end of the history:
-- the burst opens an ERROR_SPIKE (and no service looks silent)
CREATE TABLE bench_incident AS
SELECT incident_id FROM detect_incidents((SELECT at FROM bench_clock))
WHERE action = 'opened' AND service = 'feed-service' AND incident_type = 'ERROR_SPIKE';
SQL
  psql "$BENCH_URL" -qX -c "VACUUM ANALYZE logs" -c "VACUUM ANALYZE log_rollup" -c "VACUUM ANALYZE log_rollup_minute" \
    -c "VACUUM ANALYZE log_pattern_counts" -c "VACUUM ANALYZE log_pattern_counts_10m" >/dev/null
}

bench_ui() {
  local loads=${1:-20}
  ensure_playwright
  [ -x /usr/bin/chromium ] || apt_install chromium
  echo "== ui: the incident page at ${LOGMON_UI_ROWS:-10000000} rows of history; $(nproc) cores, load $(cut -d" " -f1-3 /proc/loadavg), $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version'), $(/usr/bin/chromium --version 2>/dev/null) =="
  fresh_db
  local t0 t1
  t0=$(date +%s.%N)
  load_ui_history "${LOGMON_UI_ROWS:-10000000}"
  t1=$(date +%s.%N)
  echo "rows: $(rows_in_db) (loaded and rolled up in $(python3 -c "print(round($t1 - $t0))") s)"
  local id
  id=$(psql "$BENCH_URL" -qAtX -c "SELECT incident_id FROM bench_incident")
  [[ "$id" =~ ^[0-9]+$ ]] || { echo "the burst opened no ERROR_SPIKE incident" >&2; exit 1; }
  start_collector
  trap stop_collector EXIT
  local page="$COLLECTOR_URL/incidents/$id"
  # (a) what the page waits for, over curl: the incident (with its context) and its first lines
  curl -sf "$page" >/dev/null
  local inc lines
  inc=$(for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' "$page"; done)
  lines=$(for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' "$page/logs?limit=50"; done)
  # (b) the page in Chromium, a fresh context (cold cache) per load
  local out
  out=$(node scripts/lib/ui_bench.mjs "$page" "$loads")
  trap - EXIT
  stop_collector
  python3 - "$inc" "$lines" "$out" "$page" <<'PY'
import json, sys
p = lambda v, q: v[min(len(v) - 1, round((len(v) - 1) * q))]
inc = sorted(float(x) * 1000 for x in sys.argv[1].split())
lines = sorted(float(x) * 1000 for x in sys.argv[2].split())
r = json.loads(sys.argv[3])
print(f"(a) GET {sys.argv[4].split('/', 3)[3]} (JSON, with its context), curl x{len(inc)}: p50 {p(inc, .5):.1f} ms  p99 {p(inc, .99):.1f} ms")
print(f"(a) GET .../logs?limit=50 (its first lines), curl x{len(lines)}: p50 {p(lines, .5):.1f} ms  p99 {p(lines, .99):.1f} ms")
print(f"(b) incident page in Chromium, {r['loads']} loads (fresh context each): content drawn p50 {r['p50_ms']:.0f} ms  "
      f"p99 {r['p99_ms']:.0f} ms (min {r['min_ms']:.0f}, max {r['max_ms']:.0f}); HTML received p50 {r['html_p50_ms']:.0f} ms, "
      f"DOMContentLoaded p50 {r['dom_p50_ms']:.0f} ms; {r['patterns']} patterns and {r['lines']} lines drawn")
print(f"    'content drawn' = performance.mark('logmon:content-drawn'): the incident, its patterns and first lines in the DOM, "
      f"ms after navigation start; target 1000 ms: {'met' if r['p99_ms'] < 1000 else 'NOT met'} at p99")
PY
}

bench_patterns() {
  echo "== patterns: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  fresh_db
  local loghub=()
  [ -n "${1:-}" ] && loghub=(--loghub "$1")
  target/release/examples/pattern_bench "${loghub[@]}" --db "$BENCH_URL"
}


# Whether a VACUUM or an ANALYZE (autovacuum's, after a load) runs anywhere in the cluster while a
# figure is measured: on 2 cores one competes with what is timed. One psql session samples every
# 0.25 s until vacuum_watch_stop prints "vacuum/analyze running in N of M samples".
vacuum_watch_start() {
  rm -f "$WORK/vacuum-stop"
  while [ ! -e "$WORK/vacuum-stop" ]; do
    echo "SELECT (SELECT count(*) FROM pg_stat_progress_vacuum) + (SELECT count(*) FROM pg_stat_progress_analyze);"
    sleep 0.25
  done | psql "$ADMIN_URL" -qAtX > "$WORK/vacuum-samples" 2>/dev/null &
  VACUUM_WATCH=$!
}
vacuum_watch_stop() {
  touch "$WORK/vacuum-stop"
  wait "$VACUUM_WATCH" 2>/dev/null || true
  awk '{n++; if ($1 > 0) b++} END {printf "vacuum/analyze running in %d of %d samples", b, n}' "$WORK/vacuum-samples"
}

# Every figure at 10M and at 100M rows of the last 24 hours (time-ordered, 20 services, the
# generator's messages and attrs), each size in a fresh database: does anything grow with rows?
bench_scale() {
  local sizes=${1:-"10000000 100000000"}
  echo "== scale: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  local nd="$WORK/workload-1000000.ndjson" tsv="$WORK/workload-1000000.tsv"
  [ -f "$tsv" ] || $LOAD gen --rows 1000000 --ndjson "$nd" --tsv "$tsv"
  chmod a+r "$tsv"
  for rows in $sizes; do
    fresh_db
    local t0; t0=$(date +%s)
    $HISTORY --db "$BENCH_URL" --rows "$rows" --span 86400 >/dev/null
    compact
    local loaded=$(( $(date +%s) - t0 ))
    # The load takes minutes (8 at 100M) and its rows end when it started: without the logs of
    # those minutes, NO_DATA would open for all 20 services and the tick would time 20 incidents'
    # lifecycle at 100M and not at 10M, and the last 15 minutes that searches read would be mostly
    # empty at 100M and full at 10M. So the time the load took, and one more minute, at the size's
    # rate, written the collector's way (realistic messages and levels, each line's pattern set,
    # the deltas in its transactions), as a live system would have them.
    local gap=$(( $(date +%s) - t0 + 60 ))
    local recent=$(( rows / 86400 * gap ))
    $HISTORY --db "$BENCH_URL" --rows "$recent" --span "$gap" >/dev/null
    # folded as the detector would, not vacuumed: VACUUM ANALYZE of logs takes minutes at 100M, and
    # the newest rows would be as old as that by the first tick
    psql "$BENCH_URL" -qAtX -c "SELECT compact_rollup(), compact_patterns()" >/dev/null
    echo "-- $rows rows over the last 24 h, then the $gap s up to now (loaded in $loaded s):"
    # A running detector summarizes the time index's newest block ranges each tick (within 100 ms),
    # which autosummarize dropped during the burst: the calls it would make, until nothing is left.
    local calls=0 ranges=0 ms=0 n=1 out
    while [ "$n" != 0 ]; do
      out=$(psql "$BENCH_URL" -qAtX -F' ' -c "SELECT n, extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000
                                              FROM summarize_time_index() n")
      n=${out%% *}
      calls=$((calls + 1)); ranges=$((ranges + n)); ms=$(python3 -c "print($ms + ${out#* })")
    done
    local ticks; ticks="$ranges block ranges summarized in $calls calls, $(python3 -c "print(round($ms))") ms in all"
    echo "   time index after the burst (summarize_time_index(), as the detector's ticks call it): $ticks"
    local sizes_sql="SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) || ' logs (heap + indexes), ' ||
        pg_size_pretty(pg_total_relation_size('log_rollup') + pg_total_relation_size('log_rollup_minute')) || ' rollup, ' ||
        pg_size_pretty(pg_total_relation_size('log_pattern_counts') + pg_total_relation_size('log_pattern_counts_10m')
                       + pg_total_relation_size('log_patterns')) || ' patterns; ' ||
        round((sum(pg_total_relation_size(inhrelid)) + pg_total_relation_size('log_rollup') + pg_total_relation_size('log_rollup_minute')
               + pg_total_relation_size('log_pattern_counts') + pg_total_relation_size('log_pattern_counts_10m')
               + pg_total_relation_size('log_patterns'))::numeric / ($rows + $recent)) || ' bytes per stored row'
      FROM pg_inherits WHERE inhparent = 'logs'::regclass"
    echo "   disk: $(psql "$BENCH_URL" -qAtX -c "$sizes_sql"); database $(psql "$BENCH_URL" -qAtX -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"
    local t; vacuum_watch_start; t=$($DETECT tick --db "$BENCH_URL" --calls 50)
    echo "   detect_incidents() tick: p50 $(json_field "$t" p50_ms) ms  p99 $(json_field "$t" p99_ms) ms  [$(vacuum_watch_stop)]"
    # the week reaches past the 24 h loaded: what it costs is the rollup's minutes of every
    # service, which do not grow with rows a day
    local week="SELECT count(*) FROM backtest_rules(now() - interval '7 days', step => '1 minute')"
    psql "$BENCH_URL" -qAtX -c "$week" >/dev/null   # warm the cache and the plans
    local w; w=$(time_sql 3 "$week")
    echo "   7-day backtest, 1-minute steps (backtest_rules): median ${w% *} ms  best ${w#* } ms"
    local id
    id=$(psql "$BENCH_URL" -qAtX -c "INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at,
          window_start, window_end, breach_start, observed, threshold, peak, rule_id)
        SELECT 'svc-03', 'ERROR_SPIKE', 'HIGH', 'bench', now() - interval '5 minutes', now(), now() - interval '10 minutes',
               now(), now() - interval '10 minutes', 1, 1, 1, id FROM detection_rules WHERE name = 'ERROR_SPIKE' AND service IS NULL
        RETURNING id")
    start_collector
    for q in "/stats?window_minutes=5 GET /stats (target p99 < 10 ms)" \
             "/logs?service=svc-03&level=ERROR&since=15m&limit=100 search: 100 ERROR lines of one service, 15 min" \
             "/logs?service=svc-03&level=ERROR&since=15m&limit=5 search: 5 ERROR lines (a full page at both sizes)" \
             "/logs?service=svc-03&since=15m&limit=100 search: 100 lines of one service, 15 min" \
             "/logs?service=svc-03&since=15m&q=retrying&limit=100 search: q= matching 3% of its lines, 15 min" \
             "/logs?service=svc-03&since=15m&q=timed%20out&limit=100 search: q= matching none: the whole window read" \
             "/incidents/$id/logs an incident's lines, first page" \
             "/incidents/$id/logs?limit=3 an incident's first 3 lines (a full page at both sizes)" \
             "/patterns?window_minutes=60 GET /patterns, last hour" \
             "/incidents/$id an incident with its context"; do
      local path=${q%% *} what=${q#* } lines=""
      # how many lines a search returns (a fuller page costs more whatever the size, so the
      # ERROR and incident searches are also timed with a page both sizes fill: the same work)
      case $path in */logs*) lines="  ($(curl -sf "$COLLECTOR_URL$path" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))') lines)" ;; esac
      vacuum_watch_start
      local times; times=$(timed_gets "$path" 200 | percentiles)
      printf '   %-50s %s%s  [%s]\n' "$what" "$times" "$lines" "$(vacuum_watch_stop)"
    done
    # ingest next to this history: psql \copy of 1M rows, then the same rows over POST /logs
    local a out rate
    a=$(copy_baseline "$tsv")
    out=$($LOAD send --ndjson "$nd" --url "$COLLECTOR_URL/logs" --batch 1000 --conns 16)
    rate=$(json_field "$out" rows_per_s)
    stop_collector
    echo "   ingest, 1M more rows: psql \\copy $a rows/s; POST /logs batch 1000 x 16: $rate rows/s, ratio b/a $(python3 -c "print(f'{$rate / $a:.2f}')")"
  done
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
  echo "== backtest: 10 services, the default rules; $(nproc) cores, $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
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
  patterns) shift; bench_patterns "$@" ;;
  search) bench_search ;;
  scale) shift; bench_scale "$@" ;;
  backtest) bench_backtest ;;
  ui) shift; bench_ui "$@" ;;
  *) echo "usage: $0 ingest [ROWS] | stats | detect | search | scale [\"SIZES\"] | patterns [LOGHUB_DIR] | backtest | ui [LOADS]" >&2; exit 2 ;;
esac
