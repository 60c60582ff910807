-- The block ranges of one relation's time index (its BRIN index on ts) from block from_block,
-- within budget: all of them when closed, all but the last partial range and the two before it
-- otherwise. Returns how many it summarized, the block it checked up to, and whether that is
-- the end. Used by summarize_time_index(), on one node for each partition and on Citus for each
-- shard (on the workers).
CREATE OR REPLACE FUNCTION summarize_block_ranges(rel regclass, from_block bigint, closed boolean, budget interval,
                                                  OUT summarized bigint, OUT checked_below bigint, OUT done boolean)
LANGUAGE plpgsql
SET lock_timeout = '100ms'
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    idx regclass;
    ppr bigint;
    upto bigint;
BEGIN
    summarized := 0;
    checked_below := greatest(from_block, 0);
    -- the BRIN index on ts (a partition's is attached to logs_ts_brin; a shard's is its copy)
    SELECT x.indexrelid::regclass,
           coalesce((SELECT o.option_value::bigint FROM pg_options_to_table(c.reloptions) o
                     WHERE o.option_name = 'pages_per_range'), 128)
    INTO idx, ppr
    FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam
         JOIN pg_attribute t ON t.attrelid = x.indrelid AND t.attnum = x.indkey[0]
    WHERE x.indrelid = rel AND a.amname = 'brin' AND t.attname = 'ts'
    ORDER BY x.indexrelid LIMIT 1;
    IF idx IS NULL THEN
        done := true;
        RETURN;
    END IF;
    upto := pg_relation_size(rel) / current_setting('block_size')::bigint;
    upto := CASE WHEN closed THEN (upto + ppr - 1) / ppr * ppr ELSE (upto / ppr - 2) * ppr END;
    BEGIN
        WHILE checked_below < upto AND clock_timestamp() - started < budget LOOP
            summarized := summarized + brin_summarize_range(idx, checked_below);
            checked_below := checked_below + ppr;
        END LOOP;
    EXCEPTION WHEN lock_not_available THEN
        NULL;  -- a VACUUM holds the relation, and summarizes it
    END;
    done := checked_below >= upto;
END $$;

COMMENT ON FUNCTION summarize_block_ranges(regclass, bigint, boolean, interval) IS
  'Summarizes the BRIN block ranges of rel''s time index from from_block within budget: all of them when closed, '
  'all but the newest three otherwise. Returns how many it summarized, the block checked up to and whether that is '
  'the end. The per-partition (or, on Citus, per-shard) step of summarize_time_index().';

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
-- ranges of every other partition that has more pages than it checked: late rows into an hour
-- checked before, which the hour's window no longer covers, and hours never checked (a backfill,
-- hours written while no detector ran), whole: a pg_relation_size() per partition. In the
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
-- caller at a time (advisory lock), so N detectors can all call it.
--
-- On a Citus coordinator a distributed partition holds no rows: its shards on the workers do, and
-- PostgreSQL's autosummarize queue there drops requests just the same. So for a distributed
-- partition it runs summarize_block_ranges() on every shard of it, on the workers, through
-- run_command_on_shards() (one connection per shard, in parallel), from block 0: no progress is
-- kept per shard, and each range already summarized costs ~4 us. That round trip costs ~45 ms, so
-- each distributed partition is visited at most once a minute (time_index_progress.updated_at),
-- and no more once its hour is over and every shard of it has been summarized to its end
-- (checked_below = 1; 0 while its hour goes on). Late rows into such an hour on the workers wait
-- for their VACUUM (the coordinator cannot see a shard grow without asking every worker, on every
-- tick).
CREATE OR REPLACE FUNCTION summarize_time_index(from_ts timestamptz DEFAULT now() - interval '1 hour',
                                                to_ts timestamptz DEFAULT now(),
                                                budget interval DEFAULT '100 ms')
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    block_size bigint := current_setting('block_size')::bigint;
    citus boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus');
    part text;
    last_hour timestamptz;
    closed boolean;
    distributed boolean;
    b bigint;
    passed timestamptz;
    step record;
    shards record;
    summarized bigint := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('logmon.summarize_time_index')) THEN
        RETURN 0;  -- another detector is at it
    END IF;

    -- the partitions of [from_ts, to_ts], newest first; then, oldest hours last, every other
    -- partition with more pages than it checked: late rows into an hour it checked before (a
    -- shipper's backlog of hours ago), or an hour it never checked (a backfill by SQL, hours
    -- written while no detector ran)
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
        SELECT i.inhrelid::regclass::text, NULL
        FROM pg_inherits i LEFT JOIN time_index_progress t ON t.partition_name = i.inhrelid::regclass::text
        WHERE i.inhparent = 'logs'::regclass
          AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.p = i.inhrelid::regclass::text)
          AND pg_relation_size(i.inhrelid) / block_size > coalesce(t.checked_below, 0)
        ORDER BY 2 DESC NULLS LAST, 1 DESC
    LOOP
        EXIT WHEN clock_timestamp() - started >= budget;
        -- over: neither now nor a minute ago falls in it, and it is not ahead of now (a grown
        -- partition outside the window is one of the past hours: its last_hour is NULL)
        closed := coalesce(last_hour < now(), true) AND part IS DISTINCT FROM log_partition_holding(now())
                  AND part IS DISTINCT FROM log_partition_holding(now() - interval '1 minute');
        SELECT t.checked_below, t.updated_at INTO b, passed FROM time_index_progress t WHERE t.partition_name = part;
        distributed := false;
        IF citus THEN
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1)'
                INTO distributed USING part::regclass;
        END IF;

        IF distributed THEN
            -- its shards, on the workers: each a multi-shard round trip (~45 ms on a loaded test
            -- machine), so at most once a minute, and never again once its hour is over and every
            -- shard is summarized to its end (recorded as checked_below = 1)
            CONTINUE WHEN b = 1 OR passed > now() - interval '1 minute';
            EXECUTE 'SELECT count(*) FILTER (WHERE NOT r.success OR NOT split_part(r.result, '' '', 2)::boolean) AS left,
                            coalesce(sum(split_part(r.result, '' '', 1)::bigint) FILTER (WHERE r.success), 0) AS summarized
                     FROM run_command_on_shards($1, $2) r'
                INTO shards
                USING part::regclass,
                      format('SELECT s.summarized || '' '' || s.done FROM summarize_block_ranges(%%L::regclass, 0, %L, %L) s',
                             closed, budget - (clock_timestamp() - started));
            summarized := summarized + shards.summarized;
            IF shards.left = 0 THEN
                INSERT INTO time_index_progress (partition_name, checked_below) VALUES (part, closed::int)
                ON CONFLICT (partition_name) DO UPDATE SET checked_below = excluded.checked_below, updated_at = now();
            END IF;
            CONTINUE;
        END IF;

        step := summarize_block_ranges(part::regclass, coalesce(b, 0), closed, budget - (clock_timestamp() - started));
        summarized := summarized + step.summarized;
        IF step.checked_below > coalesce(b, 0) THEN
            INSERT INTO time_index_progress (partition_name, checked_below) VALUES (part, step.checked_below)
            ON CONFLICT (partition_name) DO UPDATE SET checked_below = excluded.checked_below, updated_at = now();
        END IF;
    END LOOP;
    RETURN summarized;
END $$;

COMMENT ON FUNCTION summarize_time_index(timestamptz, timestamptz, interval) IS
  'Summarizes the BRIN block ranges of logs_ts_brin not summarized yet in the partitions holding [from_ts, to_ts] '
  '(default: the last hour), newest first, then of every other partition with more pages than it checked (late rows, '
  'backfills, hours written while no detector ran), '
  'within budget (default 100 ms): all of a partition whose hour is over, '
  'all but the newest three ranges of the one being written; returns how many it summarized. The '
  'detector calls it every tick, so that search stays narrow after bursts autosummarize drops. After a backfill of '
  'older hours the ticks get to them 100 ms at a time; at once: SELECT summarize_time_index(''2026-11-20'', '
  '''2026-11-21'', ''1 min''); until it returns 0. '
  'Progress per partition in time_index_progress. On a Citus coordinator it summarizes the shards of distributed '
  'partitions on the workers (run_command_on_shards()).';

-- The table's meaning grew with Citus (its definition is in migrations/V16__time_index_progress.sql).
COMMENT ON TABLE time_index_progress IS
  'summarize_time_index()''s progress per logs partition: every BRIN block range of logs_ts_brin below heap block '
  'checked_below is summarized. For a partition distributed by Citus (its shards summarized on the workers): '
  'checked_below is 1 once its hour is over and every shard is summarized to its end, 0 before; updated_at is its '
  'last visit. A row goes when its partition is dropped.';
