-- The rollup gets two levels, so that every window is read from the rollup alone, never from raw
-- rows (whose physical order, late arrivals and partition size must not decide how fast /stats
-- and detection are):
--   log_rollup         per (service, second): the deltas writers append, merged by compact_rollup();
--                      kept for logmon_settings.rollup_fine_retention (window edges to the second);
--   log_rollup_minute  per (service, minute): what compact_rollup() folds the deltas into; kept for
--                      the whole retention (whole minutes inside a window, and old windows).
CREATE TABLE log_rollup_minute (
    service       text             NOT NULL,
    bucket        timestamptz      NOT NULL CHECK (bucket = date_trunc('minute', bucket)),
    total         bigint           NOT NULL,
    errors        bigint           NOT NULL,
    latency_count bigint           NOT NULL,
    latency_sum   double precision NOT NULL,
    latency_max   double precision,
    h0 bigint NOT NULL DEFAULT 0, h1 bigint NOT NULL DEFAULT 0, h2 bigint NOT NULL DEFAULT 0,
    h3 bigint NOT NULL DEFAULT 0, h4 bigint NOT NULL DEFAULT 0, h5 bigint NOT NULL DEFAULT 0,
    h6 bigint NOT NULL DEFAULT 0, h7 bigint NOT NULL DEFAULT 0, h8 bigint NOT NULL DEFAULT 0,
    h9 bigint NOT NULL DEFAULT 0, h10 bigint NOT NULL DEFAULT 0, h11 bigint NOT NULL DEFAULT 0,
    h12 bigint NOT NULL DEFAULT 0, h13 bigint NOT NULL DEFAULT 0, h14 bigint NOT NULL DEFAULT 0,
    h15 bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, service)
);
COMMENT ON TABLE log_rollup_minute IS
  'Per-service rollup of logs per minute (total, errors, latency count/sum/max, histogram h0..h15, see latency_bounds()), '
  'folded from log_rollup deltas by compact_rollup(). Deltas not folded yet stay in log_rollup (compacted = false): '
  'a reader adds them (see window_stats()). Kept as long as the logs.';

-- Existing rollup rows, 1 s and 60 s wide, become minutes; the 60 s rows leave log_rollup.
INSERT INTO log_rollup_minute (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                               h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
SELECT service, date_trunc('minute', bucket), sum(total), sum(errors), sum(latency_count), sum(latency_sum), max(latency_max),
       sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6), sum(h7),
       sum(h8), sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14), sum(h15)
FROM log_rollup GROUP BY 1, 2;
DELETE FROM log_rollup WHERE width_s = 60;
UPDATE log_rollup SET compacted = true;
ALTER TABLE log_rollup DROP COLUMN width_s;
COMMENT ON TABLE log_rollup IS
  'Per-service rollup of logs per second: delta rows appended by writers (compacted = false; the collector in its COPY '
  'transaction, the logs triggers for SQL writers), merged per second by compact_rollup(), which also folds them into '
  'log_rollup_minute. Seconds older than logmon_settings.rollup_fine_retention are dropped (their minutes remain). '
  'Always read with sum() (see window_stats()).';

ALTER TABLE rollup_state RENAME COLUMN coarsened_before TO fine_since;
COMMENT ON TABLE rollup_state IS
  'Watermark of compact_rollup(): log_rollup holds every second from fine_since on (always a whole minute); windows '
  'reaching before it are read in whole minutes.';

ALTER TABLE logmon_settings DROP COLUMN rollup_coarsen_after;
ALTER TABLE logmon_settings ADD COLUMN rollup_fine_retention interval NOT NULL DEFAULT '3 hours'
    CHECK (rollup_fine_retention BETWEEN '1 hour' AND '7 days');
COMMENT ON COLUMN logmon_settings.rollup_fine_retention IS
  'How long per-second rollup rows are kept: window edges younger than this are exact to the second, older ones to the minute.';
COMMENT ON TABLE logmon_settings IS
  'logmon settings (one row). retention: partitions and rollups older than this are dropped by maintain_partitions(); '
  'premake_days: daily partitions created ahead; rollup_fine_retention: how long per-second rollup rows are kept; '
  'max_future_skew: how far in the future a log ts may be; notify_*: the notification retry policy (record_delivery()).';
