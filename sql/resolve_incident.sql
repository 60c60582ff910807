-- Resolving by hand means "it is over". While the incident's condition still holds it is not over:
-- the next detection tick would open a new incident and page again within a second. So that is
-- refused, pointing to what quiets notifications without hiding the problem: a silence.
CREATE OR REPLACE FUNCTION resolve_incident(incident_id bigint, who text DEFAULT current_user)
RETURNS SETOF incidents
LANGUAGE plpgsql AS $$
DECLARE
    inc incidents;
    breach text;
BEGIN
    -- Between detection ticks, never in the middle of one: a tick that judged the condition
    -- before a change (a rule disabled, a threshold raised) and acted after this resolve would
    -- open a new incident at once. Ticks hold this lock for milliseconds.
    PERFORM pg_advisory_xact_lock(hashtext('logmon.detect_incidents'));
    inc := lock_unresolved_incident(incident_id, 'resolved');
    SELECT e.summary INTO breach
    FROM evaluate_rules(now()) e
    WHERE e.service = inc.service AND e.incident_type = inc.incident_type AND e.breached
    ORDER BY severity_rank(e.severity) DESC LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'incident % cannot be resolved while its condition still holds (%): detection would open it again at once',
            incident_id, breach
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('To stop its notifications, silence it: POST /silences with matchers service=%s, '
                                'incident_type=%s (psql: SELECT * FROM create_silence(%L, now() + interval ''2 hours'', '
                                '''why'')). It resolves by itself once the condition has been clear for the rule''s resolve_after.',
                                to_jsonb(inc.service), to_jsonb(inc.incident_type),
                                jsonb_build_array(format('service=%s', to_jsonb(inc.service)),
                                                  format('incident_type=%s', to_jsonb(inc.incident_type))));
    END IF;
    UPDATE incidents SET status = 'resolved', resolved_at = now(), resolved_by = who
    WHERE id = incident_id RETURNING * INTO inc;
    DELETE FROM alert_state a WHERE a.service = inc.service AND a.incident_type = inc.incident_type;
    PERFORM record_incident_change(inc, 'resolved', who, now());
    RETURN NEXT inc;
END $$;

COMMENT ON FUNCTION resolve_incident(bigint, text) IS
  'Resolves an incident by hand. Refused (55000, with a hint to create a silence) while its condition still holds, '
  'since detection would open it again at once; raises 55000 for an already resolved incident and P0002 for an '
  'unknown id.';
