-- How far summarize_time_index() has made sure that the time index of each recent logs partition
-- is summarized: every block range below checked_below has a summary (a summary, once there,
-- stays until the index is rebuilt), so each call starts there and summarizes only ranges filled
-- since, not the whole partition again.
CREATE TABLE time_index_progress (
    partition_name text PRIMARY KEY,
    checked_below  bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE time_index_progress IS
  'summarize_time_index()''s progress per logs partition: every BRIN block range of logs_ts_brin below heap block '
  'checked_below is summarized. A row goes when its partition is dropped.';
