CREATE OR REPLACE FUNCTION service_stats(lookback interval DEFAULT '5 minutes')
RETURNS TABLE (service text, total bigint, errors bigint, error_rate double precision,
               p50_ms double precision, p95_ms double precision, p99_ms double precision,
               avg_latency_ms double precision, max_latency_ms double precision)
LANGUAGE sql STABLE ROWS 20
SET jit = off
AS $$
    SELECT w.service, w.total, w.errors,
           round(w.errors::numeric / nullif(w.total, 0), 4)::double precision,
           round(latency_quantile(w.hist, w.latency_max, 0.50)::numeric, 1)::double precision,
           round(latency_quantile(w.hist, w.latency_max, 0.95)::numeric, 1)::double precision,
           round(latency_quantile(w.hist, w.latency_max, 0.99)::numeric, 1)::double precision,
           round((w.latency_sum / nullif(w.latency_count, 0))::numeric, 1)::double precision,
           w.latency_max
    FROM window_stats(now() - lookback) w
    ORDER BY w.service
$$;

COMMENT ON FUNCTION service_stats(interval) IS
  'Per-service totals, errors, error rate and latency percentiles (from the rollup histogram) for logs with '
  'ts > now() - lookback. Counts are exact; percentiles are interpolated inside histogram buckets.';
