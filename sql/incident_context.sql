-- What an incident is made of, for its page and its notifications: the top patterns of its
-- window (of the lines its rule counts) compared with the hour before it (count, share, growth in
-- rate, new), the top status codes and a few sample lines of its newest 1000 lines.
CREATE OR REPLACE FUNCTION incident_context(incident_id bigint, top int DEFAULT 5, samples int DEFAULT 3)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET jit = off
AS $$
DECLARE
    inc incidents;
    kind text;
    lo timestamptz;
    hi timestamptz;
    lvl text;
    minutes double precision;
    patterns jsonb;
    codes jsonb;
    lines jsonb;
    considered bigint;
    tops pattern_rank[];
BEGIN
    SELECT * INTO inc FROM incidents i WHERE i.id = incident_context.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'incident % does not exist', incident_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT r.kind INTO kind FROM detection_rules r WHERE r.id = inc.rule_id;
    kind := coalesce(kind, CASE inc.incident_type WHEN 'LATENCY_SPIKE' THEN 'latency_p95' WHEN 'NO_DATA' THEN 'no_data'
                                                  ELSE 'error_count' END);
    lvl := CASE WHEN kind IN ('error_count', 'error_rate', 'new_pattern') THEN 'ERROR' END;
    lo := date_trunc('minute', coalesce(inc.breach_start, inc.window_start));
    hi := coalesce(inc.resolved_at, now());
    minutes := greatest(extract(epoch FROM hi - lo) / 60, 1);

    -- The top patterns first, then their baselines: on Citus, a statement that reads
    -- log_pattern_counts of one service runs on the worker holding that service, where
    -- top_patterns(), itself a distributed query, must not run.
    tops := ARRAY(SELECT t FROM top_patterns(inc.service, level => lvl, lim => top, at => hi, since => lo) t);
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'pattern_id', lpad(to_hex(t.pattern_id), 16, '0'), 'template', t.template, 'count', t.count,
               'share', t.share, 'baseline', b.count,
               'growth', round((t.count / minutes / nullif(b.count / 60.0, 0))::numeric, 1),
               'new', t.first_seen >= lo OR b.count IS NULL)
           ORDER BY t.count DESC), '[]')
    INTO patterns
    FROM unnest(tops) t
    LEFT JOIN LATERAL (
        SELECT sum(c.count) AS count FROM log_pattern_counts c
        WHERE c.service = inc.service AND c.pattern_id = t.pattern_id
          AND c.bucket >= lo - interval '1 hour' AND c.bucket < lo) b ON true;

    WITH recent AS MATERIALIZED (
        SELECT l.* FROM incident_logs(incident_id, 1000) l WHERE l.level IS NOT NULL
    )
    SELECT (SELECT count(*) FROM recent),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('status_code', s.status_code, 'count', s.n) ORDER BY s.n DESC), '[]')
            FROM (SELECT r.status_code, count(*) AS n FROM recent r WHERE r.status_code IS NOT NULL
                  GROUP BY 1 ORDER BY 2 DESC LIMIT 5) s),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('ts', r.ts, 'level', r.level, 'message', left(r.message, 500),
                                                         'pattern_id', lpad(to_hex(r.pattern_id), 16, '0'))), '[]')
            FROM (SELECT * FROM recent LIMIT samples) r)
    INTO considered, codes, lines;

    RETURN jsonb_build_object('patterns', patterns, 'status_codes', codes, 'sample_lines', lines,
                              'window', jsonb_build_object('since', lo, 'until', hi),
                              'baseline', jsonb_build_object('since', lo - interval '1 hour', 'until', lo),
                              'lines_considered', considered);
END $$;

COMMENT ON FUNCTION incident_context(bigint, int, int) IS
  'An incident''s context as JSON: patterns (the top patterns of the lines its rule counts in its window, with count, '
  'share, baseline = the count in the hour before, growth = rate in the window / rate in the baseline, new), '
  'status_codes and sample_lines (from its newest 1000 lines, incident_logs()). Used by GET /incidents/{id} and '
  'notifications.';

-- The context as notifications carry it, short enough for every receiver (Alertmanager
-- annotations are strings; Slack shows a few lines): the top 3 patterns with counts ("new"
-- marked) and up to 3 sample lines, each cut to 300 characters. Plain text: each receiver escapes it.
CREATE OR REPLACE FUNCTION incident_context_text(incident_id bigint, OUT top_patterns text, OUT sample_lines text,
                                                 OUT context jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    context := incident_context(incident_id, 3, 3);
    SELECT string_agg(format('%sx %s%s', p ->> 'count', left(p ->> 'template', 200),
                             CASE WHEN (p ->> 'new')::boolean THEN ' (new)' ELSE '' END), E'\n' ORDER BY n)
    INTO top_patterns
    FROM jsonb_array_elements(context -> 'patterns') WITH ORDINALITY AS x(p, n);
    SELECT string_agg(left(l ->> 'message', 300), E'\n' ORDER BY n)
    INTO sample_lines
    FROM jsonb_array_elements(context -> 'sample_lines') WITH ORDINALITY AS x(l, n);
EXCEPTION WHEN no_data_found THEN
    context := NULL;  -- an incident written out of band (tests, a DBA's INSERT) may be gone
END $$;

COMMENT ON FUNCTION incident_context_text(bigint) IS
  'incident_context() for notifications: the top 3 patterns ("1000x connection to <*> refused (new)", one a line) and '
  'up to 3 sample lines (cut to 300 characters), plus the JSON it came from.';
