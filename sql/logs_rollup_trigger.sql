-- The rollup for rows written by anything but the collector (a DBA's INSERT, COPY, UPDATE or
-- DELETE): a delta row per changed log row. It is an AFTER ROW trigger on purpose: a BEFORE ROW
-- or transition-table trigger would make every COPY into logs row-at-a-time, while an AFTER ROW
-- trigger whose WHEN is false costs the collector's COPY one GUC lookup per row.
CREATE OR REPLACE FUNCTION logs_rollup_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r logs;
    sign int;
    b int;
BEGIN
    FOR i IN 1 .. 2 LOOP
        IF i = 1 AND TG_OP IN ('UPDATE', 'DELETE') THEN r := OLD; sign := -1;
        ELSIF i = 2 AND TG_OP IN ('INSERT', 'UPDATE') THEN r := NEW; sign := 1;
        ELSE CONTINUE;
        END IF;
        b := CASE WHEN r.latency_ms IS NULL THEN -1 ELSE width_bucket(r.latency_ms, latency_bounds()) END;
        INSERT INTO log_rollup (service, bucket, width_s, total, errors, latency_count, latency_sum, latency_max,
                                h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
        VALUES (r.service, date_trunc('second', r.ts), 1, sign,
                CASE WHEN r.level IN ('ERROR', 'FATAL') THEN sign ELSE 0 END,
                CASE WHEN b >= 0 THEN sign ELSE 0 END,
                coalesce(r.latency_ms, 0) * sign,
                CASE WHEN sign > 0 THEN r.latency_ms END,
                (b = 0)::int * sign, (b = 1)::int * sign, (b = 2)::int * sign, (b = 3)::int * sign,
                (b = 4)::int * sign, (b = 5)::int * sign, (b = 6)::int * sign, (b = 7)::int * sign,
                (b = 8)::int * sign, (b = 9)::int * sign, (b = 10)::int * sign, (b = 11)::int * sign,
                (b = 12)::int * sign, (b = 13)::int * sign, (b = 14)::int * sign, (b = 15)::int * sign);
    END LOOP;
    PERFORM pg_notify('logmon_ingest', '');
    RETURN NULL;
END $$;

COMMENT ON FUNCTION logs_rollup_trigger() IS
  'Keeps log_rollup exact for rows written to logs by SQL (not by the collector). After a DELETE, latency_max is an upper bound.';

CREATE OR REPLACE TRIGGER logs_rollup
AFTER INSERT OR UPDATE OR DELETE ON logs
FOR EACH ROW
WHEN (current_setting('logmon.rollup_recorded', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION logs_rollup_trigger();

CREATE OR REPLACE FUNCTION logs_truncate_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM log_rollup;
    RETURN NULL;
END $$;

COMMENT ON FUNCTION logs_truncate_trigger() IS 'TRUNCATE logs empties log_rollup too.';

CREATE OR REPLACE TRIGGER logs_truncate AFTER TRUNCATE ON logs
FOR EACH STATEMENT EXECUTE FUNCTION logs_truncate_trigger();
