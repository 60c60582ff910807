-- Recomputes the rollup from the raw rows for whole minutes in [from_ts, to_ts): both levels
-- (seconds only where younger than rollup_state.fine_since). The way to repair, and the second
-- half of the raw bulk path (COPY straight into a partition, which no trigger watches):
--   \copy logs_p20261120 (ts, service, level, ...) FROM 'backfill.tsv'
--   SELECT rebuild_rollup('2026-11-20', '2026-11-21');
-- It locks the rollup against writers while it runs, so concurrent ingestion waits rather than
-- being double-counted or lost: the result is exact.
CREATE OR REPLACE FUNCTION rebuild_rollup(from_ts timestamptz, to_ts timestamptz) RETURNS bigint
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    lo constant timestamptz := date_trunc('minute', from_ts);
    hi constant timestamptz := date_trunc('minute', to_ts) + CASE WHEN to_ts > date_trunc('minute', to_ts) THEN interval '1 minute' ELSE interval '0' END;
    fine timestamptz;
    n bigint;
    m bigint;
BEGIN
    LOCK TABLE log_rollup, log_rollup_minute IN SHARE ROW EXCLUSIVE MODE;
    SELECT fine_since INTO fine FROM rollup_state;
    DELETE FROM log_rollup WHERE bucket >= lo AND bucket < hi;
    DELETE FROM log_rollup_minute WHERE bucket >= lo AND bucket < hi;
    CREATE TEMP TABLE rebuilt_seconds ON COMMIT DROP AS
    SELECT service, sec AS bucket, count(*) AS total, count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')) AS errors,
           count(latency_ms) AS latency_count, coalesce(sum(latency_ms), 0) AS latency_sum, max(latency_ms) AS latency_max,
           count(*) FILTER (WHERE b = 0) AS h0, count(*) FILTER (WHERE b = 1) AS h1, count(*) FILTER (WHERE b = 2) AS h2,
           count(*) FILTER (WHERE b = 3) AS h3, count(*) FILTER (WHERE b = 4) AS h4, count(*) FILTER (WHERE b = 5) AS h5,
           count(*) FILTER (WHERE b = 6) AS h6, count(*) FILTER (WHERE b = 7) AS h7, count(*) FILTER (WHERE b = 8) AS h8,
           count(*) FILTER (WHERE b = 9) AS h9, count(*) FILTER (WHERE b = 10) AS h10, count(*) FILTER (WHERE b = 11) AS h11,
           count(*) FILTER (WHERE b = 12) AS h12, count(*) FILTER (WHERE b = 13) AS h13, count(*) FILTER (WHERE b = 14) AS h14,
           count(*) FILTER (WHERE b = 15) AS h15
    FROM (SELECT service, date_trunc('second', ts) AS sec, level, latency_ms, width_bucket(latency_ms, latency_bounds()) AS b
          FROM logs WHERE ts >= lo AND ts < hi) x
    GROUP BY service, sec;
    INSERT INTO log_rollup (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, compacted)
    SELECT service, bucket, total, errors, latency_count, latency_sum, latency_max,
           h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, true
    FROM rebuilt_seconds WHERE bucket >= fine;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO log_rollup_minute (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                                   h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
    SELECT service, date_trunc('minute', bucket), sum(total), sum(errors), sum(latency_count), sum(latency_sum), max(latency_max),
           sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6), sum(h7),
           sum(h8), sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14), sum(h15)
    FROM rebuilt_seconds GROUP BY 1, 2;
    GET DIAGNOSTICS m = ROW_COUNT;
    DROP TABLE rebuilt_seconds;
    -- pattern counts of the range (rows written straight into a partition carry no pattern_id:
    -- computed here, as the logs triggers do)
    -- compaction's lock first (the order compact_patterns() takes them in), then the tables
    PERFORM pg_advisory_xact_lock(hashtext('logmon.compact_patterns'));
    LOCK TABLE log_pattern_counts, log_pattern_counts_10m IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM log_pattern_counts WHERE bucket >= lo AND bucket < hi;
    WITH r AS MATERIALIZED (
        SELECT service, level, ts, message, pattern_id FROM logs WHERE ts >= lo AND ts < hi AND message IS NOT NULL
    ), ids AS (
        SELECT m.message, log_pattern_id(m.message) AS p
        FROM (SELECT DISTINCT r.message FROM r WHERE r.pattern_id IS NULL) m
    ), x AS MATERIALIZED (
        SELECT r.service, r.level, r.ts, r.message, coalesce(r.pattern_id, ids.p) AS p
        FROM r LEFT JOIN ids ON r.pattern_id IS NULL AND ids.message = r.message
    ), counts AS (
        INSERT INTO log_pattern_counts (service, pattern_id, level, bucket, count, compacted)
        SELECT x.service, x.p, x.level, date_trunc('minute', x.ts), count(*), true FROM x GROUP BY 1, 2, 3, 4
    )
    INSERT INTO log_patterns (service, pattern_id, template, example, first_seen, last_seen)
    SELECT d.service, d.p, log_template(d.message), d.message, date_trunc('minute', d.first), date_trunc('minute', d.last)
    FROM (SELECT DISTINCT ON (x.service, x.p) x.service, x.p, x.message,
                 min(x.ts) OVER (PARTITION BY x.service, x.p) AS first, max(x.ts) OVER (PARTITION BY x.service, x.p) AS last
          FROM x ORDER BY x.service, x.p, x.ts) d
    ON CONFLICT (service, pattern_id) DO UPDATE
        SET first_seen = least(log_patterns.first_seen, excluded.first_seen),
            last_seen = greatest(log_patterns.last_seen, excluded.last_seen);
    -- the 10-minute level of the buckets the range touches (its edges need not be whole buckets)
    PERFORM refold_pattern_counts(lo, hi);
    RETURN n + m;
END $$;

COMMENT ON FUNCTION rebuild_rollup(timestamptz, timestamptz) IS
  'Recomputes log_rollup (seconds younger than rollup_state.fine_since), log_rollup_minute, log_pattern_counts (and '
  'catalogue rows) from the raw logs for whole minutes in [from_ts, to_ts), and log_pattern_counts_10m for the '
  '10-minute buckets the range touches (exact; blocks rollup writers and compaction meanwhile). Use after COPYing '
  'straight into a partition, or to repair. Returns rollup rows written.';
