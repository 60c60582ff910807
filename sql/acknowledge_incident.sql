CREATE OR REPLACE FUNCTION acknowledge_incident(incident_id bigint, who text DEFAULT current_user)
RETURNS SETOF incidents
LANGUAGE plpgsql AS $$
DECLARE
    inc incidents;
BEGIN
    inc := lock_unresolved_incident(incident_id, 'acknowledged');
    IF inc.status = 'open' THEN
        UPDATE incidents SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = who
        WHERE id = incident_id RETURNING * INTO inc;
        PERFORM record_incident_change(inc, 'acknowledged', who, now());
    END IF;
    RETURN NEXT inc;
END $$;

COMMENT ON FUNCTION acknowledge_incident(bigint, text) IS
  'Marks an open incident acknowledged (it keeps updating; escalations are not re-notified). Idempotent for an '
  'acknowledged incident; raises 55000 for a resolved one and P0002 for an unknown id.';
