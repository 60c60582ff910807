-- An outbox row summarises its deliveries: failed if a target refused it or retries ran out,
-- dispatched while any is pending, delivered once every target has it (or was silenced after
-- others got it), silenced when every delivery was held by a silence.
CREATE OR REPLACE FUNCTION summarise_outbox(outbox_id bigint)
RETURNS void
LANGUAGE sql AS $$
    UPDATE notification_outbox n
    SET status = x.status, delivered_at = CASE WHEN x.status = 'delivered' THEN now() END
    FROM (SELECT CASE WHEN count(*) = 0 THEN NULL
                      WHEN bool_or(e.status = 'failed') THEN 'failed'
                      WHEN bool_or(e.status = 'pending') THEN 'dispatched'
                      WHEN bool_or(e.status = 'delivered') THEN 'delivered'
                      ELSE 'silenced' END AS status
          FROM notification_deliveries e WHERE e.outbox_id = summarise_outbox.outbox_id) x
    WHERE n.id = summarise_outbox.outbox_id AND x.status IS NOT NULL AND n.status IS DISTINCT FROM x.status
$$;

COMMENT ON FUNCTION summarise_outbox(bigint) IS
  'Sets a notification_outbox row''s status from its deliveries (failed > dispatched > delivered > silenced). Called by record_delivery() and when deliveries are held by a silence.';
