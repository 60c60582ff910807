-- The partition that holds a given ts. The collector computes the same name (copy_sink.rs) to
-- COPY into partitions directly; a test checks that both agree.
CREATE OR REPLACE FUNCTION log_partition_for(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('logs_p%s', to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDD'));

COMMENT ON FUNCTION log_partition_for(timestamptz) IS
  'Name of the logs partition holding ts: logs_pYYYYMMDD, one per UTC day.';

-- Daily partitions logs_pYYYYMMDD covering [from_day, to_day] (UTC days). Each is created as a
-- plain table and then ATTACHed: ATTACH takes only SHARE UPDATE EXCLUSIVE on logs, so it does
-- not wait for (or block) running COPYs the way CREATE TABLE ... PARTITION OF would.
CREATE OR REPLACE FUNCTION ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $$
DECLARE
    day date := (from_ts AT TIME ZONE 'UTC')::date;
    last_day constant date := (to_ts AT TIME ZONE 'UTC')::date;
    part text;
    lo timestamptz;
    hi timestamptz;
BEGIN
    WHILE day <= last_day LOOP
        part := log_partition_for(day::timestamp AT TIME ZONE 'UTC');
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)', part, part || '_range', lo, hi);
            EXECUTE format('ALTER TABLE logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
            -- the CHECK made ATTACH skip its validation scan; the partition bound now says the same
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
            -- the collector COPYs into partitions directly (see logs_rollup_trigger.sql)
            EXECUTE format('GRANT INSERT ON %I TO logmon_ingest', part);
            RETURN NEXT part;
        END IF;
        day := day + 1;
    END LOOP;
END $$;

COMMENT ON FUNCTION ensure_partitions(timestamptz, timestamptz) IS
  'Creates the missing daily partitions of logs between two timestamps (UTC days); returns the names created.';
