-- The ts range the collector accepts, so that every accepted row has a partition: from the
-- retention cutoff (plus a margin for the partition being dropped right now) to max_future_skew.
CREATE OR REPLACE FUNCTION accepted_ts_range(OUT oldest timestamptz, OUT newest timestamptz)
LANGUAGE sql STABLE
RETURN (SELECT (now() - retention + interval '5 minutes', now() + max_future_skew) FROM logmon_settings);

COMMENT ON FUNCTION accepted_ts_range() IS
  'Oldest and newest log ts the collector accepts: now() - retention (+5 min margin) .. now() + max_future_skew. '
  'maintain_partitions() keeps partitions for all of it.';
