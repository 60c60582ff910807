-- Least-privilege group roles (NOLOGIN). Roles belong to the whole cluster, so they are created
-- only if missing; their grants on this database are in sql/grants.sql. Give a login role the
-- group it needs, e.g.:
--   CREATE ROLE collector LOGIN PASSWORD '...' IN ROLE logmon_ingest, logmon_reader, logmon_operator;
--   CREATE ROLE detector  LOGIN PASSWORD '...' IN ROLE logmon_detector;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['logmon_ingest', 'logmon_reader', 'logmon_operator', 'logmon_detector'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;
