-- What each logmon role may do in this database (roles: migrations/V3__roles.sql).
--   logmon_ingest    COPY/INSERT into logs and write its rollup deltas (the collector's writers)
--   logmon_reader    read everything (the collector's read API, dashboards, analysts)
--   logmon_operator  acknowledge and resolve incidents
--   logmon_detector  run detection, compaction and partition maintenance
-- Functions that must do more than their caller may (create partitions, change incidents) are
-- SECURITY DEFINER with a fixed search_path, and executable only by the roles that need them.
GRANT USAGE ON SCHEMA public TO logmon_ingest, logmon_reader, logmon_operator, logmon_detector;

GRANT INSERT ON logs, log_rollup, log_pattern_counts, log_patterns TO logmon_ingest;
GRANT SELECT (service, pattern_id) ON log_patterns TO logmon_ingest;
-- the collector COPYs into the partitions themselves (ensure_partitions() grants new ones)
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'logs'::regclass LOOP
        EXECUTE format('GRANT INSERT ON %s TO logmon_ingest', p);
    END LOOP;
END $$;
GRANT SELECT ON logmon_settings, rollup_state TO logmon_ingest;  -- rollup_state: rollup_bucket()

GRANT SELECT ON ALL TABLES IN SCHEMA public TO logmon_reader, logmon_detector;

GRANT SELECT, INSERT, UPDATE, DELETE ON incidents, incident_events, notification_outbox, notification_deliveries, alert_state,
    detector_heartbeat, log_rollup, log_rollup_minute, log_pattern_counts, log_pattern_counts_10m, log_patterns
    TO logmon_detector;
GRANT UPDATE ON rollup_state TO logmon_detector;

-- Functions that run with their owner's rights must not resolve names through the caller's
-- search_path: each gets an explicit one (this schema, then pg_temp). Explicit rather than
-- FROM CURRENT, which Citus cannot propagate to its workers.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['maintain_partitions()', 'ensure_partitions(timestamptz, timestamptz)',
                             'acknowledge_incident(bigint, text)', 'resolve_incident(bigint, text)',
                             'rebuild_rollup(timestamptz, timestamptz)'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
    END LOOP;
END $$;

ALTER FUNCTION maintain_partitions() SECURITY DEFINER;
ALTER FUNCTION ensure_partitions(timestamptz, timestamptz) SECURITY DEFINER;
REVOKE EXECUTE ON FUNCTION maintain_partitions(), ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION maintain_partitions(), ensure_partitions(timestamptz, timestamptz) TO logmon_ingest, logmon_detector;

REVOKE EXECUTE ON FUNCTION lock_unresolved_incident(bigint, text) FROM PUBLIC;
ALTER FUNCTION acknowledge_incident(bigint, text) SECURITY DEFINER;
ALTER FUNCTION resolve_incident(bigint, text) SECURITY DEFINER;
REVOKE EXECUTE ON FUNCTION acknowledge_incident(bigint, text), resolve_incident(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acknowledge_incident(bigint, text), resolve_incident(bigint, text) TO logmon_operator, logmon_detector;

REVOKE EXECUTE ON FUNCTION rebuild_rollup(timestamptz, timestamptz) FROM PUBLIC;
-- rewrites the 10-minute pattern counts: only through maintain_partitions() and rebuild_rollup()
REVOKE EXECUTE ON FUNCTION refold_pattern_counts(timestamptz, timestamptz) FROM PUBLIC;

-- Silences: operators create and expire them (the collector's POST/DELETE /silences); the detector
-- holds and releases notifications in claim_notifications().
GRANT SELECT, INSERT, UPDATE, DELETE ON notification_holds TO logmon_detector;
GRANT UPDATE ON silence_watch TO logmon_detector;
ALTER FUNCTION create_silence(jsonb, timestamptz, text, text, timestamptz, text[], time, time, text, uuid)
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION expire_silence(uuid, text) SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION create_silence(jsonb, timestamptz, text, text, timestamptz, text[], time, time, text, uuid),
    expire_silence(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_silence(jsonb, timestamptz, text, text, timestamptz, text[], time, time, text, uuid),
    expire_silence(uuid, text) TO logmon_operator, logmon_detector;

-- Rules: operators change them over the API (create_rule(), update_rule(), delete_rule(), which
-- record the change in rule_changes); anyone who may read may list them and replay them.
ALTER FUNCTION create_rule(jsonb, text) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION update_rule(bigint, jsonb, text) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION delete_rule(bigint, text) SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION create_rule(jsonb, text), update_rule(bigint, jsonb, text), delete_rule(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_rule(jsonb, text), update_rule(bigint, jsonb, text), delete_rule(bigint, text)
    TO logmon_operator;

-- Searching raw logs: readers (the API, analysts) only.
REVOKE EXECUTE ON FUNCTION search_logs(text, text, timestamptz, timestamptz, text, text, double precision, jsonb, bigint,
                                       int, boolean, text, text[], interval),
                           incident_logs(bigint, int, text, text, text, double precision, jsonb, bigint, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION search_logs(text, text, timestamptz, timestamptz, text, text, double precision, jsonb, bigint,
                                      int, boolean, text, text[], interval),
                          incident_logs(bigint, int, text, text, text, double precision, jsonb, bigint, boolean)
    TO logmon_reader, logmon_detector;

-- Compaction changes no figure (deltas become their sum): collectors run it too, so that reads
-- stay cheap whether or not a detector runs. It runs with its owner's rights.
ALTER FUNCTION compact_rollup() SECURITY DEFINER;
ALTER FUNCTION compact_patterns() SECURITY DEFINER;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION compact_rollup() SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION compact_patterns() SET search_path = %I, pg_temp', current_schema());
END $$;
REVOKE EXECUTE ON FUNCTION compact_rollup(), compact_patterns() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compact_rollup(), compact_patterns() TO logmon_ingest, logmon_detector;

-- Summarizing the time index needs the index's owner (as VACUUM does); the detector calls it.
ALTER FUNCTION summarize_time_index(timestamptz, timestamptz, interval) SECURITY DEFINER;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION summarize_time_index(timestamptz, timestamptz, interval) SET search_path = %I, pg_temp',
                   current_schema());
END $$;
REVOKE EXECUTE ON FUNCTION summarize_time_index(timestamptz, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION summarize_time_index(timestamptz, timestamptz, interval) TO logmon_detector;
-- its per-partition (per-shard, on Citus) step: the owner's alone, as brin_summarize_range() is
REVOKE EXECUTE ON FUNCTION summarize_block_ranges(regclass, bigint, boolean, interval) FROM PUBLIC;

-- Placing tables on a Citus cluster is the schema owner's decision (logmon migrate --distribute).
REVOKE EXECUTE ON FUNCTION distribute_tables(int) FROM PUBLIC;
