-- Rules over the API: list them (overrides marked, with the incidents each opened lately), and
-- create, change or delete one. Writes are checked by check_rules() first, so a bad value is a
-- 22023 naming the field instead of a constraint violation, and name the person who made them
-- (logmon.actor) for the audit trigger (rule_changes.sql).

-- Every rule, with what overrides it: a row for one service overrides the service = NULL row of
-- the same name for that service (overrides: the id of the row it overrides; overridden_for: the
-- services that have their own row); opened_7d: incidents it opened in the last 7 days.
CREATE OR REPLACE FUNCTION list_rules()
RETURNS TABLE (rule detection_rules, overrides bigint, overridden_for text[], opened_7d bigint)
LANGUAGE sql STABLE
AS $$
    SELECT r,
           (SELECT d.id FROM detection_rules d WHERE r.service IS NOT NULL AND d.service IS NULL AND d.name = r.name),
           CASE WHEN r.service IS NULL THEN
               coalesce((SELECT array_agg(o.service ORDER BY o.service) FROM detection_rules o
                         WHERE o.name = r.name AND o.service IS NOT NULL), '{}')
           END,
           (SELECT count(*) FROM incidents i
            WHERE i.created_at >= now() - interval '7 days'
              AND coalesce((i.details ->> 'opened_by_rule_id')::bigint, i.rule_id) = r.id)
    FROM detection_rules r
    ORDER BY r.name, r.service NULLS FIRST, r.id
$$;

COMMENT ON FUNCTION list_rules() IS
  'Every detection rule with overrides (the id of the service = NULL rule of the same name it overrides, for a '
  'per-service row), overridden_for (services with their own row, for a default row) and opened_7d (incidents it '
  'opened in the last 7 days).';

CREATE OR REPLACE FUNCTION create_rule(rule jsonb, who text DEFAULT current_user)
RETURNS SETOF detection_rules
LANGUAGE plpgsql AS $$
DECLARE
    r detection_rules;
BEGIN
    IF jsonb_typeof(rule) = 'object' AND rule ? 'id' THEN
        RAISE EXCEPTION 'id: is given by the database' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'id';
    END IF;
    SELECT * INTO r FROM check_rules(jsonb_build_array(rule), '');
    PERFORM set_config('logmon.actor', coalesce(who, current_user), true);
    INSERT INTO detection_rules (name, kind, incident_type, service, lookback, threshold, min_events, baseline, severity,
                                 pending_for, resolve_after, enabled, description)
    VALUES (r.name, r.kind, r.incident_type, r.service, r.lookback, r.threshold, r.min_events, r.baseline, r.severity,
            r.pending_for, r.resolve_after, r.enabled, r.description)
    RETURNING * INTO r;
    PERFORM set_config('logmon.actor', '', true);  -- later statements of the transaction speak for themselves
    RETURN NEXT r;
END $$;

COMMENT ON FUNCTION create_rule(jsonb, text) IS
  'Adds a detection rule from a JSON object shaped like a detection_rules row (without id), checked by check_rules() '
  '(22023 naming the field); a rule with the same name and service is a unique violation (23505). who is recorded in '
  'rule_changes.';

CREATE OR REPLACE FUNCTION update_rule(rule_id bigint, changes jsonb, who text DEFAULT current_user)
RETURNS SETOF detection_rules
LANGUAGE plpgsql AS $$
DECLARE
    r detection_rules;
BEGIN
    IF jsonb_typeof(changes) <> 'object' THEN
        RAISE EXCEPTION 'changes: must be an object of the fields to change'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'body';
    END IF;
    IF changes ? 'id' AND changes -> 'id' <> to_jsonb(rule_id) THEN
        RAISE EXCEPTION 'id: a rule''s id does not change' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'id';
    END IF;
    SELECT * INTO r FROM detection_rules d WHERE d.id = rule_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule % does not exist', rule_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO r FROM check_rules(jsonb_build_array(to_jsonb(r) || changes), '');
    PERFORM set_config('logmon.actor', coalesce(who, current_user), true);
    UPDATE detection_rules d SET
        name = r.name, kind = r.kind, incident_type = r.incident_type, service = r.service, lookback = r.lookback,
        threshold = r.threshold, min_events = r.min_events, baseline = r.baseline, severity = r.severity,
        pending_for = r.pending_for, resolve_after = r.resolve_after, enabled = r.enabled, description = r.description
    WHERE d.id = rule_id
    RETURNING * INTO r;
    PERFORM set_config('logmon.actor', '', true);  -- later statements of the transaction speak for themselves
    RETURN NEXT r;
END $$;

COMMENT ON FUNCTION update_rule(bigint, jsonb, text) IS
  'Changes the fields of a detection rule given in a JSON object (the rest stays), checked by check_rules() (22023 '
  'naming the field); P0002 for an unknown id. who is recorded in rule_changes.';

CREATE OR REPLACE FUNCTION delete_rule(rule_id bigint, who text DEFAULT current_user)
RETURNS SETOF detection_rules
LANGUAGE plpgsql AS $$
DECLARE
    r detection_rules;
BEGIN
    PERFORM set_config('logmon.actor', coalesce(who, current_user), true);
    DELETE FROM detection_rules d WHERE d.id = rule_id RETURNING * INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule % does not exist', rule_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM set_config('logmon.actor', '', true);
    RETURN NEXT r;
END $$;

COMMENT ON FUNCTION delete_rule(bigint, text) IS
  'Deletes a detection rule (its incidents keep rule_id NULL; its history stays in rule_changes); P0002 for an unknown '
  'id. who is recorded in rule_changes.';

-- A rule as the API shows it: the row's columns, with intervals as seconds.
CREATE OR REPLACE FUNCTION rule_json(r detection_rules) RETURNS jsonb
LANGUAGE sql STABLE STRICT
RETURN jsonb_build_object(
    'id', r.id, 'name', r.name, 'kind', r.kind, 'incident_type', r.incident_type, 'service', r.service,
    'lookback', date_part('epoch', r.lookback), 'threshold', r.threshold, 'min_events', r.min_events,
    'baseline', date_part('epoch', r.baseline), 'severity', r.severity, 'pending_for', date_part('epoch', r.pending_for),
    'resolve_after', date_part('epoch', r.resolve_after), 'enabled', r.enabled, 'description', r.description);

COMMENT ON FUNCTION rule_json(detection_rules) IS
  'A detection rule as JSON, intervals (lookback, baseline, pending_for, resolve_after) in seconds: the API''s shape.';
