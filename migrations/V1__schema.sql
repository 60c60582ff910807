-- logmon data model (DESIGN §2). Tables and indexes only: functions live in sql/ and are
-- re-applied on every `logmon migrate`.

-- One row of settings a DBA tunes with UPDATE.
CREATE TABLE logmon_settings (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    retention            interval NOT NULL DEFAULT '7 days' CHECK (retention >= '1 day'),
    premake_days         int      NOT NULL DEFAULT 3 CHECK (premake_days BETWEEN 1 AND 60),
    rollup_coarsen_after interval NOT NULL DEFAULT '15 minutes' CHECK (rollup_coarsen_after >= '2 minutes'),
    max_future_skew      interval NOT NULL DEFAULT '1 day' CHECK (max_future_skew BETWEEN '1 minute' AND '2 days')
);
INSERT INTO logmon_settings DEFAULT VALUES;
COMMENT ON TABLE logmon_settings IS
  'logmon settings (one row). retention: partitions and rollups older than this are dropped by maintain_partitions(); '
  'premake_days: daily partitions created ahead; rollup_coarsen_after: per-second rollup buckets older than this are '
  'merged into per-minute buckets by compact_rollup(); max_future_skew: how far in the future a log ts may be.';

CREATE TABLE logs (
    ts          timestamptz      NOT NULL,
    service     text             NOT NULL CHECK (service <> '' AND length(service) <= 256),
    level       text             NOT NULL CHECK (level IN ('DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL')),
    status_code int              CHECK (status_code BETWEEN 100 AND 599),
    latency_ms  double precision CHECK (latency_ms >= 0 AND latency_ms < 'Infinity'),
    message     text,
    attrs       jsonb,
    received_at timestamptz      NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);
COMMENT ON TABLE logs IS
  'Raw logs, range-partitioned by day on ts (partitions named logs_pYYYYMMDD, made by maintain_partitions()). '
  'Loading rows directly (INSERT/COPY) is supported: a row trigger keeps log_rollup exact for them.';

-- BRIN on ts: windows over recent time at almost no COPY cost (a btree (service, ts) halves COPY
-- throughput here, FIELD-NOTES). The partial btree serves "show me the recent errors" queries.
CREATE INDEX logs_ts_brin ON logs USING brin (ts) WITH (pages_per_range = 16);
CREATE INDEX logs_errors_idx ON logs (service, ts) WHERE level IN ('ERROR', 'FATAL');

-- Exact per-service rollup. Rows are additive deltas: the collector appends one row per
-- (service, second) in the same transaction as its COPY, the logs trigger appends rows for data
-- loaded by SQL, and compact_rollup() merges them. Readers always sum(), so a reader sees exactly
-- the committed raw rows, whatever compaction state it meets. Buckets are 1 second wide for
-- recent time and 60 seconds wide after rollup_coarsen_after.
CREATE TABLE log_rollup (
    service       text             NOT NULL,
    bucket        timestamptz      NOT NULL,
    width_s       smallint         NOT NULL CHECK (width_s IN (1, 60)),
    total         bigint           NOT NULL,
    errors        bigint           NOT NULL,
    latency_count bigint           NOT NULL,
    latency_sum   double precision NOT NULL,
    latency_max   double precision,
    -- latency histogram: hN counts latencies in (bound[N-1], bound[N]] ms, see latency_bounds()
    h0 bigint NOT NULL DEFAULT 0, h1 bigint NOT NULL DEFAULT 0, h2 bigint NOT NULL DEFAULT 0,
    h3 bigint NOT NULL DEFAULT 0, h4 bigint NOT NULL DEFAULT 0, h5 bigint NOT NULL DEFAULT 0,
    h6 bigint NOT NULL DEFAULT 0, h7 bigint NOT NULL DEFAULT 0, h8 bigint NOT NULL DEFAULT 0,
    h9 bigint NOT NULL DEFAULT 0, h10 bigint NOT NULL DEFAULT 0, h11 bigint NOT NULL DEFAULT 0,
    h12 bigint NOT NULL DEFAULT 0, h13 bigint NOT NULL DEFAULT 0, h14 bigint NOT NULL DEFAULT 0,
    h15 bigint NOT NULL DEFAULT 0,
    compacted     boolean          NOT NULL DEFAULT false
);
CREATE INDEX log_rollup_bucket_idx ON log_rollup (bucket);
CREATE INDEX log_rollup_service_bucket_idx ON log_rollup (service, bucket);
CREATE INDEX log_rollup_uncompacted_idx ON log_rollup (service, bucket) WHERE NOT compacted;

-- Buckets before coarsened_before may be 60 s wide; after it they are all 1 s wide.
CREATE TABLE rollup_state (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    coarsened_before timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO rollup_state DEFAULT VALUES;
COMMENT ON TABLE rollup_state IS 'Watermark of compact_rollup(): log_rollup buckets before coarsened_before may be 60 s wide.';
COMMENT ON TABLE log_rollup IS
  'Per-service rollup of logs in 1 s (recent) or 60 s buckets: additive delta rows, merged by compact_rollup(). '
  'Always read with sum() (see window_stats()); counts equal count(*) over the committed raw rows.';

CREATE TABLE detection_rules (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text     NOT NULL CHECK (name ~ '^[A-Z][A-Z0-9_]*$'),
    kind           text     NOT NULL CHECK (kind IN ('error_count', 'latency_p95', 'error_rate', 'no_data')),
    incident_type  text     NOT NULL CHECK (incident_type ~ '^[A-Z][A-Z0-9_]*$'),
    service        text,
    lookback       interval NOT NULL CHECK (lookback BETWEEN '10 seconds' AND '1 day'),
    threshold      double precision NOT NULL CHECK (threshold >= 0),
    min_events     bigint   NOT NULL DEFAULT 0 CHECK (min_events >= 0),
    baseline       interval NOT NULL DEFAULT '1 hour' CHECK (baseline BETWEEN '1 minute' AND '7 days'),
    severity       text     NOT NULL CHECK (severity IN ('LOW', 'MED', 'HIGH', 'CRITICAL')),
    pending_for    interval NOT NULL DEFAULT '0 seconds' CHECK (pending_for >= '0 seconds'),
    resolve_after  interval NOT NULL DEFAULT '1 minute' CHECK (resolve_after >= '0 seconds'),
    enabled        boolean  NOT NULL DEFAULT true,
    description    text,
    UNIQUE NULLS NOT DISTINCT (name, service)
);
COMMENT ON TABLE detection_rules IS
  'Detection rules, evaluated by detect_incidents() on every tick. service NULL = every service; a row with the same '
  'name and a service overrides it for that service. threshold means: error_count = ERROR+FATAL logs in lookback; '
  'latency_p95 = p95 ms in lookback; error_rate = z-score of the error rate in lookback against the service''s own '
  'rate over the preceding baseline; no_data = the service sent >= min_events logs in baseline and then nothing for '
  'lookback (threshold unused). min_events: fewer events in lookback never breach. Tune with UPDATE; the next tick uses it.';

INSERT INTO detection_rules (name, kind, incident_type, lookback, threshold, min_events, severity, pending_for, resolve_after, description) VALUES
  ('ERROR_SPIKE',   'error_count', 'ERROR_SPIKE',   '5 minutes', 500, 0,   'HIGH', '0 seconds',  '1 minute',
   'The original rule: many ERROR/FATAL logs in 5 minutes (threshold calibrated against the generator: 20 fired on normal traffic).'),
  ('ERROR_RATE',    'error_rate',  'ERROR_SPIKE',   '1 minute',  8,   200, 'HIGH', '10 seconds', '1 minute',
   'Error rate far above the service''s own last hour: binomial z-score >= threshold and at least min_events logs.'),
  ('LATENCY_SPIKE', 'latency_p95', 'LATENCY_SPIKE', '5 minutes', 800, 50,  'MED',  '0 seconds',  '1 minute',
   'The original rule: p95 latency >= 800 ms over 5 minutes.'),
  ('NO_DATA',       'no_data',     'NO_DATA',       '1 minute',  0,   100, 'HIGH', '0 seconds',  '30 seconds',
   'A service that sent >= min_events logs in the baseline hour has been silent for lookback.');

CREATE TABLE incidents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service       text        NOT NULL,
    incident_type text        NOT NULL,
    severity      text        NOT NULL CHECK (severity IN ('LOW', 'MED', 'HIGH', 'CRITICAL')),
    summary       text        NOT NULL,
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    resolved_at   timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_by   text,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    observed      double precision NOT NULL,
    threshold     double precision NOT NULL,
    peak          double precision NOT NULL,
    rule_id       bigint REFERENCES detection_rules (id) ON DELETE SET NULL,
    details       jsonb NOT NULL DEFAULT '{}',
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
-- The correctness guarantee behind "never a duplicate": at most one unresolved incident per
-- (service, incident_type), whatever runs concurrently.
CREATE UNIQUE INDEX incidents_one_unresolved ON incidents (service, incident_type) WHERE status <> 'resolved';
CREATE INDEX incidents_created_at_idx ON incidents (created_at DESC, id DESC);
COMMENT ON TABLE incidents IS
  'Incidents opened by detect_incidents(). status: open -> acknowledged -> resolved (or open -> resolved). '
  'At most one unresolved incident per (service, incident_type) (unique partial index incidents_one_unresolved).';

CREATE TABLE incident_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    event       text        NOT NULL CHECK (event IN ('opened', 'updated', 'escalated', 'acknowledged', 'resolved', 'notified')),
    actor       text        NOT NULL DEFAULT 'detector',
    details     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, id);
COMMENT ON TABLE incident_events IS 'Timeline of every change to an incident, written in the same transaction as the change.';

CREATE TABLE notification_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind            text        NOT NULL CHECK (kind IN ('firing', 'escalated', 'resolved')),
    idempotency_key text        NOT NULL UNIQUE,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz
);
CREATE INDEX notification_outbox_pending_idx ON notification_outbox (next_attempt_at) WHERE status = 'pending';
COMMENT ON TABLE notification_outbox IS
  'Notifications to deliver (open, escalate, resolve), written in the same transaction as the incident change.';

-- Lifecycle state per (service, incident_type), so pending/recovering survive restarts.
CREATE TABLE alert_state (
    service        text NOT NULL,
    incident_type  text NOT NULL,
    pending_since  timestamptz,
    clear_since    timestamptz,
    last_eval_at   timestamptz NOT NULL,
    PRIMARY KEY (service, incident_type)
);
COMMENT ON TABLE alert_state IS
  'Detector state per (service, incident_type): pending_since = breach seen but pending_for not yet held; '
  'clear_since = open incident whose condition is clear (recovering). See the alerts view.';
