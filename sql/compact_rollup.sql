-- Folds the rollup's delta rows into the two levels readers use, in one statement (a reader sees
-- each delta either still pending or folded into both levels, never both or neither):
--   * every second that got deltas becomes one merged row again (compacted = true), for seconds
--     younger than rollup_fine_retention;
--   * every minute that got deltas gets them added to its log_rollup_minute row.
-- Then seconds older than rollup_fine_retention are dropped (their minutes remain) and the
-- watermark rollup_state.fine_since moves. Deltas committed meanwhile are left for the next call.
CREATE OR REPLACE FUNCTION compact_rollup() RETURNS bigint
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    old_f timestamptz;
    new_f timestamptz;
    merged bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('logmon.compact_rollup')) THEN
        RETURN 0;  -- someone else is compacting right now
    END IF;
    SELECT fine_since INTO old_f FROM rollup_state;
    SELECT greatest(old_f, date_trunc('minute', now() - rollup_fine_retention)) INTO new_f FROM logmon_settings;

    WITH deltas AS (
        DELETE FROM log_rollup r WHERE NOT r.compacted RETURNING r.*
    ), seconds AS (
        SELECT DISTINCT d.service, d.bucket FROM deltas d WHERE d.bucket >= new_f
    ), old_seconds AS (
        DELETE FROM log_rollup r USING seconds s
        WHERE r.compacted AND r.service = s.service AND r.bucket = s.bucket
        RETURNING r.*
    ), merged_seconds AS (
        INSERT INTO log_rollup (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                                h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, compacted)
        SELECT x.service, x.bucket, sum(x.total), sum(x.errors), sum(x.latency_count), sum(x.latency_sum), max(x.latency_max),
               sum(x.h0), sum(x.h1), sum(x.h2), sum(x.h3), sum(x.h4), sum(x.h5), sum(x.h6), sum(x.h7),
               sum(x.h8), sum(x.h9), sum(x.h10), sum(x.h11), sum(x.h12), sum(x.h13), sum(x.h14), sum(x.h15), true
        FROM (SELECT * FROM old_seconds UNION ALL SELECT * FROM deltas d WHERE d.bucket >= new_f) x
        GROUP BY x.service, x.bucket
        RETURNING 1
    ), minutes AS (
        SELECT DISTINCT d.service, date_trunc('minute', d.bucket) AS bucket FROM deltas d
    ), old_minutes AS (
        DELETE FROM log_rollup_minute m USING minutes k
        WHERE m.service = k.service AND m.bucket = k.bucket
        RETURNING m.*
    ), merged_minutes AS (
        INSERT INTO log_rollup_minute (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                                       h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
        SELECT x.service, x.bucket, sum(x.total), sum(x.errors), sum(x.latency_count), sum(x.latency_sum), max(x.latency_max),
               sum(x.h0), sum(x.h1), sum(x.h2), sum(x.h3), sum(x.h4), sum(x.h5), sum(x.h6), sum(x.h7),
               sum(x.h8), sum(x.h9), sum(x.h10), sum(x.h11), sum(x.h12), sum(x.h13), sum(x.h14), sum(x.h15)
        FROM (SELECT m.service, m.bucket, m.total, m.errors, m.latency_count, m.latency_sum, m.latency_max,
                     m.h0, m.h1, m.h2, m.h3, m.h4, m.h5, m.h6, m.h7, m.h8, m.h9, m.h10, m.h11, m.h12, m.h13, m.h14, m.h15
              FROM old_minutes m
              UNION ALL
              SELECT d.service, date_trunc('minute', d.bucket), d.total, d.errors, d.latency_count, d.latency_sum, d.latency_max,
                     d.h0, d.h1, d.h2, d.h3, d.h4, d.h5, d.h6, d.h7, d.h8, d.h9, d.h10, d.h11, d.h12, d.h13, d.h14, d.h15
              FROM deltas d) x
        GROUP BY x.service, x.bucket
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM merged_seconds) + (SELECT count(*) FROM merged_minutes) INTO merged;

    IF new_f > old_f THEN
        DELETE FROM log_rollup r WHERE r.bucket < new_f AND r.compacted;
        UPDATE rollup_state SET fine_since = new_f;
    END IF;

    -- A fold this large (a bulk write by SQL, a shipper's backlog) changes the rollup before
    -- autovacuum notices (up to autovacuum_naptime later), and a rollup never analysed since it
    -- was created has no statistics at all: the planner then guesses every window's edges. Right
    -- after folding the 72,000 deltas of a plain \copy of 5M rows, window_stats() over an hour
    -- took 5.5 ms until an ANALYZE, 2.2 ms after it. So both levels are analysed here, in this
    -- transaction (the function runs as the tables' owner), when a fold writes at least 5,000
    -- rows and a tenth of the rollup: never for a collector's usual second of deltas. Not on
    -- Citus: there the rows live in the workers' shards, which their own autovacuum analyses.
    IF merged >= greatest(5000, 0.1 * (SELECT c.reltuples FROM pg_class c WHERE c.oid = 'log_rollup'::regclass))
       AND NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        ANALYZE log_rollup;
        ANALYZE log_rollup_minute;
    END IF;
    RETURN merged;
END $$;

COMMENT ON FUNCTION compact_rollup() IS
  'Folds log_rollup delta rows into merged per-second rows and into log_rollup_minute, and drops seconds older than '
  'logmon_settings.rollup_fine_retention. Run by the detector every tick; safe at any time, exact before and after. '
  'After a large fold (>= 5,000 rows and a tenth of log_rollup) it also analyses log_rollup and log_rollup_minute. '
  'Returns the number of rollup rows written.';
