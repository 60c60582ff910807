-- "What would these rules have opened last week?" Replays detection over a past period from the
-- rollup, without writing anything: the same verdicts (rule_verdict()) and the same lifecycle as
-- detect_incidents() (pending_for, resolve_after, escalation to a stronger rule of the same
-- incident_type, one incident per (service, incident_type), per-service overrides), at every step
-- of the period. `rules` replaces the rule set for the replay (a JSON array shaped like
-- detection_rules rows, checked like them by check_rules()):
--   SELECT * FROM backtest_rules(now() - interval '7 days');
--   SELECT * FROM backtest_rules(now() - interval '7 days', rules => (
--       SELECT jsonb_agg(to_jsonb(r) || CASE WHEN r.name = 'ERROR_SPIKE' THEN '{"threshold": 300}'::jsonb ELSE '{}' END)
--       FROM detection_rules r));

-- The steps a replay evaluates: from `since` (rounded up to the resolution) to `until` (at most
-- now: a step in the future would see silence everywhere), every `step`. By default the step is
-- the rollup's resolution for the period: 1 second when it lies within rollup_fine_retention, else
-- 1 minute. The resolution (res) is 1 minute for steps of whole minutes, else 1 second. A replay
-- reads at most 20,000 one-second buckets per service (lookback and baseline before `since`
-- included): beyond, its step becomes whole minutes, as /timeseries raises a too-fine step; and at
-- most 100,000 one-minute buckets.
CREATE OR REPLACE FUNCTION backtest_period(since timestamptz, until timestamptz DEFAULT now(), step interval DEFAULT NULL,
                                           rules jsonb DEFAULT NULL,
                                           OUT first_at timestamptz, OUT last_at timestamptz, OUT every interval,
                                           OUT res interval, OUT reach interval)
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp
AS $$
DECLARE
    s logmon_settings;
    fine timestamptz;
    step_s double precision;
    res_s double precision;
BEGIN
    SELECT * INTO s FROM logmon_settings;
    SELECT greatest(r.fine_since, date_trunc('minute', now() - s.rollup_fine_retention)) INTO fine FROM rollup_state r;
    IF rules IS NULL THEN
        SELECT max(r.lookback + r.baseline) INTO reach FROM detection_rules r WHERE r.enabled;
    ELSE
        SELECT max(r.lookback + r.baseline) INTO reach FROM check_rules(rules) r WHERE r.enabled;
    END IF;
    reach := coalesce(reach, interval '0');
    until := least(coalesce(until, now()), now());
    -- nothing is kept from before the retention
    since := greatest(since, now() - s.retention);
    IF since IS NULL OR since >= until THEN
        RAISE EXCEPTION 'since must be before until (and now), got since % and until %', since, until
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'since';
    END IF;
    every := coalesce(step, CASE WHEN since >= fine THEN interval '1 second' ELSE interval '1 minute' END);
    step_s := extract(epoch FROM every);
    IF step_s < 1 OR step_s <> floor(step_s) OR every > interval '1 day' THEN
        RAISE EXCEPTION 'step must be whole seconds between 1 second and 1 day, got %', every
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'step';
    END IF;
    IF step_s::bigint % 60 <> 0
       AND extract(epoch FROM until - since + reach) > 20000 THEN
        every := make_interval(mins => ceil(step_s / 60)::int);
        step_s := extract(epoch FROM every);
    END IF;
    res := CASE WHEN step_s::bigint % 60 = 0 THEN interval '1 minute' ELSE interval '1 second' END;
    res_s := extract(epoch FROM res);
    IF extract(epoch FROM until - since + reach) / res_s > 100000 THEN
        RAISE EXCEPTION 'a replay reads at most 100000 one-minute buckets per service: % plus the rules'' lookback and '
                        'baseline (%) is too long', until - since, reach
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'since';
    END IF;
    first_at := to_timestamp(ceil(extract(epoch FROM since) / res_s) * res_s);
    last_at := first_at + make_interval(secs => floor(extract(epoch FROM until - first_at) / step_s) * step_s);
    IF first_at > until THEN
        RAISE EXCEPTION 'the period % .. % holds no whole step of %', since, until, res
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'since';
    END IF;
END $$;

COMMENT ON FUNCTION backtest_period(timestamptz, timestamptz, interval, jsonb) IS
  'The steps backtest_rules() evaluates for a period: first_at .. last_at every `every`, read at resolution res (1 s or '
  '1 min); reach is the longest lookback + baseline of the rules (read before first_at). Default step: 1 s within '
  'rollup_fine_retention, else 1 min; a step finer than a minute becomes whole minutes beyond 20,000 one-second '
  'buckets. Raises 22023 naming since or step.';

CREATE OR REPLACE FUNCTION backtest_rules(since timestamptz, until timestamptz DEFAULT now(), step interval DEFAULT NULL,
                                          rules jsonb DEFAULT NULL)
RETURNS TABLE (service text, incident_type text, severity text, opened_at timestamptz, resolved_at timestamptz,
               rule_id bigint, rule_name text, observed double precision, peak double precision,
               threshold double precision)
LANGUAGE plpgsql STABLE ROWS 100
SET jit = off
SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p record;
    rs detection_rules[];
    b record;
    -- the (service, incident_type) being replayed, and its state (alert_state and incidents, live)
    cur_service text;
    cur_type text;
    prev_at timestamptz;
    pending_since timestamptz;
    clear_since timestamptz;
    is_open boolean := false;
    o_ord bigint;
    o_hold interval;
    resolve_at timestamptz;
BEGIN
    SELECT * INTO p FROM backtest_period(since, until, step, rules);
    IF rules IS NULL THEN
        SELECT array_agg(r ORDER BY r.id) INTO rs FROM detection_rules r;
    ELSE
        SELECT array_agg(r) INTO rs FROM check_rules(rules) r;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(rs) r WHERE r.enabled AND r.lookback < p.res) THEN
        RAISE EXCEPTION 'a step of whole minutes reads whole minutes, and rule % looks back %: use a step of seconds',
            (SELECT r.name FROM unnest(rs) r WHERE r.enabled AND r.lookback < p.res LIMIT 1),
            (SELECT r.lookback FROM unnest(rs) r WHERE r.enabled AND r.lookback < p.res LIMIT 1)
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'step';
    END IF;

    -- The lifecycle, per (service, incident_type), over the breaching steps only (in between, every
    -- step is clear); a last row with no service closes the last series.
    FOR b IN
        SELECT x.* FROM (
            SELECT rb.*, false AS done FROM replay_breaches(p.first_at, p.last_at, p.every, p.res, rs) rb
            UNION ALL
            SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true
        ) x
        ORDER BY x.done, x.service, x.incident_type, x.at
    LOOP
        IF b.done OR b.service IS DISTINCT FROM cur_service OR b.incident_type IS DISTINCT FROM cur_type THEN
            -- the rest of the period is clear for the series replayed so far
            IF is_open THEN
                clear_since := coalesce(clear_since, prev_at + p.every);
                resolve_at := clear_since + make_interval(secs => ceil(extract(epoch FROM o_hold) / extract(epoch FROM p.every))
                                                                  * extract(epoch FROM p.every));
                resolved_at := CASE WHEN resolve_at <= p.last_at THEN resolve_at END;
                RETURN NEXT;
            END IF;
            EXIT WHEN b.done;
            cur_service := b.service;
            cur_type := b.incident_type;
            prev_at := NULL;
            pending_since := NULL;
            clear_since := NULL;
            is_open := false;
        END IF;

        -- clear steps between the previous breaching step and this one
        IF prev_at IS NOT NULL AND b.at > prev_at + p.every THEN
            IF is_open THEN
                clear_since := coalesce(clear_since, prev_at + p.every);
                resolve_at := clear_since + make_interval(secs => ceil(extract(epoch FROM o_hold) / extract(epoch FROM p.every))
                                                                  * extract(epoch FROM p.every));
                IF resolve_at <= b.at - p.every THEN
                    resolved_at := resolve_at;
                    RETURN NEXT;
                    is_open := false;
                    clear_since := NULL;
                END IF;
            END IF;
            pending_since := NULL;  -- a pending breach that did not hold
        END IF;

        IF is_open THEN
            -- the breach continues: escalation to a stronger rule, the peak of the rule speaking
            IF severity_rank(b.open_severity) > severity_rank(severity) THEN
                severity := b.open_severity;
            END IF;
            peak := CASE WHEN o_ord = b.open_rule_ord THEN greatest(peak, b.open_observed) ELSE b.open_observed END;
            o_ord := b.open_rule_ord;
            o_hold := b.open_resolve_after;
            clear_since := NULL;
        ELSIF b.rule_ord IS NOT NULL THEN
            pending_since := coalesce(pending_since, b.at);
            IF b.at - pending_since >= b.min_pending THEN
                is_open := true;
                service := b.service;
                incident_type := b.incident_type;
                severity := b.severity;
                opened_at := b.at;
                resolved_at := NULL;
                rule_id := b.rule_id;
                rule_name := b.rule_name;
                observed := b.observed;
                peak := b.observed;
                threshold := b.threshold;
                o_ord := b.rule_ord;
                o_hold := b.resolve_after;
                pending_since := NULL;
                clear_since := NULL;
            END IF;
        ELSE
            pending_since := NULL;  -- only an open incident would have kept this breaching
        END IF;
        prev_at := b.at;
    END LOOP;
END $$;

COMMENT ON FUNCTION backtest_rules(timestamptz, timestamptz, interval, jsonb) IS
  'Replays detection from since to until (at most now) every step (default: the rollup''s resolution for the period) '
  'and returns the incidents the rules would have opened: service, incident_type, severity (after escalations), '
  'opened_at, resolved_at (NULL: still open at until), the rule that opened it, observed at opening, peak and threshold. rules (jsonb array shaped like detection_rules rows) replaces the rule set. The replay starts with '
  'nothing open. Writes nothing. Cost follows services x steps, not raw rows. See backtest_period() for the steps.';
