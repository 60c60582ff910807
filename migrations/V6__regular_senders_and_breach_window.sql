-- no_data rules fire only for regular senders: threshold (unused by no_data until now) is the
-- share of the baseline's minutes in which the service must have sent logs. A one-off POST of
-- 50,000 rows, a test with curl or a backfill no longer opens NO_DATA a minute later.
UPDATE detection_rules SET threshold = 0.5 WHERE kind = 'no_data' AND threshold = 0;
ALTER TABLE detection_rules ADD CONSTRAINT detection_rules_no_data_share
    CHECK (kind <> 'no_data' OR threshold <= 1);
UPDATE detection_rules
SET description = 'A regular sender (>= min_events logs in the baseline hour, in at least threshold = 50% of its minutes) has been silent for lookback.'
WHERE name = 'NO_DATA' AND service IS NULL;
COMMENT ON TABLE detection_rules IS
  'Detection rules, evaluated by detect_incidents() on every tick. service NULL = every service; a row with the same '
  'name and a service overrides it for that service. threshold means: error_count = ERROR+FATAL logs in lookback; '
  'latency_p95 = p95 ms in lookback; error_rate = z-score of the errors in lookback against the service''s own '
  'error rate over the preceding baseline; no_data = share (0..1) of the baseline''s minutes in which the service must '
  'have sent logs before a silence of lookback counts (with >= min_events logs in the baseline). min_events: fewer '
  'events never breach. See rule_verdict(). Tune with UPDATE; the next tick uses it.';

-- An incident's window_start/window_end follow its latest evaluation; the window of the breach
-- that opened it is kept too, so that "the lines behind the incident" start where the burst did.
ALTER TABLE incidents ADD COLUMN breach_start timestamptz;
UPDATE incidents SET breach_start = window_start;
COMMENT ON COLUMN incidents.breach_start IS
  'Start of the window of the evaluation that opened the incident (window_start moves with later evaluations); '
  'NULL for incidents written by hand: read coalesce(breach_start, window_start).';
