-- Partition upkeep, run by the detector at start and hourly, and safe to run by hand at any time.
CREATE OR REPLACE FUNCTION maintain_partitions()
RETURNS TABLE (action text, partition_name text)
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $$
DECLARE
    s logmon_settings;
    cutoff timestamptz;
    p record;
BEGIN
    SELECT * INTO s FROM logmon_settings;
    cutoff := now() - s.retention;

    FOR partition_name IN SELECT ensure_partitions(cutoff, now() + make_interval(days => s.premake_days)) LOOP
        action := 'created'; RETURN NEXT;
    END LOOP;

    -- A partition goes when all of its range is past retention. Its rollup rows go in the same
    -- transaction, so the rollup stays equal to the raw rows.
    -- Dropping a partition takes an ACCESS EXCLUSIVE lock on logs itself, and while the DROP
    -- waits for it every COPY and search queues behind. So each drop waits at most 200 ms: if a
    -- query holds logs longer, that partition is 'deferred' to a later run (its subtransaction
    -- undoes its rollup deletes too), and the partitions created above are kept.
    FOR p IN
        SELECT c.relname AS name,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'logs'::regclass
    LOOP
        IF p.upper_bound <= cutoff THEN
          BEGIN
            PERFORM set_config('lock_timeout', '200ms', true);
            EXECUTE format('DROP TABLE %I', p.name);
            DELETE FROM log_rollup WHERE bucket < p.upper_bound;
            DELETE FROM log_rollup_minute WHERE bucket < p.upper_bound;
            -- pattern counts: compaction held off (its lock), so that no delta of a dropped minute
            -- is folded meanwhile; both levels go below the bound, and a 10-minute bucket the
            -- bound splits (never, with partitions on whole hours) is recomputed from its minutes
            PERFORM pg_advisory_xact_lock(hashtext('logmon.compact_patterns'));
            DELETE FROM log_pattern_counts WHERE bucket < p.upper_bound;
            DELETE FROM log_pattern_counts_10m WHERE bucket < p.upper_bound;
            IF pattern_counts_10m_bucket(p.upper_bound) < p.upper_bound THEN
                PERFORM refold_pattern_counts(p.upper_bound, p.upper_bound);
            END IF;
            DELETE FROM log_patterns WHERE last_seen < p.upper_bound;
            DELETE FROM time_index_progress t WHERE t.partition_name = p.name;
            action := 'dropped';
          EXCEPTION WHEN lock_not_available THEN
            action := 'deferred';
          END;
          partition_name := p.name; RETURN NEXT;
        END IF;
    END LOOP;
END $$;

COMMENT ON FUNCTION maintain_partitions() IS
  'Creates hourly logs partitions from the retention cutoff to premake_days ahead and drops partitions (and their '
  'rollup rows) wholly older than logmon_settings.retention. Uses lock_timeout 2s, and 200 ms for each drop (which locks '
  'logs itself): a partition a longer query holds is reported ''deferred'' and dropped by a later run. Returns what it '
  'did: created, dropped, deferred.';
