-- The silences active at an instant: the one definition every consumer shares. Expired silences
-- are skipped by an index range scan on ends_at, so a long history costs nothing here.
CREATE OR REPLACE FUNCTION silences_active_at(at timestamptz DEFAULT now())
RETURNS SETOF silences
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT s.* FROM silences s
    WHERE s.ends_at > at AND s.starts_at <= at AND silence_state(s, at) = 'active'
$$;

COMMENT ON FUNCTION silences_active_at(timestamptz) IS 'The silences active at `at` (default now). SELECT * FROM silences_active_at();';

-- Which active silences match an incident's labels: what claim_notifications(), /incidents'
-- silenced_by and the Alertmanager re-posts ask.
CREATE OR REPLACE FUNCTION silenced_by(service text, incident_type text, severity text, at timestamptz DEFAULT now())
RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(s.id ORDER BY s.created_at, s.id), '{}')
    FROM silences_active_at(at) s
    WHERE silence_matches(s, service, incident_type, severity)
$$;

COMMENT ON FUNCTION silenced_by(text, text, text, timestamptz) IS
  'Ids of the silences active at `at` (default now) whose matchers match these labels, oldest first; empty = not '
  'silenced. Example: SELECT id, silenced_by(service, incident_type, severity) FROM incidents WHERE status <> ''resolved'';';

-- Until when these (active) silences hold at least: the latest end of their current windows. A
-- window that does not contain `at` (a wall-clock stretch cut in two by clocks going back) or none
-- at all says "look again in a minute": late is never later than that.
CREATE OR REPLACE FUNCTION silences_active_until(ids uuid[], at timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT coalesce(max(CASE WHEN w.window_start <= at AND w.window_end > at THEN w.window_end
                             ELSE at + interval '1 minute' END), at + interval '1 minute')
    FROM silences s, LATERAL silence_window(s, at) w WHERE s.id = ANY (ids)
$$;

COMMENT ON FUNCTION silences_active_until(uuid[], timestamptz) IS
  'The latest end of the current windows of these silences (at + 1 minute when unknown): nothing they hold can be '
  'released before it; notification_holds.recheck_at.';

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
FROM silences_active_at(now()) s, LATERAL silence_window(s) w;

COMMENT ON VIEW active_silences IS
  'Silences active now: matchers and recurrence as text, active_until (end of the current window, or of the '
  'silence). Notifications of incidents they match are held. SELECT * FROM active_silences;';
