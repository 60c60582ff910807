-- The rollup for rows written by SQL through `logs` (a DBA's INSERT, COPY, UPDATE, DELETE): one
-- delta row per (service, rollup_bucket()) per statement, from the statement's transition tables. The
-- collector does not come this way: it COPYs into the partitions themselves (see copy_sink.rs)
-- and writes its own deltas in the same transaction, because any transition-table trigger on the
-- partitioned table would make its COPY row-at-a-time. Partitions carry no trigger, so writing
-- into a partition directly is the raw bulk path: follow it with rebuild_rollup().
DROP TRIGGER IF EXISTS logs_rollup ON logs;           -- the per-row trigger of earlier versions
DROP FUNCTION IF EXISTS logs_rollup_trigger();

CREATE OR REPLACE FUNCTION logs_rollup_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cols constant text := 'ts, service, level, latency_ms, message, pattern_id';
    src text := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT 1 AS sign, %s FROM new_rows', cols)
        WHEN 'DELETE' THEN format('SELECT -1 AS sign, %s FROM old_rows', cols)
        ELSE format('SELECT 1 AS sign, %1$s FROM new_rows UNION ALL SELECT -1, %1$s FROM old_rows', cols) END;
BEGIN
    EXECUTE format($q$
        INSERT INTO log_rollup (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                                h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
        SELECT x.service, CASE WHEN x.ts < f.fine_since THEN date_trunc('minute', x.ts) ELSE date_trunc('second', x.ts) END, sum(x.sign), coalesce(sum(x.sign) FILTER (WHERE x.level IN ('ERROR', 'FATAL')), 0),
               coalesce(sum(x.sign) FILTER (WHERE x.latency_ms IS NOT NULL), 0), coalesce(sum(x.sign * x.latency_ms), 0),
               max(x.latency_ms) FILTER (WHERE x.sign > 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 0), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 1), 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 2), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 3), 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 4), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 5), 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 6), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 7), 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 8), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 9), 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 10), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 11), 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 12), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 13), 0),
               coalesce(sum(x.sign) FILTER (WHERE b.i = 14), 0), coalesce(sum(x.sign) FILTER (WHERE b.i = 15), 0)
        -- rollup_bucket(), spelt out: the watermark read once per statement, not per row
        FROM (%s) x, rollup_state f, LATERAL (SELECT width_bucket(x.latency_ms, latency_bounds()) AS i) b
        GROUP BY 1, 2$q$, src);
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
            INSERT INTO log_pattern_counts (service, pattern_id, level, bucket, count)
            SELECT x.service, x.p, x.level, date_trunc('minute', x.ts), sum(x.sign) FROM x
            GROUP BY 1, 2, 3, 4 HAVING sum(x.sign) <> 0
        )
        INSERT INTO log_patterns (service, pattern_id, template, example, first_seen, last_seen)
        SELECT d.service, d.p, log_template(d.message), d.message, date_trunc('minute', d.ts), date_trunc('minute', d.ts)
        FROM (SELECT DISTINCT ON (x.service, x.p) x.service, x.p, x.message, x.ts FROM x WHERE x.sign > 0
              ORDER BY x.service, x.p, x.ts) d
        ON CONFLICT (service, pattern_id) DO NOTHING$q$, src);
    PERFORM pg_notify('logmon_ingest', '');
    RETURN NULL;
END $$;

COMMENT ON FUNCTION logs_rollup_statement() IS
  'Keeps log_rollup and log_pattern_counts exact for rows written to logs by SQL: one delta row per (service, rollup_bucket()) '
  'and per (service, pattern, level, minute) per statement, from the statement''s transition tables, and catalogue rows '
  'for new patterns. After a DELETE or UPDATE, latency_max is an upper bound.';

CREATE OR REPLACE TRIGGER logs_rollup_insert AFTER INSERT ON logs
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION logs_rollup_statement();
CREATE OR REPLACE TRIGGER logs_rollup_update AFTER UPDATE ON logs
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION logs_rollup_statement();
CREATE OR REPLACE TRIGGER logs_rollup_delete AFTER DELETE ON logs
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION logs_rollup_statement();

CREATE OR REPLACE FUNCTION logs_truncate_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM log_rollup;
    DELETE FROM log_rollup_minute;
    DELETE FROM log_pattern_counts;
    RETURN NULL;
END $$;

COMMENT ON FUNCTION logs_truncate_trigger() IS 'TRUNCATE logs empties the rollup too.';

CREATE OR REPLACE TRIGGER logs_truncate AFTER TRUNCATE ON logs
FOR EACH STATEMENT EXECUTE FUNCTION logs_truncate_trigger();
