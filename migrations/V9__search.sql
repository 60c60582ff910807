-- Searching logs (GET /logs, search_logs()): what a log line looks like to a reader, a time
-- budget per search, and a time index that stays selective when rows arrive out of order.

-- One log line as search_logs() and incident_logs() return it. `cursor` is the line's position
-- (ts, partition, tuple), opaque: pass it as `after` to continue after this line.
CREATE TYPE log_line AS (
    ts          timestamptz,
    service     text,
    level       text,
    message     text,
    latency_ms  double precision,
    status_code int,
    attrs       jsonb,
    received_at timestamptz,
    pattern_id  bigint,
    pattern     text,
    cursor      text
);
COMMENT ON TYPE log_line IS
  'A log line as returned by search_logs() and incident_logs(). cursor: this line''s position, to pass as `after`. '
  'A line with a NULL level is not a log line: the search''s time budget ran out, and its cursor continues the scan.';

ALTER TABLE logmon_settings ADD COLUMN search_budget interval NOT NULL DEFAULT '2 seconds'
    CHECK (search_budget BETWEEN '100 milliseconds' AND '1 minute');
COMMENT ON COLUMN logmon_settings.search_budget IS
  'How long one search_logs() call may scan before it returns what it found and a cursor to continue.';

-- The pattern of each line (patterns issue): set by the collector; NULL for lines written by SQL,
-- whose pattern is computed when read.
ALTER TABLE logs ADD COLUMN pattern_id bigint;

-- minmax-multi keeps several value ranges per block range instead of one, so a few late or
-- backfilled rows among recent ones no longer make every block range match every time window;
-- autosummarize summarizes each block range as soon as it fills. Both cost COPY nothing
-- measurable (README: Design).
DROP INDEX logs_ts_brin;
CREATE INDEX logs_ts_brin ON logs USING brin (ts timestamptz_minmax_multi_ops)
    WITH (pages_per_range = 16, autosummarize = on);
