-- When a silence is active. A recurring maintenance window follows the wall clock: it is active
-- while a clock on the wall in its time zone reads start_time .. end_time (end excluded) on one of
-- its weekdays; a window whose end_time <= start_time runs past midnight and belongs to the day
-- it starts. That rule is daylight-saving correct by construction: on the night clocks go
-- forward, "02:00-04:00" lasts one hour; on the night they go back it lasts three, since
-- 02:00-03:00 happens twice and is silenced both times.
CREATE OR REPLACE FUNCTION in_weekly_window(at timestamptz, weekdays smallint[], start_time time, end_time time,
                                            time_zone text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN start_time < end_time
                THEN w.dow = ANY (weekdays) AND w.t >= start_time AND w.t < end_time
                ELSE (w.dow = ANY (weekdays) AND w.t >= start_time)
                  OR ((w.dow + 5) % 7 + 1 = ANY (weekdays) AND w.t < end_time) END
    FROM (SELECT extract(isodow FROM l)::int AS dow, l::time AS t
          FROM (SELECT at AT TIME ZONE time_zone AS l) x) w
$$;

COMMENT ON FUNCTION in_weekly_window(timestamptz, smallint[], time, time, text) IS
  'Whether the wall clock in time_zone at instant `at` reads a time in [start_time, end_time) on one of weekdays '
  '(ISO, 1 = Monday); end_time <= start_time means the window ends the next day. Follows daylight saving time.';

-- The first instant at which the wall clock in time_zone reads `local` or later. PostgreSQL's own
-- `local AT TIME ZONE` reads a time that happens twice as the second one and moves a skipped time
-- forward by the gap; a window must start at the first, and at the jump.
CREATE OR REPLACE FUNCTION wall_clock_instant(local timestamp, time_zone text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c timestamptz := local AT TIME ZONE time_zone;
    earlier timestamptz;
    lo timestamptz;
    hi timestamptz;
    mid timestamptz;
BEGIN
    -- the offset in force three hours before (no zone changes its clocks twice in three hours)
    earlier := (local - (((c - interval '3 hours') AT TIME ZONE time_zone) - ((c - interval '3 hours') AT TIME ZONE 'UTC')))
               AT TIME ZONE 'UTC';
    IF earlier < c AND earlier AT TIME ZONE time_zone = local THEN
        RETURN earlier;  -- clocks went back: the first time the wall reads `local`
    END IF;
    IF c AT TIME ZONE time_zone = local THEN
        RETURN c;
    END IF;
    -- `local` was skipped (clocks went forward): find the jump, the first instant whose wall
    -- clock reads later than `local`.
    lo := c - interval '3 hours';
    hi := c;
    WHILE hi - lo > interval '1 microsecond' LOOP
        mid := lo + (hi - lo) / 2;
        IF mid AT TIME ZONE time_zone >= local THEN hi := mid; ELSE lo := mid; END IF;
    END LOOP;
    RETURN hi;
END $$;

COMMENT ON FUNCTION wall_clock_instant(timestamp, text) IS
  'The first instant at which the wall clock in time_zone reads local or later: the first of two readings when '
  'clocks go back, the moment of the jump when local is skipped. Used for the boundaries of recurring windows.';

-- The single definition of a silence's state at an instant: expired from ends_at on, pending
-- before starts_at and, for a recurring silence, between its windows; active otherwise.
CREATE OR REPLACE FUNCTION silence_state(s silences, at timestamptz DEFAULT now())
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN at >= s.ends_at THEN 'expired'
                WHEN at < s.starts_at THEN 'pending'
                WHEN s.time_zone IS NULL
                  OR in_weekly_window(at, s.weekdays, s.start_time, s.end_time, s.time_zone) THEN 'active'
                ELSE 'pending' END
$$;

COMMENT ON FUNCTION silence_state(silences, timestamptz) IS
  'pending, active or expired at `at` (default now): expired from ends_at, pending before starts_at or between the '
  'windows of a recurring silence, active otherwise. Computed, never stored. SELECT id, silence_state(s) FROM silences s;';

-- The stretch during which the silence is active now, or the next one (NULL when there is none):
-- for people and dashboards ("silenced until ...").
CREATE OR REPLACE FUNCTION silence_window(s silences, at timestamptz DEFAULT now(),
                                          OUT window_start timestamptz, OUT window_end timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d date;
    ws timestamptz;
    we timestamptz;
BEGIN
    IF at >= s.ends_at THEN
        RETURN;
    END IF;
    IF s.time_zone IS NULL THEN
        window_start := s.starts_at;
        window_end := s.ends_at;
        RETURN;
    END IF;
    FOR d IN SELECT g::date FROM generate_series((at AT TIME ZONE s.time_zone)::date - 1,
                                                  (at AT TIME ZONE s.time_zone)::date + 7, interval '1 day') g
    LOOP
        CONTINUE WHEN NOT extract(isodow FROM d)::int = ANY (s.weekdays);
        ws := greatest(wall_clock_instant(d + s.start_time, s.time_zone), s.starts_at);
        we := least(wall_clock_instant(d + CASE WHEN s.end_time <= s.start_time THEN 1 ELSE 0 END + s.end_time,
                                       s.time_zone), s.ends_at);
        IF we > ws AND we > at THEN
            window_start := ws;
            window_end := we;
            RETURN;
        END IF;
    END LOOP;
END $$;

COMMENT ON FUNCTION silence_window(silences, timestamptz) IS
  'The active stretch of a silence containing `at`, else the next one (NULL when none is left): starts_at .. ends_at '
  'for a one-off silence, the current or next window (within the series) for a recurring one.';
