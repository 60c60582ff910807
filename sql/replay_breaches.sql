-- The per-step verdicts of a replay (backtest_rules()): for every service, incident type and step
-- of a period, the rule that speaks for it when it breaches (the strongest, as in
-- detect_incidents()), once for "no incident of this type open" and once for "one open" (a no_data
-- rule stays breached while its incident is open and the silence lasts). Only breaching steps are
-- returned; every other step is clear.
--
-- How, in one statement whose cost follows services x buckets, never raw rows:
--   * the rollup is read once, as a series per service and bucket (res: 1 second or 1 minute)
--     from the first step minus the longest lookback + baseline to the last step;
--   * one row per bucket carries the running sums of everything before it (total, errors,
--     latencies, cumulative histogram counts, active minutes), so the sums of any window are the
--     difference of two running sums, wherever it starts and however long it is;
--   * the largest latency of a window (p95 interpolates up to it) is a sliding maximum, by the van
--     Herk/Gil-Werman method: cut the series into blocks as long as the window; a window's maximum
--     is the larger of a suffix maximum in one block and a prefix maximum in the next;
--   * every enabled effective rule (per-service overrides applied) is judged at every step by
--     rule_verdict(), inlined: the function live detection (evaluate_rules()) uses; new_pattern
--     rules by replay_new_patterns() (new_error_patterns()'s definition, new_pattern_verdict()).
-- The windows are those evaluate_rules(at) reads at each step `at` (window_bounds()): at 1 s, whole
-- seconds, and whole minutes where older than rollup_state.fine_since (a minute counts at its first
-- second, so a window holds it when it holds its start); at 1 min, whole minutes (lookbacks rounded
-- down to whole buckets).
CREATE OR REPLACE FUNCTION replay_breaches(first_at timestamptz, last_at timestamptz, step interval, res interval,
                                           rules detection_rules[])
RETURNS TABLE (service text, incident_type text, at timestamptz,
               -- the rule that speaks when no incident of this type is open (NULL: none breaches)
               rule_ord bigint, rule_id bigint, rule_name text, severity text, observed double precision,
               threshold double precision, resolve_after interval, min_pending interval,
               -- the rule that speaks when one is open
               open_rule_ord bigint, open_rule_id bigint, open_rule_name text, open_severity text,
               open_observed double precision, open_resolve_after interval)
-- plpgsql rather than sql: Citus cannot plan a SQL function's statements on distributed tables
-- when they use the function's parameters ("could not create distributed plan").
LANGUAGE plpgsql STABLE
SET jit = off
-- A week's series (100k rows) is sorted in memory. The joins are equalities on materialized rows
-- the planner cannot estimate: hashing them is right. The series is grouped by (service, bucket)
-- in the order its running sums need, so a sorted aggregate saves a second sort.
SET work_mem = '128MB'
SET enable_mergejoin = off
SET enable_hashagg = off
AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH rs AS (
    SELECT u.*, u.ordinality AS ord,
           floor(extract(epoch FROM u.lookback) / extract(epoch FROM replay_breaches.res))::int AS o_l,
           floor(extract(epoch FROM u.lookback + u.baseline) / extract(epoch FROM replay_breaches.res))::int AS o_lb
    FROM unnest(replay_breaches.rules) WITH ORDINALITY u
), specs AS (
    -- the distinct windows of the enabled rules: lookback and lookback + baseline, in buckets
    SELECT s.o_l, s.o_lb, bool_or(s.kind = 'latency_p95') AS lat
    FROM rs s WHERE s.enabled AND s.kind <> 'new_pattern' GROUP BY s.o_l, s.o_lb
), bounds AS (
    SELECT replay_breaches.first_at - max(p.o_lb) * replay_breaches.res AS g0,
           max(p.o_lb) AS n_first,
           max(p.o_lb) + round(extract(epoch FROM replay_breaches.last_at - replay_breaches.first_at)
                               / extract(epoch FROM replay_breaches.res))::int AS n_last,
           round(extract(epoch FROM replay_breaches.step) / extract(epoch FROM replay_breaches.res))::int AS k,
           (SELECT st.fine_since FROM rollup_state st) AS fine_since,
           -- the second of the minute at which the series starts (at 1 s)
           (date_part('epoch', replay_breaches.first_at - max(p.o_lb) * replay_breaches.res)::bigint % 60)::int AS g0_s,
           replay_breaches.res < interval '1 minute' AS by_second,
           -- a minute's activity needs all of it, even past the last step
           replay_breaches.last_at + interval '1 minute' AS hi
    FROM specs p
), src AS (
    -- seconds (merged rows and deltas alike), from fine_since on
    SELECT r.service, r.bucket, r.total, r.errors, r.latency_count, r.latency_max,
           r.h0, r.h1, r.h2, r.h3, r.h4, r.h5, r.h6, r.h7, r.h8, r.h9, r.h10, r.h11, r.h12, r.h13, r.h14, r.h15
    FROM bounds b, log_rollup r
    WHERE b.by_second AND r.bucket >= greatest(b.g0, b.fine_since) AND r.bucket < b.hi
    UNION ALL
    -- minutes: all of them at 1 min; before fine_since at 1 s
    SELECT m.service, m.bucket, m.total, m.errors, m.latency_count, m.latency_max,
           m.h0, m.h1, m.h2, m.h3, m.h4, m.h5, m.h6, m.h7, m.h8, m.h9, m.h10, m.h11, m.h12, m.h13, m.h14, m.h15
    FROM bounds b, log_rollup_minute m
    WHERE m.bucket >= b.g0 AND m.bucket < CASE WHEN b.by_second THEN least(b.fine_since, b.hi) ELSE b.hi END
    UNION ALL
    -- deltas not folded into their minute yet
    SELECT d.service, date_trunc('minute', d.bucket), d.total, d.errors, d.latency_count, d.latency_max,
           d.h0, d.h1, d.h2, d.h3, d.h4, d.h5, d.h6, d.h7, d.h8, d.h9, d.h10, d.h11, d.h12, d.h13, d.h14, d.h15
    FROM bounds b, log_rollup d
    WHERE NOT d.compacted AND d.bucket >= b.g0
      AND d.bucket < CASE WHEN b.by_second THEN least(b.fine_since, b.hi) ELSE b.hi END
), services AS (
    -- numbered: sorting and partitioning by an int is much cheaper than by text; found by byte
    -- order (COLLATE "C"), several times cheaper to sort than the database's collation (any order
    -- does: the number is only a key)
    SELECT v.service COLLATE "default" AS service, row_number() OVER (ORDER BY v.service)::int AS sid
    FROM (SELECT DISTINCT s.service COLLATE "C" AS service FROM src s) v
), data AS MATERIALIZED (
    -- the rows read, at their bucket n (several may share one: deltas); counts as int4 (a rollup
    -- row holds far fewer than 2^31 logs), whose sums over buckets are int8: exact, and much
    -- cheaper than numeric; cumulative histogram counts k (latencies in h0..hi)
    SELECT v.sid, round(date_part('epoch', s.bucket - b.g0) / date_part('epoch', replay_breaches.res))::int AS n,
           s.total::int AS total, s.errors::int AS errors, s.latency_max,
           (s.h0)::int AS k0,
           (s.h0 + s.h1)::int AS k1,
           (s.h0 + s.h1 + s.h2)::int AS k2,
           (s.h0 + s.h1 + s.h2 + s.h3)::int AS k3,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4)::int AS k4,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5)::int AS k5,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6)::int AS k6,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7)::int AS k7,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8)::int AS k8,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8 + s.h9)::int AS k9,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8 + s.h9 + s.h10)::int AS k10,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8 + s.h9 + s.h10 + s.h11)::int AS k11,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8 + s.h9 + s.h10 + s.h11 + s.h12)::int AS k12,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8 + s.h9 + s.h10 + s.h11 + s.h12 + s.h13)::int AS k13,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8 + s.h9 + s.h10 + s.h11 + s.h12 + s.h13 + s.h14)::int AS k14,
           (s.h0 + s.h1 + s.h2 + s.h3 + s.h4 + s.h5 + s.h6 + s.h7 + s.h8 + s.h9 + s.h10 + s.h11 + s.h12 + s.h13 + s.h14 + s.h15)::int AS k15
    FROM src s JOIN services v ON v.service = s.service, bounds b
), buckets AS MATERIALIZED (
    -- a row for every bucket, with the sums of everything before it: c = [total, errors, cumulative
    -- histogram counts (the last is all latencies), active minutes]; and its largest latency (-1:
    -- none)
    SELECT g.sid, g.n, g.lmax,
           ARRAY[sum(g.total) OVER w - g.total, sum(g.errors) OVER w - g.errors,
                 sum(g.k0) OVER w - g.k0,
                 sum(g.k1) OVER w - g.k1,
                 sum(g.k2) OVER w - g.k2,
                 sum(g.k3) OVER w - g.k3,
                 sum(g.k4) OVER w - g.k4,
                 sum(g.k5) OVER w - g.k5,
                 sum(g.k6) OVER w - g.k6,
                 sum(g.k7) OVER w - g.k7,
                 sum(g.k8) OVER w - g.k8,
                 sum(g.k9) OVER w - g.k9,
                 sum(g.k10) OVER w - g.k10,
                 sum(g.k11) OVER w - g.k11,
                 sum(g.k12) OVER w - g.k12,
                 sum(g.k13) OVER w - g.k13,
                 sum(g.k14) OVER w - g.k14,
                 sum(g.k15) OVER w - g.k15,
                 sum(g.active) OVER w - g.active] AS c
    FROM (
        SELECT x.sid, x.n, coalesce(sum(x.total), 0)::int AS total, coalesce(sum(x.errors), 0)::int AS errors,
               coalesce(max(x.latency_max), -1) AS lmax,
               CASE WHEN (SELECT b.by_second FROM bounds b) THEN coalesce(sum(x.active), 0)::int
                    ELSE (coalesce(sum(x.total), 0) > 0)::int END AS active,
               coalesce(sum(x.k0), 0)::int AS k0, coalesce(sum(x.k1), 0)::int AS k1,
               coalesce(sum(x.k2), 0)::int AS k2, coalesce(sum(x.k3), 0)::int AS k3,
               coalesce(sum(x.k4), 0)::int AS k4, coalesce(sum(x.k5), 0)::int AS k5,
               coalesce(sum(x.k6), 0)::int AS k6, coalesce(sum(x.k7), 0)::int AS k7,
               coalesce(sum(x.k8), 0)::int AS k8, coalesce(sum(x.k9), 0)::int AS k9,
               coalesce(sum(x.k10), 0)::int AS k10, coalesce(sum(x.k11), 0)::int AS k11,
               coalesce(sum(x.k12), 0)::int AS k12, coalesce(sum(x.k13), 0)::int AS k13,
               coalesce(sum(x.k14), 0)::int AS k14, coalesce(sum(x.k15), 0)::int AS k15
        FROM (
            SELECT d.sid, d.n, d.total, d.errors, d.latency_max, NULL::int AS active,
                   d.k0, d.k1, d.k2, d.k3, d.k4, d.k5, d.k6, d.k7, d.k8, d.k9, d.k10, d.k11, d.k12, d.k13, d.k14, d.k15
            FROM data d, bounds b
            WHERE d.n <= b.n_last
            UNION ALL
            -- an empty row for every bucket without one, so that each bucket has a row
            SELECT v.sid, t.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM services v, bounds b, generate_series(0, b.n_last) t(n)
            WHERE NOT EXISTS (SELECT FROM data d WHERE d.sid = v.sid AND d.n = t.n)
            UNION ALL
            -- at 1 s, minutes with logs, at their first bucket (no_data's regular senders, as
            -- active_minutes()); at 1 min, a bucket with logs is one
            SELECT m.sid, m.n, NULL, NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM (SELECT d.sid, d.n - (b.g0_s + d.n) % 60 AS n FROM data d, bounds b WHERE b.by_second
                  GROUP BY 1, 2 HAVING sum(d.total) > 0) m, bounds b
            WHERE m.n BETWEEN 0 AND b.n_last
        ) x
        GROUP BY x.sid, x.n
    ) g
    WINDOW w AS (PARTITION BY g.sid ORDER BY g.n ROWS UNBOUNDED PRECEDING)
), suffixes AS (
    -- van Herk/Gil-Werman, per window length o_l of a latency rule: cut the series into blocks of
    -- o_l buckets; the largest latency from each bucket to the end of its block (the maxima from
    -- the start of a block come with the windows below). ARRAY[block, latency] compares the block
    -- first, so a running maximum starts again with each block.
    SELECT p.o_l, u.sid, u.n,
           (max(ARRAY[-(u.n / p.o_l), u.lmax]) OVER (PARTITION BY p.o_l, u.sid ORDER BY u.n DESC))[2] AS suf
    FROM buckets u, (SELECT DISTINCT s.o_l FROM specs s WHERE s.lat) p
), wins AS (
    -- per bucket n and window: the running sums at n, at n - o_l (the window is [n - o_l, n)) and at
    -- n - o_lb (its baseline is [n - o_lb, n - o_l)); the window's largest latency is the larger of
    -- the maximum from n - o_l to the end of its block and the one from the start of n - 1's block
    -- to n - 1
    SELECT t.sid, t.n, p.o_l, p.o_lb, p.lat, t.c, lag(t.c, p.o_l) OVER w AS c_l, lag(t.c, p.o_lb) OVER w AS c_lb,
           greatest(lag(m.suf, p.o_l) OVER w,
                    (max(ARRAY[t.n / p.o_l, t.lmax]) FILTER (WHERE p.lat)
                         OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))[2]) AS lmax
    FROM buckets t
    CROSS JOIN specs p
    LEFT JOIN suffixes m ON p.lat AND m.o_l = p.o_l AND m.sid = t.sid AND m.n = t.n
    WINDOW w AS (PARTITION BY p.o_l, p.o_lb, t.sid ORDER BY t.n)
), steps AS MATERIALIZED (
    SELECT w.sid, b.g0 + w.n * replay_breaches.res AS at, w.o_l, w.o_lb,
           w.c[1] - w.c_l[1] AS total, w.c[2] - w.c_l[2] AS errors, w.c[18] - w.c_l[18] AS latency_count,
           w.c_l[1] - w.c_lb[1] AS base_total, w.c_l[2] - w.c_lb[2] AS base_errors, w.c_l[19] - w.c_lb[19] AS base_active,
           -- p95 here, once per window and step (rule_verdict() is inlined, and would compute it per use)
           CASE WHEN w.lat THEN latency_quantile_cumulative(
               ARRAY[w.c[3] - w.c_l[3],
                     w.c[4] - w.c_l[4],
                     w.c[5] - w.c_l[5],
                     w.c[6] - w.c_l[6],
                     w.c[7] - w.c_l[7],
                     w.c[8] - w.c_l[8],
                     w.c[9] - w.c_l[9],
                     w.c[10] - w.c_l[10],
                     w.c[11] - w.c_l[11],
                     w.c[12] - w.c_l[12],
                     w.c[13] - w.c_l[13],
                     w.c[14] - w.c_l[14],
                     w.c[15] - w.c_l[15],
                     w.c[16] - w.c_l[16],
                     w.c[17] - w.c_l[17],
                     w.c[18] - w.c_l[18]],
               nullif(w.lmax, -1), 0.95) END AS p95
    FROM wins w, bounds b
    WHERE w.n >= b.n_first AND (w.n - b.n_first) % b.k = 0
), effective AS (
    -- a rule row for one service overrides the service = NULL row of the same name
    SELECT * FROM (
        SELECT DISTINCT ON (v.service, r.name) v.sid, v.service AS svc, r.*
        FROM services v JOIN rs r ON r.service IS NULL OR r.service = v.service
        ORDER BY v.service, r.name, r.service IS NULL
    ) e WHERE e.enabled
), judged AS (
    -- no_data depends on whether its incident is open: it is judged both ways (the others: NULL, either)
    SELECT e.*, o.is_open
    FROM effective e
    JOIN (VALUES (NULL::boolean, false), (false, true), (true, true)) o(is_open, no_data) ON o.no_data = (e.kind = 'no_data')
    WHERE e.kind <> 'new_pattern'  -- judged by replay_new_patterns(), below
), breaches AS (
    SELECT e.svc AS service, e.incident_type, t.at, e.ord, e.id, e.name, e.severity, e.threshold, e.pending_for,
           e.resolve_after, e.is_open, v.observed
    FROM steps t
    JOIN judged e ON e.sid = t.sid AND e.o_l = t.o_l AND e.o_lb = t.o_lb
    CROSS JOIN LATERAL rule_verdict(e.kind, e.threshold, e.min_events, e.lookback, e.baseline,
                                    t.total, t.errors, t.latency_count, t.p95,
                                    t.base_total, t.base_errors, t.base_active, coalesce(e.is_open, false)) v
    WHERE v.breached
    UNION ALL
    -- new_pattern rules: their measure is a set of patterns, not a window's sums (as in
    -- evaluate_rules()); open or not, the same verdict
    SELECT n.service, n.incident_type, n.at, n.ord, n.rule_id, n.rule_name, n.severity, n.threshold, n.pending_for,
           n.resolve_after, NULL::boolean, n.observed
    FROM replay_new_patterns(replay_breaches.first_at, replay_breaches.last_at, replay_breaches.step,
                             replay_breaches.rules) n
), leads AS (
    -- as in detect_incidents(): per step, the strongest breaching rule speaks (ties: the lower id),
    -- and the shortest pending_for among the breaching rules counts; once as if no incident of the
    -- type were open (NOT if_open), once as if one were
    SELECT DISTINCT ON (b.service, b.incident_type, b.at, w.if_open) b.*, w.if_open,
           min(b.pending_for) OVER (PARTITION BY b.service, b.incident_type, b.at, w.if_open) AS min_pending
    FROM breaches b
    JOIN (VALUES (false), (true)) w(if_open) ON b.is_open IS NULL OR b.is_open = w.if_open
    ORDER BY b.service, b.incident_type, b.at, w.if_open, severity_rank(b.severity) DESC, b.id NULLS LAST, b.ord
)
SELECT l.service, l.incident_type, l.at,
       min(l.ord) FILTER (WHERE NOT l.if_open), min(l.id) FILTER (WHERE NOT l.if_open),
       min(l.name) FILTER (WHERE NOT l.if_open), min(l.severity) FILTER (WHERE NOT l.if_open),
       min(l.observed) FILTER (WHERE NOT l.if_open), min(l.threshold) FILTER (WHERE NOT l.if_open),
       min(l.resolve_after) FILTER (WHERE NOT l.if_open),
       min(l.min_pending) FILTER (WHERE NOT l.if_open),
       min(l.ord) FILTER (WHERE l.if_open), min(l.id) FILTER (WHERE l.if_open), min(l.name) FILTER (WHERE l.if_open),
       min(l.severity) FILTER (WHERE l.if_open), min(l.observed) FILTER (WHERE l.if_open),
       min(l.resolve_after) FILTER (WHERE l.if_open)
FROM leads l
GROUP BY l.service, l.incident_type, l.at;
END $$;

COMMENT ON FUNCTION replay_breaches(timestamptz, timestamptz, interval, interval, detection_rules[]) IS
  'The breaching steps of a replay from first_at to last_at every step, read at resolution res (1 second or 1 minute) '
  'from the rollup with running sums: per service, incident type and step, the rule that speaks when no incident of '
  'that type is open and the one that speaks when one is (no_data stays breached while open). Verdicts are '
  'rule_verdict()''s, and for new_pattern rules replay_new_patterns()''s. Writes nothing; backtest_rules() runs the incident lifecycle over it.';
