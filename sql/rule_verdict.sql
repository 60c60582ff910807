-- What each rule kind compares, in one place: live detection (evaluate_rules()) and the replay
-- (backtest_rules(), through replay_breaches()) both call this with the measures of a window, so
-- their formulas cannot drift.
--   error_count  errors (ERROR+FATAL) in lookback >= threshold, with >= min_events logs
--   latency_p95  p95 latency (ms) in lookback >= threshold, with >= min_events latencies
--   error_rate   binomial z-score of the errors in lookback against the service's error rate over
--                the baseline before it (floored at 0.1%, so a spotless baseline does not make
--                one error a spike, and capped at 99.9%) >= threshold, with >= min_events logs in
--                lookback and baseline
--   no_data      no log in lookback from a regular sender: >= min_events logs in the baseline, in
--                at least a share `threshold` of its minutes (a one-off batch, a test with curl or
--                a backfill is not a service that went silent); an open incident stays open while
--                the silence lasts
--   new_pattern  is not here: its measure is a set of patterns, not a window's sums
--                (new_error_patterns() and new_pattern_verdict()); the replay's is replay_new_patterns()
-- It is one SELECT in LANGUAGE sql (no plpgsql), so that the planner inlines it into the query
-- that calls it: the replay evaluates it for every rule, service and step (hundreds of thousands
-- of rows for a week), which as a function call each would cost seconds. The caller computes p95
-- once (its expression would be copied into each place the parameter is used).
DO $$
BEGIN
    -- earlier versions were plpgsql returning one record (not a set), which CREATE OR REPLACE
    -- cannot turn into this
    IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'rule_verdict' AND NOT proretset
                                       AND pronamespace = current_schema()::regnamespace) THEN
        DROP FUNCTION rule_verdict(text, double precision, bigint, interval, interval, bigint, bigint, bigint,
                                   double precision, bigint, bigint, bigint, boolean);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION rule_kind_unknown(kind text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE EXCEPTION 'unknown rule kind %', kind USING ERRCODE = 'invalid_parameter_value';
END $$;

COMMENT ON FUNCTION rule_kind_unknown(text) IS 'Raises the error rule_verdict() gives for a kind it does not know.';

CREATE OR REPLACE FUNCTION rule_verdict(
    kind text, threshold double precision, min_events bigint, lookback interval, baseline interval,
    total bigint, errors bigint, latency_count bigint, p95 double precision,
    base_total bigint, base_errors bigint, base_active_minutes bigint, is_open boolean)
RETURNS TABLE (observed double precision, rate double precision, events bigint, breached boolean, summary text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT v.observed, v.rate, v.events, v.breached,
       CASE WHEN v.breached THEN  -- a summary says what breached
           CASE kind
           WHEN 'error_count' THEN format('ERROR spike: %s errors in last %s', errors, interval_label(lookback))
           WHEN 'latency_p95' THEN format('Latency spike: p95=%sms in last %s', round(p95), interval_label(lookback))
           WHEN 'error_rate' THEN format('Error rate spike: %s%% errors in last %s (baseline %s%%, z=%s)',
                                         round(100.0 * errors / nullif(total, 0), 1), interval_label(lookback),
                                         round((100 * v.p0)::numeric, 2), v.observed)
           WHEN 'no_data' THEN format('No data: no logs in last %s (the %s before: %s logs, in %s of its %s minutes)',
                                      interval_label(lookback), interval_label(baseline), base_total,
                                      base_active_minutes, round(v.base_minutes))
           END
       END
FROM (
    SELECT o.observed, o.p0, o.base_minutes,
           round(errors::numeric / nullif(total, 0), 4)::double precision AS rate,
           CASE kind WHEN 'latency_p95' THEN latency_count ELSE total END AS events,
           coalesce(CASE kind
               WHEN 'error_count' THEN errors >= threshold AND total >= min_events
               WHEN 'latency_p95' THEN p95 >= threshold AND latency_count >= greatest(min_events, 1)
               WHEN 'error_rate' THEN total >= min_events AND base_total >= min_events AND o.observed >= threshold
               WHEN 'no_data' THEN total = 0 AND (is_open OR (base_total >= min_events
                                                              AND base_active_minutes >= threshold * o.base_minutes))
           END, false) AS breached
    FROM (
        SELECT CASE kind
                   WHEN 'error_count' THEN errors::double precision
                   WHEN 'latency_p95' THEN round(p95::numeric, 1)::double precision
                   WHEN 'error_rate' THEN
                       CASE WHEN total > 0
                            THEN round(((errors - total * p.p0) / sqrt(total * p.p0 * (1 - p.p0)))::numeric, 2)::double precision
                       END
                   WHEN 'no_data' THEN total::double precision
                   ELSE rule_kind_unknown(kind)
               END AS observed,
               p.p0, p.base_minutes
        -- floored at 0.1% and capped at 99.9%: a baseline of only errors (a service that logs
        -- nothing else) must not divide by zero and stop detection for every service
        FROM (SELECT least(greatest(coalesce(base_errors::double precision / nullif(base_total, 0), 0), 0.001), 0.999) AS p0,
                     greatest(extract(epoch FROM baseline)::double precision / 60, 1) AS base_minutes) p
    ) o
) v
$$;

COMMENT ON FUNCTION rule_verdict(text, double precision, bigint, interval, interval, bigint, bigint, bigint,
                                 double precision, bigint, bigint, bigint, boolean) IS
  'The condition of each rule kind (error_count, latency_p95, error_rate, no_data) applied to one window''s measures: '
  'one row of observed (the statistic compared with threshold: errors, p95 ms, z-score, logs in lookback), rate (error '
  'rate), events (what min_events counts), breached, and a summary when breached. Shared by evaluate_rules() and '
  'replay_breaches() (backtest_rules()); inlined by the planner.';
