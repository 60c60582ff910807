-- Candidate rules (a JSON array of objects shaped like detection_rules rows) checked exactly as
-- the table would check them, by reading the table's own definition from the catalog: its columns
-- and types, defaults, NOT NULL, CHECK constraints and unique keys. A new constraint on
-- detection_rules applies here with no change, so "what if" rules and stored rules cannot drift.
-- Returns the rows with defaults filled in (id as given, else NULL), in array order. A problem is
-- an invalid_parameter_value error whose COLUMN names the field ("rules[2].threshold"), which the
-- API answers as a 400 naming it.
--   SELECT * FROM check_rules('[{"name": "ERROR_SPIKE", "kind": "error_count", ...}]');
CREATE OR REPLACE FUNCTION check_rules(rules jsonb, path text DEFAULT 'rules')
RETURNS SETOF detection_rules
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
AS $$
DECLARE
    defaults jsonb := '{}';
    columns text[];
    c record;
    elem jsonb;
    i int := 0;
    at text;
    k text;
    r detection_rules;
    ok boolean;
    seen jsonb := '{}';
    key text;
BEGIN
    IF rules IS NULL OR jsonb_typeof(rules) <> 'array' THEN
        RAISE EXCEPTION '%: must be an array of rules', coalesce(nullif(path, ''), 'rules')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = coalesce(nullif(path, ''), 'rules');
    END IF;
    IF jsonb_array_length(rules) > 100 THEN
        RAISE EXCEPTION '%: at most 100 rules, got %', path, jsonb_array_length(rules)
            USING ERRCODE = 'invalid_parameter_value', COLUMN = path;
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO columns
    FROM pg_attribute a WHERE a.attrelid = 'detection_rules'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    -- column defaults, evaluated (the identity column has none: a candidate's id is its own business)
    FOR c IN SELECT a.attname::text AS name, pg_get_expr(d.adbin, d.adrelid) AS expr
             FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = 'detection_rules'::regclass AND a.attnum > 0 AND NOT a.attisdropped LOOP
        EXECUTE format('SELECT jsonb_build_object(%L, %s)', c.name, c.expr) INTO elem;
        defaults := defaults || elem;
    END LOOP;

    FOR elem IN SELECT e FROM jsonb_array_elements(rules) e LOOP
        at := CASE WHEN path = '' THEN '' ELSE format('%s[%s]', path, i) END;
        IF jsonb_typeof(elem) <> 'object' THEN
            RAISE EXCEPTION '%: must be an object (a rule), got %', coalesce(nullif(at, ''), 'rule'), jsonb_typeof(elem)
                USING ERRCODE = 'invalid_parameter_value', COLUMN = coalesce(nullif(at, ''), 'rule');
        END IF;
        FOR k IN SELECT jsonb_object_keys(elem) LOOP
            IF NOT k = ANY (columns) THEN
                RAISE EXCEPTION '%: unknown field (a rule has %)', concat_ws('.', nullif(at, ''), k),
                                array_to_string(columns, ', ')
                    USING ERRCODE = 'invalid_parameter_value', COLUMN = concat_ws('.', nullif(at, ''), k);
            END IF;
            BEGIN
                PERFORM jsonb_populate_record(NULL::detection_rules, jsonb_build_object(k, elem -> k));
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION '%: %, got %', concat_ws('.', nullif(at, ''), k), SQLERRM, elem -> k
                    USING ERRCODE = 'invalid_parameter_value', COLUMN = concat_ws('.', nullif(at, ''), k);
            END;
        END LOOP;
        r := jsonb_populate_record(NULL::detection_rules, defaults || elem);

        FOR c IN SELECT a.attname::text AS name FROM pg_attribute a
                 WHERE a.attrelid = 'detection_rules'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attnotnull AND a.attidentity = '' ORDER BY a.attnum LOOP
            IF to_jsonb(r) -> c.name = 'null' THEN
                RAISE EXCEPTION '%: is required', concat_ws('.', nullif(at, ''), c.name)
                    USING ERRCODE = 'invalid_parameter_value', COLUMN = concat_ws('.', nullif(at, ''), c.name);
            END IF;
        END LOOP;

        FOR c IN SELECT pg_get_expr(x.conbin, x.conrelid) AS expr, pg_get_constraintdef(x.oid) AS def,
                        (SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = x.conrelid AND a.attnum = (SELECT max(n) FROM unnest(x.conkey) n)) AS field
                 FROM pg_constraint x WHERE x.conrelid = 'detection_rules'::regclass AND x.contype = 'c'
                 ORDER BY x.conkey[1], x.conname LOOP
            EXECUTE format('SELECT %s FROM (SELECT ($1).*) detection_rules', c.expr) INTO ok USING r;
            IF ok IS FALSE THEN
                RAISE EXCEPTION '%: must satisfy %, got %', concat_ws('.', nullif(at, ''), c.field), c.def,
                                to_jsonb(r) -> c.field
                    USING ERRCODE = 'invalid_parameter_value', COLUMN = concat_ws('.', nullif(at, ''), c.field);
            END IF;
        END LOOP;

        -- unique keys among the candidates themselves (NULLS NOT DISTINCT, as the table's)
        FOR c IN SELECT x.conname, (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                                    WHERE a.attrelid = x.conrelid AND a.attnum = ANY (x.conkey)) AS cols
                 FROM pg_constraint x WHERE x.conrelid = 'detection_rules'::regclass AND x.contype = 'u' LOOP
            key := c.conname || (SELECT jsonb_agg(to_jsonb(r) -> col)::text FROM unnest(c.cols) col);
            IF seen ? key THEN
                RAISE EXCEPTION '%: a rule with the same % as %[%]', coalesce(nullif(at, ''), 'rule'),
                                array_to_string(c.cols, ', '), path, seen ->> key
                    USING ERRCODE = 'invalid_parameter_value', COLUMN = coalesce(nullif(at, ''), 'rule');
            END IF;
            seen := seen || jsonb_build_object(key, i);
        END LOOP;
        RETURN NEXT r;
        i := i + 1;
    END LOOP;
END $$;

COMMENT ON FUNCTION check_rules(jsonb, text) IS
  'Checks candidate rules (a JSON array of objects shaped like detection_rules rows; intervals as PostgreSQL interval '
  'text or seconds) against the table''s own columns, defaults, NOT NULL, CHECK and unique constraints, read from '
  'the catalog. Returns them as detection_rules rows with defaults filled in; raises 22023 naming the field '
  '(path[i].column) otherwise. Used by backtest_rules() and the rule writes of the API.';
