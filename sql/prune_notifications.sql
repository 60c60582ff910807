-- Settled notifications (and their deliveries) are kept as long as the logs, then dropped, so
-- the outbox does not grow forever. Pending ones are never dropped here.
CREATE OR REPLACE FUNCTION prune_notifications()
RETURNS bigint
LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM notification_outbox o
        WHERE o.status IN ('delivered', 'failed', 'expired', 'silenced')
          AND o.created_at < now() - (SELECT s.retention FROM logmon_settings s)
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

COMMENT ON FUNCTION prune_notifications() IS
  'Deletes delivered, failed, expired and silenced notification_outbox rows (their deliveries cascade) older than '
  'logmon_settings.retention; returns how many. The detector runs it with partition maintenance.';
