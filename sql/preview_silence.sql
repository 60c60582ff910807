-- What a silence would catch, before anyone creates it: the unresolved incidents its matchers
-- match (it holds them while it is active), and the incidents opened in the last `lookback` it
-- would have held (for a recurring silence: those that opened inside one of its windows; the
-- dates of a one-off silence are ignored, the question is what its matchers catch). Writes nothing.
CREATE OR REPLACE FUNCTION preview_silence(s silences, lookback interval DEFAULT '7 days', at timestamptz DEFAULT now())
RETURNS TABLE (incident_id bigint, unresolved boolean, recent boolean)
LANGUAGE sql STABLE AS $$
    SELECT x.id, x.unresolved, x.recent
    FROM (SELECT i.id, i.status <> 'resolved' AS unresolved,
                 i.created_at >= at - lookback
                 AND (s.time_zone IS NULL OR in_weekly_window(i.created_at, s.weekdays, s.start_time, s.end_time, s.time_zone)) AS recent
          FROM incidents i
          WHERE (i.status <> 'resolved' OR i.created_at >= at - lookback)
            AND silence_matches(s, i.service, i.incident_type, i.severity)) x
    WHERE x.unresolved OR x.recent
$$;

COMMENT ON FUNCTION preview_silence(silences, interval, timestamptz) IS
  'Incidents a silence would hold: unresolved = its matchers match an unresolved incident now; recent = it opened in '
  'the last lookback and the silence would have held it (a recurring one: opened inside one of its windows). Writes '
  'nothing. Example: SELECT * FROM preview_silence(check_silence(''["service=checkout"]'', now(), now() + '
  'interval ''1 hour'', ''me'', '''', NULL, NULL, NULL, NULL));';
