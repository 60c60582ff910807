-- The new_pattern rule's measure: the ERROR/FATAL patterns a service had never used before the
-- lookback and that appeared inside it, with their lines there.
--   new       first seen for the service (log_patterns.first_seen, exact once compacted) after
--             at - lookback: the catalogue keeps a pattern while it is seen within the retention,
--             so "never used before" means within the retention; a pattern back after a longer
--             absence is new again;
--   learning  a service whose history (its first pattern's first_seen) is shorter than
--             lookback + baseline does not report any: just installed, everything it says is new;
--   count     lines at ERROR or FATAL in the minutes (log_pattern_counts) from the one holding
--             at - lookback to the one holding at: the pattern has no line before its first_seen,
--             so whole minutes count exactly its lines since then (up to the end of at's minute).
-- Cheap at any volume: the catalogue's first_seen index finds the few new patterns, and only
-- their services' lookback minutes are read.
-- plpgsql, and each table read once by a statement that does not depend on a pattern: on Citus,
-- where the catalogue and the counts are distributed, a SQL function's parameters cannot be
-- planned ("parameterized queries for SQL functions referencing distributed tables are not
-- supported", when called on its own), nor a subquery correlated with a pattern ("correlated
-- subqueries are not supported").
CREATE OR REPLACE FUNCTION new_error_patterns(at timestamptz, lookback interval, baseline interval)
RETURNS TABLE (service text, pattern_id bigint, template text, example text, first_seen timestamptz, count bigint)
LANGUAGE plpgsql STABLE ROWS 5
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH candidates AS (
        SELECT p.service, p.pattern_id, p.template, p.example, p.first_seen
        FROM log_patterns p
        WHERE p.first_seen > new_error_patterns.at - new_error_patterns.lookback AND p.first_seen <= new_error_patterns.at
    ), learned AS (
        -- services whose first pattern is older than lookback + baseline
        SELECT h.service
        FROM log_patterns h
        WHERE h.service IN (SELECT c.service FROM candidates c)
        GROUP BY h.service
        HAVING min(h.first_seen) <= new_error_patterns.at - new_error_patterns.lookback - new_error_patterns.baseline
    ), counted AS (
        SELECT k.service, k.pattern_id, sum(k.count)::bigint AS n
        FROM log_pattern_counts k
        JOIN candidates c ON c.service = k.service AND c.pattern_id = k.pattern_id
        WHERE k.level IN ('ERROR', 'FATAL')
          AND k.bucket >= date_trunc('minute', new_error_patterns.at - new_error_patterns.lookback)
          AND k.bucket <= new_error_patterns.at
        GROUP BY k.service, k.pattern_id
    )
    SELECT c.service, c.pattern_id, c.template, c.example, c.first_seen, n.n
    FROM candidates c
    JOIN learned l ON l.service = c.service
    JOIN counted n ON n.service = c.service AND n.pattern_id = c.pattern_id
    WHERE n.n > 0;
END $$;

COMMENT ON FUNCTION new_error_patterns(timestamptz, interval, interval) IS
  'ERROR/FATAL patterns first seen for their service inside (at - lookback, at], with their ERROR/FATAL lines there '
  '(count); services with less history than lookback + baseline are left out (still learning). The measure of the '
  'new_pattern rule kind (evaluate_rules()). Example: SELECT * FROM new_error_patterns(now(), ''5 minutes'', ''15 minutes'');';

-- The new_pattern rule's condition, in one place (evaluate_rules() calls it with what
-- new_error_patterns() found for a service): at least one new pattern with >= threshold lines,
-- and >= min_events lines of new patterns in all. Every new pattern at threshold is listed in one
-- summary, so a burst of two new errors is one incident naming both.
CREATE OR REPLACE FUNCTION new_pattern_verdict(
    threshold double precision, min_events bigint, lookback interval, counts bigint[], templates text[],
    OUT observed double precision, OUT events bigint, OUT breached boolean, OUT summary text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(max(c), 0)::double precision,
           coalesce(sum(c), 0)::bigint,
           coalesce(max(c) >= threshold AND sum(c) >= min_events, false),
           CASE WHEN coalesce(max(c) >= threshold AND sum(c) >= min_events, false) THEN
               CASE WHEN count(*) FILTER (WHERE c >= threshold) = 1 THEN 'New error pattern: ' ELSE
                    format('%s new error patterns: ', count(*) FILTER (WHERE c >= threshold)) END
               || string_agg(format('"%s" (%s lines)', left(t, 120), c), ', ' ORDER BY c DESC, t) FILTER (WHERE c >= threshold)
               || format(' in last %s', interval_label(lookback))
           END
    FROM unnest(counts, templates) AS u(c, t)
$$;

COMMENT ON FUNCTION new_pattern_verdict(double precision, bigint, interval, bigint[], text[]) IS
  'The new_pattern rule kind''s condition on the new patterns of a window (their line counts and templates): observed '
  '(the most lines of one new pattern, compared with threshold), events (lines of new patterns), breached, and a summary '
  'listing every new pattern at threshold when breached.';
