-- Every effective rule for every service, evaluated at `at` over the rollup: the read-only half
-- of detection. A DBA can ask "what would fire now, and how close is it?":
--   SELECT * FROM evaluate_rules() ORDER BY breached DESC, service;
-- Each distinct window is aggregated once (window_stats: rollup buckets + raw edge rows), so the
-- cost grows with services x windows x buckets, not with raw rows.
CREATE OR REPLACE FUNCTION evaluate_rules(at timestamptz DEFAULT now())
RETURNS TABLE (rule_id bigint, rule_name text, kind text, incident_type text, service text, severity text,
               lookback interval, threshold double precision, pending_for interval, resolve_after interval,
               observed double precision, events bigint, breached boolean, summary text,
               window_start timestamptz, window_end timestamptz)
LANGUAGE sql STABLE ROWS 100
SET jit = off
AS $$
WITH wins AS (
    SELECT DISTINCT r.lookback, r.baseline, r.kind IN ('error_rate', 'no_data') AS needs_base
    FROM detection_rules r WHERE r.enabled
), cur AS MATERIALIZED (
    SELECT w.lookback, s.* FROM (SELECT DISTINCT lookback FROM wins) w, LATERAL window_stats(at - w.lookback, at) s
), base AS MATERIALIZED (
    SELECT w.lookback, w.baseline, s.*
    FROM (SELECT DISTINCT lookback, baseline FROM wins WHERE needs_base) w,
         LATERAL window_stats(at - w.lookback - w.baseline, at - w.lookback) s
), services AS (
    SELECT cur.service FROM cur UNION SELECT base.service FROM base
    UNION SELECT i.service FROM incidents i WHERE i.status <> 'resolved'
), effective AS (
    -- a rule row for one service overrides the service = NULL row of the same name
    SELECT * FROM (
        SELECT DISTINCT ON (s.service, r.name) s.service AS svc, r.*
        FROM services s JOIN detection_rules r ON r.service IS NULL OR r.service = s.service
        ORDER BY s.service, r.name, r.service IS NULL
    ) x WHERE x.enabled
), measured AS (
    SELECT e.*,
           coalesce(c.total, 0) AS total, coalesce(c.errors, 0) AS errors, coalesce(c.latency_count, 0) AS lat_n,
           latency_quantile(c.hist, c.latency_max, 0.95) AS p95,
           coalesce(b.total, 0) AS base_total, coalesce(b.errors, 0) AS base_errors,
           EXISTS (SELECT 1 FROM incidents i WHERE i.service = e.svc AND i.incident_type = e.incident_type
                                               AND i.status <> 'resolved') AS is_open
    FROM effective e
    LEFT JOIN cur c ON c.lookback = e.lookback AND c.service = e.svc
    LEFT JOIN base b ON b.lookback = e.lookback AND b.baseline = e.baseline AND b.service = e.svc
), judged AS (
    SELECT m.*,
           -- error_rate: binomial z-score of the errors in lookback against the baseline rate
           -- (floored at 0.1% so that a spotless baseline does not make one error a spike)
           greatest(m.base_errors::double precision / nullif(m.base_total, 0), 0.001) AS p0
    FROM measured m
)
SELECT j.id, j.name, j.kind, j.incident_type, j.svc, j.severity, j.lookback, j.threshold, j.pending_for, j.resolve_after,
       CASE j.kind
           WHEN 'error_count' THEN j.errors::double precision
           WHEN 'latency_p95' THEN round(j.p95::numeric, 1)::double precision
           WHEN 'error_rate' THEN round((j.errors::numeric / nullif(j.total, 0)), 4)::double precision
           WHEN 'no_data' THEN j.total::double precision
       END,
       CASE WHEN j.kind = 'latency_p95' THEN j.lat_n ELSE j.total END,
       coalesce(CASE j.kind
           WHEN 'error_count' THEN j.errors >= j.threshold AND j.total >= j.min_events
           WHEN 'latency_p95' THEN j.p95 >= j.threshold AND j.lat_n >= greatest(j.min_events, 1)
           WHEN 'error_rate' THEN j.total >= j.min_events AND j.base_total >= j.min_events
                AND (j.errors - j.total * j.p0) / sqrt(j.total * j.p0 * (1 - j.p0)) >= j.threshold
           WHEN 'no_data' THEN j.total = 0 AND (j.base_total >= j.min_events OR j.is_open)
       END, false),
       CASE j.kind
           WHEN 'error_count' THEN format('ERROR spike: %s errors in last %s', j.errors, interval_label(j.lookback))
           WHEN 'latency_p95' THEN format('Latency spike: p95=%sms in last %s', round(j.p95), interval_label(j.lookback))
           WHEN 'error_rate' THEN format('Error rate spike: %s%% errors in last %s (baseline %s%%)',
                round(100.0 * j.errors / nullif(j.total, 0), 1), interval_label(j.lookback), round((100 * j.p0)::numeric, 2))
           WHEN 'no_data' THEN format('No data: no logs in last %s (%s logs in the %s before)',
                interval_label(j.lookback), j.base_total, interval_label(j.baseline))
       END,
       at - j.lookback, at
FROM judged j
$$;

COMMENT ON FUNCTION evaluate_rules(timestamptz) IS
  'Evaluates every enabled detection rule (per-service overrides applied) for every service at a point in time, '
  'without changing anything: observed value, events, breached, summary. detect_incidents() acts on it.';
