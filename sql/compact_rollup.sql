-- Merges rollup deltas: every (service, bucket) that got new delta rows becomes one row again,
-- and 1 s buckets older than rollup_coarsen_after become 60 s buckets. DELETE ... RETURNING and
-- the INSERT of the sums run in one statement, so a reader sees either the deltas or their sum,
-- never both or neither. Rows committed while it runs are simply left for the next call.
CREATE OR REPLACE FUNCTION compact_rollup() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    old_w timestamptz;
    new_w timestamptz;
    merged bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('logmon.compact_rollup')) THEN
        RETURN 0;  -- someone else is compacting right now
    END IF;
    SELECT coarsened_before INTO old_w FROM rollup_state;
    SELECT greatest(old_w, date_trunc('minute', now() - rollup_coarsen_after)) INTO new_w FROM logmon_settings;
    UPDATE rollup_state SET coarsened_before = new_w;

    WITH dirty AS (
        SELECT DISTINCT service,
               CASE WHEN bucket < new_w THEN date_trunc('minute', bucket) ELSE bucket END AS target
        FROM log_rollup
        WHERE NOT compacted OR (width_s = 1 AND bucket >= old_w AND bucket < new_w)
    ), gone AS (
        DELETE FROM log_rollup r
        USING dirty d
        WHERE r.service = d.service
          AND r.bucket >= d.target
          AND r.bucket < d.target + CASE WHEN d.target < new_w THEN interval '1 minute' ELSE interval '1 second' END
        RETURNING r.*
    ), ins AS (
        INSERT INTO log_rollup (service, bucket, width_s, total, errors, latency_count, latency_sum, latency_max,
                                h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, compacted)
        SELECT service, t.target, CASE WHEN t.target < new_w THEN 60 ELSE 1 END,
               sum(total), sum(errors), sum(latency_count), sum(latency_sum), max(latency_max),
               sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6), sum(h7),
               sum(h8), sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14), sum(h15), true
        FROM gone, LATERAL (SELECT CASE WHEN gone.bucket < new_w THEN date_trunc('minute', gone.bucket) ELSE gone.bucket END AS target) t
        GROUP BY service, t.target
        RETURNING 1
    )
    SELECT count(*) INTO merged FROM ins;
    RETURN merged;
END $$;

COMMENT ON FUNCTION compact_rollup() IS
  'Merges log_rollup delta rows and coarsens old 1 s buckets to 60 s. Run by the detector every tick; safe at any time. '
  'Returns the number of rollup rows written.';
