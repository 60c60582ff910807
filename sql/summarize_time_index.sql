-- Keeps the time index of the newest logs partitions summarized, from the detector's tick.
--
-- A BRIN block range without a summary matches every query, so each search slice reads all of its
-- heap pages. PostgreSQL summarizes a range when inserts move on to the next one (autosummarize),
-- but it queues those requests in a fixed array of 256 work items shared by the whole cluster
-- and drops what does not fit ("request for BRIN range summarization ... was not recorded"); a
-- dropped range waits for the partition's next VACUUM. At a live 100M rows a day (~24 ranges a
-- minute) autovacuum keeps up; after a burst, a backfill or a collector's backlog it does not,
-- and searching the last minutes read up to 20x the pages it needs (46 ms instead of 2.4 ms for
-- 100 lines of one service at 100M rows a day: README, Benchmarks).
--
-- This summarizes, in the partitions holding [from_ts, to_ts], the block ranges not checked yet,
-- newest partition first, within a time budget (what is left waits for the next call); then the
-- new ranges of older partitions it checked before that have grown since (late rows, which the
-- hour's window no longer covers): a pg_relation_size() per partition in time_index_progress. In the
-- partition being written it leaves alone the last, partial range and the two full ones before
-- it: their pages may still be filling (PostgreSQL extends a busy table by many pages at once),
-- and a summarized range that still gets rows updates its summary on every insert, which is what
-- autosummarize avoids too. Once the partition's hour is over (by a minute) it summarizes all of
-- it, the last range too, which autosummarize never asks for: only late rows still come, and
-- each of them just widens its range's summary.
-- brin_summarize_range() on a range that has a summary is a no-op (~4 us); summarizing one of
-- 64 pages costs ~1 ms here. time_index_progress remembers how far each partition was checked.
--
-- It takes SHARE UPDATE EXCLUSIVE on the partition, as VACUUM does (inserts and reads go on): a
-- partition a VACUUM is working on is skipped after lock_timeout (that VACUUM summarizes it). One
-- caller at a time (advisory lock), so N detectors can all call it. On a Citus coordinator the
-- partitions hold no rows (their shards on the workers do), so it finds nothing to do there.
CREATE OR REPLACE FUNCTION summarize_time_index(from_ts timestamptz DEFAULT now() - interval '1 hour',
                                                to_ts timestamptz DEFAULT now(),
                                                budget interval DEFAULT '100 ms')
RETURNS bigint
LANGUAGE plpgsql
SET lock_timeout = '100ms'
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    block_size bigint := current_setting('block_size')::bigint;
    part text;
    last_hour timestamptz;
    closed boolean;
    blocks bigint;
    idx regclass;
    ppr bigint;
    b bigint;
    upto bigint;
    summarized bigint := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('logmon.summarize_time_index')) THEN
        RETURN 0;  -- another detector is at it
    END IF;

    -- the partitions of [from_ts, to_ts], newest first; then, oldest hours last, those it checked
    -- before that have grown since (late rows: a shipper's backlog of hours ago)
    FOR part, last_hour IN
        WITH wanted AS (
            SELECT p, max(h) AS last_hour
            FROM (SELECT log_partition_holding(h) AS p, h
                  FROM generate_series(date_trunc('hour', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                                       to_ts, interval '1 hour') h) x
            WHERE p IS NOT NULL GROUP BY p
        )
        SELECT w.p, w.last_hour FROM wanted w
        UNION ALL
        SELECT t.partition_name, NULL FROM time_index_progress t
        WHERE NOT EXISTS (SELECT 1 FROM wanted w WHERE w.p = t.partition_name)
          AND to_regclass(t.partition_name) IS NOT NULL
          AND pg_relation_size(to_regclass(t.partition_name)) / block_size > t.checked_below
        ORDER BY 2 DESC NULLS LAST, 1 DESC
    LOOP
        EXIT WHEN clock_timestamp() - started >= budget;
        -- the partition's index attached to logs_ts_brin, and its block ranges' size
        SELECT x.indexrelid::regclass,
               coalesce((SELECT o.option_value::bigint FROM pg_options_to_table(c.reloptions) o
                         WHERE o.option_name = 'pages_per_range'), 128)
        INTO idx, ppr
        FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid JOIN pg_class c ON c.oid = x.indexrelid
        WHERE i.inhparent = 'logs_ts_brin'::regclass AND x.indrelid = part::regclass;
        CONTINUE WHEN idx IS NULL;
        -- over: neither now nor a minute ago falls in it, and it is not ahead of now (a grown
        -- partition outside the window is one of the past hours: its last_hour is NULL)
        closed := coalesce(last_hour < now(), true) AND part IS DISTINCT FROM log_partition_holding(now())
                  AND part IS DISTINCT FROM log_partition_holding(now() - interval '1 minute');
        blocks := pg_relation_size(part::regclass) / block_size;
        upto := CASE WHEN closed THEN (blocks + ppr - 1) / ppr * ppr ELSE (blocks / ppr - 2) * ppr END;
        SELECT checked_below INTO b FROM time_index_progress WHERE partition_name = part;
        b := coalesce(b, 0);
        CONTINUE WHEN b >= upto;
        BEGIN
            WHILE b < upto AND clock_timestamp() - started < budget LOOP
                summarized := summarized + brin_summarize_range(idx, b);
                b := b + ppr;
            END LOOP;
            INSERT INTO time_index_progress (partition_name, checked_below) VALUES (part, b)
            ON CONFLICT (partition_name) DO UPDATE SET checked_below = excluded.checked_below, updated_at = now();
        EXCEPTION WHEN lock_not_available THEN
            NULL;  -- a VACUUM holds the partition, and summarizes it
        END;
    END LOOP;
    RETURN summarized;
END $$;

COMMENT ON FUNCTION summarize_time_index(timestamptz, timestamptz, interval) IS
  'Summarizes the BRIN block ranges of logs_ts_brin not summarized yet in the partitions holding [from_ts, to_ts] '
  '(default: the last hour), newest first, then of partitions it checked before that have grown since (late rows), '
  'within budget (default 100 ms): all of a partition whose hour is over, '
  'all but the newest three ranges of the one being written; returns how many it summarized. The '
  'detector calls it every tick, so that search stays narrow after bursts autosummarize drops. After a backfill of '
  'older hours: SELECT summarize_time_index(''2026-11-20'', ''2026-11-21'', ''1 min''); until it returns 0. '
  'Progress per partition in time_index_progress.';
