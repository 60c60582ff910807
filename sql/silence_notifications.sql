-- What silences do to notifications. Both functions run inside claim_notifications(), in the
-- transaction that leases deliveries, so "held or sent" is decided at the moment a notification
-- would go out: a silence committed a moment before is honoured. `at` is the instant the silences
-- are evaluated at (now() in claim_notifications(); tests pass explicit times).

-- Holds what active silences match: unresolved incidents when the set of active silences changes
-- (so that receivers hear their state when the silence ends), notifications not fanned out yet
-- (status silenced, never sent), and due deliveries fanned out before the silence began. Each
-- held notification is written to the incident's timeline as 'silenced' with the silence id.
-- Returns how many notifications it held. Cheap when nothing changes: one index probe without
-- any silence, the active set and the pending rows otherwise.
CREATE OR REPLACE FUNCTION hold_silenced_notifications(targets text[], at timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n_outbox bigint := 0;
    n_deliveries bigint;
    touched bigint[];
    active_now uuid[];
BEGIN
    -- no silence that has not ended (max() reads one end of the index, whatever the plan)
    IF coalesce((SELECT max(s.ends_at) FROM silences s), '-infinity') <= at THEN
        RETURN 0;
    END IF;
    -- Detectors take turns here (for the rest of their claim's transaction): two claims that
    -- hold and release the same incidents in opposite orders could otherwise deadlock.
    PERFORM pg_advisory_xact_lock(hashtext('logmon.silences'));

    SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}') INTO active_now FROM silences_active_at(at) s;
    IF active_now IS DISTINCT FROM (SELECT w.active FROM silence_watch w) THEN
        -- A silence started (or a window opened): it holds the incidents already open.
        INSERT INTO notification_holds (incident_id, silence_id, held_since, recheck_at)
        SELECT i.id, b.ids[1], at, silences_active_until(b.ids, at)
        FROM incidents i, LATERAL (SELECT silenced_by(i.service, i.incident_type, i.severity, at) AS ids) b
        WHERE i.status <> 'resolved' AND cardinality(b.ids) > 0
        ON CONFLICT (incident_id) DO NOTHING;
        UPDATE silence_watch w SET active = active_now, changed_at = at;
    END IF;
    IF cardinality(active_now) = 0 THEN
        RETURN 0;
    END IF;

    -- Labels from the payload: the incident as this notification describes it.
    IF EXISTS (SELECT 1 FROM notification_outbox p WHERE p.status = 'pending') THEN
        WITH candidates AS (
            SELECT p.id, (silenced_by(p.payload ->> 'service', p.payload ->> 'incident_type', p.payload ->> 'severity', at))[1] AS sid
            FROM notification_outbox p
            WHERE p.status = 'pending'
            ORDER BY p.id LIMIT 1000
            FOR UPDATE SKIP LOCKED
        ), held AS (
            UPDATE notification_outbox o SET status = 'silenced', silence_id = c.sid
            FROM candidates c WHERE o.id = c.id AND c.sid IS NOT NULL
            RETURNING o.id, o.incident_id, o.kind, o.idempotency_key, c.sid
        ), events AS (
            INSERT INTO incident_events (incident_id, at, event, actor, details)
            SELECT h.incident_id, at, 'silenced', s.created_by,
                   jsonb_build_object('silence_id', h.sid, 'kind', h.kind, 'idempotency_key', h.idempotency_key)
            FROM held h JOIN silences s ON s.id = h.sid
            ORDER BY h.id
        ), holds AS (
            INSERT INTO notification_holds (incident_id, silence_id, held_since, recheck_at)
            SELECT DISTINCT ON (h.incident_id) h.incident_id, h.sid, at, silences_active_until(ARRAY[h.sid], at)
            FROM held h ORDER BY h.incident_id, h.id
            ON CONFLICT (incident_id) DO NOTHING
        )
        SELECT count(*) INTO n_outbox FROM held;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= now()) THEN
        RETURN n_outbox;
    END IF;

    WITH candidates AS (
        SELECT d.id, (silenced_by(o.payload ->> 'service', o.payload ->> 'incident_type', o.payload ->> 'severity', at))[1] AS sid
        FROM notification_deliveries d JOIN notification_outbox o ON o.id = d.outbox_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND d.target = ANY (targets)
        FOR UPDATE OF d SKIP LOCKED
    ), held AS (
        UPDATE notification_deliveries d SET status = 'silenced', last_error = 'held by silence ' || c.sid
        FROM candidates c WHERE d.id = c.id AND c.sid IS NOT NULL
        RETURNING d.id, d.outbox_id, d.incident_id, d.target, c.sid
    ), outbox AS (
        UPDATE notification_outbox o SET silence_id = x.sid
        FROM (SELECT DISTINCT ON (h.outbox_id) h.outbox_id, h.sid FROM held h) x WHERE o.id = x.outbox_id
        RETURNING o.id, o.kind
    ), events AS (
        INSERT INTO incident_events (incident_id, at, event, actor, details)
        SELECT h.incident_id, at, 'silenced', s.created_by,
               jsonb_build_object('silence_id', h.sid, 'kind', x.kind, 'target', h.target)
        FROM held h JOIN silences s ON s.id = h.sid JOIN outbox x ON x.id = h.outbox_id
        ORDER BY h.id
    ), holds AS (
        INSERT INTO notification_holds (incident_id, silence_id, held_since, recheck_at)
        SELECT DISTINCT ON (h.incident_id) h.incident_id, h.sid, at, silences_active_until(ARRAY[h.sid], at)
        FROM held h ORDER BY h.incident_id, h.id
        ON CONFLICT (incident_id) DO NOTHING
    )
    SELECT array_agg(DISTINCT h.outbox_id), count(*) INTO touched, n_deliveries FROM held h;
    PERFORM summarise_outbox(x) FROM unnest(touched) x;
    RETURN n_outbox + n_deliveries;
END $$;

COMMENT ON FUNCTION hold_silenced_notifications(text[], timestamptz) IS
  'Holds what the silences active at `at` match: records unresolved matched incidents in notification_holds, marks '
  'pending notifications (and due deliveries to these targets) silenced instead of sending them, with a silenced '
  'event (silence id) on the timeline. Called by claim_notifications(); returns how many were held.';

-- Tells receivers what they missed once nothing silences an incident any more (the silence
-- expired, was expired by hand, or its window closed; or the incident no longer matches): an
-- unresolved incident is notified as firing in its current state; a resolved one whose firing
-- receivers had been sent is notified as resolved; one that opened and resolved while silenced
-- sends nothing. Only holds whose recheck_at has come are looked at. The advisory lock, SKIP
-- LOCKED and the delete in the same transaction make each release happen once, whichever of N
-- detectors gets there first.
CREATE OR REPLACE FUNCTION release_silenced_incidents(at timestamptz DEFAULT now())
RETURNS TABLE (incident_id bigint, notified text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    h record;
    inc incidents;
    told text;
    kind text;
    ev_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM notification_holds n WHERE n.recheck_at <= at) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('logmon.silences'));
    FOR h IN
        SELECT n.incident_id, n.silence_id, n.held_since, silenced_by(i.service, i.incident_type, i.severity, at) AS ids
        FROM notification_holds n JOIN incidents i ON i.id = n.incident_id
        WHERE n.recheck_at <= at
        ORDER BY n.incident_id
        FOR UPDATE OF n SKIP LOCKED
    LOOP
        IF cardinality(h.ids) > 0 THEN
            -- still silenced (another silence, or the next window of a series): look again when
            -- the silences now holding it can end
            UPDATE notification_holds n SET recheck_at = silences_active_until(h.ids, at) WHERE n.incident_id = h.incident_id;
            CONTINUE;
        END IF;
        DELETE FROM notification_holds n WHERE n.incident_id = h.incident_id;
        SELECT * INTO inc FROM incidents i WHERE i.id = h.incident_id;
        -- The severity of the last firing notification that went out to a receiver.
        SELECT o.payload ->> 'severity' INTO told
        FROM notification_outbox o
        WHERE o.incident_id = inc.id AND o.kind <> 'resolved'
          AND EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.outbox_id = o.id AND d.attempts > 0)
        ORDER BY o.id DESC LIMIT 1;
        kind := CASE
            -- written after the silence ended and not sent yet: it carries the news already
            WHEN EXISTS (SELECT 1 FROM notification_outbox o WHERE o.incident_id = inc.id AND o.status = 'pending') THEN NULL
            WHEN inc.status <> 'resolved' THEN 'firing'
            WHEN told IS NOT NULL THEN 'resolved'
        END;
        INSERT INTO incident_events (incident_id, at, event, actor, details)
        VALUES (inc.id, at, 'silence_ended', 'detector',
                jsonb_build_object('silence_id', h.silence_id, 'held_since', h.held_since, 'notified', kind))
        RETURNING id INTO ev_id;
        IF kind IS NOT NULL THEN
            INSERT INTO notification_outbox (incident_id, kind, idempotency_key, payload)
            VALUES (inc.id, kind, format('logmon-%s-%s-%s', inc.id, kind, ev_id),
                    to_jsonb(inc) || jsonb_build_object('event', kind, 'previous_severity', told,
                                                        'after_silence', h.silence_id));
        END IF;
        incident_id := inc.id;
        notified := kind;
        RETURN NEXT;
    END LOOP;
END $$;

COMMENT ON FUNCTION release_silenced_incidents(timestamptz) IS
  'Releases held incidents that no silence active at `at` matches: writes a silence_ended event and notifies the '
  'current state (firing if unresolved; resolved if a firing had been sent; nothing for an incident that opened and '
  'resolved while silenced). Exactly once per hold with any number of detectors. Called by claim_notifications().';

-- A silence ended early (expire_silence(), or a DBA's UPDATE or DELETE): every hold is looked at
-- again by the next claim instead of at the end its silences had when it was last checked.
CREATE OR REPLACE FUNCTION silences_changed()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE notification_holds h SET recheck_at = now() WHERE h.recheck_at > now();
    RETURN NULL;
END $$;

COMMENT ON FUNCTION silences_changed() IS
  'Trigger on silences (after UPDATE or DELETE): sets notification_holds.recheck_at to now, so that the next '
  'claim_notifications() releases what a shortened silence no longer holds.';

CREATE OR REPLACE TRIGGER silences_changed AFTER UPDATE OR DELETE ON silences
    FOR EACH STATEMENT EXECUTE FUNCTION silences_changed();
