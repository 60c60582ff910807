-- A fifth rule kind, new_pattern: an ERROR/FATAL message template a service has never used
-- before appears (sql/new_error_patterns.sql). Seeded as NEW_ERROR_PATTERN, MED.
ALTER TABLE detection_rules DROP CONSTRAINT detection_rules_kind_check;
ALTER TABLE detection_rules ADD CONSTRAINT detection_rules_kind_check
    CHECK (kind IN ('error_count', 'latency_p95', 'error_rate', 'no_data', 'new_pattern'));

-- new_error_patterns() looks for the patterns first seen inside a lookback: a handful of rows
-- among all of the catalogue's.
CREATE INDEX log_patterns_first_seen_idx ON log_patterns (first_seen);

INSERT INTO detection_rules (name, kind, incident_type, lookback, threshold, min_events, baseline, severity,
                             pending_for, resolve_after, description)
VALUES ('NEW_ERROR_PATTERN', 'new_pattern', 'NEW_ERROR_PATTERN', '5 minutes', 10, 0, '15 minutes', 'MED',
        '0 seconds', '1 minute',
        'An ERROR/FATAL message template the service never used before appears >= threshold times in lookback; '
        'a service with less than baseline of history is still learning and does not fire it.')
ON CONFLICT DO NOTHING;

COMMENT ON TABLE detection_rules IS
  'Detection rules, evaluated by detect_incidents() on every tick. service NULL = every service; a row with the same '
  'name and a service overrides it for that service. threshold means: error_count = ERROR+FATAL logs in lookback; '
  'latency_p95 = p95 ms in lookback; error_rate = z-score of the error rate in lookback against the service''s own '
  'rate over the preceding baseline; no_data = the service sent >= min_events logs in baseline and then nothing for '
  'lookback (threshold: the share of the baseline''s minutes it sent in); new_pattern = lines of an ERROR/FATAL '
  'pattern first seen for the service inside lookback (baseline: the history a service needs before it can fire). '
  'min_events: fewer events in lookback never breach. Tune with UPDATE; the next tick uses it.';
