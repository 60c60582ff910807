-- Pattern counts get a second, coarser level, as the rollup did (V5), so that top_patterns() reads
-- a window in whole 10-minute buckets and only its edges in minutes: its cost no longer grows with
-- the minutes of the window (an hour's window and the hour before it were ~120 minute rows per
-- pattern, tens of thousands of rows for 20 services at 100M rows a day).
--   log_pattern_counts      per (service, pattern, level, minute): the deltas writers append, merged
--                           by compact_patterns() (unchanged);
--   log_pattern_counts_10m  per (service, pattern, level, 10 minutes): what compact_patterns() folds
--                           the same deltas into, in the same statement.
-- Why 10 minutes: top_patterns() reads a window of W minutes and the one before it as 2W/b
-- buckets of b minutes plus, at each of its three edges, the minutes between the edge and the
-- nearer end of its bucket (b/4 on average), per pattern and level: 2W/b + 3b/4 rows. For an hour
-- (GET /patterns?window_minutes=60) that is 19.5 rows at b = 10, 19.3 at 15, 27.8 at 5 and 47 at
-- 60 (hourly), against 120 minute rows; for 15 minutes, 10.5 at b = 10 and 13.3 at 15. Ten
-- minutes is within 3% of the best for an hour (19 rows at b = 12) and better for shorter
-- windows.
CREATE TABLE log_pattern_counts_10m (
    service    text        NOT NULL,
    pattern_id bigint      NOT NULL,
    level      text        NOT NULL,
    bucket     timestamptz NOT NULL
        CHECK (bucket = date_bin('10 minutes', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00')),
    count      bigint      NOT NULL,
    PRIMARY KEY (bucket, service, pattern_id, level)
);
CREATE INDEX log_pattern_counts_10m_service_idx ON log_pattern_counts_10m (service, bucket);

-- what the minutes already hold (merged rows only: deltas still pending are folded into both
-- levels by the next compact_patterns())
INSERT INTO log_pattern_counts_10m (service, pattern_id, level, bucket, count)
SELECT service, pattern_id, level, date_bin('10 minutes', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00'), sum(count)
FROM log_pattern_counts WHERE compacted
GROUP BY 1, 2, 3, 4
HAVING sum(count) <> 0;

COMMENT ON TABLE log_pattern_counts_10m IS
  'Lines per (service, pattern_id, level, 10 minutes): the merged rows of log_pattern_counts (compacted = true) summed '
  'per 10-minute bucket, kept so by compact_patterns() in the statement that folds deltas into the minutes. Deltas not '
  'folded yet stay in log_pattern_counts (compacted = false): a reader adds them (see top_patterns()). Kept as long as '
  'the logs (maintain_partitions()), recomputed with the minutes by rebuild_rollup().';
COMMENT ON COLUMN log_pattern_counts_10m.service IS 'The service (logs.service).';
COMMENT ON COLUMN log_pattern_counts_10m.pattern_id IS 'The pattern (log_pattern_id(message); log_patterns.pattern_id).';
COMMENT ON COLUMN log_pattern_counts_10m.level IS 'The lines'' level (DEBUG, INFO, WARN, ERROR, FATAL).';
COMMENT ON COLUMN log_pattern_counts_10m.bucket IS
  'Start of the 10 minutes (date_bin(''10 minutes'', ts, ''2000-01-01 00:00+00''), pattern_counts_10m_bucket()): '
  'whole minutes :00, :10 ... of UTC hours.';
COMMENT ON COLUMN log_pattern_counts_10m.count IS
  'Lines in those 10 minutes, as the merged minute rows of log_pattern_counts there add up (never 0: such rows go).';

COMMENT ON TABLE log_pattern_counts IS
  'Lines per (service, pattern_id, level, minute): additive delta rows (compacted = false) merged by compact_patterns(), '
  'which folds them into log_pattern_counts_10m in the same statement. Always read with sum(): equal to count(*) over '
  'the committed raw rows with a message.';
