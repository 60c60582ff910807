-- Alertmanager matchers on the three labels every incident has: service, incident_type (called
-- alertname on logmon's Alertmanager alerts, so both names work) and severity (lower case on
-- Alertmanager alerts, upper case in /incidents, so it compares case-insensitively). As in
-- Alertmanager, regexes are anchored at both ends and every matcher of a silence must hold.

-- One matcher as amtool and Prometheus write it: service="checkout", severity=~"high|critical",
-- incident_type!=NO_DATA (quotes optional; \" and \\ inside quotes).
CREATE OR REPLACE FUNCTION parse_matcher(matcher text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[] := regexp_match(matcher, '^\s*\{?\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*\}?\s*$');
    v text;
BEGIN
    IF m IS NULL THEN
        RAISE EXCEPTION 'invalid matcher %: expected name=value, name!=value, name=~regex or name!~regex', quote_literal(matcher)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := m[3];
    IF length(v) >= 2 AND left(v, 1) = '"' AND right(v, 1) = '"' THEN
        v := regexp_replace(substr(v, 2, length(v) - 2), '\\(.)', '\1', 'g');
    END IF;
    RETURN jsonb_build_object('name', m[1], 'value', v, 'isRegex', m[2] IN ('=~', '!~'), 'isEqual', m[2] IN ('=', '=~'));
END $$;

COMMENT ON FUNCTION parse_matcher(text) IS
  'Parses one matcher in Prometheus/amtool syntax (service="checkout", severity=~"high|critical", name!=v, name!~re) '
  'into Alertmanager''s API form {"name", "value", "isRegex", "isEqual"}.';

-- Does one label value satisfy one matcher?
CREATE OR REPLACE FUNCTION label_matches(pattern text, is_regex boolean, is_equal boolean, v text, fold_case boolean DEFAULT false)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN is_regex AND fold_case THEN v ~* ('^(?:' || pattern || ')$')
                WHEN is_regex THEN v ~ ('^(?:' || pattern || ')$')
                WHEN fold_case THEN lower(v) = lower(pattern)
                ELSE v = pattern END = is_equal
$$;

COMMENT ON FUNCTION label_matches(text, boolean, boolean, text, boolean) IS
  'Whether label value v satisfies one matcher: equality or an anchored regex (^(?:pattern)$), negated when '
  'is_equal is false; fold_case compares case-insensitively.';

-- The matchers a caller gave (JSON objects as in Alertmanager's API, or strings in amtool's
-- syntax), checked and in one canonical form. Errors name the field (COLUMN), e.g. matchers[1].value.
CREATE OR REPLACE FUNCTION normalize_matchers(matchers jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out jsonb := '[]';
    m jsonb;
    i int := 0;
    field text;
    all_match_empty boolean := true;
BEGIN
    IF matchers IS NULL OR jsonb_typeof(matchers) <> 'array' OR jsonb_array_length(matchers) = 0 THEN
        RAISE EXCEPTION 'matchers must be a non-empty array of {"name", "value", "isRegex", "isEqual"}'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'matchers';
    END IF;
    IF jsonb_array_length(matchers) > 32 THEN
        RAISE EXCEPTION 'matchers: at most 32 matchers, got %', jsonb_array_length(matchers)
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'matchers';
    END IF;
    FOR m IN SELECT e FROM jsonb_array_elements(matchers) e LOOP
        field := format('matchers[%s]', i);
        IF jsonb_typeof(m) = 'string' THEN
            BEGIN
                m := parse_matcher(m #>> '{}');
            EXCEPTION WHEN invalid_parameter_value THEN
                RAISE EXCEPTION '%: %', field, SQLERRM USING ERRCODE = 'invalid_parameter_value', COLUMN = field;
            END;
        ELSIF jsonb_typeof(m) <> 'object' THEN
            RAISE EXCEPTION '%: must be an object {"name", "value", "isRegex", "isEqual"}', field
                USING ERRCODE = 'invalid_parameter_value', COLUMN = field;
        END IF;
        IF jsonb_typeof(m -> 'name') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION '%.name: must be a string', field USING ERRCODE = 'invalid_parameter_value', COLUMN = field || '.name';
        END IF;
        IF m ->> 'name' NOT IN ('service', 'incident_type', 'alertname', 'severity') THEN
            RAISE EXCEPTION '%.name: unknown label %: silences match service, incident_type (or alertname) and severity',
                field, quote_literal(m ->> 'name') USING ERRCODE = 'invalid_parameter_value', COLUMN = field || '.name';
        END IF;
        IF jsonb_typeof(m -> 'value') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION '%.value: must be a string', field USING ERRCODE = 'invalid_parameter_value', COLUMN = field || '.value';
        END IF;
        IF length(m ->> 'value') > 1024 THEN
            RAISE EXCEPTION '%.value: at most 1024 characters', field USING ERRCODE = 'invalid_parameter_value', COLUMN = field || '.value';
        END IF;
        IF coalesce(jsonb_typeof(m -> 'isRegex'), 'boolean') <> 'boolean' THEN
            RAISE EXCEPTION '%.isRegex: must be true or false', field USING ERRCODE = 'invalid_parameter_value', COLUMN = field || '.isRegex';
        END IF;
        IF coalesce(jsonb_typeof(m -> 'isEqual'), 'boolean') <> 'boolean' THEN
            RAISE EXCEPTION '%.isEqual: must be true or false', field USING ERRCODE = 'invalid_parameter_value', COLUMN = field || '.isEqual';
        END IF;
        m := jsonb_build_object('name', m -> 'name', 'value', m -> 'value',
                                'isRegex', coalesce((m ->> 'isRegex')::boolean, false),
                                'isEqual', coalesce((m ->> 'isEqual')::boolean, true));
        IF (m ->> 'isRegex')::boolean THEN
            BEGIN
                PERFORM '' ~ ('^(?:' || (m ->> 'value') || ')$');
            EXCEPTION WHEN invalid_regular_expression THEN
                RAISE EXCEPTION '%.value: % is not a valid regular expression (%)', field, quote_literal(m ->> 'value'), SQLERRM
                    USING ERRCODE = 'invalid_parameter_value', COLUMN = field || '.value';
            END;
        END IF;
        all_match_empty := all_match_empty
            AND label_matches(m ->> 'value', (m ->> 'isRegex')::boolean, (m ->> 'isEqual')::boolean, '');
        out := out || jsonb_build_array(m);
        i := i + 1;
    END LOOP;
    IF all_match_empty THEN
        -- as Alertmanager: a silence whose every matcher matches "" is almost always a mistake
        RAISE EXCEPTION 'matchers: at least one matcher must not match the empty string (to silence everything, use service=~".+")'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'matchers';
    END IF;
    RETURN out;
END $$;

COMMENT ON FUNCTION normalize_matchers(jsonb) IS
  'Checks silence matchers (a JSON array of Alertmanager matcher objects, or of strings like ''service="checkout"'') '
  'and returns them as objects with isRegex and isEqual filled in. Raises 22023 naming the field (matchers[i].value, '
  '...) for an unknown label, a bad regex, or when every matcher matches the empty string.';

-- Matchers compiled into one anchored regex per label, stored with the silence, so that matching
-- an incident costs three regex tests (claim_notifications() and /incidents match often): each
-- matcher becomes a lookahead at the start, (?=(?:re)$) or (?!(?:re)$) for a negated one, an
-- equality matching its value quoted. NULL: no matcher on that label.
CREATE OR REPLACE FUNCTION compile_matchers(matchers jsonb, OUT service text, OUT incident_type text, OUT severity text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT max(x.re) FILTER (WHERE x.label = 'service'),
           max(x.re) FILTER (WHERE x.label = 'incident_type'),
           max(x.re) FILTER (WHERE x.label = 'severity')
    FROM (SELECT CASE m.name WHEN 'alertname' THEN 'incident_type' ELSE m.name END AS label,
                 '^' || string_agg(CASE WHEN m."isEqual" THEN '(?=(?:' ELSE '(?!(?:' END
                                   || CASE WHEN m."isRegex" THEN m.value
                                           ELSE regexp_replace(m.value, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') END
                                   || ')$)', '' ORDER BY n) AS re
          FROM ROWS FROM (jsonb_to_recordset(matchers) AS (name text, value text, "isRegex" boolean, "isEqual" boolean))
               WITH ORDINALITY AS m (name, value, "isRegex", "isEqual", n)
          GROUP BY 1) x
$$;

COMMENT ON FUNCTION compile_matchers(jsonb) IS
  'Normalized matchers as one anchored regex per label (service, incident_type, severity; NULL = any), each matcher a '
  'lookahead: what silences store in match_service, match_incident_type, match_severity.';

-- THE definition of "this silence matches this incident": used for notifications, for
-- silenced_by on /incidents, for the Alertmanager re-posts and for previews.
CREATE OR REPLACE FUNCTION silence_matches(s silences, service text, incident_type text, severity text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (s.match_service IS NULL OR service ~ s.match_service)
       AND (s.match_incident_type IS NULL OR incident_type ~ s.match_incident_type)
       AND (s.match_severity IS NULL OR severity ~* s.match_severity)
$$;

COMMENT ON FUNCTION silence_matches(silences, text, text, text) IS
  'Whether every matcher of silence s holds for an incident''s labels (alertname is incident_type; severity ignores '
  'case). Example: SELECT i.id, s.id FROM incidents i, silences s WHERE silence_matches(s, i.service, i.incident_type, i.severity);';

-- Alertmanager's GET /api/v2/silences?filter=...: which silences a filter selects, compared with
-- the silences' own matchers (name -> value), as Alertmanager does.
CREATE OR REPLACE FUNCTION silence_matches_filter(matchers jsonb, filter jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (
        SELECT 1
        FROM jsonb_to_recordset(filter) AS f (name text, value text, "isRegex" boolean, "isEqual" boolean)
        LEFT JOIN LATERAL (
            SELECT e.m ->> 'value' AS v FROM jsonb_array_elements(matchers) WITH ORDINALITY AS e (m, n)
            WHERE e.m ->> 'name' = f.name ORDER BY e.n DESC LIMIT 1
        ) s ON true
        WHERE NOT ((f.value = '' AND (s.v IS NOT NULL) = NOT f."isEqual")
                   OR label_matches(f.value, f."isRegex", f."isEqual", coalesce(s.v, ''))))
$$;

COMMENT ON FUNCTION silence_matches_filter(jsonb, jsonb) IS
  'Alertmanager''s silence filter: every filter matcher must match the value of the silence''s matcher of the same name.';

-- Matchers as one line of text, for psql and the dashboard: service="checkout", severity=~"high|critical"
CREATE OR REPLACE FUNCTION format_matchers(matchers jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg(format('%s%s%s', e.m ->> 'name',
                             CASE WHEN (e.m ->> 'isRegex')::boolean THEN CASE WHEN (e.m ->> 'isEqual')::boolean THEN '=~' ELSE '!~' END
                                  ELSE CASE WHEN (e.m ->> 'isEqual')::boolean THEN '=' ELSE '!=' END END,
                             (e.m -> 'value')::text), ', ' ORDER BY e.n)
    FROM jsonb_array_elements(matchers) WITH ORDINALITY AS e (m, n)
$$;

COMMENT ON FUNCTION format_matchers(jsonb) IS 'Matchers as text: service="checkout", severity=~"high|critical".';
