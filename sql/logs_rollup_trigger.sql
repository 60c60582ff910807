-- The rollup for rows written by SQL through `logs` (a DBA's INSERT, COPY, UPDATE, DELETE): one
-- delta row per (service, rollup_bucket()) per statement, from the statement's transition
-- tables. The collector does not come this way: it COPYs into the partitions themselves (see
-- copy_sink.rs) and writes its own deltas in the same transaction, because any transition-table
-- trigger on the partitioned table would make its COPY row-at-a-time. Partitions carry no trigger, so writing
-- into a partition directly is the raw bulk path: follow it with rebuild_rollup().
--
-- The triggers are created when missing and otherwise left alone (what they do is in their
-- functions, replaced by every migrate): once logs is distributed by Citus, any trigger DDL on it
-- is refused unless citus.enable_unsafe_triggers is on, and distribute_tables() is where that is
-- decided (see sql/distribute_tables.sql). A new version that changes a trigger's definition must
-- drop it here, guarded the same way.
DO $$
BEGIN
    -- the per-row trigger of earlier versions
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'logs'::regclass AND tgname = 'logs_rollup') THEN
        DROP TRIGGER logs_rollup ON logs;
    END IF;
END $$;
DROP FUNCTION IF EXISTS logs_rollup_trigger();

CREATE OR REPLACE FUNCTION logs_rollup_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cols constant text := 'ts, service, level, latency_ms, message, pattern_id';
    src text := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT 1 AS sign, %s FROM new_rows', cols)
        WHEN 'DELETE' THEN format('SELECT -1 AS sign, %s FROM old_rows', cols)
        ELSE format('SELECT 1 AS sign, %1$s FROM new_rows UNION ALL SELECT -1, %1$s FROM old_rows', cols) END;
    fine timestamptz;
    d record;
    p record;
BEGIN
    -- The deltas are read from the transition tables into arrays, and written by the functions the
    -- collector uses (append_rollup(), record_patterns()). One INSERT ... SELECT from the
    -- transition table would do on one node; on Citus, where this trigger fires on the shards of
    -- logs, an INSERT ... SELECT into a distributed table runs its SELECT apart from the trigger's
    -- statement, where the transition table does not exist.
    --
    -- rollup_bucket(), spelt out: the watermark read once per statement, in a statement of its own
    -- (on a Citus shard, from the worker's copy of the reference table; the query of the
    -- transition table below reads no other table)
    SELECT r.fine_since INTO fine FROM rollup_state r;
    EXECUTE format($q$
        WITH s AS MATERIALIZED (
            SELECT x.service,
                   CASE WHEN x.ts < $1 THEN date_trunc('minute', x.ts) ELSE date_trunc('second', x.ts) END AS bucket,
                   sum(x.sign)::bigint AS total,
                   coalesce(sum(x.sign) FILTER (WHERE x.level IN ('ERROR', 'FATAL')), 0)::bigint AS errors,
                   coalesce(sum(x.sign) FILTER (WHERE x.latency_ms IS NOT NULL), 0)::bigint AS latency_count,
                   coalesce(sum(x.sign * x.latency_ms), 0) AS latency_sum,
                   max(x.latency_ms) FILTER (WHERE x.sign > 0) AS latency_max,
                   ARRAY[coalesce(sum(x.sign) FILTER (WHERE b.i = 0), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 1), 0),
                         coalesce(sum(x.sign) FILTER (WHERE b.i = 2), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 3), 0),
                         coalesce(sum(x.sign) FILTER (WHERE b.i = 4), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 5), 0),
                         coalesce(sum(x.sign) FILTER (WHERE b.i = 6), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 7), 0),
                         coalesce(sum(x.sign) FILTER (WHERE b.i = 8), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 9), 0),
                         coalesce(sum(x.sign) FILTER (WHERE b.i = 10), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 11), 0),
                         coalesce(sum(x.sign) FILTER (WHERE b.i = 12), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 13), 0),
                         coalesce(sum(x.sign) FILTER (WHERE b.i = 14), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 15), 0)
                        ]::bigint[] AS hist
            FROM (%s) x, LATERAL (SELECT width_bucket(x.latency_ms, latency_bounds()) AS i) b
            GROUP BY 1, 2
        )
        SELECT array_agg(s.service ORDER BY s.service, s.bucket) AS services,
               array_agg(s.bucket ORDER BY s.service, s.bucket) AS buckets,
               array_agg(s.total ORDER BY s.service, s.bucket) AS totals,
               array_agg(s.errors ORDER BY s.service, s.bucket) AS errors,
               array_agg(s.latency_count ORDER BY s.service, s.bucket) AS latency_counts,
               array_agg(s.latency_sum ORDER BY s.service, s.bucket) AS latency_sums,
               array_agg(s.latency_max ORDER BY s.service, s.bucket) AS latency_maxes,
               (SELECT array_agg(h.v ORDER BY t.service, t.bucket, h.k)
                FROM s t, unnest(t.hist) WITH ORDINALITY AS h(v, k)) AS hists
        FROM s$q$, src) INTO d USING fine;
    IF d.services IS NOT NULL THEN
        PERFORM append_rollup(d.services, d.buckets, d.totals, d.errors, d.latency_counts, d.latency_sums,
                              d.latency_maxes, d.hists);
    END IF;
    -- Pattern counts and catalogue. Rows written by SQL carry no pattern_id: it is computed
    -- here with log_pattern_id(), the SQL twin of the collector's extractor.
    EXECUTE format($q$
        WITH r AS MATERIALIZED (
            SELECT * FROM (%s) r WHERE r.message IS NOT NULL
        ), ids AS (
            -- once per distinct message: logs repeat themselves, the SQL twin costs tens of µs
            SELECT m.message, log_pattern_id(m.message) AS p
            FROM (SELECT DISTINCT r.message FROM r WHERE r.pattern_id IS NULL) m
        ), x AS MATERIALIZED (
            SELECT r.sign, r.service, r.level, r.ts, r.message, coalesce(r.pattern_id, ids.p) AS p
            FROM r LEFT JOIN ids ON r.pattern_id IS NULL AND ids.message = r.message
        ), counts AS (
            SELECT x.service, x.p, x.level, date_trunc('minute', x.ts) AS bucket, sum(x.sign)::bigint AS n FROM x
            GROUP BY 1, 2, 3, 4 HAVING sum(x.sign) <> 0
        ), new AS (
            -- first come, first stays (record_patterns()); compact_patterns() makes first_seen exact
            SELECT DISTINCT ON (x.service, x.p) x.service, x.p, x.message, date_trunc('minute', x.ts) AS first
            FROM x WHERE x.sign > 0
            ORDER BY x.service, x.p, x.ts
        )
        SELECT c.*, n.*
        FROM (SELECT coalesce(array_agg(c.service ORDER BY c.service, c.p, c.level, c.bucket), '{}') AS services,
                     coalesce(array_agg(c.p ORDER BY c.service, c.p, c.level, c.bucket), '{}') AS ids,
                     coalesce(array_agg(c.level ORDER BY c.service, c.p, c.level, c.bucket), '{}') AS levels,
                     coalesce(array_agg(c.bucket ORDER BY c.service, c.p, c.level, c.bucket), '{}') AS buckets,
                     coalesce(array_agg(c.n ORDER BY c.service, c.p, c.level, c.bucket), '{}') AS counts
              FROM counts c) c,
             (SELECT coalesce(array_agg(n.service ORDER BY n.service, n.p), '{}') AS new_services,
                     coalesce(array_agg(n.p ORDER BY n.service, n.p), '{}') AS new_ids,
                     coalesce(array_agg(log_template(n.message) ORDER BY n.service, n.p), '{}') AS new_templates,
                     coalesce(array_agg(n.message ORDER BY n.service, n.p), '{}') AS new_examples,
                     coalesce(array_agg(n.first ORDER BY n.service, n.p), '{}') AS new_first
              FROM new n) n$q$, src) INTO p;
    IF cardinality(p.services) > 0 OR cardinality(p.new_services) > 0 THEN
        PERFORM record_patterns(p.services, p.ids, p.levels, p.buckets, p.counts,
                                p.new_services, p.new_ids, p.new_templates, p.new_examples, p.new_first);
    END IF;
    -- Wake the detector. Not on a Citus shard (logs_<shard id>): no detector listens on a worker,
    -- and a NOTIFY there would forbid the two-phase commit of a statement spanning workers (the
    -- detector's next tick, within --interval, sees those rows).
    IF TG_TABLE_NAME = 'logs' THEN
        PERFORM pg_notify('logmon_ingest', '');
    END IF;
    RETURN NULL;
END $$;

COMMENT ON FUNCTION logs_rollup_statement() IS
  'Keeps log_rollup and log_pattern_counts exact for rows written to logs by SQL: one delta row per (service, rollup_bucket()) '
  'and per (service, pattern, level, minute) per statement, from the statement''s transition tables, and catalogue rows '
  'for new patterns. After a DELETE or UPDATE, latency_max is an upper bound.';

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('logs_rollup_insert', 'AFTER INSERT ON logs REFERENCING NEW TABLE AS new_rows'),
        ('logs_rollup_update', 'AFTER UPDATE ON logs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'),
        ('logs_rollup_delete', 'AFTER DELETE ON logs REFERENCING OLD TABLE AS old_rows')) v(name, event)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'logs'::regclass AND tgname = t.name) THEN
            EXECUTE format('CREATE TRIGGER %I %s FOR EACH STATEMENT EXECUTE FUNCTION logs_rollup_statement()',
                           t.name, t.event);
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION logs_truncate_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- On Citus this trigger fires on the coordinator's logs and again on each of its shards
    -- (logs_<shard id>), where emptying the distributed rollup is refused: the one on logs does it.
    IF TG_TABLE_NAME <> 'logs' THEN
        RETURN NULL;
    END IF;
    DELETE FROM log_rollup;
    DELETE FROM log_rollup_minute;
    DELETE FROM log_pattern_counts;
    DELETE FROM log_pattern_counts_10m;
    RETURN NULL;
END $$;

COMMENT ON FUNCTION logs_truncate_trigger() IS 'TRUNCATE logs empties the rollup too.';

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'logs'::regclass AND tgname = 'logs_truncate') THEN
        CREATE TRIGGER logs_truncate AFTER TRUNCATE ON logs FOR EACH STATEMENT EXECUTE FUNCTION logs_truncate_trigger();
    END IF;
END $$;
