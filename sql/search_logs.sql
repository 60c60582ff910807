-- Searching raw logs, bounded in time and work whatever the filters:
--   * ERROR/FATAL lines of given services come straight from the partial index on error rows,
--     newest (or oldest) first;
--   * anything else walks the window in slices, newest first (or oldest first), each slice a
--     BRIN-narrowed range of ts: the first slice is sized from the rollup so that it should
--     hold about twice `lim` candidate lines, each next one is 4x wider, and the walk stops when
--     `lim` lines are found, the window is done, or logmon_settings.search_budget is spent: then
--     a last line with a NULL level carries the cursor to continue from (the way Loki splits a
--     query into time slices). Each slice starts where the rollup says the next candidate row
--     is, so a stretch where the services sent nothing (one that went silent, a gap in a
--     backfill) costs one probe of the rollup instead of raw scans of ever wider slices over
--     nothing (at 100M rows a day: 100 lines of a service silent for the last 8 minutes took
--     17 ms, 5 slices).
-- Lines are ordered by (ts, service, partition, tuple): a cursor is a position in that order, so
-- pages neither repeat nor skip lines while new logs arrive (they arrive after `until`). service
-- is part of the order because (partition, tuple) alone is unique on one node only: on Citus,
-- where a row's partition is a shard, two workers can hold shards with the same oid, while the
-- rows of one service are all in one shard.
DROP FUNCTION IF EXISTS log_cursor(timestamptz, oid, tid);
CREATE OR REPLACE FUNCTION log_cursor(ts timestamptz, service text, part oid, tup tid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN service IS NULL THEN ((extract(epoch FROM ts) * 1e6)::bigint)::text
            ELSE format('%s:%s:%s:%s', (extract(epoch FROM ts) * 1e6)::bigint, part,
                        replace(replace(replace(tup::text, '(', ''), ')', ''), ',', ':'), service) END;

COMMENT ON FUNCTION log_cursor(timestamptz, text, oid, tid) IS
  'The cursor of a log line (its position in search order), as search_logs() returns it and takes it as `after`; '
  'without a service, the cursor of an instant: the lines after it in search order (ts below it newest first, above '
  'it oldest first).';

CREATE OR REPLACE FUNCTION search_logs(
    service text DEFAULT NULL,
    level text DEFAULT NULL,
    since timestamptz DEFAULT now() - interval '15 minutes',
    until timestamptz DEFAULT now(),
    q text DEFAULT NULL,
    status_code text DEFAULT NULL,
    min_latency_ms double precision DEFAULT NULL,
    attrs jsonb DEFAULT NULL,
    pattern bigint DEFAULT NULL,
    lim int DEFAULT 100,
    newest_first boolean DEFAULT true,
    after text DEFAULT NULL,
    services text[] DEFAULT NULL,
    budget interval DEFAULT NULL)
RETURNS SETOF log_line
LANGUAGE plpgsql STABLE
SET jit = off
AS $$
DECLARE
    svc text[] := CASE WHEN service IS NOT NULL THEN array_append(coalesce(services, '{}'), service) ELSE services END;
    levels text[];
    s_lo int;
    s_hi int;
    like_q text;
    c_ts timestamptz;
    c_svc text;
    c_part oid;
    c_tid tid;
    lo timestamptz := since;
    hi timestamptz := until;
    a timestamptz;
    b timestamptz;
    width interval;
    rate double precision;
    need int;
    n int;
    deadline timestamptz;
    errors_only boolean;
    filters text;
    order_by text;
    query text;
    next_edge text;
    t timestamptz;
BEGIN
    -- parameters, refused with the name of the one at fault (22023, COLUMN = its name)
    IF lim IS NULL OR lim < 1 OR lim > 1000 THEN
        RAISE EXCEPTION 'limit must be 1..1000, got %', lim USING ERRCODE = 'invalid_parameter_value', COLUMN = 'limit';
    END IF;
    IF since IS NULL OR until IS NULL OR until <= since THEN
        RAISE EXCEPTION 'until (%) must be after since (%)', until, since USING ERRCODE = 'invalid_parameter_value', COLUMN = 'until';
    END IF;
    IF level IS NOT NULL THEN
        levels := CASE upper(trim(level))
            WHEN 'DEBUG' THEN NULL WHEN 'TRACE' THEN NULL
            WHEN 'INFO' THEN '{INFO,WARN,ERROR,FATAL}' WHEN 'NOTICE' THEN '{INFO,WARN,ERROR,FATAL}'
            WHEN 'WARN' THEN '{WARN,ERROR,FATAL}' WHEN 'WARNING' THEN '{WARN,ERROR,FATAL}'
            WHEN 'ERROR' THEN '{ERROR,FATAL}' WHEN 'ERR' THEN '{ERROR,FATAL}'
            WHEN 'FATAL' THEN '{FATAL}' WHEN 'CRITICAL' THEN '{FATAL}'
            ELSE '{?}' END;
        IF levels = '{?}' THEN
            RAISE EXCEPTION 'level must be one of DEBUG, INFO, WARN, ERROR, FATAL (a minimum), got %', level
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'level';
        END IF;
    END IF;
    IF status_code IS NOT NULL THEN
        IF status_code ~ '^[1-5][0-9][0-9]$' THEN
            s_lo := status_code::int; s_hi := s_lo;
        ELSIF status_code ~* '^[1-5]xx$' THEN
            s_lo := left(status_code, 1)::int * 100; s_hi := s_lo + 99;
        ELSE
            RAISE EXCEPTION 'status_code must be a code (100..599) or a class (1xx..5xx), got %', left(status_code, 40)
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'status_code';
        END IF;
    END IF;
    IF q IS NOT NULL THEN
        IF length(q) > 1000 THEN
            RAISE EXCEPTION 'q is % characters long; at most 1000', length(q)
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'q';
        END IF;
        -- a substring, not a pattern: % and _ are plain characters
        like_q := '%' || replace(replace(replace(q, '\', '\\'), '%', '\%'), '_', '\_') || '%';
    END IF;
    IF attrs IS NOT NULL AND jsonb_typeof(attrs) <> 'object' THEN
        RAISE EXCEPTION 'attrs must be a JSON object of key: value' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'attrs';
    END IF;
    IF after IS NOT NULL THEN
        BEGIN
            c_ts := to_timestamp(split_part(after, ':', 1)::numeric / 1e6);
            IF after !~ '^-?[0-9]+$' THEN
                c_part := split_part(after, ':', 2)::oid;
                c_tid := format('(%s,%s)', split_part(after, ':', 3), split_part(after, ':', 4))::tid;
                c_svc := substring(after FROM '^[^:]*:[^:]*:[^:]*:[^:]*:(.+)$');
                IF c_svc IS NULL THEN
                    RAISE EXCEPTION 'no service';
                END IF;
            END IF;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'after is not a cursor from search_logs()' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'cursor';
        END;
        IF c_svc IS NULL THEN
            -- an instant (a search that ran out of budget): the lines after it
            IF newest_first THEN hi := least(hi, c_ts); ELSE lo := greatest(lo, c_ts + interval '1 microsecond'); END IF;
        ELSIF newest_first THEN
            hi := least(hi, c_ts + interval '1 microsecond');
        ELSE
            lo := greatest(lo, c_ts);
        END IF;
    END IF;
    IF lo >= hi THEN RETURN; END IF;
    SELECT clock_timestamp() + coalesce(budget, s.search_budget) INTO deadline FROM logmon_settings s;
    errors_only := levels IS NOT NULL AND levels <@ '{ERROR,FATAL}';

    -- The filters as SQL with their values inlined (format %L), so that every statement is planned
    -- for its actual values: partitions pruned, the partial index on error rows usable.
    filters := concat_ws(' AND ',
        CASE WHEN svc IS NOT NULL THEN format('l.service = ANY (%L::text[])', svc) END,
        CASE WHEN errors_only THEN format('l.level IN (''ERROR'', ''FATAL'') AND l.level = ANY (%L::text[])', levels)
             WHEN levels IS NOT NULL THEN format('l.level = ANY (%L::text[])', levels) END,
        CASE WHEN like_q IS NOT NULL THEN format('l.message ILIKE %L', like_q) END,
        CASE WHEN s_lo IS NOT NULL THEN format('l.status_code BETWEEN %s AND %s', s_lo, s_hi) END,
        CASE WHEN min_latency_ms IS NOT NULL THEN format('l.latency_ms >= %L::float8', min_latency_ms) END,
        CASE WHEN search_logs.attrs IS NOT NULL THEN format(
            'NOT EXISTS (SELECT 1 FROM jsonb_each_text(%L::jsonb) f WHERE l.attrs ->> f.key IS DISTINCT FROM f.value)',
            search_logs.attrs) END,
        CASE WHEN pattern IS NOT NULL THEN format('coalesce(l.pattern_id, log_pattern_id(l.message)) = %s', pattern) END,
        CASE WHEN c_svc IS NOT NULL THEN format('(l.ts, l.service, l.tableoid, l.ctid) %s (%L::timestamptz, %L, %s::oid, %L::tid)',
                                                CASE WHEN newest_first THEN '<' ELSE '>' END, c_ts, c_svc, c_part, c_tid) END,
        'true');
    order_by := CASE WHEN newest_first THEN 'l.ts DESC, l.service DESC, l.tableoid DESC, l.ctid DESC'
                     ELSE 'l.ts, l.service, l.tableoid, l.ctid' END;
    -- Lines written by SQL carry no pattern_id: log_pattern_id(), the SQL twin, gives the same.
    -- The template comes from the catalogue (a subquery evaluated after ORDER BY ... LIMIT).
    query := 'SELECT l.ts, l.service, l.level, l.message, l.latency_ms, l.status_code, l.attrs, l.received_at,
                     coalesce(l.pattern_id, log_pattern_id(l.message)),
                     (SELECT p.template FROM log_patterns p
                      WHERE p.service = l.service AND p.pattern_id = coalesce(l.pattern_id, log_pattern_id(l.message))),
                     log_cursor(l.ts, l.service, l.tableoid, l.ctid)
              FROM logs l WHERE l.ts >= $1 AND l.ts < $2 AND ' || filters || ' ORDER BY ' || order_by || ' LIMIT $3';

    IF errors_only AND svc IS NOT NULL THEN
        -- the partial index (service, ts) on error rows hands them over in order: no slices
        RETURN QUERY EXECUTE query USING lo, hi, lim;
        RETURN;
    END IF;

    -- How many candidate lines per second, near where the walk starts: an estimate from the
    -- rollup's minutes (deltas not folded yet are left out: it only sizes the first slice).
    SELECT sum(CASE WHEN errors_only THEN m.errors ELSE m.total END)::double precision
           / greatest(extract(epoch FROM least(hi, now()) - greatest(lo, hi - interval '1 hour')), 60)
    INTO rate
    FROM log_rollup_minute m
    WHERE m.bucket >= date_trunc('minute', CASE WHEN newest_first THEN greatest(lo, hi - interval '1 hour') ELSE lo END)
      AND m.bucket < CASE WHEN newest_first THEN hi ELSE least(hi, lo + interval '1 hour') END
      AND (svc IS NULL OR m.service = ANY (svc));
    width := make_interval(secs => greatest(1, least(3600, 2 * lim / greatest(coalesce(rate, 0), 0.001))));
    need := lim;
    -- Where the next candidate row can be, from the rollup (exact: it holds every committed row):
    -- newest first, the end of the newest bucket before $1 with rows of the services; oldest
    -- first, the start of the oldest one that can hold rows at or after $1. No row: there is none
    -- (least()/greatest() skip NULLs, so the bound is applied only to a bucket that was found).
    -- A log_rollup bucket is a second, except before rollup_state.fine_since: there late rows
    -- leave deltas bucketed at their minute until the next fold (rollup_bucket()), so such a
    -- bucket ends a minute later, and both probes start at the minute holding their bound. The
    -- newest bucket decides (before fine_since, whatever it is, nothing before it ends later than
    -- a minute after it; from fine_since on, every minute bucket ends by fine_since): max(bucket)
    -- alone, which one service's probe reads from the end of its (service, bucket) index.
    -- OFFSET 0 keeps the planner from pulling `e` up into the outer query, where it would be
    -- computed twice (for the WHERE and for the result): each probe reads the rollup once.
    next_edge := format(
        CASE WHEN newest_first THEN
            'SELECT least($1, e) FROM (SELECT greatest((SELECT x.m + CASE WHEN x.m < f.fine_since THEN interval ''1 minute'' ELSE interval ''1 second'' END
                                         FROM (SELECT max(r.bucket) AS m FROM log_rollup r
                                               WHERE r.bucket < $1 AND r.bucket >= date_trunc(''minute'', $2) AND %1$s) x,
                                              rollup_state f),
                                        (SELECT max(r.bucket) + interval ''1 minute'' FROM log_rollup_minute r, rollup_state f
                                         WHERE r.bucket < least($1, f.fine_since) AND r.bucket >= date_trunc(''minute'', $2) AND %1$s)) AS e
                   OFFSET 0) p
             WHERE e IS NOT NULL'
        ELSE
            'SELECT greatest($1, e) FROM (SELECT least((SELECT min(r.bucket) FROM log_rollup r
                                         WHERE r.bucket >= date_trunc(''minute'', $1) AND r.bucket < $2 AND %1$s),
                                        (SELECT min(r.bucket) FROM log_rollup_minute r, rollup_state f
                                         WHERE r.bucket >= date_trunc(''minute'', $1) AND r.bucket < least($2, f.fine_since) AND %1$s)) AS e
                   OFFSET 0) p
             WHERE e IS NOT NULL'
        END,
        concat_ws(' AND ',
            CASE WHEN cardinality(svc) = 1 THEN format('r.service = %L', svc[1])
                 WHEN svc IS NOT NULL THEN format('r.service = ANY (%L::text[])', svc) END,
            CASE WHEN errors_only THEN 'r.errors > 0' END,
            'true'));
    IF newest_first THEN b := hi; ELSE a := lo; END IF;
    LOOP
        IF newest_first THEN
            EXECUTE next_edge INTO t USING b, lo;
            EXIT WHEN t IS NULL;
            b := t;
            a := greatest(lo, b - width);
        ELSE
            EXECUTE next_edge INTO t USING a, hi;
            EXIT WHEN t IS NULL;
            a := t;
            b := least(hi, a + width);
        END IF;
        RETURN QUERY EXECUTE query USING a, b, need;
        GET DIAGNOSTICS n = ROW_COUNT;
        need := need - n;
        EXIT WHEN need = 0;
        IF newest_first THEN
            EXIT WHEN a <= lo;
            b := a;
        ELSE
            EXIT WHEN b >= hi;
            a := b;
        END IF;
        IF clock_timestamp() > deadline THEN
            -- out of budget: a marker line (NULL level) whose cursor continues from here
            RETURN QUERY SELECT CASE WHEN newest_first THEN b ELSE a END, NULL::text, NULL::text,
                                'search budget spent: continue with this cursor'::text, NULL::float8, NULL::int, NULL::jsonb,
                                NULL::timestamptz, NULL::bigint, NULL::text,
                                CASE WHEN newest_first THEN log_cursor(b, NULL, NULL, NULL)
                                     ELSE log_cursor(a - interval '1 microsecond', NULL, NULL, NULL) END;
            RETURN;
        END IF;
        width := width * 4;
    END LOOP;
END $$;

COMMENT ON FUNCTION search_logs(text, text, timestamptz, timestamptz, text, text, double precision, jsonb, bigint, int,
                                boolean, text, text[], interval) IS
  'Log lines of [since, until) (default: the last 15 minutes), newest first (newest_first => false: oldest first), '
  'at most lim (1..1000). Filters, all optional: service (or services), level (a minimum: WARN = WARN, ERROR, FATAL), '
  'q (case-insensitive substring of the message; % and _ are plain characters), status_code (''503'' or a class '
  '''5xx''), min_latency_ms, attrs (a JSON object: each key''s value must equal, as text), pattern (a pattern id). '
  'after: the cursor of the last line of the previous page. Bounded by budget (default logmon_settings.search_budget): a last line with '
  'a NULL level means the budget ran out, and its cursor continues. '
  'Example: SELECT * FROM search_logs(service => ''feed-service'', level => ''ERROR'', q => ''timeout'');';

