-- The most frequent patterns of a window per service, with what a reader needs to tell a new
-- failure from the usual noise: the count, its share of the service's lines, the count in the
-- window just before (previous), and whether the pattern was first seen inside the window (new).
-- Read from log_pattern_counts (minute buckets; deltas included), so exact and cheap: edges are
-- whole minutes, rounded up like window_bounds().
CREATE OR REPLACE FUNCTION top_patterns(
    service text DEFAULT NULL,
    lookback interval DEFAULT '15 minutes',
    level text DEFAULT NULL,
    lim int DEFAULT 20,
    at timestamptz DEFAULT now(),
    since timestamptz DEFAULT NULL)
RETURNS SETOF pattern_rank
LANGUAGE plpgsql STABLE ROWS 20
SET jit = off
AS $$
DECLARE
    hi timestamptz := date_trunc('minute', at) + CASE WHEN at > date_trunc('minute', at) THEN interval '1 minute' ELSE interval '0' END;
    lo timestamptz;
    plo timestamptz;
    levels_in text[];
BEGIN
    IF lim IS NULL OR lim < 1 OR lim > 1000 THEN
        RAISE EXCEPTION 'limit must be 1..1000, got %', lim USING ERRCODE = 'invalid_parameter_value', COLUMN = 'limit';
    END IF;
    IF since IS NULL AND (lookback IS NULL OR lookback <= interval '0' OR lookback > interval '31 days') THEN
        RAISE EXCEPTION 'lookback must be positive and at most 31 days, got %', lookback
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'window_minutes';
    END IF;
    lo := coalesce(date_trunc('minute', since), hi - date_trunc('minute', lookback + interval '59 seconds'));
    plo := lo - (hi - lo);
    IF top_patterns.level IS NOT NULL THEN
        levels_in := CASE upper(trim(top_patterns.level))
            WHEN 'DEBUG' THEN NULL WHEN 'INFO' THEN '{INFO,WARN,ERROR,FATAL}' WHEN 'WARN' THEN '{WARN,ERROR,FATAL}'
            WHEN 'ERROR' THEN '{ERROR,FATAL}' WHEN 'FATAL' THEN '{FATAL}' ELSE '{?}' END;
        IF levels_in = '{?}' THEN
            RAISE EXCEPTION 'level must be one of DEBUG, INFO, WARN, ERROR, FATAL (a minimum), got %', top_patterns.level
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'level';
        END IF;
    END IF;
    RETURN QUERY
    WITH counted AS (
        SELECT c.service, c.pattern_id,
               sum(c.count) FILTER (WHERE c.bucket >= lo)::bigint AS n,
               sum(c.count) FILTER (WHERE c.bucket < lo)::bigint AS prev,
               array_agg(DISTINCT c.level) FILTER (WHERE c.bucket >= lo AND c.count > 0) AS lv
        FROM log_pattern_counts c
        WHERE c.bucket >= plo AND c.bucket < hi
          AND (top_patterns.service IS NULL OR c.service = top_patterns.service)
          AND (levels_in IS NULL OR c.level = ANY (levels_in))
        GROUP BY c.service, c.pattern_id
    ), ranked AS (
        SELECT k.*, sum(k.n) OVER (PARTITION BY k.service) AS total,
               row_number() OVER (PARTITION BY k.service ORDER BY k.n DESC, k.pattern_id) AS rank
        FROM counted k WHERE k.n > 0
    )
    SELECT r.service, r.pattern_id, p.template, p.example, r.lv, r.n,
           round(r.n::numeric / nullif(r.total, 0), 4)::double precision,
           coalesce(r.prev, 0), coalesce(p.first_seen >= lo, true), p.first_seen, p.last_seen
    FROM ranked r
    LEFT JOIN log_patterns p ON p.service = r.service AND p.pattern_id = r.pattern_id
    WHERE r.rank <= lim
    ORDER BY r.service, r.n DESC, r.pattern_id;
END $$;

COMMENT ON FUNCTION top_patterns(text, interval, text, int, timestamptz, timestamptz) IS
  'The lim most frequent patterns per service (or of one service) in the last lookback (whole minutes) before at, or '
  'since a time: count, share of the service''s lines, previous (the count in the window of the same length just '
  'before), new (first seen for that service inside the window), with template, example and levels. level: a '
  'minimum. Exact (log_pattern_counts). Example: SELECT * FROM top_patterns(''feed-service'', ''1 hour'', ''ERROR'');';
