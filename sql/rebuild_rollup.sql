-- Recomputes log_rollup from the raw rows for whole minutes in [from_ts, to_ts). The fast way to
-- backfill a lot of history: load it with the row trigger skipped, then rebuild that range:
--   SET logmon.rollup_recorded = 'on';  \copy logs (...) FROM 'backfill.tsv'
--   SELECT rebuild_rollup('2026-11-20', '2026-11-21');
-- It locks log_rollup against writers while it runs, so concurrent ingestion waits rather than
-- being double-counted or lost: the result is exact.
CREATE OR REPLACE FUNCTION rebuild_rollup(from_ts timestamptz, to_ts timestamptz) RETURNS bigint
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    lo constant timestamptz := date_trunc('minute', from_ts);
    hi constant timestamptz := date_trunc('minute', to_ts) + CASE WHEN to_ts > date_trunc('minute', to_ts) THEN interval '1 minute' ELSE interval '0' END;
    n bigint;
BEGIN
    LOCK TABLE log_rollup IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM log_rollup WHERE bucket >= lo AND bucket < hi;
    INSERT INTO log_rollup (service, bucket, width_s, total, errors, latency_count, latency_sum, latency_max,
                            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
    SELECT service, sec, 1, count(*), count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')), count(latency_ms),
           coalesce(sum(latency_ms), 0), max(latency_ms),
           count(*) FILTER (WHERE b = 0),
           count(*) FILTER (WHERE b = 1),
           count(*) FILTER (WHERE b = 2),
           count(*) FILTER (WHERE b = 3),
           count(*) FILTER (WHERE b = 4),
           count(*) FILTER (WHERE b = 5),
           count(*) FILTER (WHERE b = 6),
           count(*) FILTER (WHERE b = 7),
           count(*) FILTER (WHERE b = 8),
           count(*) FILTER (WHERE b = 9),
           count(*) FILTER (WHERE b = 10),
           count(*) FILTER (WHERE b = 11),
           count(*) FILTER (WHERE b = 12),
           count(*) FILTER (WHERE b = 13),
           count(*) FILTER (WHERE b = 14),
           count(*) FILTER (WHERE b = 15)
    FROM (SELECT service, date_trunc('second', ts) AS sec, level, latency_ms,
                 CASE WHEN latency_ms IS NULL THEN -1 ELSE width_bucket(latency_ms, latency_bounds()) END AS b
          FROM logs WHERE ts >= lo AND ts < hi) x
    GROUP BY service, sec;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

COMMENT ON FUNCTION rebuild_rollup(timestamptz, timestamptz) IS
  'Recomputes log_rollup from raw logs for whole minutes in [from_ts, to_ts) (exact; blocks rollup writers meanwhile). '
  'Use after a bulk load with logmon.rollup_recorded = on, or to repair. Returns rollup rows written; run compact_rollup() after.';
