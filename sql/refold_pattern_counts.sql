-- Recomputes log_pattern_counts_10m from the merged minute rows of log_pattern_counts for the
-- 10-minute buckets that overlap [from_ts, to_ts), for those who rewrite minutes other than by
-- compaction: rebuild_rollup() (minute ranges need not start or end on a bucket) and
-- maintain_partitions() (a dropped partition's bound that is not a bucket's start). Deltas still
-- pending stay out of both levels, as compact_patterns() keeps them. Holds compaction off until
-- the caller commits (its advisory lock), so that no delta is folded into a minute this has read.
CREATE OR REPLACE FUNCTION refold_pattern_counts(from_ts timestamptz, to_ts timestamptz) RETURNS bigint
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    lo constant timestamptz := pattern_counts_10m_bucket(from_ts);
    hi constant timestamptz := pattern_counts_10m_bucket(to_ts)
        + CASE WHEN to_ts > pattern_counts_10m_bucket(to_ts) THEN interval '10 minutes' ELSE interval '0' END;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('logmon.compact_patterns'));
    DELETE FROM log_pattern_counts_10m WHERE bucket >= lo AND bucket < hi;
    INSERT INTO log_pattern_counts_10m (service, pattern_id, level, bucket, count)
    SELECT c.service, c.pattern_id, c.level, pattern_counts_10m_bucket(c.bucket), sum(c.count)
    FROM log_pattern_counts c
    WHERE c.compacted AND c.bucket >= lo AND c.bucket < hi
    GROUP BY 1, 2, 3, 4
    HAVING sum(c.count) <> 0;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

COMMENT ON FUNCTION refold_pattern_counts(timestamptz, timestamptz) IS
  'Recomputes log_pattern_counts_10m for the 10-minute buckets overlapping [from_ts, to_ts) from the merged minute rows '
  'of log_pattern_counts (used by rebuild_rollup() and maintain_partitions(); blocks compact_patterns() until commit). '
  'Returns the rows written.';
