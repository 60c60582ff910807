-- One detection tick: evaluate the rules, then move each (service, incident_type) through its
-- lifecycle, all in the caller's transaction:
--   breach seen            -> pending (alert_state.pending_since)
--   breach held pending_for -> firing: incident opened (event + outbox 'firing')
--   breach continues       -> incident updated (last_seen_at, observed, peak, window; escalated
--                             if a stronger rule of the same type breaches: event + outbox)
--   condition clear        -> recovering (alert_state.clear_since)
--   clear for resolve_after -> resolved (event + outbox 'resolved'), keeping the summary of the
--                             breach's peak with the value it closed at beside it
-- 'updated' rows are returned (and written to the timeline) at most once a minute per incident.
-- Safe to call concurrently: callers queue on a transaction-scoped advisory lock, and the unique
-- partial index incidents_one_unresolved is the final guarantee against duplicates.
CREATE OR REPLACE FUNCTION detect_incidents(at timestamptz DEFAULT now())
RETURNS TABLE (incident_id bigint, action text, service text, incident_type text, severity text,
               status text, summary text, observed double precision, threshold double precision)
LANGUAGE plpgsql ROWS 10
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    g record;
    st alert_state;
    inc incidents;
    new_id bigint;
    pend timestamptz;
    hold interval;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('logmon.detect_incidents'));

    -- Every window of every rule adds the rollup deltas not folded yet. A collector leaves about
    -- one per (service, second) per batch and folds them every second, but a bulk write by SQL (a
    -- plain \copy of 5M rows over an hour) leaves one per (service, second) it touched, 72,000 for
    -- 20 services, and each tick read them all in its baselines: 10x slower until the next
    -- compaction. Past a few thousand, folding them once here is cheaper than reading them in
    -- every window (compact_rollup() skips if another session is folding right now). Live ticks
    -- only: folding also drops seconds older than rollup_fine_retention, and a tick run by hand at
    -- a past `at` must not coarsen the very windows it is reading to whole minutes.
    IF at >= now() - interval '1 minute'
       AND (SELECT count(*) FROM (SELECT 1 FROM log_rollup d WHERE NOT d.compacted LIMIT 5000) p) >= 5000 THEN
        PERFORM compact_rollup();
    END IF;

    FOR g IN
        WITH ev AS (SELECT * FROM evaluate_rules(at)),
        lead AS (
            -- the strongest breaching rule of each (service, type) speaks for the incident
            SELECT DISTINCT ON (e.service, e.incident_type) e.*,
                   min(e.pending_for) OVER (PARTITION BY e.service, e.incident_type) AS min_pending
            FROM ev e WHERE e.breached
            ORDER BY e.service, e.incident_type, severity_rank(e.severity) DESC, e.rule_id
        ),
        groups AS (
            SELECT e.service, e.incident_type FROM ev e
            UNION SELECT a.service, a.incident_type FROM alert_state a
            UNION SELECT i.service, i.incident_type FROM incidents i WHERE i.status <> 'resolved'
        )
        SELECT gr.service AS g_service, gr.incident_type AS g_type, l.*, cl.observed AS closing
        FROM groups gr LEFT JOIN lead l ON l.service = gr.service AND l.incident_type = gr.incident_type
        -- what the rule of an open incident reads now: the closing value, should it resolve
        LEFT JOIN LATERAL (
            SELECT e.observed FROM incidents i JOIN ev e ON e.rule_id = i.rule_id AND e.service = i.service
            WHERE i.service = gr.service AND i.incident_type = gr.incident_type AND i.status <> 'resolved'
        ) cl ON true
        ORDER BY gr.service, gr.incident_type
    LOOP
        SELECT * INTO st FROM alert_state a WHERE a.service = g.g_service AND a.incident_type = g.g_type;
        SELECT * INTO inc FROM incidents i
        WHERE i.service = g.g_service AND i.incident_type = g.g_type AND i.status <> 'resolved';

        IF g.rule_id IS NOT NULL THEN
            -- breaching
            IF inc.id IS NULL THEN
                pend := coalesce(st.pending_since, at);
                IF at - pend >= g.min_pending THEN
                    INSERT INTO incidents AS i (service, incident_type, severity, summary, created_at, last_seen_at,
                                                window_start, window_end, breach_start, observed, threshold, peak,
                                                rule_id, details)
                    VALUES (g.g_service, g.g_type, g.severity, g.summary, at, at, g.window_start, g.window_end,
                            least(g.window_start, pend - g.lookback),
                            g.observed, g.threshold, g.observed, g.rule_id,
                            jsonb_build_object('rule', g.rule_name, 'kind', g.kind, 'events', g.events, 'pending_since', pend,
                                               'opened_by', g.rule_name, 'opened_by_rule_id', g.rule_id))
                    ON CONFLICT (service, incident_type) WHERE status <> 'resolved' DO NOTHING
                    RETURNING i.id INTO new_id;
                    IF new_id IS NOT NULL THEN
                        SELECT * INTO inc FROM incidents i WHERE i.id = new_id;
                        PERFORM record_incident_change(inc, 'opened', 'detector', at);
                        incident_id := inc.id; action := 'opened';
                        service := inc.service; incident_type := inc.incident_type; severity := inc.severity;
                        status := inc.status; summary := inc.summary; observed := inc.observed; threshold := inc.threshold;
                        RETURN NEXT;
                    END IF;
                    pend := NULL;
                END IF;
                INSERT INTO alert_state AS a (service, incident_type, pending_since, clear_since, last_eval_at)
                VALUES (g.g_service, g.g_type, pend, NULL, at)
                ON CONFLICT (service, incident_type) DO UPDATE
                    SET pending_since = excluded.pending_since, clear_since = NULL, last_eval_at = excluded.last_eval_at;
            ELSE
                -- The row follows every tick; the timeline gets an 'updated' event when the figures
                -- changed and the last event is a minute old (or the breach resumed while recovering),
                -- so a long incident's timeline stays readable.
                action := CASE
                    WHEN severity_rank(g.severity) > severity_rank(inc.severity) THEN 'escalated'
                    WHEN st.clear_since IS NOT NULL THEN 'updated'
                    WHEN g.observed IS DISTINCT FROM inc.observed
                         AND (SELECT max(e.at) FROM incident_events e WHERE e.incident_id = inc.id
                              AND e.event NOT IN ('notified', 'notification_failed')) <= at - interval '1 minute'
                         THEN 'updated'
                END;
                UPDATE incidents i SET
                    last_seen_at = greatest(i.last_seen_at, at),
                    observed = g.observed,
                    threshold = g.threshold,
                    peak = CASE WHEN i.rule_id IS NOT DISTINCT FROM g.rule_id THEN greatest(i.peak, g.observed) ELSE g.observed END,
                    window_start = g.window_start,
                    window_end = g.window_end,
                    severity = CASE WHEN action = 'escalated' THEN g.severity ELSE i.severity END,
                    -- the summary tells the worst of the breach (the peak), not its latest reading
                    summary = CASE WHEN i.rule_id IS DISTINCT FROM g.rule_id OR g.observed > i.peak
                                   THEN g.summary ELSE i.summary END,
                    rule_id = g.rule_id,
                    details = i.details || jsonb_build_object('rule', g.rule_name, 'kind', g.kind, 'events', g.events)
                WHERE i.id = inc.id
                RETURNING * INTO inc;
                IF action IS NOT NULL THEN
                    PERFORM record_incident_change(inc, action, 'detector', at);
                    incident_id := inc.id;
                    service := inc.service; incident_type := inc.incident_type; severity := inc.severity;
                    status := inc.status; summary := inc.summary; observed := inc.observed; threshold := inc.threshold;
                    RETURN NEXT;
                END IF;
                UPDATE alert_state a SET pending_since = NULL, clear_since = NULL, last_eval_at = at
                WHERE a.service = g.g_service AND a.incident_type = g.g_type;
            END IF;
        ELSE
            -- clear
            IF inc.id IS NOT NULL THEN
                SELECT r.resolve_after INTO hold FROM detection_rules r WHERE r.id = inc.rule_id;
                hold := coalesce(hold, interval '0');
                IF at - coalesce(st.clear_since, at) >= hold THEN
                    -- it keeps the summary of its breach, with the value it closed at beside it
                    UPDATE incidents i SET status = 'resolved', resolved_at = at, resolved_by = 'detector',
                        observed = coalesce(g.closing, i.observed),
                        summary = CASE WHEN g.closing IS NULL THEN i.summary
                                       WHEN i.details ->> 'kind' = 'no_data'
                                       THEN format('%s; resolved with %s logs in its window', i.summary, g.closing)
                                       ELSE format('%s; resolved at %s (threshold %s)', i.summary, g.closing, i.threshold) END,
                        details = i.details || jsonb_build_object('closing_observed', g.closing)
                    WHERE i.id = inc.id RETURNING * INTO inc;
                    PERFORM record_incident_change(inc, 'resolved', 'detector', at);
                    incident_id := inc.id; action := 'resolved';
                    service := inc.service; incident_type := inc.incident_type; severity := inc.severity;
                    status := inc.status; summary := inc.summary; observed := inc.observed; threshold := inc.threshold;
                    RETURN NEXT;
                    DELETE FROM alert_state a WHERE a.service = g.g_service AND a.incident_type = g.g_type;
                ELSE
                    INSERT INTO alert_state AS a (service, incident_type, pending_since, clear_since, last_eval_at)
                    VALUES (g.g_service, g.g_type, NULL, coalesce(st.clear_since, at), at)
                    ON CONFLICT (service, incident_type) DO UPDATE
                        SET pending_since = NULL, clear_since = excluded.clear_since, last_eval_at = excluded.last_eval_at;
                END IF;
            ELSIF st.service IS NOT NULL THEN
                -- a pending breach that did not hold
                DELETE FROM alert_state a WHERE a.service = g.g_service AND a.incident_type = g.g_type;
            END IF;
        END IF;
    END LOOP;
END $$;

COMMENT ON FUNCTION detect_incidents(timestamptz) IS
  'One detection tick at `at` (default now()): evaluates detection_rules and opens, updates, escalates or resolves '
  'incidents, writing incident_events and notification_outbox rows in the same transaction. Returns what changed. '
  'Safe to run concurrently (advisory lock + unique index). Folds the rollup''s pending deltas first (compact_rollup()) '
  'when thousands are pending, as after a bulk write by SQL. Example: SELECT * FROM detect_incidents();';
