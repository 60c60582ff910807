-- Every change to detection_rules is recorded, whoever makes it: the HTTP API (its functions name
-- the actor in the transaction setting logmon.actor) or anyone with psql (current_user). The
-- trigger that writes these rows lives in sql/rule_changes.sql.
CREATE TABLE rule_changes (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    rule_id  bigint      NOT NULL,  -- no foreign key: the history of a deleted rule stays
    action   text        NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    actor    text        NOT NULL,
    source   text        NOT NULL CHECK (source IN ('api', 'sql')),
    db_user  text        NOT NULL DEFAULT session_user,
    old_row  jsonb,
    new_row  jsonb,
    CHECK ((old_row IS NULL) = (action = 'created') AND (new_row IS NULL) = (action = 'deleted'))
);
CREATE INDEX rule_changes_rule_idx ON rule_changes (rule_id, id);
COMMENT ON TABLE rule_changes IS
  'Audit of detection_rules: one row per inserted, updated or deleted rule (written by a trigger, so changes from psql '
  'are recorded too). actor: who the API was told made it (logmon.actor) or current_user; source: api or sql; db_user: '
  'the session''s login role; old_row/new_row: the whole rule before and after (to_jsonb).';

-- Rules arrive over HTTP now: bound what the table accepts so that every value the API documents
-- is one the table takes (a rule for service '' could never match a log: logs.service <> '').
ALTER TABLE detection_rules
    ADD CONSTRAINT detection_rules_name_length CHECK (length(name) <= 64),
    ADD CONSTRAINT detection_rules_incident_type_length CHECK (length(incident_type) <= 64),
    ADD CONSTRAINT detection_rules_service_check CHECK (service <> '' AND length(service) <= 256),
    ADD CONSTRAINT detection_rules_description_length CHECK (length(description) <= 1000),
    ADD CONSTRAINT detection_rules_pending_for_max CHECK (pending_for <= '1 day'),
    ADD CONSTRAINT detection_rules_resolve_after_max CHECK (resolve_after <= '1 day'),
    -- far beyond any count, latency or z-score, and far inside what every JSON reader parses as a
    -- number (1.7e308 is a valid double that serde_json refuses as out of range)
    ADD CONSTRAINT detection_rules_threshold_max CHECK (threshold <= 1e12);
