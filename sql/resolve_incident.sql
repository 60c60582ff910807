CREATE OR REPLACE FUNCTION resolve_incident(incident_id bigint, who text DEFAULT current_user)
RETURNS SETOF incidents
LANGUAGE plpgsql AS $$
DECLARE
    inc incidents;
BEGIN
    SELECT * INTO inc FROM incidents WHERE id = incident_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'incident % does not exist', incident_id USING ERRCODE = 'no_data_found';
    END IF;
    IF inc.status = 'resolved' THEN
        RAISE EXCEPTION 'incident % is already resolved', incident_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE incidents SET status = 'resolved', resolved_at = now(), resolved_by = who
    WHERE id = incident_id RETURNING * INTO inc;
    DELETE FROM alert_state a WHERE a.service = inc.service AND a.incident_type = inc.incident_type;
    PERFORM record_incident_change(inc, 'resolved', who, now());
    RETURN NEXT inc;
END $$;

COMMENT ON FUNCTION resolve_incident(bigint, text) IS
  'Resolves an incident by hand. If its condition still holds, the next detection tick opens a new one. '
  'Raises 55000 for an already resolved incident and P0002 for an unknown id.';
