-- The lines behind an incident: its service, over its window (from the start of the breach that
-- opened it to its resolution, or now), filtered by what its rule counts: ERROR/FATAL lines for
-- error and new-pattern rules, lines at or above the latency threshold for latency rules, and for NO_DATA the last
-- lines before the silence. Further filters narrow it like search_logs()'s.
CREATE OR REPLACE FUNCTION incident_logs(
    incident_id bigint,
    lim int DEFAULT 100,
    after text DEFAULT NULL,
    q text DEFAULT NULL,
    status_code text DEFAULT NULL,
    min_latency_ms double precision DEFAULT NULL,
    attrs jsonb DEFAULT NULL,
    pattern bigint DEFAULT NULL,
    newest_first boolean DEFAULT true)
RETURNS SETOF log_line
LANGUAGE plpgsql STABLE AS $$
DECLARE
    inc incidents;
    rule_kind text;
    lookback interval;
    lo timestamptz;
    hi timestamptz;
    lvl text;
    min_lat double precision := min_latency_ms;
BEGIN
    SELECT * INTO inc FROM incidents i WHERE i.id = incident_logs.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'incident % does not exist', incident_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT r.kind, r.lookback INTO rule_kind, lookback FROM detection_rules r WHERE r.id = inc.rule_id;
    rule_kind := coalesce(rule_kind, CASE inc.incident_type WHEN 'LATENCY_SPIKE' THEN 'latency_p95'
                                                            WHEN 'NO_DATA' THEN 'no_data' ELSE 'error_count' END);
    lo := coalesce(inc.breach_start, inc.window_start);
    hi := coalesce(inc.resolved_at, now()) + interval '1 microsecond';
    CASE rule_kind
    WHEN 'error_count', 'error_rate', 'new_pattern' THEN
        lvl := 'ERROR';
    WHEN 'latency_p95' THEN
        min_lat := greatest(coalesce(min_latency_ms, 0), inc.threshold);
    WHEN 'no_data' THEN
        -- the service was silent from lo on: its last lines came before
        hi := lo;
        lo := lo - greatest(coalesce(lookback, interval '1 minute'), interval '1 hour');
    ELSE
        NULL;
    END CASE;
    RETURN QUERY SELECT * FROM search_logs(service => inc.service, level => lvl, since => lo, until => hi, q => q,
                                           status_code => status_code, min_latency_ms => min_lat, attrs => attrs,
                                           pattern => pattern, lim => lim, newest_first => newest_first, after => after);
END $$;

COMMENT ON FUNCTION incident_logs(bigint, int, text, text, text, double precision, jsonb, bigint, boolean) IS
  'The log lines behind an incident, newest first: its service from the start of the breach that opened it '
  '(incidents.breach_start) to its resolution or now, filtered by what its rule counts (ERROR/FATAL lines for error '
  'rules, latency >= the threshold for latency rules, the last lines before the silence for NO_DATA). The other '
  'arguments narrow it as in search_logs(). Example: SELECT ts, level, message FROM incident_logs(42, 20);';
