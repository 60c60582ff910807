CREATE OR REPLACE FUNCTION resolve_incident(incident_id bigint, who text DEFAULT current_user)
RETURNS SETOF incidents
LANGUAGE plpgsql AS $$
DECLARE
    inc incidents;
BEGIN
    inc := lock_unresolved_incident(incident_id, 'resolved');
    UPDATE incidents SET status = 'resolved', resolved_at = now(), resolved_by = who
    WHERE id = incident_id RETURNING * INTO inc;
    DELETE FROM alert_state a WHERE a.service = inc.service AND a.incident_type = inc.incident_type;
    PERFORM record_incident_change(inc, 'resolved', who, now());
    RETURN NEXT inc;
END $$;

COMMENT ON FUNCTION resolve_incident(bigint, text) IS
  'Resolves an incident by hand. If its condition still holds, the next detection tick opens a new one. '
  'Raises 55000 for an already resolved incident and P0002 for an unknown id.';
