-- Slack reads <...> as links and mentions (<!channel> pings everyone): text that came from log
-- senders, such as a service name, is escaped the way Slack asks.
CREATE OR REPLACE FUNCTION slack_escape(t text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT replace(replace(replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')
$$;

COMMENT ON FUNCTION slack_escape(text) IS 'Escapes &, < and > for Slack message text.';

-- What is sent for one notification, per target format. Built in SQL so a DBA sees exactly what a
-- receiver got: SELECT render_notification(id, 'webhook', 'http://logmon:8080') FROM notification_outbox ...
CREATE OR REPLACE FUNCTION render_notification(outbox_id bigint, target_format text, public_url text)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o notification_outbox;
    inc incidents;
    state text;
    alert jsonb;
    url text := rtrim(public_url, '/');
BEGIN
    SELECT * INTO o FROM notification_outbox n WHERE n.id = outbox_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no notification with id %', outbox_id;
    END IF;
    -- The incident as it was when this notification was written, not as it is now.
    inc := jsonb_populate_record(NULL::incidents, o.payload);
    state := CASE o.kind WHEN 'resolved' THEN 'resolved' ELSE 'firing' END;
    CASE target_format
    WHEN 'webhook' THEN
        alert := incident_alert(inc, inc.severity, inc.resolved_at, url);
        -- Stable for the incident's life: an escalation changes the severity label, not the alert
        -- a receiver is tracking.
        alert := alert || jsonb_build_object('status', state,
                                             'fingerprint', left(md5(((alert -> 'labels') - 'severity')::text), 16));
        RETURN jsonb_build_object(
            'version', '4',
            'groupKey', format('{}:{incident_id="%s"}', inc.id),
            'truncatedAlerts', 0,
            'status', state,
            'receiver', 'logmon',
            'groupLabels', jsonb_build_object('incident_id', inc.id::text),
            'commonLabels', alert -> 'labels',
            'commonAnnotations', alert -> 'annotations',
            'externalURL', url,
            'alerts', jsonb_build_array(alert),
            -- not in Alertmanager's format; receivers written for it ignore it
            'logmon', jsonb_build_object('event', o.kind, 'idempotency_key', o.idempotency_key,
                                         'incident_id', inc.id, 'incident_status', inc.status,
                                         'context', (SELECT c.context FROM incident_context_text(inc.id) c))
                      || CASE WHEN o.payload ? 'after_silence'
                              THEN jsonb_build_object('after_silence', o.payload -> 'after_silence') ELSE '{}' END);
    WHEN 'slack' THEN
        RETURN jsonb_build_object('text', format('%s *[%s] %s %s* on `%s`: %s%s <%s|incident #%s>%s',
            CASE o.kind WHEN 'firing' THEN ':rotating_light:' WHEN 'escalated' THEN ':arrow_double_up:'
                        ELSE ':white_check_mark:' END,
            CASE o.kind WHEN 'escalated' THEN 'ESCALATED' ELSE upper(state) END,
            inc.severity, inc.incident_type, slack_escape(inc.service), slack_escape(inc.summary),
            CASE WHEN o.kind = 'resolved'
                 THEN format(' (lasted %s)', date_trunc('second', inc.resolved_at - inc.created_at)) ELSE '' END,
            url || '/incidents/' || inc.id, inc.id,
            CASE WHEN NOT o.payload ? 'after_silence' THEN ''
                 WHEN o.kind = 'resolved' THEN ' (resolved while silenced)' ELSE ' (still firing after a silence)' END)
            -- what it is made of, quoted under the headline (escaped: log text comes from senders)
            || coalesce((SELECT E'\n>*Top patterns*\n>' || replace(slack_escape(c.top_patterns), E'\n', E'\n>')
                                || coalesce(E'\n>*Sample lines*\n>' || replace(slack_escape(c.sample_lines), E'\n', E'\n>'), '')
                         FROM incident_context_text(inc.id) c WHERE o.kind <> 'resolved'), ''));
    WHEN 'alertmanager' THEN
        IF o.kind = 'resolved' THEN
            RETURN jsonb_build_array(incident_alert(inc, inc.severity, inc.resolved_at, url));
        END IF;
        alert := incident_alert(inc, inc.severity, now() + interval '5 minutes', url);
        -- Severity is a label, so an escalation is a new alert: end the one at the old severity
        -- (also when a silence ends on an incident that escalated while it was held).
        IF o.payload ->> 'previous_severity' <> inc.severity THEN
            RETURN jsonb_build_array(alert, incident_alert(inc, o.payload ->> 'previous_severity', now(), url));
        END IF;
        RETURN jsonb_build_array(alert);
    ELSE
        RAISE EXCEPTION 'unknown notification format %: use webhook, slack or alertmanager', target_format;
    END CASE;
END $$;

COMMENT ON FUNCTION render_notification(bigint, text, text) IS
  'The request body for one notification_outbox row: target_format webhook = Alertmanager webhook v4 (version, status, '
  'alerts[] with labels, annotations, startsAt, endsAt, fingerprint (stable per incident, severity aside); plus a logmon object with the event, '
  'idempotency key and after_silence when a silence ending re-notifies), slack = {"text": ...}, alertmanager = the alert list for POST /api/v2/alerts. public_url '
  'is where people reach logmon (links).';
