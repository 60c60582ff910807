-- Upper bounds (ms, exclusive) of the rollup latency histogram: bucket hN holds latencies in
-- [bound[N], bound[N+1]) with bound[0] = 0; h15 holds everything >= 10000 ms. 800 ms is a bound
-- so that the default LATENCY_SPIKE threshold is decided without interpolation.
CREATE OR REPLACE FUNCTION latency_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[5, 10, 25, 50, 100, 150, 250, 400, 600, 800, 1000, 1500, 2500, 5000, 10000]::double precision[];

COMMENT ON FUNCTION latency_bounds() IS
  'Lower bounds of latency histogram buckets h1..h15 in log_rollup (h0 starts at 0 ms). Changing them requires rebuilding log_rollup.';
