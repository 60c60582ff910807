-- Which active silences match an incident's labels: the one question every consumer asks
-- (claim_notifications(), /incidents' silenced_by, the Alertmanager re-posts). Expired silences
-- are skipped by an index range scan on ends_at, so a long history costs nothing here.
CREATE OR REPLACE FUNCTION silenced_by(service text, incident_type text, severity text, at timestamptz DEFAULT now())
RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(s.id ORDER BY s.created_at, s.id), '{}')
    FROM silences s
    WHERE s.ends_at > at AND s.starts_at <= at
      AND silence_state(s, at) = 'active'
      AND silence_matches(s.matchers, service, incident_type, severity)
$$;

COMMENT ON FUNCTION silenced_by(text, text, text, timestamptz) IS
  'Ids of the silences active at `at` (default now) whose matchers match these labels, oldest first; empty = not '
  'silenced. Example: SELECT id, silenced_by(service, incident_type, severity) FROM incidents WHERE status <> ''resolved'';';

CREATE OR REPLACE FUNCTION format_recurrence(s silences)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN s.time_zone IS NOT NULL THEN
        format('%s %s-%s %s',
               (SELECT string_agg((ARRAY['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'])[d], ',' ORDER BY d)
                FROM unnest(s.weekdays) d),
               to_char(s.start_time, 'HH24:MI'), to_char(s.end_time, 'HH24:MI'), s.time_zone) END
$$;

COMMENT ON FUNCTION format_recurrence(silences) IS 'A recurring silence''s window as text (Sun 02:00-04:00 Europe/Berlin); NULL for a one-off.';

CREATE OR REPLACE VIEW active_silences AS
SELECT s.id, format_matchers(s.matchers) AS matchers, format_recurrence(s) AS recurrence, w.window_end AS active_until,
       s.starts_at, s.ends_at, s.created_by, s.comment
FROM silences s, LATERAL silence_window(s) w
WHERE s.ends_at > now() AND s.starts_at <= now() AND silence_state(s) = 'active';

COMMENT ON VIEW active_silences IS
  'Silences active now: matchers and recurrence as text, active_until (end of the current window, or of the '
  'silence). Notifications of incidents they match are held. SELECT * FROM active_silences;';
