-- What each detector process last did, so that any collector's /metrics (and a DBA) can see
-- detector health without talking to the detector.
CREATE TABLE detector_heartbeat (
    instance         text PRIMARY KEY,
    started_at       timestamptz NOT NULL,
    last_tick_at     timestamptz NOT NULL,
    last_success_at  timestamptz,
    last_duration_ms double precision,
    ticks            bigint NOT NULL DEFAULT 0,
    last_error       text
);
COMMENT ON TABLE detector_heartbeat IS
  'One row per detector process (instance = host:pid): when it last ticked, succeeded, how long detect_incidents() took.';
