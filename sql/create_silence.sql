-- Creating and expiring silences: the rules live here, so psql and the HTTP API (POST /silences,
-- /api/v2/silences for amtool) refuse the same things with the same words. Errors are 22023 with
-- the offending field in COLUMN (the API answers 400 naming it), P0002 for an unknown id.

-- Days of the week as people and Alertmanager's time_intervals write them: monday, Mon,
-- saturday:sunday (a range), or ISO numbers 1 (Monday) .. 7 (Sunday).
CREATE OR REPLACE FUNCTION parse_weekdays(days text[])
RETURNS smallint[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    names text[] := ARRAY['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
    out smallint[] := '{}';
    d text;
    part text[];
    a int;
    b int;
    i int := 0;
BEGIN
    IF days IS NULL OR cardinality(days) = 0 THEN
        RETURN ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[];
    END IF;
    FOREACH d IN ARRAY days LOOP
        part := string_to_array(lower(trim(d)), ':');
        IF cardinality(part) NOT IN (1, 2) THEN
            part := ARRAY['?'];
        END IF;
        SELECT min(n) INTO a FROM unnest(names) WITH ORDINALITY AS x (name, n)
        WHERE x.name = part[1] OR left(x.name, 3) = part[1] OR n::text = part[1];
        SELECT min(n) INTO b FROM unnest(names) WITH ORDINALITY AS x (name, n)
        WHERE x.name = part[cardinality(part)] OR left(x.name, 3) = part[cardinality(part)] OR n::text = part[cardinality(part)];
        IF a IS NULL OR b IS NULL OR b < a THEN
            RAISE EXCEPTION 'recurrence.weekdays[%]: % is not a day of the week (monday .. sunday, mon .. sun, or a range like monday:friday)',
                i, quote_literal(d) USING ERRCODE = 'invalid_parameter_value', COLUMN = format('recurrence.weekdays[%s]', i);
        END IF;
        out := out || ARRAY(SELECT generate_series(a, b)::smallint);
        i := i + 1;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT x FROM unnest(out) x ORDER BY x);
END $$;

COMMENT ON FUNCTION parse_weekdays(text[]) IS
  'Day names (monday, mon), ranges (monday:friday) or ISO numbers (1 = Monday .. 7 = Sunday) as sorted ISO day '
  'numbers; NULL or empty = every day.';

-- A silence as it would be stored, checked but not inserted (create_silence() inserts it; the
-- preview only looks at it).
CREATE OR REPLACE FUNCTION check_silence(matchers jsonb, starts_at timestamptz, ends_at timestamptz, created_by text,
                                         comment text, weekdays text[], start_time time, end_time time, time_zone text)
RETURNS silences
LANGUAGE plpgsql AS $$
DECLARE
    s silences;
    recurring boolean := num_nonnulls(weekdays, start_time, end_time, time_zone) > 0;
BEGIN
    s.id := gen_random_uuid();
    s.matchers := normalize_matchers(matchers);
    SELECT c.service, c.incident_type, c.severity INTO s.match_service, s.match_incident_type, s.match_severity
    FROM compile_matchers(s.matchers) c;
    BEGIN
        PERFORM '' ~ s.match_service, '' ~ s.match_incident_type, '' ~ s.match_severity;
    EXCEPTION WHEN invalid_regular_expression THEN
        RAISE EXCEPTION 'matchers: these regexes cannot be combined (%): back references are not supported', SQLERRM
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'matchers';
    END;
    s.created_by := created_by;
    s.comment := coalesce(comment, '');
    s.created_at := now();
    s.updated_at := now();
    s.starts_at := coalesce(starts_at, now());
    IF coalesce(created_by, '') = '' OR length(created_by) > 256 THEN
        RAISE EXCEPTION 'createdBy: must be 1 to 256 characters' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'createdBy';
    END IF;
    IF length(s.comment) > 4096 THEN
        RAISE EXCEPTION 'comment: at most 4096 characters' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'comment';
    END IF;
    IF recurring THEN
        IF start_time IS NULL THEN
            RAISE EXCEPTION 'recurrence.startTime: required for a recurring silence (e.g. "02:00")'
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'recurrence.startTime';
        END IF;
        IF end_time IS NULL THEN
            RAISE EXCEPTION 'recurrence.endTime: required for a recurring silence (e.g. "04:00")'
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'recurrence.endTime';
        END IF;
        IF start_time = end_time THEN
            RAISE EXCEPTION 'recurrence.endTime: must differ from startTime (an end before the start ends the next day)'
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'recurrence.endTime';
        END IF;
        IF time_zone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = time_zone) THEN
            RAISE EXCEPTION 'recurrence.timeZone: unknown time zone % (use an IANA name such as Europe/Berlin or UTC)',
                coalesce(quote_literal(time_zone), 'NULL') USING ERRCODE = 'invalid_parameter_value', COLUMN = 'recurrence.timeZone';
        END IF;
        s.weekdays := parse_weekdays(weekdays);
        s.start_time := start_time;
        s.end_time := end_time;
        s.time_zone := time_zone;
        s.ends_at := coalesce(ends_at, 'infinity');
    ELSE
        IF ends_at IS NULL THEN
            RAISE EXCEPTION 'endsAt: required (only a recurring silence may go without an end)'
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'endsAt';
        END IF;
        s.ends_at := ends_at;
    END IF;
    IF s.ends_at <= s.starts_at THEN
        RAISE EXCEPTION 'endsAt: % is not after startsAt %', s.ends_at, s.starts_at
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'endsAt';
    END IF;
    IF s.ends_at <= now() THEN
        RAISE EXCEPTION 'endsAt: % is in the past', s.ends_at USING ERRCODE = 'invalid_parameter_value', COLUMN = 'endsAt';
    END IF;
    RETURN s;
END $$;

COMMENT ON FUNCTION check_silence(jsonb, timestamptz, timestamptz, text, text, text[], time, time, text) IS
  'Validates a silence and returns it as a silences row without storing it (see create_silence() for the rules). '
  'Raises 22023 with the field name in the error''s COLUMN.';

CREATE OR REPLACE FUNCTION create_silence(matchers jsonb, ends_at timestamptz DEFAULT NULL, comment text DEFAULT '',
                                          created_by text DEFAULT current_user, starts_at timestamptz DEFAULT now(),
                                          weekdays text[] DEFAULT NULL, start_time time DEFAULT NULL,
                                          end_time time DEFAULT NULL, time_zone text DEFAULT NULL,
                                          replaces uuid DEFAULT NULL)
RETURNS SETOF silences
LANGUAGE plpgsql AS $$
DECLARE
    s silences := check_silence(matchers, starts_at, ends_at, created_by, comment, weekdays, start_time, end_time, time_zone);
BEGIN
    INSERT INTO silences SELECT s.* RETURNING * INTO s;
    IF replaces IS NOT NULL THEN
        -- Alertmanager's update: the old silence ends now, the new one takes over (one transaction,
        -- so the incidents both match are never released in between).
        PERFORM expire_silence(replaces, created_by);
        UPDATE silences o SET replaced_by = s.id WHERE o.id = replaces;
    END IF;
    RETURN NEXT s;
END $$;

COMMENT ON FUNCTION create_silence(jsonb, timestamptz, text, text, timestamptz, text[], time, time, text, uuid) IS
  'Creates a silence: notifications of incidents its matchers match are held while it is active. matchers: JSON array '
  'of Alertmanager matchers or strings (''["service=checkout", "severity=~\"high|critical\""]''; labels service, '
  'incident_type or alertname, severity). One-off: starts_at (default now) .. ends_at. Recurring maintenance window: '
  'weekdays (monday, mon, saturday:sunday; default every day), start_time .. end_time on the wall clock of time_zone '
  '(IANA), from starts_at until ends_at (default: no end). replaces: expire that silence in the same transaction. '
  'Example: SELECT * FROM create_silence(''["service=checkout"]'', now() + interval ''2 hours'', ''deploy 1.4'');';

CREATE OR REPLACE FUNCTION expire_silence(silence_id uuid, who text DEFAULT current_user)
RETURNS SETOF silences
LANGUAGE plpgsql AS $$
DECLARE
    s silences;
BEGIN
    SELECT * INTO s FROM silences x WHERE x.id = silence_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'silence % does not exist', silence_id USING ERRCODE = 'no_data_found';
    END IF;
    IF s.ends_at > now() THEN
        -- as Alertmanager: a pending silence ends before it starts
        UPDATE silences x SET ends_at = now(), starts_at = least(x.starts_at, now()), expired_by = who, updated_at = now()
        WHERE x.id = silence_id RETURNING * INTO s;
        -- wake the notifiers: their next claim releases what it held (see silences_changed())
        PERFORM pg_notify('logmon_incidents', json_build_object('silence', silence_id, 'event', 'expired')::text);
    END IF;
    RETURN NEXT s;
END $$;

COMMENT ON FUNCTION expire_silence(uuid, text) IS
  'Expires a silence now (ends_at = now(); the row is kept, expired_by records who). Incidents it held that are '
  'still unresolved are notified at the notifiers'' next claim. Idempotent for an expired silence; P0002 for an unknown id.';
