-- Every change to detection_rules lands in rule_changes, whoever makes it and however: a trigger,
-- so an UPDATE from psql is recorded as surely as a PATCH over HTTP. The API's functions name the
-- person in the transaction setting logmon.actor (set_config(..., true)); without it the actor is
-- current_user. A role allowed to change detection_rules must also be allowed to insert into
-- rule_changes: a change that cannot be recorded is refused with it.
CREATE OR REPLACE FUNCTION record_rule_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    api_actor text := nullif(current_setting('logmon.actor', true), '');
BEGIN
    IF TG_OP = 'UPDATE' AND to_jsonb(OLD) = to_jsonb(NEW) THEN
        RETURN NULL;  -- nothing changed
    END IF;
    INSERT INTO rule_changes (rule_id, action, actor, source, old_row, new_row)
    VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
            CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
            coalesce(api_actor, current_user::text),
            CASE WHEN api_actor IS NULL THEN 'sql' ELSE 'api' END,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;

COMMENT ON FUNCTION record_rule_change() IS
  'Trigger on detection_rules: records each inserted, updated or deleted rule in rule_changes (actor: the setting '
  'logmon.actor, set by the API, else current_user).';

CREATE OR REPLACE TRIGGER detection_rules_audit
    AFTER INSERT OR UPDATE OR DELETE ON detection_rules
    FOR EACH ROW EXECUTE FUNCTION record_rule_change();
