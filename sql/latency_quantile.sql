-- Quantile from the 16-bucket latency histogram, interpolating linearly inside the bucket that
-- holds the rank. The last bucket is open-ended, so it interpolates up to the observed maximum.
-- One definition, on cumulative counts (cum[i]: latencies in buckets 1..i); latency_quantile()
-- takes plain counts. The replay (replay_breaches()) sums cumulative counts directly, and this
-- form finds the bucket without a loop: it runs for every step of a week.
CREATE OR REPLACE FUNCTION latency_quantile_cumulative(cum bigint[], max_ms double precision, q double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    bounds constant double precision[] := latency_bounds();
    rank double precision;
    r double precision;
    i int;
    below bigint;
    lo double precision;
    hi double precision;
BEGIN
    IF cum IS NULL OR NOT cum[16] > 0 THEN
        RETURN NULL;
    END IF;
    rank := q * cum[16];
    -- the first bucket whose cumulative count reaches the rank (and holds latencies: counts are
    -- integers, so for a rank below 1 that is the first bucket with any)
    r := greatest(rank, 0.5);
    i := 1 + (cum[1] < r)::int + (cum[2] < r)::int + (cum[3] < r)::int + (cum[4] < r)::int + (cum[5] < r)::int
           + (cum[6] < r)::int + (cum[7] < r)::int + (cum[8] < r)::int + (cum[9] < r)::int + (cum[10] < r)::int
           + (cum[11] < r)::int + (cum[12] < r)::int + (cum[13] < r)::int + (cum[14] < r)::int
           + (cum[15] < r)::int + (cum[16] < r)::int;
    IF i > 16 THEN
        RETURN max_ms;
    END IF;
    below := CASE WHEN i = 1 THEN 0 ELSE cum[i - 1] END;
    lo := CASE WHEN i = 1 THEN 0 ELSE bounds[i - 1] END;
    hi := CASE WHEN i = 16 THEN greatest(coalesce(max_ms, lo), lo) ELSE bounds[i] END;
    IF max_ms IS NOT NULL THEN
        hi := least(hi, greatest(max_ms, lo));
    END IF;
    RETURN lo + (hi - lo) * ((rank - below) / (cum[i] - below));
END $$;

COMMENT ON FUNCTION latency_quantile_cumulative(bigint[], double precision, double precision) IS
  'q-quantile (0..1) of latencies from cumulative histogram counts (cum[i] = latencies in buckets h0..h(i-1) of '
  'log_rollup, see latency_bounds()), linear inside a bucket, up to max_ms in the last one.';

CREATE OR REPLACE FUNCTION latency_quantile(hist bigint[], max_ms double precision, q double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    cum bigint[] := array_fill(0::bigint, ARRAY[16]);
    n bigint := 0;
BEGIN
    IF hist IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. 16 LOOP
        n := n + greatest(coalesce(hist[i], 0), 0);
        cum[i] := n;
    END LOOP;
    RETURN latency_quantile_cumulative(cum, max_ms, q);
END $$;

COMMENT ON FUNCTION latency_quantile(bigint[], double precision, double precision) IS
  'q-quantile (0..1) of latencies from a log_rollup histogram (h0..h15 as an array), linear inside a bucket: '
  'latency_quantile_cumulative() of its running counts.';
