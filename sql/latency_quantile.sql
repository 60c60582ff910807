-- Quantile from a 16-bucket histogram, interpolating linearly inside the bucket that holds the
-- rank. The last bucket is open-ended, so it interpolates up to the observed maximum.
CREATE OR REPLACE FUNCTION latency_quantile(hist bigint[], max_ms double precision, q double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    bounds constant double precision[] := latency_bounds();
    n bigint := 0;
    cum bigint := 0;
    rank double precision;
    lo double precision;
    hi double precision;
BEGIN
    IF hist IS NULL THEN RETURN NULL; END IF;
    FOR i IN 1 .. 16 LOOP n := n + greatest(hist[i], 0); END LOOP;
    IF n = 0 THEN RETURN NULL; END IF;
    rank := q * n;
    FOR i IN 1 .. 16 LOOP
        IF hist[i] > 0 AND cum + hist[i] >= rank THEN
            lo := CASE WHEN i = 1 THEN 0 ELSE bounds[i - 1] END;
            hi := CASE WHEN i = 16 THEN greatest(coalesce(max_ms, lo), lo) ELSE bounds[i] END;
            IF max_ms IS NOT NULL THEN hi := least(hi, greatest(max_ms, lo)); END IF;
            RETURN lo + (hi - lo) * ((rank - cum) / hist[i]);
        END IF;
        cum := cum + greatest(hist[i], 0);
    END LOOP;
    RETURN max_ms;
END $$;

COMMENT ON FUNCTION latency_quantile(bigint[], double precision, double precision) IS
  'q-quantile (0..1) of latencies from a log_rollup histogram (h0..h15 as an array), linear inside a bucket.';
