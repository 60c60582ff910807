-- Scaling out with Citus: where each table lives, and the one call that puts it there.
--
-- logs and every table keyed by service go to the workers, hashed by service and colocated, so
-- that all rows of one service (raw rows, rollup, pattern counts, catalogue) sit in one shard
-- group on one worker: the collector's COPY and its deltas, the logs triggers' deltas and every
-- per-service read stay on that worker. The small tables of detection, incidents and
-- notifications stay plain tables on the coordinator, where the detector and the API use them;
-- rollup_state, which window queries read on the workers, is a reference table (a copy on every
-- node).
--
-- On plain PostgreSQL (no citus extension) it changes nothing and says so: logmon runs the same
-- code on both. Idempotent: a table already placed is left alone.
CREATE OR REPLACE FUNCTION table_placements()
RETURNS TABLE (table_name text, placement text, reason text)
LANGUAGE sql IMMUTABLE
AS $$
    SELECT * FROM (VALUES
    ('logs', 'distributed',
     'the raw rows, the bulk of the data: hashed by service, each hourly partition distributed alike; COPY, '
     'search and retention spread over the workers'),
    ('log_rollup', 'distributed',
     'per-service deltas written with the rows: colocated with logs, so the collector''s COPY and its deltas, and '
     'the logs triggers on each worker, write one shard group; window reads group by service on the workers'),
    ('log_rollup_minute', 'distributed',
     'per-service minutes, kept as long as the logs: colocated with logs and log_rollup (compaction and windows '
     'per service)'),
    ('log_pattern_counts', 'distributed',
     'per-service pattern deltas written with the rows: colocated like log_rollup'),
    ('log_pattern_counts_10m', 'distributed',
     'per-service pattern counts per 10 minutes, folded from log_pattern_counts by compact_patterns(): colocated with '
     'it (compaction and top_patterns() per service), as log_rollup_minute with log_rollup'),
    ('log_patterns', 'distributed',
     'per-service pattern catalogue, upserted by the writers and joined with log_pattern_counts and logs by service: '
     'colocated'),
    ('alert_state', 'coordinator',
     'a row per (service, incident type) with a pending or recovering condition: written only by detect_incidents() '
     'in the transaction that changes incidents'),
    ('incidents', 'coordinator',
     'small; its unique partial index (one unresolved incident per service and type), identity ids and foreign keys '
     'are the detector''s guarantees, and it is read with the rule tables'),
    ('incident_events', 'coordinator', 'the incidents'' timeline (foreign key to incidents), written with them'),
    ('notification_outbox', 'coordinator', 'written in the incident change''s transaction (foreign key to incidents)'),
    ('notification_deliveries', 'coordinator',
     'leased with FOR UPDATE SKIP LOCKED by the notifiers (foreign key to notification_outbox)'),
    ('notification_holds', 'coordinator', 'a row per incident a silence holds (foreign keys to incidents, silences)'),
    ('silences', 'coordinator', 'a handful of rows, read when notifications are claimed'),
    ('silence_watch', 'coordinator', 'one row'),
    ('detection_rules', 'coordinator', 'a handful of rows, read by every detection tick on the coordinator'),
    ('rule_changes', 'coordinator',
     'the audit of detection_rules, written by its trigger in the transaction that changes a rule'),
    ('logmon_settings', 'coordinator', 'one row, read by functions that run on the coordinator'),
    ('rollup_state', 'reference',
     'one row, compaction''s watermark (which seconds the rollup still holds): read by every window query in the '
     'same statement as the rollup rows it describes, so a copy on every worker lets that statement run on the '
     'workers in one snapshot there; written once a minute'),
    ('detector_heartbeat', 'coordinator', 'a row per detector process'),
    ('time_index_progress', 'coordinator',
     'a row per logs partition summarize_time_index() has checked, which runs on the coordinator (for a distributed '
     'partition, whose shards it summarizes on the workers, only whether its hour is done)'),
    ('refinery_schema_history', 'coordinator', 'the migrations applied (logmon migrate)')
    ) AS t (table_name, placement, reason)
$$;

COMMENT ON FUNCTION table_placements() IS
  'Where each logmon table lives on a Citus cluster (distributed by service, colocated with logs; a reference table; '
  'or a plain table on the coordinator) and why. distribute_tables() applies it.';

-- How the writers' functions are planned. On one node append_rollup() and record_patterns() plan
-- their INSERT ... SELECT once per connection (plan_cache_mode = force_generic_plan, set where they
-- are defined: planning per group commit cost as much CPU as a small COPY). Citus cannot plan an
-- INSERT ... SELECT into a distributed table without its parameters' values, and a forced generic
-- plan fails every ingest ("could not create distributed plan"); in the default mode (auto) Citus
-- prices such a generic plan out, so PostgreSQL keeps making custom ones. Where the citus
-- extension is installed they are set to auto. Run by every logmon migrate (below, after the files
-- that define them) and by distribute_tables(); changes nothing on plain PostgreSQL.
CREATE OR REPLACE FUNCTION plan_writers()
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN 'force_generic_plan';
    END IF;
    ALTER FUNCTION append_rollup(text[], timestamptz[], bigint[], bigint[], bigint[], double precision[],
                                 double precision[], bigint[]) SET plan_cache_mode = auto;
    ALTER FUNCTION record_patterns(text[], bigint[], text[], timestamptz[], bigint[], text[], bigint[], text[], text[],
                                   timestamptz[]) SET plan_cache_mode = auto;
    RETURN 'auto';
END $$;

COMMENT ON FUNCTION plan_writers() IS
  'Where the citus extension is installed, sets plan_cache_mode = auto on append_rollup() and record_patterns() (Citus '
  'cannot run their INSERT ... SELECT from a forced generic plan); elsewhere they keep force_generic_plan. Returns the '
  'mode. Run by logmon migrate and distribute_tables().';

DO $$ BEGIN PERFORM plan_writers(); END $$;

CREATE OR REPLACE FUNCTION distribute_tables(shard_count int DEFAULT NULL)
RETURNS TABLE (table_name text, placement text, action text)
LANGUAGE plpgsql
AS $$
DECLARE
    citus boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus');
    t record;
    method text;
    dist_column text;
BEGIN
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'shard_count must be 1..64000, got %', shard_count USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF citus THEN
        -- Sequential mode: each table's shards are created over one connection per worker, and
        -- the later ones can be colocated with the earlier ones in the same transaction.
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
        -- logs carries the statement triggers that keep the rollup exact for SQL writers; Citus
        -- distributes a table with triggers only when told to. They fire on each shard, with
        -- the shard's transition table, and write the colocated shards of the same worker.
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
        -- citus may have been installed after the last migrate
        PERFORM plan_writers();
    END IF;
    -- logs first: the others are colocated with it
    FOR t IN SELECT p.table_name, p.placement FROM table_placements() WITH ORDINALITY AS p(table_name, placement, reason, n)
             ORDER BY p.table_name <> 'logs', p.n LOOP
        table_name := t.table_name;
        placement := t.placement;
        IF to_regclass(t.table_name) IS NULL THEN
            action := 'missing (run logmon migrate first)';
        ELSIF NOT citus THEN
            action := 'none: the citus extension is not installed';
        ELSE
            EXECUTE 'SELECT partmethod::text, column_to_column_name(logicalrelid, partkey)
                     FROM pg_dist_partition WHERE logicalrelid = $1::regclass'
                INTO method, dist_column USING t.table_name;
            IF t.placement = 'coordinator' THEN
                IF method IS NOT NULL THEN
                    RAISE EXCEPTION 'table % is a Citus table (method %), logmon keeps it a plain table on the coordinator',
                        t.table_name, method USING HINT = format('SELECT undistribute_table(%L)', t.table_name);
                END IF;
                action := 'kept on the coordinator';
            ELSIF t.placement = 'reference' THEN
                IF method = 'n' THEN
                    action := 'already a reference table';
                ELSIF method IS NOT NULL THEN
                    RAISE EXCEPTION 'table % is already a Citus table (method %), not a reference table', t.table_name, method
                        USING HINT = format('SELECT undistribute_table(%L)', t.table_name);
                ELSE
                    EXECUTE 'SELECT create_reference_table($1::regclass)' USING t.table_name;
                    EXECUTE 'SELECT truncate_local_data_after_distributing_table($1::regclass)' USING t.table_name;
                    action := 'made a reference table';
                END IF;
            ELSIF method = 'h' AND dist_column = 'service' THEN
                action := 'already distributed';
            ELSIF method IS NOT NULL THEN
                RAISE EXCEPTION 'table % is already a Citus table (method %, column %), not hashed by service',
                    t.table_name, method, dist_column USING HINT = format('SELECT undistribute_table(%L)', t.table_name);
            ELSE
                IF t.table_name = 'logs' THEN
                    EXECUTE 'SELECT create_distributed_table($1::regclass, ''service'', shard_count => $2)'
                        USING t.table_name, shard_count;
                ELSE
                    EXECUTE 'SELECT create_distributed_table($1::regclass, ''service'', colocate_with => ''logs'')'
                        USING t.table_name;
                END IF;
                -- Rows already there were copied to the shards: free the coordinator's copy. That is a
                -- TRUNCATE of the local logs, which must not empty the rollup as a TRUNCATE of logs does.
                IF t.table_name = 'logs' THEN
                    ALTER TABLE logs DISABLE TRIGGER logs_truncate;
                END IF;
                EXECUTE 'SELECT truncate_local_data_after_distributing_table($1::regclass)' USING t.table_name;
                IF t.table_name = 'logs' THEN
                    ALTER TABLE logs ENABLE TRIGGER logs_truncate;
                END IF;
                action := 'distributed';
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

COMMENT ON FUNCTION distribute_tables(int) IS
  'On a Citus coordinator: distributes logs by service (shard_count shards, default citus.shard_count) and the other '
  'per-service tables colocated with it, makes rollup_state a reference table and keeps the others plain tables on '
  'the coordinator (see table_placements()). Idempotent; on plain PostgreSQL it changes nothing. Run by logmon migrate --distribute, '
  'which then runs ANALYZE rollup_state in a transaction of its own (the new copies are never analyzed). '
  'By hand: SELECT * FROM distribute_tables(); ANALYZE rollup_state;';
