-- What each rule kind compares, in one place: live detection (evaluate_rules()) and the replay
-- (backtest_rules()) both call this with the measures of a window, so their formulas cannot drift.
--   error_count  errors (ERROR+FATAL) in lookback >= threshold, with >= min_events logs
--   latency_p95  p95 latency (ms) in lookback >= threshold, with >= min_events latencies
--   error_rate   binomial z-score of the errors in lookback against the service's error rate over
--                the baseline before it (floored at 0.1%, so a spotless baseline does not make
--                one error a spike, and capped at 99.9%) >= threshold, with >= min_events logs in lookback and baseline
--   no_data      no log in lookback from a regular sender: >= min_events logs in the baseline, in
--                at least a share `threshold` of its minutes (a one-off batch, a test with curl or
--                a backfill is not a service that went silent); an open incident stays open while
--                the silence lasts
--   new_pattern  is not here: its measure is a set of patterns, not a window's sums
--                (new_error_patterns() and new_pattern_verdict())
CREATE OR REPLACE FUNCTION rule_verdict(
    kind text, threshold double precision, min_events bigint, lookback interval, baseline interval,
    total bigint, errors bigint, latency_count bigint, p95 double precision,
    base_total bigint, base_errors bigint, base_active_minutes bigint, is_open boolean,
    OUT observed double precision, OUT rate double precision, OUT events bigint, OUT breached boolean,
    OUT summary text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    p0 double precision;
    base_minutes double precision := greatest(extract(epoch FROM baseline) / 60, 1);
BEGIN
    rate := round(errors::numeric / nullif(total, 0), 4);
    events := total;
    CASE kind
    WHEN 'error_count' THEN
        observed := errors;
        breached := errors >= threshold AND total >= min_events;
        summary := format('ERROR spike: %s errors in last %s', errors, interval_label(lookback));
    WHEN 'latency_p95' THEN
        observed := round(p95::numeric, 1);
        events := latency_count;
        breached := coalesce(p95 >= threshold, false) AND latency_count >= greatest(min_events, 1);
        summary := format('Latency spike: p95=%sms in last %s', round(p95), interval_label(lookback));
    WHEN 'error_rate' THEN
        -- floored at 0.1% and capped at 99.9%: a baseline of only errors (a service that logs
        -- nothing else) must not divide by zero and stop detection for every service
        p0 := least(greatest(coalesce(base_errors::double precision / nullif(base_total, 0), 0), 0.001), 0.999);
        observed := CASE WHEN total > 0 THEN round(((errors - total * p0) / sqrt(total * p0 * (1 - p0)))::numeric, 2) END;
        breached := total >= min_events AND base_total >= min_events AND coalesce(observed >= threshold, false);
        summary := format('Error rate spike: %s%% errors in last %s (baseline %s%%, z=%s)',
                          round(100.0 * errors / nullif(total, 0), 1), interval_label(lookback),
                          round((100 * p0)::numeric, 2), observed);
    WHEN 'no_data' THEN
        observed := total;
        breached := total = 0 AND (is_open OR (base_total >= min_events
                                               AND base_active_minutes >= threshold * base_minutes));
        summary := format('No data: no logs in last %s (the %s before: %s logs, in %s of its %s minutes)',
                          interval_label(lookback), interval_label(baseline), base_total, base_active_minutes,
                          round(base_minutes));
    ELSE
        RAISE EXCEPTION 'unknown rule kind %', kind USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    breached := coalesce(breached, false);
    IF NOT breached THEN
        summary := NULL;  -- a summary says what breached
    END IF;
END $$;

COMMENT ON FUNCTION rule_verdict(text, double precision, bigint, interval, interval, bigint, bigint, bigint,
                                 double precision, bigint, bigint, bigint, boolean) IS
  'The condition of each rule kind (error_count, latency_p95, error_rate, no_data) applied to one window''s measures: '
  'observed (the statistic compared with threshold: errors, p95 ms, z-score, logs in lookback), rate (error rate), '
  'events (what min_events counts), breached, and a summary when breached. Shared by evaluate_rules() and backtest_rules().';
