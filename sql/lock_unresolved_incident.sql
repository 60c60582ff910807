-- The check every manual lifecycle change starts with: the incident exists and is not resolved.
-- It locks the row, so a concurrent detector tick or operator waits for this change.
CREATE OR REPLACE FUNCTION lock_unresolved_incident(incident_id bigint, verb text)
RETURNS incidents
LANGUAGE plpgsql AS $$
DECLARE
    inc incidents;
BEGIN
    SELECT * INTO inc FROM incidents i WHERE i.id = incident_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'incident % does not exist', incident_id USING ERRCODE = 'no_data_found';
    END IF;
    IF inc.status = 'resolved' THEN
        RAISE EXCEPTION 'incident % is already resolved and cannot be %', incident_id, verb
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN inc;
END $$;

COMMENT ON FUNCTION lock_unresolved_incident(bigint, text) IS
  'Locks an incident FOR UPDATE; raises P0002 for an unknown id and 55000 for a resolved one (verb names the '
  'refused change). Shared by acknowledge_incident() and resolve_incident().';
