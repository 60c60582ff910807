-- The new_pattern rules' breaching steps for a replay (backtest_rules()): at every step `at` of
-- first_at .. last_at (every `step`), what evaluate_rules(at) would find with new_error_patterns()
-- and new_pattern_verdict(), the same two functions. A pattern first seen at f is new at the steps
-- in [f, f + lookback), so only those steps of the few patterns first seen in the period are read,
-- never the whole grid: a week costs what its new patterns cost.
-- rules: the replay's rule set (ord: its position in the array, as replay_breaches() numbers it).
-- The catalogue and the counts are each read once, by statements that do not depend on a step
-- (a candidate's lines in the minutes any of its steps can count; its service's first pattern):
-- on Citus, where both are distributed, a subquery correlated with the steps cannot be planned
-- ("correlated subqueries are not supported when the FROM clause contains a CTE or subquery"),
-- while these run on every shard and the steps are judged on the coordinator.
CREATE OR REPLACE FUNCTION replay_new_patterns(first_at timestamptz, last_at timestamptz, step interval,
                                               rules detection_rules[])
RETURNS TABLE (service text, incident_type text, at timestamptz, ord bigint, rule_id bigint, rule_name text,
               severity text, threshold double precision, pending_for interval, resolve_after interval,
               observed double precision)
-- plpgsql rather than sql: see replay_breaches()
LANGUAGE plpgsql STABLE
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH rs AS (
    SELECT u.*, u.ordinality AS ord FROM unnest(replay_new_patterns.rules) WITH ORDINALITY u
), reach AS (
    SELECT max(r.lookback) AS lookback FROM rs r WHERE r.enabled AND r.kind = 'new_pattern'
), candidates AS (
    -- patterns first seen where some step could find them new
    SELECT p.service, p.pattern_id, p.template, p.first_seen
    FROM log_patterns p, reach x
    WHERE p.first_seen > replay_new_patterns.first_at - x.lookback AND p.first_seen <= replay_new_patterns.last_at
), learned AS (
    -- when each candidate's service started: its first pattern's first_seen (a service still
    -- learning reports none, as new_error_patterns())
    SELECT h.service, min(h.first_seen) AS since
    FROM log_patterns h
    WHERE h.service IN (SELECT c.service FROM candidates c)
    GROUP BY h.service
), lines AS (
    -- a candidate's ERROR/FATAL lines per minute, in the minutes one of its steps can count: a step
    -- at is in [first_seen, first_seen + lookback) and counts the minutes from the one holding
    -- at - lookback to the one holding at
    SELECT k.service, k.pattern_id, k.bucket, sum(k.count) AS n
    FROM log_pattern_counts k
    JOIN candidates c ON c.service = k.service AND c.pattern_id = k.pattern_id
    CROSS JOIN reach x
    WHERE k.level IN ('ERROR', 'FATAL')
      AND k.bucket >= date_trunc('minute', c.first_seen - x.lookback)
      AND k.bucket <= least(c.first_seen + x.lookback, replay_new_patterns.last_at)
    GROUP BY k.service, k.pattern_id, k.bucket
), effective AS (
    -- a rule row for one service overrides the service = NULL row of the same name
    SELECT * FROM (
        SELECT DISTINCT ON (v.service, r.name) v.service AS svc, r.*
        FROM (SELECT DISTINCT c.service FROM candidates c) v JOIN rs r ON r.service IS NULL OR r.service = v.service
        ORDER BY v.service, r.name, r.service IS NULL
    ) e WHERE e.enabled AND e.kind = 'new_pattern'
), steps AS (
    -- the steps at which each candidate is new for each rule: first_seen in (at - lookback, at]
    SELECT e.svc, e.ord, c.pattern_id, c.template, s.at
    FROM effective e
    JOIN candidates c ON c.service = e.svc
    CROSS JOIN LATERAL (
        SELECT replay_new_patterns.first_at + k * replay_new_patterns.step AS at
        FROM generate_series(
                 greatest(ceil(extract(epoch FROM c.first_seen - replay_new_patterns.first_at)
                               / extract(epoch FROM replay_new_patterns.step)), 0)::bigint,
                 least(ceil(extract(epoch FROM c.first_seen + e.lookback - replay_new_patterns.first_at)
                            / extract(epoch FROM replay_new_patterns.step)) - 1,
                       floor(extract(epoch FROM replay_new_patterns.last_at - replay_new_patterns.first_at)
                             / extract(epoch FROM replay_new_patterns.step)))::bigint) k
    ) s
    JOIN learned l ON l.service = e.svc
    WHERE c.first_seen > s.at - e.lookback AND c.first_seen <= s.at
      AND l.since <= s.at - e.lookback - e.baseline
), counted AS (
    SELECT t.svc, t.ord, t.at, array_agg(n.n) AS counts, array_agg(t.template) AS templates
    FROM steps t
    JOIN effective e ON e.svc = t.svc AND e.ord = t.ord
    CROSS JOIN LATERAL (
        SELECT sum(k.n)::bigint AS n FROM lines k
        WHERE k.service = t.svc AND k.pattern_id = t.pattern_id
          AND k.bucket >= date_trunc('minute', t.at - e.lookback) AND k.bucket <= t.at
    ) n
    WHERE n.n > 0
    GROUP BY t.svc, t.ord, t.at
)
SELECT e.svc, e.incident_type, c.at, e.ord, e.id, e.name, e.severity, e.threshold, e.pending_for, e.resolve_after,
       v.observed
FROM counted c
JOIN effective e ON e.svc = c.svc AND e.ord = c.ord
CROSS JOIN LATERAL new_pattern_verdict(e.threshold, e.min_events, e.lookback, c.counts, c.templates) v
WHERE v.breached;
END $$;

COMMENT ON FUNCTION replay_new_patterns(timestamptz, timestamptz, interval, detection_rules[]) IS
  'The steps of first_at .. last_at (every step) at which a new_pattern rule of `rules` breaches, per service, with the '
  'rule (ord: its position in rules) and observed: what evaluate_rules() would say at each step, through '
  'new_error_patterns()''s definition and new_pattern_verdict(). Used by backtest_rules(); writes nothing.';
