-- logs is partitioned by hour: a partition (logs_pYYYYMMDDHH) stays small whatever a day's volume,
-- so what reads raw rows (search's BRIN slices, a partition's index) costs the same at 10M and at
-- 100M rows a day, and retention drops whole hours. Partitions made by earlier versions were daily
-- (logs_pYYYYMMDD): they keep serving their hours until retention drops them.

-- The name an hourly partition holding ts has.
CREATE OR REPLACE FUNCTION log_partition_for(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('logs_p%s', to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDDHH24'));

COMMENT ON FUNCTION log_partition_for(timestamptz) IS
  'Name of the hourly logs partition for ts: logs_pYYYYMMDDHH (UTC).';

-- The partition that holds ts now: the hourly one, or a daily one of an earlier version, or NULL.
-- The collector asks it once per hour and COPYs straight into the answer.
CREATE OR REPLACE FUNCTION log_partition_holding(ts timestamptz) RETURNS text
LANGUAGE sql STABLE
RETURN coalesce(to_regclass(log_partition_for(ts))::text,
                to_regclass(format('logs_p%s', to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDD')))::text);

COMMENT ON FUNCTION log_partition_holding(timestamptz) IS
  'The existing logs partition that holds ts (hourly logs_pYYYYMMDDHH, or a daily logs_pYYYYMMDD made by an earlier '
  'version), or NULL when none does yet (maintain_partitions() makes them).';

-- Hourly partitions covering [from_ts, to_ts] (UTC hours), for the hours no partition covers yet.
-- Each is created as a plain table and then ATTACHed: ATTACH takes only SHARE UPDATE EXCLUSIVE on
-- logs, so it does not wait for (or block) running COPYs the way CREATE TABLE ... PARTITION OF would.
CREATE OR REPLACE FUNCTION ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $$
DECLARE
    hour timestamptz := date_trunc('hour', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    part text;
BEGIN
    WHILE hour <= to_ts LOOP
        part := log_partition_for(hour);
        IF log_partition_holding(hour) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)', part, part || '_range',
                           hour, hour + interval '1 hour');
            EXECUTE format('ALTER TABLE logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part,
                           hour, hour + interval '1 hour');
            -- the CHECK made ATTACH skip its validation scan; the partition bound now says the same
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
            -- the collector COPYs into partitions directly (see logs_rollup_trigger.sql)
            EXECUTE format('GRANT INSERT ON %I TO logmon_ingest', part);
            RETURN NEXT part;
        END IF;
        hour := hour + interval '1 hour';
    END LOOP;
END $$;

COMMENT ON FUNCTION ensure_partitions(timestamptz, timestamptz) IS
  'Creates the missing hourly partitions of logs between two timestamps (UTC hours); returns the names created.';
