-- Exact per-service figures for logs with lo < ts <= hi, at rollup cost: whole rollup buckets
-- inside the window, plus the raw rows of the two partial buckets at its edges (at most one
-- second each for recent windows, one minute for windows older than rollup_coarsen_after).
--
-- The edges depend on the compaction watermark, and the data must be read in one snapshot with
-- the watermark the edges were computed from. The edges are computed first (so they reach the
-- scans as plain parameters: partition pruning, BRIN), then the one statement that reads the data
-- also reads the watermark; if compaction moved it in between, the edges are recomputed.
CREATE OR REPLACE FUNCTION window_stats(lo timestamptz, hi timestamptz DEFAULT 'infinity')
RETURNS TABLE (service text, total bigint, errors bigint, latency_count bigint,
               latency_sum double precision, latency_max double precision, hist bigint[])
LANGUAGE plpgsql STABLE ROWS 20
-- JIT would cost hundreds of ms here for a query that takes a few.
SET jit = off
AS $$
DECLARE
    w timestamptz;
    lo_edge timestamptz;
    hi_edge timestamptz;
    raw1_end timestamptz;
    raw2_start timestamptz;
    has_buckets boolean;
    seen timestamptz;
    res jsonb;
BEGIN
    IF lo >= hi THEN RETURN; END IF;
    SELECT coarsened_before INTO w FROM rollup_state;
    LOOP
        lo_edge := CASE WHEN lo < w THEN date_trunc('minute', lo) + interval '1 minute'
                        ELSE date_trunc('second', lo) + interval '1 second' END;
        hi_edge := CASE WHEN hi = 'infinity' THEN hi
                        WHEN hi < w THEN date_trunc('minute', hi)
                        ELSE date_trunc('second', hi) END;
        has_buckets := lo_edge < hi_edge;
        -- whole buckets cover [lo_edge, hi_edge); raw rows cover (lo, raw1_end) and [raw2_start, hi]
        raw1_end := CASE WHEN has_buckets THEN lo_edge ELSE hi + interval '1 microsecond' END;
        raw2_start := CASE WHEN has_buckets AND hi <> 'infinity' THEN hi_edge ELSE 'infinity' END;

        WITH parts AS (
            SELECT r.service, r.total, r.errors, r.latency_count, r.latency_sum, r.latency_max,
                   r.h0, r.h1, r.h2, r.h3, r.h4, r.h5, r.h6, r.h7, r.h8, r.h9, r.h10, r.h11, r.h12, r.h13, r.h14, r.h15
            FROM log_rollup r
            WHERE has_buckets AND r.bucket >= lo_edge AND r.bucket < hi_edge
              AND r.bucket + make_interval(secs => r.width_s) <= hi_edge
            UNION ALL
            SELECT l.service, 1, (l.level IN ('ERROR', 'FATAL'))::int, (l.latency_ms IS NOT NULL)::int,
               coalesce(l.latency_ms, 0), l.latency_ms,
               (b.i = 0)::int, (b.i = 1)::int, (b.i = 2)::int, (b.i = 3)::int, (b.i = 4)::int, (b.i = 5)::int,
               (b.i = 6)::int, (b.i = 7)::int, (b.i = 8)::int, (b.i = 9)::int, (b.i = 10)::int, (b.i = 11)::int,
               (b.i = 12)::int, (b.i = 13)::int, (b.i = 14)::int, (b.i = 15)::int
        FROM logs l, LATERAL (SELECT width_bucket(l.latency_ms, latency_bounds()) AS i) b
            WHERE l.ts > lo AND l.ts < raw1_end
            UNION ALL
            SELECT l.service, 1, (l.level IN ('ERROR', 'FATAL'))::int, (l.latency_ms IS NOT NULL)::int,
               coalesce(l.latency_ms, 0), l.latency_ms,
               (b.i = 0)::int, (b.i = 1)::int, (b.i = 2)::int, (b.i = 3)::int, (b.i = 4)::int, (b.i = 5)::int,
               (b.i = 6)::int, (b.i = 7)::int, (b.i = 8)::int, (b.i = 9)::int, (b.i = 10)::int, (b.i = 11)::int,
               (b.i = 12)::int, (b.i = 13)::int, (b.i = 14)::int, (b.i = 15)::int
        FROM logs l, LATERAL (SELECT width_bucket(l.latency_ms, latency_bounds()) AS i) b
            WHERE raw2_start <> 'infinity' AND l.ts >= raw2_start AND l.ts <= hi
        ), agg AS (
            SELECT p.service, sum(p.total)::bigint AS total, sum(p.errors)::bigint AS errors,
                   sum(p.latency_count)::bigint AS latency_count, sum(p.latency_sum) AS latency_sum,
                   max(p.latency_max) AS latency_max, ARRAY[sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6), sum(h7), sum(h8), sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14), sum(h15)]::bigint[] AS hist
            FROM parts p GROUP BY p.service HAVING sum(p.total) <> 0
        )
        SELECT (SELECT coarsened_before FROM rollup_state), coalesce(jsonb_agg(agg), '[]') INTO seen, res FROM agg;
        EXIT WHEN seen = w;
        w := seen;
    END LOOP;
    RETURN QUERY
        SELECT x.service, x.total, x.errors, x.latency_count, x.latency_sum, x.latency_max,
               ARRAY(SELECT jsonb_array_elements_text(x.hist)::bigint)
        FROM jsonb_to_recordset(res) AS x(service text, total bigint, errors bigint, latency_count bigint,
                                          latency_sum double precision, latency_max double precision, hist jsonb);
END $$;

COMMENT ON FUNCTION window_stats(timestamptz, timestamptz) IS
  'Per-service total, errors, latency count/sum/max and histogram for logs with lo < ts <= hi. Reads log_rollup plus the '
  'raw rows of the partial buckets at the edges: equal to aggregating the committed raw rows, at rollup cost.';
