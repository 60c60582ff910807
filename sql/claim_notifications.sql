-- The delivery queue. A detector passes the targets it is configured with; each pending outbox
-- row fans out to one notification_deliveries row per target, and the due deliveries are
-- leased to the caller (SKIP LOCKED: any number of detectors can call this at once). A leased
-- delivery whose caller dies is due again when the lease runs out: at-least-once, and the
-- receiver can drop the repeat by its idempotency key.
CREATE OR REPLACE FUNCTION claim_notifications(targets text[], max_rows int DEFAULT 50, lease interval DEFAULT '1 minute')
RETURNS TABLE (delivery_id bigint, outbox_id bigint, incident_id bigint, target text, kind text, attempt int,
               idempotency_key text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    max_age interval;
    n_dropped bigint;
BEGIN
    IF coalesce(cardinality(targets), 0) = 0 THEN
        RETURN;
    END IF;
    SELECT s.notify_max_age INTO max_age FROM logmon_settings s;

    -- What happened long before any target was configured is history, not news.
    UPDATE notification_outbox o SET status = 'expired'
    WHERE o.status = 'pending' AND o.created_at < now() - max_age;

    -- Deliveries to a target no detector is configured with any more would wait forever.
    WITH dropped AS (
        UPDATE notification_deliveries d
        SET status = 'failed', last_error = 'target no longer configured on any detector'
        WHERE d.status = 'pending' AND d.target <> ALL (targets) AND d.next_attempt_at < now() - max_age
        RETURNING d.incident_id, d.target, d.attempts
    )
    INSERT INTO incident_events (incident_id, at, event, actor, details)
    SELECT x.incident_id, now(), 'notification_failed', x.target,
           jsonb_build_object('attempts', x.attempts, 'error', 'target no longer configured')
    FROM dropped x;
    GET DIAGNOSTICS n_dropped = ROW_COUNT;
    IF n_dropped > 0 THEN
        UPDATE notification_outbox o SET status = 'failed'
        WHERE o.status = 'dispatched'
          AND EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.outbox_id = o.id AND d.status = 'failed')
          AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.outbox_id = o.id AND d.status = 'pending');
    END IF;

    -- Silences, decided in this transaction: first tell receivers about incidents no silence holds
    -- any more, then hold what the active silences match, so that nothing silenced is fanned out
    -- or leased below.
    PERFORM release_silenced_incidents();
    PERFORM hold_silenced_notifications(targets);

    WITH fresh AS (
        UPDATE notification_outbox o SET status = 'dispatched'
        WHERE o.id IN (SELECT p.id FROM notification_outbox p WHERE p.status = 'pending'
                       ORDER BY p.id LIMIT 1000 FOR UPDATE SKIP LOCKED)
        RETURNING o.id, o.incident_id
    )
    INSERT INTO notification_deliveries (outbox_id, incident_id, target)
    SELECT f.id, f.incident_id, t.name
    FROM fresh f CROSS JOIN unnest(targets) WITH ORDINALITY AS t (name, n)
    ORDER BY f.id, t.n
    ON CONFLICT DO NOTHING;

    -- Per incident and target, in order: a 'resolved' never overtakes its 'firing'.
    RETURN QUERY
    WITH due AS (
        SELECT d.id
        FROM notification_deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND d.target = ANY (targets)
          AND NOT EXISTS (SELECT 1 FROM notification_deliveries e
                          WHERE e.incident_id = d.incident_id AND e.target = d.target
                            AND e.status = 'pending' AND e.id < d.id)
        ORDER BY d.id
        LIMIT max_rows
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE notification_deliveries d
    SET attempts = d.attempts + 1, last_attempt_at = now(), next_attempt_at = now() + lease
    FROM due, notification_outbox o
    WHERE d.id = due.id AND o.id = d.outbox_id
    RETURNING d.id, d.outbox_id, d.incident_id, d.target, o.kind, d.attempts, o.idempotency_key;
END $$;

COMMENT ON FUNCTION claim_notifications(text[], int, interval) IS
  'Fans pending notification_outbox rows out to one notification_deliveries row per target, expires those older '
  'than logmon_settings.notify_max_age (and fails deliveries to targets no longer given for that long), applies '
  'silences (release_silenced_incidents(), hold_silenced_notifications()), and leases up to max_rows due deliveries to the caller for lease. '
  'Deliveries of one incident to one target go out in order. Report each outcome with record_delivery().';
