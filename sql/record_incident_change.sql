-- The bookkeeping every incident change shares: a timeline event, and for the changes people
-- are told about (open, escalate, resolve) an outbox row with an idempotency key, plus a NOTIFY
-- for anyone waiting on incidents. Acknowledged incidents are not re-notified of escalations.
CREATE OR REPLACE FUNCTION record_incident_change(inc incidents, event text, actor text, at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ev_id bigint;
    kind text := CASE event WHEN 'opened' THEN 'firing' WHEN 'escalated' THEN 'escalated' WHEN 'resolved' THEN 'resolved' END;
    previous_severity text;
BEGIN
    IF kind = 'escalated' THEN
        -- Alertmanager keys alerts by labels, severity included: it must be told to end the old one.
        SELECT e.details ->> 'severity' INTO previous_severity
        FROM incident_events e WHERE e.incident_id = inc.id AND e.details ? 'severity' ORDER BY e.id DESC LIMIT 1;
    END IF;
    INSERT INTO incident_events (incident_id, at, event, actor, details)
    VALUES (inc.id, at, event, actor,
            jsonb_build_object('severity', inc.severity, 'summary', inc.summary, 'observed', inc.observed,
                               'threshold', inc.threshold, 'status', inc.status))
    RETURNING id INTO ev_id;
    IF kind IS NOT NULL AND NOT (kind = 'escalated' AND inc.status = 'acknowledged') THEN
        INSERT INTO notification_outbox (incident_id, kind, idempotency_key, payload)
        VALUES (inc.id, kind, format('logmon-%s-%s-%s', inc.id, kind, ev_id), to_jsonb(inc) || jsonb_build_object('event', kind, 'previous_severity', previous_severity));
    END IF;
    IF kind IS NOT NULL THEN
        PERFORM pg_notify('logmon_incidents', json_build_object('id', inc.id, 'event', event)::text);
    END IF;
END $$;

COMMENT ON FUNCTION record_incident_change(incidents, text, text, timestamptz) IS
  'Writes the incident_events row (and for opened/escalated/resolved the notification_outbox row and a NOTIFY on '
  'logmon_incidents) for one incident change. Called by detect_incidents(), acknowledge_incident(), resolve_incident().';
