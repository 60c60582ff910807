-- An incident as a Prometheus Alertmanager alert (API v2 PostableAlert). The same object, with
-- status and fingerprint added, is an alert of the webhook v4 body; see render_notification().
CREATE OR REPLACE FUNCTION rfc3339_utc(t timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

COMMENT ON FUNCTION rfc3339_utc(timestamptz) IS 'A timestamp as RFC 3339 in UTC with microseconds, as Alertmanager writes them.';

CREATE OR REPLACE FUNCTION incident_alert(inc incidents, severity text, ends_at timestamptz, public_url text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'labels', jsonb_build_object(
            'alertname', inc.incident_type,
            'service', inc.service,
            'severity', lower(severity),
            'incident_id', inc.id::text,
            'source', 'logmon'),
        'annotations', jsonb_build_object(
            'summary', inc.summary,
            'description', format('%s %s on %s since %s: observed %s, threshold %s (window %s .. %s)',
                                  severity, inc.incident_type, inc.service, rfc3339_utc(inc.created_at),
                                  inc.observed, inc.threshold, rfc3339_utc(inc.window_start), rfc3339_utc(inc.window_end)),
            'observed', inc.observed::text,
            'threshold', inc.threshold::text,
            'peak', inc.peak::text,
            'status', inc.status)
            || CASE WHEN inc.acknowledged_by IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('acknowledged_by', inc.acknowledged_by) END
            -- what it is made of (strings, as annotations must be): see incident_context_text()
            || jsonb_strip_nulls(jsonb_build_object('top_patterns', c.top_patterns, 'sample_lines', c.sample_lines)),
        'startsAt', rfc3339_utc(inc.created_at),
        -- Alertmanager's "no end" in webhook bodies is the zero time
        'endsAt', coalesce(rfc3339_utc(ends_at), '0001-01-01T00:00:00Z'),
        'generatorURL', rtrim(public_url, '/') || '/incidents/' || inc.id)
    FROM incident_context_text(inc.id) c
$$;

COMMENT ON FUNCTION incident_alert(incidents, text, timestamptz, text) IS
  'One incident as an Alertmanager alert: labels alertname (= incident_type), service, severity (lower case), '
  'incident_id, source; annotations summary, description, observed, threshold, peak, status (open, acknowledged, '
  'resolved), acknowledged_by, top_patterns and sample_lines (incident_context_text()); startsAt = created_at; '
  'endsAt = ends_at (NULL: the zero time); generatorURL = public_url/incidents/id.';

CREATE OR REPLACE FUNCTION alertmanager_alerts(public_url text, hold interval DEFAULT '5 minutes')
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(incident_alert(i, i.severity, now() + hold, public_url) ORDER BY i.id), '[]')
    FROM incidents i
    WHERE i.status <> 'resolved' AND cardinality(silenced_by(i.service, i.incident_type, i.severity)) = 0
$$;

COMMENT ON FUNCTION alertmanager_alerts(text, interval) IS
  'Every unresolved incident that no active silence matches as a firing Alertmanager alert ending at now() + hold. The detector re-posts this '
  'every minute, as Prometheus does, so Alertmanager never times a live incident out, and an incident whose '
  'detector is gone stops firing after hold.';
