-- The collector's half of the pattern counts: one delta row per (service, pattern, level, minute)
-- of the batch it just COPYed, and catalogue rows for the patterns it had not seen yet, in the
-- same transaction as the rows.
CREATE OR REPLACE FUNCTION record_patterns(
    services text[], pattern_ids bigint[], levels text[], buckets timestamptz[], counts bigint[],
    new_services text[], new_ids bigint[], new_templates text[], new_examples text[], new_first timestamptz[])
RETURNS void
-- plpgsql, not sql: Citus cannot plan a SQL function's statements on distributed tables when
-- they use the function's parameters; and a SQL function plans its statements on every call,
-- while this one runs once per group commit: PL/pgSQL with generic plans plans once per connection.
-- Where the citus extension is installed, plan_writers() (sql/distribute_tables.sql) sets auto
-- instead: Citus cannot run this INSERT ... SELECT from a generic plan.
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO log_pattern_counts (service, pattern_id, level, bucket, count)
    SELECT s, p, l, date_trunc('minute', b), c FROM unnest(services, pattern_ids, levels, buckets, counts) AS u(s, p, l, b, c);
    -- first come, first stays: first_seen/last_seen are made exact by compact_patterns()
    IF cardinality(new_ids) > 0 THEN
        INSERT INTO log_patterns (service, pattern_id, template, example, first_seen, last_seen)
        SELECT s, p, t, e, f, f FROM unnest(new_services, new_ids, new_templates, new_examples, new_first) AS u(s, p, t, e, f)
        ON CONFLICT (service, pattern_id) DO NOTHING;
    END IF;
END $$;

COMMENT ON FUNCTION record_patterns(text[], bigint[], text[], timestamptz[], bigint[], text[], bigint[], text[], text[],
                                    timestamptz[]) IS
  'Appends pattern count deltas for rows the caller COPYed in this transaction, and catalogue rows (log_patterns) for '
  'patterns new to the caller. Used by the collector; the logs triggers do the same for SQL writers.';

-- The 10-minute bucket of log_pattern_counts_10m holding ts (whole minutes :00, :10, ... of UTC
-- hours, whatever the session's time zone).
CREATE OR REPLACE FUNCTION pattern_counts_10m_bucket(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('10 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');

COMMENT ON FUNCTION pattern_counts_10m_bucket(timestamptz) IS
  'Start of the 10 minutes (log_pattern_counts_10m.bucket) holding ts.';

-- Folds pattern count deltas into the two levels readers use, in one statement (a reader sees each
-- delta either still pending or folded into both levels, never both or neither, as compact_rollup()):
--   * one row per (service, pattern, level, minute) again (compacted = true);
--   * the deltas added to their (service, pattern, level, 10 minutes) row of log_pattern_counts_10m;
-- and keeps the catalogue's first_seen / last_seen exact. Deltas committed meanwhile are left for
-- the next call.
CREATE OR REPLACE FUNCTION compact_patterns() RETURNS bigint
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    merged bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('logmon.compact_patterns')) THEN
        RETURN 0;
    END IF;
    WITH deltas AS (
        DELETE FROM log_pattern_counts c WHERE NOT c.compacted RETURNING c.*
    ), keys AS (
        SELECT DISTINCT d.service, d.pattern_id, d.level, d.bucket FROM deltas d
    ), old AS (
        DELETE FROM log_pattern_counts c USING keys k
        WHERE c.compacted AND c.service = k.service AND c.pattern_id = k.pattern_id AND c.level = k.level
          AND c.bucket = k.bucket
        RETURNING c.*
    ), merged AS (
        INSERT INTO log_pattern_counts (service, pattern_id, level, bucket, count, compacted)
        SELECT x.service, x.pattern_id, x.level, x.bucket, sum(x.count), true
        FROM (SELECT * FROM old UNION ALL SELECT * FROM deltas) x
        GROUP BY 1, 2, 3, 4
        HAVING sum(x.count) <> 0
        RETURNING 1
    ), coarse_keys AS (
        SELECT DISTINCT d.service, d.pattern_id, d.level, pattern_counts_10m_bucket(d.bucket) AS bucket FROM deltas d
    ), old_coarse AS (
        DELETE FROM log_pattern_counts_10m c USING coarse_keys k
        WHERE c.bucket = k.bucket AND c.service = k.service AND c.pattern_id = k.pattern_id AND c.level = k.level
        RETURNING c.*
    ), merged_coarse AS (
        INSERT INTO log_pattern_counts_10m (service, pattern_id, level, bucket, count)
        SELECT x.service, x.pattern_id, x.level, x.bucket, sum(x.count)
        FROM (SELECT o.service, o.pattern_id, o.level, o.bucket, o.count FROM old_coarse o
              UNION ALL
              SELECT d.service, d.pattern_id, d.level, pattern_counts_10m_bucket(d.bucket), d.count FROM deltas d) x
        GROUP BY 1, 2, 3, 4
        HAVING sum(x.count) <> 0
        RETURNING 1
    ), seen AS (
        UPDATE log_patterns p
        SET first_seen = least(p.first_seen, s.first), last_seen = greatest(p.last_seen, s.last)
        FROM (SELECT d.service, d.pattern_id, min(d.bucket) AS first, max(d.bucket) AS last
              FROM deltas d WHERE d.count > 0 GROUP BY 1, 2) s
        WHERE p.service = s.service AND p.pattern_id = s.pattern_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM merged) + (SELECT count(*) FROM merged_coarse) INTO merged;
    RETURN merged;
END $$;

COMMENT ON FUNCTION compact_patterns() IS
  'Merges log_pattern_counts delta rows per (service, pattern, level, minute), adds them to log_pattern_counts_10m in '
  'the same statement, and updates log_patterns.first_seen and last_seen. Run by the detector every tick (and by '
  'collectors); safe at any time, exact before and after. Returns the rows written (both levels).';
