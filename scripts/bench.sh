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
    -c "VACUUM ANALYZE log_rollup" -c "VACUUM ANALYZE log_rollup_minute" -c "VACUUM ANALYZE log_pattern_counts" >/dev/null
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
    fresh_db
    case $case in
      ordered) load_history 5000000 3600 ;;
      late) $HISTORY --db "$BENCH_URL" --rows 5000000 --span 3600 --late 0.1 --late-max 3600 >/dev/null; compact ;;
      copy) $HISTORY --db "$BENCH_URL" --rows 5000000 --span 3600 --shuffle --tsv "$WORK/shuffled.tsv" >/dev/null
            chmod a+r "$WORK/shuffled.tsv"
            psql "$BENCH_URL" -qX -c "\\copy logs (ts, service, level, status_code, latency_ms, message, attrs) FROM '$WORK/shuffled.tsv'"
            psql "$BENCH_URL" -qAtX -c "ANALYZE logs" >/dev/null ;;
    esac
    local t; t=$($DETECT tick --db "$BENCH_URL" --calls 50)
    [ "$case" = ordered ] && base=$(json_field "$t" p50_ms)
    printf '   %-8s detect_incidents() tick: p50 %s ms  p99 %s ms  (p50 ratio to in-order: %s)\n' "$case" \
      "$(json_field "$t" p50_ms)" "$(json_field "$t" p99_ms)" "$(python3 -c "print(f'{$(json_field "$t" p50_ms) / $base:.2f}')")"
  done
  echo "   (ordered: time-ordered, compacted; late: 10% up to 1 h late, compacted; copy: random order by a plain \\copy, not compacted)"
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
    fresh_db
    case $case in
      ordered) load_history 5000000 3600 ;;
      late) $HISTORY --db "$BENCH_URL" --rows 5000000 --span 3600 --late 0.1 --late-max 3600 >/dev/null; compact ;;
      copy) $HISTORY --db "$BENCH_URL" --rows 5000000 --span 3600 --shuffle --tsv "$WORK/shuffled.tsv" >/dev/null
            chmod a+r "$WORK/shuffled.tsv"
            psql "$BENCH_URL" -qX -c "\\copy logs (ts, service, level, status_code, latency_ms, message, attrs) FROM '$WORK/shuffled.tsv'"
            psql "$BENCH_URL" -qAtX -c "ANALYZE logs" >/dev/null ;;
    esac
    start_collector
    local r; r=$(timed_gets "/stats?window_minutes=60" | percentiles)
    stop_collector
    local p50; p50=$(echo "$r" | awk '{print $2}')
    [ -z "$base" ] && base=$p50
    printf '   %-8s %s  (p50 ratio to in-order: %s)\n' "$case" "$r" "$(python3 -c "print(f'{$p50 / $base:.2f}')")"
  done
  echo "   (ordered: time-ordered, compacted; late: 10% up to 1 h late, compacted; copy: random order by a plain \\copy, not compacted)"
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

bench_patterns() {
  echo "== patterns: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql "$ADMIN_URL" -qAtX -c 'SHOW server_version') =="
  fresh_db
  local loghub=()
  [ -n "${1:-}" ] && loghub=(--loghub "$1")
  target/release/examples/pattern_bench "${loghub[@]}" --db "$BENCH_URL"
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
    echo "-- $rows rows over the last 24 h (loaded in $(( $(date +%s) - t0 )) s):"
    local sizes_sql="SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) || ' logs (heap + indexes), ' ||
        pg_size_pretty(pg_total_relation_size('log_rollup') + pg_total_relation_size('log_rollup_minute')) || ' rollup, ' ||
        pg_size_pretty(pg_total_relation_size('log_pattern_counts') + pg_total_relation_size('log_patterns')) || ' patterns; ' ||
        round((sum(pg_total_relation_size(inhrelid)) + pg_total_relation_size('log_rollup') + pg_total_relation_size('log_rollup_minute')
               + pg_total_relation_size('log_pattern_counts') + pg_total_relation_size('log_patterns'))::numeric / $rows) || ' bytes per stored row'
      FROM pg_inherits WHERE inhparent = 'logs'::regclass"
    echo "   disk: $(psql "$BENCH_URL" -qAtX -c "$sizes_sql"); database $(psql "$BENCH_URL" -qAtX -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"
    local t; t=$($DETECT tick --db "$BENCH_URL" --calls 50)
    echo "   detect_incidents() tick: p50 $(json_field "$t" p50_ms) ms  p99 $(json_field "$t" p99_ms) ms"
    local id
    id=$(psql "$BENCH_URL" -qAtX -c "INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at,
          window_start, window_end, breach_start, observed, threshold, peak, rule_id)
        SELECT 'svc-03', 'ERROR_SPIKE', 'HIGH', 'bench', now() - interval '5 minutes', now(), now() - interval '10 minutes',
               now(), now() - interval '10 minutes', 1, 1, 1, id FROM detection_rules WHERE name = 'ERROR_SPIKE' AND service IS NULL
        RETURNING id")
    start_collector
    for q in "/stats?window_minutes=5 GET /stats (target p99 < 10 ms)" \
             "/logs?service=svc-03&level=ERROR&since=15m&limit=100 search: 100 ERROR lines of one service, 15 min" \
             "/logs?service=svc-03&since=15m&limit=100 search: 100 lines of one service, 15 min" \
             "/logs?service=svc-03&since=15m&q=timed%20out&limit=100 search: q= over one service, 15 min" \
             "/incidents/$id/logs an incident's lines, first page" \
             "/patterns?window_minutes=60 GET /patterns, last hour" \
             "/incidents/$id an incident with its context"; do
      local path=${q%% *} what=${q#* }
      printf '   %-50s %s\n' "$what" "$(timed_gets "$path" 200 | percentiles)"
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
  patterns) shift; bench_patterns "$@" ;;
  search) bench_search ;;
  scale) shift; bench_scale "$@" ;;
  backtest) bench_backtest ;;
  *) echo "usage: $0 ingest [ROWS] | stats | detect | search | scale [\"SIZES\"] | patterns [LOGHUB_DIR] | backtest" >&2; exit 2 ;;
esac
