-- Notifications fan out to every configured target (webhooks, Slack, Alertmanager), each with its
-- own attempts, backoff and outcome: one outbox row (what happened) -> one delivery per target.
-- The outbox keeps the summary status; the per-attempt bookkeeping moves to the deliveries.
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_status_check;
UPDATE notification_outbox SET status = 'expired' WHERE status = 'failed';
ALTER TABLE notification_outbox
    ADD CONSTRAINT notification_outbox_status_check
        CHECK (status IN ('pending', 'dispatched', 'delivered', 'failed', 'expired')),
    DROP COLUMN attempts,
    DROP COLUMN next_attempt_at,
    DROP COLUMN last_error;
DROP INDEX IF EXISTS notification_outbox_pending_idx;
CREATE INDEX notification_outbox_pending_idx ON notification_outbox (id) WHERE status = 'pending';
COMMENT ON TABLE notification_outbox IS
  'Notifications to send (firing, escalated, resolved), written in the same transaction as the incident change. '
  'status: pending (no detector with targets has taken it yet), dispatched (fanned out to notification_deliveries), '
  'delivered (every target has it), failed (a target refused it or retries ran out), expired (older than '
  'logmon_settings.notify_max_age when first seen by a detector with targets).';

CREATE TABLE notification_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id        bigint      NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    incident_id      bigint      NOT NULL,
    target           text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         int         NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_http_status int,
    last_error       text,
    delivered_at     timestamptz,
    UNIQUE (outbox_id, target)
);
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_order_idx ON notification_deliveries (incident_id, target, id) WHERE status = 'pending';
COMMENT ON TABLE notification_deliveries IS
  'One row per (notification, target): attempts, next_attempt_at (exponential backoff), last_http_status, '
  'last_error. Targets are named kind:host#hash (the URL itself may hold a secret). A DBA can retry a failed '
  'delivery with UPDATE notification_deliveries SET status = ''pending'', attempts = 0, next_attempt_at = now() WHERE id = ...';

ALTER TABLE logmon_settings
    ADD COLUMN notify_backoff_base interval NOT NULL DEFAULT '1 second' CHECK (notify_backoff_base > '0'),
    ADD COLUMN notify_backoff_max  interval NOT NULL DEFAULT '5 minutes' CHECK (notify_backoff_max > '0'),
    ADD COLUMN notify_max_attempts int      NOT NULL DEFAULT 20 CHECK (notify_max_attempts >= 1),
    ADD COLUMN notify_max_age      interval NOT NULL DEFAULT '1 hour' CHECK (notify_max_age > '0');
COMMENT ON COLUMN logmon_settings.notify_backoff_base IS 'Delay before the first retry of a failed delivery; doubles per attempt.';
COMMENT ON COLUMN logmon_settings.notify_backoff_max IS 'Longest delay between two attempts (a Retry-After is honoured up to this).';
COMMENT ON COLUMN logmon_settings.notify_max_attempts IS 'Attempts per delivery before it is marked failed.';
COMMENT ON COLUMN logmon_settings.notify_max_age IS 'Notifications older than this when a detector with targets first sees them are expired, not sent.';

ALTER TABLE incident_events DROP CONSTRAINT incident_events_event_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_event_check
    CHECK (event IN ('opened', 'updated', 'escalated', 'acknowledged', 'resolved', 'notified', 'notification_failed'));
