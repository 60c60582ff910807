-- The retry policy, in one place: 2xx = delivered; no answer, 429 or 5xx = retry with exponential
-- backoff (jittered, capped, at least the receiver's Retry-After) until notify_max_attempts; any
-- other answer = failed at once (the receiver said the request itself is wrong).
CREATE OR REPLACE FUNCTION record_delivery(delivery_id bigint, http_status int, error text DEFAULT NULL,
                                           retry_after interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    d notification_deliveries;
    s logmon_settings;
    o notification_outbox;
    retryable boolean := http_status IS NULL OR http_status = 429 OR http_status >= 500;
    wait interval;
    outcome text;
BEGIN
    SELECT * INTO d FROM notification_deliveries n WHERE n.id = delivery_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no notification delivery with id %', delivery_id;
    END IF;
    IF d.status <> 'pending' THEN
        RETURN d.status;  -- settled already (e.g. by another detector after this one's lease ran out)
    END IF;
    SELECT * INTO s FROM logmon_settings;
    SELECT * INTO o FROM notification_outbox n WHERE n.id = d.outbox_id;

    IF http_status BETWEEN 200 AND 299 THEN
        outcome := 'delivered';
        UPDATE notification_deliveries n
        SET status = outcome, delivered_at = now(), last_http_status = http_status, last_error = NULL
        WHERE n.id = d.id;
        INSERT INTO incident_events (incident_id, at, event, actor, details)
        VALUES (d.incident_id, now(), 'notified', d.target,
                jsonb_build_object('kind', o.kind, 'attempts', d.attempts, 'idempotency_key', o.idempotency_key));
    ELSIF retryable AND d.attempts < s.notify_max_attempts THEN
        outcome := 'pending';
        -- base * 2^(attempt-1), jittered +-20% so that many deliveries do not retry in step, then
        -- capped. A Retry-After raises the wait (up to the cap). Careful: least()/greatest()
        -- ignore NULLs, so a missing Retry-After must not reach them (it would mean "the cap").
        wait := least(s.notify_backoff_max,
                      s.notify_backoff_base * power(2, least(d.attempts - 1, 30)) * (0.8 + 0.4 * random()));
        IF retry_after IS NOT NULL THEN
            wait := greatest(wait, least(retry_after, s.notify_backoff_max));
        END IF;
        UPDATE notification_deliveries n
        SET next_attempt_at = now() + wait, last_http_status = http_status,
            last_error = coalesce(error, format('HTTP %s', http_status))
        WHERE n.id = d.id;
    ELSE
        outcome := 'failed';
        UPDATE notification_deliveries n
        SET status = outcome, last_http_status = http_status,
            last_error = coalesce(error, format('HTTP %s', http_status))
                         || CASE WHEN retryable THEN format(' (gave up after %s attempts)', d.attempts)
                                 ELSE ' (not retried: the receiver refused the request)' END
        WHERE n.id = d.id;
        INSERT INTO incident_events (incident_id, at, event, actor, details)
        VALUES (d.incident_id, now(), 'notification_failed', d.target,
                jsonb_build_object('kind', o.kind, 'attempts', d.attempts, 'http_status', http_status, 'error', error));
    END IF;

    PERFORM summarise_outbox(d.outbox_id);
    RETURN outcome;
END $$;

COMMENT ON FUNCTION record_delivery(bigint, int, text, interval) IS
  'Records one delivery attempt: http_status NULL = no answer (connection error, timeout). 2xx -> delivered '
  '(and a notified event on the incident); NULL, 429, 5xx -> retried after notify_backoff_base * 2^(attempt-1), '
  'jittered, capped at notify_backoff_max, at least retry_after, until notify_max_attempts; anything else -> '
  'failed at once. Returns the delivery''s status.';
