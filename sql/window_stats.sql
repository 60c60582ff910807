-- Windows are read from the rollup alone, so their cost depends on the number of services and
-- seconds/minutes in the window, never on raw rows, their physical order (late arrivals,
-- backfills) or the partition's size. The price: a window's edges are whole seconds (whole
-- minutes where older than rollup_fine_retention). window_bounds() says exactly which rows a
-- window covers, so the figures stay exact: the same as count(*) over those raw rows.
-- A window's edge as the rollup can serve it: rounded up to the next whole second, or to the next
-- whole minute when older than fine_since (rollup_state: seconds before it are gone).
CREATE OR REPLACE FUNCTION rollup_edge(t timestamptz, fine_since timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN t = 'infinity' THEN t
            WHEN t >= fine_since THEN date_trunc('second', t) + CASE WHEN t > date_trunc('second', t) THEN interval '1 second' ELSE interval '0' END
            ELSE date_trunc('minute', t) + CASE WHEN t > date_trunc('minute', t) THEN interval '1 minute' ELSE interval '0' END END;

COMMENT ON FUNCTION rollup_edge(timestamptz, timestamptz) IS
  'A window edge rounded up to a whole second, or to a whole minute when older than fine_since (see window_bounds()).';

CREATE OR REPLACE FUNCTION window_bounds(lo timestamptz, hi timestamptz DEFAULT 'infinity',
                                         OUT lo_b timestamptz, OUT hi_b timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT rollup_edge(lo, s.fine_since), rollup_edge(hi, s.fine_since) FROM rollup_state s
$$;

COMMENT ON FUNCTION window_bounds(timestamptz, timestamptz) IS
  'The rows a window (lo, hi] covers when read from the rollup: lo_b <= ts < hi_b, each edge rounded up to a whole '
  'second (a whole minute when older than rollup_state.fine_since, i.e. rollup_fine_retention).';

-- The edges window_stats() reads a window (lo, hi] by, given rollup_state.fine_since:
-- [lo_b, hi_b) as window_bounds(), and inside it the whole minutes [a, z); the seconds are
-- [lo_b, least(a, hi_b)) and [z, hi_b). PL/pgSQL so that the planner cannot inline it: inlined,
-- the four edges spelt out in each of window_stats()' four parts made a statement that took
-- 2.1-2.3 ms to plan (0.4-0.5 ms with this call in it), and on Citus each worker plans its shards'
-- statement for every call (GET /stats took 12-16 ms there, 5.5-7 ms with this).
CREATE OR REPLACE FUNCTION rollup_window(lo timestamptz, hi timestamptz, fine_since timestamptz)
RETURNS timestamptz[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    lo_b timestamptz := rollup_edge(lo, fine_since);
    hi_b timestamptz := rollup_edge(hi, fine_since);
BEGIN
    RETURN ARRAY[lo_b, hi_b,
                 date_trunc('minute', lo_b) + CASE WHEN lo_b > date_trunc('minute', lo_b) THEN interval '1 minute' ELSE interval '0' END,
                 CASE WHEN hi_b = 'infinity' THEN hi_b ELSE date_trunc('minute', hi_b) END];
END $$;

COMMENT ON FUNCTION rollup_window(timestamptz, timestamptz, timestamptz) IS
  'ARRAY[lo_b, hi_b, a, z]: the rollup rows of the window (lo, hi] are lo_b <= bucket < hi_b (window_bounds()), of '
  'which [a, z) are whole minutes (log_rollup_minute) and the rest seconds (log_rollup). Used by window_stats().';

-- Per-service figures for the window [lo_b, hi_b) of window_bounds(lo, hi): the seconds at its
-- edges from log_rollup, the whole minutes inside from log_rollup_minute plus the deltas not yet
-- folded into them. One statement, one snapshot: exact whatever compact_rollup() does meanwhile.
CREATE OR REPLACE FUNCTION window_stats(lo timestamptz, hi timestamptz DEFAULT 'infinity')
RETURNS TABLE (service text, total bigint, errors bigint, latency_count bigint,
               latency_sum double precision, latency_max double precision, hist bigint[])
-- plpgsql rather than sql: Citus cannot plan a SQL function's statements on distributed tables
-- when they use the function's parameters.
LANGUAGE plpgsql STABLE ROWS 20
-- JIT would cost hundreds of ms here for a query that takes a few; so would parallel workers,
-- which the planner picks when it cannot estimate the edges (late arrivals make it guess high):
-- starting them took 50 ms for a read of 1 ms on a busy machine.
SET jit = off
SET max_parallel_workers_per_gather = 0
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    -- b is read where each part is (NOT MATERIALIZED): on Citus, where rollup_state is a reference
    -- table, the whole statement then runs on each worker, in one snapshot there, as on one node.
    WITH b AS NOT MATERIALIZED (
        -- whole minutes: [a, z); seconds: [lo_b, least(a, hi_b)) and [z, hi_b)
        SELECT w.e[1] AS lo_b, w.e[2] AS hi_b, w.e[3] AS a, w.e[4] AS z
        FROM (SELECT rollup_window(lo, hi, s.fine_since) AS e FROM rollup_state s) w
    ), parts AS (
        SELECT m.service, m.total, m.errors, m.latency_count, m.latency_sum, m.latency_max,
               m.h0, m.h1, m.h2, m.h3, m.h4, m.h5, m.h6, m.h7, m.h8, m.h9, m.h10, m.h11, m.h12, m.h13, m.h14, m.h15
        FROM b, log_rollup_minute m
        WHERE m.bucket >= b.a AND m.bucket < b.z
        UNION ALL
        SELECT r.service, r.total, r.errors, r.latency_count, r.latency_sum, r.latency_max,
               r.h0, r.h1, r.h2, r.h3, r.h4, r.h5, r.h6, r.h7, r.h8, r.h9, r.h10, r.h11, r.h12, r.h13, r.h14, r.h15
        FROM b, log_rollup r
        WHERE NOT r.compacted AND r.bucket >= b.a AND r.bucket < b.z
        UNION ALL
        SELECT r.service, r.total, r.errors, r.latency_count, r.latency_sum, r.latency_max,
               r.h0, r.h1, r.h2, r.h3, r.h4, r.h5, r.h6, r.h7, r.h8, r.h9, r.h10, r.h11, r.h12, r.h13, r.h14, r.h15
        FROM b, log_rollup r
        WHERE r.bucket >= b.lo_b AND r.bucket < least(b.a, b.hi_b)
        UNION ALL
        SELECT r.service, r.total, r.errors, r.latency_count, r.latency_sum, r.latency_max,
               r.h0, r.h1, r.h2, r.h3, r.h4, r.h5, r.h6, r.h7, r.h8, r.h9, r.h10, r.h11, r.h12, r.h13, r.h14, r.h15
        FROM b, log_rollup r
        WHERE b.hi_b > b.a AND r.bucket >= b.z AND r.bucket < b.hi_b
    )
    SELECT p.service, sum(p.total)::bigint, sum(p.errors)::bigint, sum(p.latency_count)::bigint, sum(p.latency_sum),
           max(p.latency_max),
           ARRAY[sum(p.h0), sum(p.h1), sum(p.h2), sum(p.h3), sum(p.h4), sum(p.h5), sum(p.h6), sum(p.h7), sum(p.h8),
                 sum(p.h9), sum(p.h10), sum(p.h11), sum(p.h12), sum(p.h13), sum(p.h14), sum(p.h15)]::bigint[]
    FROM parts p
    GROUP BY p.service
    HAVING sum(p.total) <> 0;
END $$;

COMMENT ON FUNCTION window_stats(timestamptz, timestamptz) IS
  'Per-service total, errors, latency count/sum/max and histogram for logs with lo_b <= ts < hi_b (window_bounds(lo, hi)), '
  'read from the rollup only: equal to aggregating those committed raw rows, at a cost independent of raw rows.';

-- Per service, the number of whole minutes in [lo, hi) in which it sent at least one log.
CREATE OR REPLACE FUNCTION active_minutes(lo timestamptz, hi timestamptz)
RETURNS TABLE (service text, minutes bigint)
LANGUAGE plpgsql STABLE ROWS 20  -- not sql: see window_stats()
SET jit = off
SET max_parallel_workers_per_gather = 0
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT y.service, count(*)
    FROM (SELECT x.service, x.bucket
          FROM (SELECT m.service, m.bucket, m.total FROM log_rollup_minute m WHERE m.bucket >= lo AND m.bucket < hi
                UNION ALL  -- deltas not yet folded into their minute
                SELECT d.service, date_trunc('minute', d.bucket), d.total FROM log_rollup d
                WHERE NOT d.compacted AND d.bucket >= lo AND d.bucket < hi) x
          GROUP BY x.service, x.bucket
          HAVING sum(x.total) > 0) y
    GROUP BY y.service;
END $$;

COMMENT ON FUNCTION active_minutes(timestamptz, timestamptz) IS
  'Per service, how many whole minutes of [lo, hi) hold at least one of its logs (from the rollup). no_data rules use it '
  'to tell a regular sender from a one-off one.';
