-- Silences and maintenance windows: they hold back notifications only (detection, incidents and
-- their timeline go on). Matching, state and schedule are SQL functions in sql/ (silence_*.sql);
-- the held-or-sent decision is taken by claim_notifications().

-- A silence is a one-off (starts_at .. ends_at) or a recurring maintenance window: on weekdays,
-- while the wall clock in time_zone reads start_time .. end_time, between starts_at and ends_at
-- (ends_at = 'infinity': no end date). Its state (pending, active, expired) is computed by
-- silence_state(), never stored. Expiring a silence (expire_silence()) moves ends_at to now and
-- keeps the row.
CREATE TABLE silences (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    matchers    jsonb       NOT NULL CHECK (jsonb_typeof(matchers) = 'array' AND jsonb_array_length(matchers) > 0),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text        NOT NULL CHECK (created_by <> ''),
    comment     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    weekdays    smallint[]  CHECK (weekdays <@ ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[] AND cardinality(weekdays) > 0),
    start_time  time,
    end_time    time,
    time_zone   text,
    expired_by  text,
    replaced_by uuid        REFERENCES silences (id) ON DELETE SET NULL,
    -- matchers compiled by compile_matchers(): one anchored regex per label, NULL = any
    match_service       text,
    match_incident_type text,
    match_severity      text,
    CHECK (ends_at >= starts_at),
    CHECK (num_nulls(weekdays, start_time, end_time, time_zone) IN (0, 4)),
    CHECK (start_time <> end_time)
);
-- "Not expired yet" is a range scan, however many expired silences are kept.
CREATE INDEX silences_ends_at_idx ON silences (ends_at);
COMMENT ON TABLE silences IS
  'Silences and recurring maintenance windows: while one is active, notifications of the incidents its matchers '
  'match are held (recorded as silenced in the timeline, never sent); detection and incidents go on. Create with '
  'create_silence(), end with expire_silence(); state with silence_state(s); see the active_silences view.';
COMMENT ON COLUMN silences.matchers IS
  'Alertmanager matchers, all of which must hold: [{"name": "service"|"incident_type"|"alertname"|"severity", '
  '"value": ..., "isRegex": bool, "isEqual": bool}]. Regexes are anchored; severity compares case-insensitively.';
COMMENT ON COLUMN silences.ends_at IS
  'End of the silence (of the series, for a recurring one; infinity = no end date). expire_silence() sets it to now.';
COMMENT ON COLUMN silences.weekdays IS 'Recurring: ISO days of the week (1 = Monday .. 7 = Sunday) on which a window starts.';
COMMENT ON COLUMN silences.start_time IS
  'Recurring: wall-clock start in time_zone. The window is active while the wall clock reads start_time .. end_time '
  '(end_time <= start_time: it ends the next day), so it follows daylight saving time.';
COMMENT ON COLUMN silences.time_zone IS 'Recurring: IANA time zone of the window (e.g. Europe/Berlin).';
COMMENT ON COLUMN silences.replaced_by IS 'Set when an update (POST with this id) expired it in favour of a new silence.';
COMMENT ON COLUMN silences.match_service IS
  'matchers compiled by compile_matchers() (with match_incident_type, match_severity): what silence_matches() tests.';

-- Incidents a silence is holding: matched by an active silence while unresolved, or whose
-- notification was held. When no active silence matches any more, release_silenced_incidents()
-- tells the receivers the incident's current state and deletes the row.
CREATE TABLE notification_holds (
    incident_id bigint      PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    silence_id  uuid        REFERENCES silences (id) ON DELETE SET NULL,
    held_since  timestamptz NOT NULL,
    recheck_at  timestamptz NOT NULL
);
-- Holds are looked at when they may be released, not on every claim.
CREATE INDEX notification_holds_recheck_idx ON notification_holds (recheck_at);
COMMENT ON TABLE notification_holds IS
  'Incidents held by a silence (matched while unresolved, or a notification held). Released by '
  'release_silenced_incidents() (run by claim_notifications()) once no active silence matches: the current state is '
  'notified then (firing if unresolved; resolved if receivers had been told it fired). recheck_at: the earliest '
  'moment the silences holding it can end (the end of their current window; now after expire_silence()).';

-- The active silences the last claim saw: when the set changes (a silence is created, starts, or a
-- window opens), claim_notifications() holds the unresolved incidents it matches, once.
CREATE TABLE silence_watch (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    active     uuid[]  NOT NULL DEFAULT '{}',
    changed_at timestamptz
);
INSERT INTO silence_watch DEFAULT VALUES;
COMMENT ON TABLE silence_watch IS
  'One row: the ids of the silences active at the last claim_notifications() (hold_silenced_notifications() holds '
  'the unresolved incidents a changed set matches).';

ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_status_check;
ALTER TABLE notification_outbox
    ADD CONSTRAINT notification_outbox_status_check
        CHECK (status IN ('pending', 'dispatched', 'delivered', 'failed', 'expired', 'silenced')),
    ADD COLUMN silence_id uuid REFERENCES silences (id) ON DELETE SET NULL;
COMMENT ON COLUMN notification_outbox.silence_id IS 'The silence that held this notification (status silenced).';

ALTER TABLE notification_deliveries DROP CONSTRAINT notification_deliveries_status_check;
ALTER TABLE notification_deliveries ADD CONSTRAINT notification_deliveries_status_check
    CHECK (status IN ('pending', 'delivered', 'failed', 'silenced'));

ALTER TABLE incident_events DROP CONSTRAINT incident_events_event_check;
ALTER TABLE incident_events ADD CONSTRAINT incident_events_event_check
    CHECK (event IN ('opened', 'updated', 'escalated', 'acknowledged', 'resolved', 'notified', 'notification_failed',
                     'silenced', 'silence_ended'));
