-- Every effective rule for every service, evaluated at `at` over the rollup: the read-only half
-- of detection. A DBA can ask "what would fire now, and how close is it?":
--   SELECT * FROM evaluate_rules() ORDER BY breached DESC, service;
-- Each distinct window is aggregated once (window_stats() reads the rollup only), so the cost
-- grows with services x windows, not with raw rows; the verdict is rule_verdict()'s, or for
-- new_pattern rules new_pattern_verdict()'s on what new_error_patterns() finds.
CREATE OR REPLACE FUNCTION evaluate_rules(at timestamptz DEFAULT now())
RETURNS TABLE (rule_id bigint, rule_name text, kind text, incident_type text, service text, severity text,
               lookback interval, threshold double precision, pending_for interval, resolve_after interval,
               observed double precision, events bigint, breached boolean, summary text,
               window_start timestamptz, window_end timestamptz, rate double precision)
LANGUAGE sql STABLE ROWS 100
SET jit = off
AS $$
WITH wins AS (
    SELECT DISTINCT r.lookback, r.baseline, r.kind IN ('error_rate', 'no_data') AS needs_base
    FROM detection_rules r WHERE r.enabled
), cur AS MATERIALIZED (
    -- p95 here, once per window (rule_verdict() is inlined, and would compute it per use)
    SELECT w.lookback, s.*, latency_quantile(s.hist, s.latency_max, 0.95) AS p95
    FROM (SELECT DISTINCT lookback FROM wins) w, LATERAL window_stats(at - w.lookback, at) s
), base AS MATERIALIZED (
    SELECT w.lookback, w.baseline, s.*
    FROM (SELECT DISTINCT lookback, baseline FROM wins WHERE needs_base) w,
         LATERAL window_stats(at - w.lookback - w.baseline, at - w.lookback) s
), activity AS MATERIALIZED (
    -- minutes of the baseline in which each service sent logs (no_data's "regular sender")
    SELECT w.lookback, w.baseline, a.service, a.minutes
    FROM (SELECT DISTINCT lookback, baseline FROM detection_rules r WHERE r.enabled AND r.kind = 'no_data') w,
         LATERAL active_minutes(at - w.lookback - w.baseline, at - w.lookback) a
), novel AS MATERIALIZED (
    -- the ERROR/FATAL patterns new to each service (new_pattern rules)
    SELECT w.lookback, w.baseline, n.service, array_agg(n.count) AS counts, array_agg(n.template) AS templates
    FROM (SELECT DISTINCT lookback, baseline FROM detection_rules r WHERE r.enabled AND r.kind = 'new_pattern') w,
         LATERAL new_error_patterns(at, w.lookback, w.baseline) n
    GROUP BY 1, 2, 3
), edges AS MATERIALIZED (
    -- each distinct window's edges, once (window_bounds() reads rollup_state): on Citus, where
    -- rollup_state is a reference table, a call per (service, rule) was a statement of its own each
    SELECT w.lookback, b.lo_b, b.hi_b
    FROM (SELECT DISTINCT lookback FROM wins) w, LATERAL window_bounds(at - w.lookback, at) b
), open_incidents AS (
    SELECT DISTINCT i.service, i.incident_type FROM incidents i WHERE i.status <> 'resolved'
), services AS (
    SELECT cur.service FROM cur UNION SELECT base.service FROM base
    UNION SELECT o.service FROM open_incidents o
), effective AS (
    -- a rule row for one service overrides the service = NULL row of the same name
    SELECT * FROM (
        SELECT DISTINCT ON (s.service, r.name) s.service AS svc, r.*
        FROM services s JOIN detection_rules r ON r.service IS NULL OR r.service = s.service
        ORDER BY s.service, r.name, r.service IS NULL
    ) x WHERE x.enabled
)
SELECT e.id, e.name, e.kind, e.incident_type, e.svc, e.severity, e.lookback, e.threshold, e.pending_for, e.resolve_after,
       v.observed, v.events, v.breached, v.summary, b.lo_b, b.hi_b, v.rate
FROM effective e
LEFT JOIN cur c ON c.lookback = e.lookback AND c.service = e.svc
LEFT JOIN base bs ON bs.lookback = e.lookback AND bs.baseline = e.baseline AND bs.service = e.svc
LEFT JOIN activity act ON act.lookback = e.lookback AND act.baseline = e.baseline AND act.service = e.svc
LEFT JOIN open_incidents oi ON oi.service = e.svc AND oi.incident_type = e.incident_type
JOIN edges b ON b.lookback = e.lookback
-- every argument a plain expression: PostgreSQL inlines an SQL function only when no argument
-- holds a sub-select, and run as a function rule_verdict() cost ~45 us per (rule, service)
CROSS JOIN LATERAL rule_verdict(
    e.kind, e.threshold, e.min_events, e.lookback, e.baseline,
    coalesce(c.total, 0), coalesce(c.errors, 0), coalesce(c.latency_count, 0), c.p95,
    coalesce(bs.total, 0), coalesce(bs.errors, 0), coalesce(act.minutes, 0),
    oi.service IS NOT NULL) v
WHERE e.kind <> 'new_pattern'
UNION ALL
SELECT e.id, e.name, e.kind, e.incident_type, e.svc, e.severity, e.lookback, e.threshold, e.pending_for, e.resolve_after,
       v.observed, v.events, v.breached, v.summary, b.lo_b, b.hi_b,
       round(c.errors::numeric / nullif(c.total, 0), 4)::double precision
FROM effective e
LEFT JOIN cur c ON c.lookback = e.lookback AND c.service = e.svc
LEFT JOIN novel n ON n.lookback = e.lookback AND n.baseline = e.baseline AND n.service = e.svc
JOIN edges b ON b.lookback = e.lookback
CROSS JOIN LATERAL new_pattern_verdict(e.threshold, e.min_events, e.lookback, n.counts, n.templates) v
WHERE e.kind = 'new_pattern'
$$;

COMMENT ON FUNCTION evaluate_rules(timestamptz) IS
  'Evaluates every enabled detection rule (per-service overrides applied) for every service at a point in time, '
  'without changing anything: observed (the statistic compared with threshold, see rule_verdict()), events, '
  'breached, summary (when breached), the window read, and the error rate. detect_incidents() acts on it.';
