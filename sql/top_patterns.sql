-- How top_patterns() reads the counts before a whole minute t: the 10-minute buckets
-- (log_pattern_counts_10m) before `cut`, plus `sign` times the merged minute rows in
-- [m_from, m_to): either + the minutes of t's bucket before t (cut = the bucket's start), or - the
-- minutes from t to the bucket's end (cut = its end), whichever are fewer (at most 5).
CREATE OR REPLACE FUNCTION pattern_counts_cut(t timestamptz, OUT cut timestamptz, OUT m_from timestamptz,
                                              OUT m_to timestamptz, OUT sign int)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN down THEN b ELSE b + interval '10 minutes' END, CASE WHEN down THEN b ELSE t END,
           CASE WHEN down THEN t ELSE b + interval '10 minutes' END, CASE WHEN down THEN 1 ELSE -1 END
    FROM (SELECT pattern_counts_10m_bucket(t) AS b, t - pattern_counts_10m_bucket(t) <= interval '5 minutes' AS down) x
$$;

COMMENT ON FUNCTION pattern_counts_cut(timestamptz) IS
  'For top_patterns(): the lines before the whole minute t are the log_pattern_counts_10m buckets before cut plus sign '
  'x the merged log_pattern_counts minutes in [m_from, m_to) (at most 5 minutes), plus pending deltas.';

-- The most frequent patterns of a window per service, with what a reader needs to tell a new
-- failure from the usual noise: the count, its share of the service's lines, the count in the
-- window just before (previous), and whether the pattern was first seen inside the window (new).
-- Exact and cheap: edges are whole minutes, rounded up like window_bounds(). With T(t) the lines
-- before t, the window is T(hi) - T(lo) and the previous window T(lo) - T(plo); each T is read as
-- pattern_counts_cut() says, so the counts come from
--   * the 10-minute buckets between the cuts of plo and hi (those before lo's cut are previous);
--   * at most 5 merged minute rows per edge and pattern, added or taken off;
--   * the deltas compact_patterns() has not folded yet (in neither level), wherever they fall.
-- An hour's window and the hour before read 12 buckets and 7.5 minutes on average per pattern and
-- level, instead of 120 minutes.
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
    k_plo timestamptz; a_plo timestamptz; b_plo timestamptz; s_plo int;  -- pattern_counts_cut() of plo,
    k_lo timestamptz; a_lo timestamptz; b_lo timestamptz; s_lo int;      -- of lo
    k_hi timestamptz; a_hi timestamptz; b_hi timestamptz; s_hi int;      -- and of hi
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
    SELECT x.*, y.*, z.* INTO k_plo, a_plo, b_plo, s_plo, k_lo, a_lo, b_lo, s_lo, k_hi, a_hi, b_hi, s_hi
    FROM pattern_counts_cut(plo) x, pattern_counts_cut(lo) y, pattern_counts_cut(hi) z;
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
    WITH parts AS (
        -- whole buckets between the cuts: before lo's, the previous window; from it on, the window
        SELECT c.service, c.pattern_id, c.level,
               CASE WHEN c.bucket >= k_lo THEN c.count ELSE 0 END AS n,
               CASE WHEN c.bucket < k_lo THEN c.count ELSE 0 END AS p
        FROM log_pattern_counts_10m c
        WHERE c.bucket >= k_plo AND c.bucket < k_hi
          AND (top_patterns.service IS NULL OR c.service = top_patterns.service)
          AND (levels_in IS NULL OR c.level = ANY (levels_in))
        UNION ALL
        -- the minutes that move each cut to its edge (one minute may serve two edges of one bucket)
        SELECT c.service, c.pattern_id, c.level,
               c.count * (CASE WHEN c.bucket >= a_hi AND c.bucket < b_hi THEN s_hi ELSE 0 END
                          - CASE WHEN c.bucket >= a_lo AND c.bucket < b_lo THEN s_lo ELSE 0 END),
               c.count * (CASE WHEN c.bucket >= a_lo AND c.bucket < b_lo THEN s_lo ELSE 0 END
                          - CASE WHEN c.bucket >= a_plo AND c.bucket < b_plo THEN s_plo ELSE 0 END)
        FROM log_pattern_counts c
        WHERE c.compacted
          AND ((c.bucket >= a_plo AND c.bucket < b_plo) OR (c.bucket >= a_lo AND c.bucket < b_lo)
               OR (c.bucket >= a_hi AND c.bucket < b_hi))
          AND (top_patterns.service IS NULL OR c.service = top_patterns.service)
          AND (levels_in IS NULL OR c.level = ANY (levels_in))
        UNION ALL
        -- deltas not folded yet
        SELECT c.service, c.pattern_id, c.level,
               CASE WHEN c.bucket >= lo THEN c.count ELSE 0 END, CASE WHEN c.bucket < lo THEN c.count ELSE 0 END
        FROM log_pattern_counts c
        WHERE NOT c.compacted AND c.bucket >= plo AND c.bucket < hi
          AND (top_patterns.service IS NULL OR c.service = top_patterns.service)
          AND (levels_in IS NULL OR c.level = ANY (levels_in))
    ), per_level AS (
        SELECT p.service, p.pattern_id, p.level,
               sum(p.n) AS n, sum(p.p) AS prev
        FROM parts p
        GROUP BY p.service, p.pattern_id, p.level
    ), counted AS (
        -- levels: those with lines in the window
        SELECT l.service, l.pattern_id, sum(l.n)::bigint AS n, sum(l.prev)::bigint AS prev,
               array_agg(l.level ORDER BY l.level) FILTER (WHERE l.n > 0) AS lv
        FROM per_level l
        GROUP BY l.service, l.pattern_id
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
  'minimum. Exact: whole 10-minute buckets from log_pattern_counts_10m, the edges'' minutes and pending deltas from '
  'log_pattern_counts. Example: SELECT * FROM top_patterns(''feed-service'', ''1 hour'', ''ERROR'');';
