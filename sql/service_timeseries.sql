-- Per-service figures per time step, for charts (the dashboard's error rate and p95 lines).
-- Read from the rollup's minute level: cost follows the number of steps, not of raw rows. A step
-- with no logs has no row (no traffic, not zero errors).
CREATE OR REPLACE FUNCTION service_timeseries(lookback interval DEFAULT '1 hour', step interval DEFAULT '1 minute')
RETURNS TABLE (service text, bucket timestamptz, total bigint, errors bigint, error_rate double precision,
               p95_ms double precision)
LANGUAGE plpgsql STABLE ROWS 200
SET jit = off
AS $$
DECLARE
    step_s double precision := extract(epoch FROM step);
    since timestamptz;
BEGIN
    -- The minute level holds every minute, so steps are whole minutes.
    IF step < interval '1 minute' OR step_s::bigint % 60 <> 0 THEN
        RAISE EXCEPTION 'step must be a whole number of minutes, got %', step USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lookback <= interval '0' OR extract(epoch FROM lookback) / step_s > 2000 THEN
        RAISE EXCEPTION 'lookback must be positive and at most 2000 steps, got % at step %', lookback, step
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    since := to_timestamp(floor(extract(epoch FROM now() - lookback) / step_s) * step_s);
    RETURN QUERY
    SELECT r.service,
           to_timestamp(floor(extract(epoch FROM r.bucket) / step_s) * step_s) AS b,
           sum(r.total)::bigint,
           sum(r.errors)::bigint,
           round(sum(r.errors)::numeric / nullif(sum(r.total), 0), 4)::double precision,
           round(latency_quantile(ARRAY[sum(r.h0), sum(r.h1), sum(r.h2), sum(r.h3), sum(r.h4), sum(r.h5),
                                        sum(r.h6), sum(r.h7), sum(r.h8), sum(r.h9), sum(r.h10), sum(r.h11),
                                        sum(r.h12), sum(r.h13), sum(r.h14), sum(r.h15)]::bigint[],
                                  max(r.latency_max), 0.95)::numeric, 1)::double precision
    FROM (SELECT m.service, m.bucket, m.total, m.errors, m.latency_max,
                 m.h0, m.h1, m.h2, m.h3, m.h4, m.h5, m.h6, m.h7, m.h8, m.h9, m.h10, m.h11, m.h12, m.h13, m.h14, m.h15
          FROM log_rollup_minute m WHERE m.bucket >= since AND m.bucket <= now()
          UNION ALL  -- deltas not yet folded into their minute
          SELECT d.service, d.bucket, d.total, d.errors, d.latency_max,
                 d.h0, d.h1, d.h2, d.h3, d.h4, d.h5, d.h6, d.h7, d.h8, d.h9, d.h10, d.h11, d.h12, d.h13, d.h14, d.h15
          FROM log_rollup d WHERE NOT d.compacted AND d.bucket >= since AND d.bucket <= now()) r
    GROUP BY 1, 2
    HAVING sum(r.total) <> 0
    ORDER BY 1, 2;
END $$;

COMMENT ON FUNCTION service_timeseries(interval, interval) IS
  'Per service and step (whole minutes; at most 2000 steps): total, errors, error_rate and p95_ms (from the rollup '
  'histogram) over the last lookback. Steps without logs have no row. Used by GET /timeseries and the dashboard.';
