-- The bucket of a rollup delta: its second, or its minute where older than rollup_state.fine_since
-- (compact_rollup() keeps only minutes there, and readers read only minutes there: see
-- window_bounds()). Late rows and backfills thus write one delta per (service, minute), not one
-- per second: a day of history loaded in a minute leaves ~60x fewer rows for compaction to fold
-- and for VACUUM to reclaim. fine_since only moves forward, so a minute written here is never read
-- as a second.
CREATE OR REPLACE FUNCTION rollup_bucket(ts timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN ts < s.fine_since THEN date_trunc('minute', ts) ELSE date_trunc('second', ts) END FROM rollup_state s
$$;

COMMENT ON FUNCTION rollup_bucket(timestamptz) IS
  'The log_rollup bucket of a row stamped ts: its second, or its minute where older than rollup_state.fine_since.';

-- The rollup deltas of a batch of rows: one delta row per (service, rollup_bucket()), written by
-- the collector for the batch it just COPYed, in the same transaction (so the rollup commits or
-- aborts with the rows), and by the logs triggers. hists is the 16 histogram counts of every
-- input row, flattened; input rows falling in one bucket are summed.
-- It runs once per group commit, so its plan is made once per connection (a generic plan: the
-- statement is the same whatever the arrays hold); planning it per call cost about as much
-- database CPU as the COPY of a 100-row batch.
-- Where the citus extension is installed, plan_writers() (sql/distribute_tables.sql) sets auto
-- instead: Citus cannot run this INSERT ... SELECT from a generic plan.
CREATE OR REPLACE FUNCTION append_rollup(
    services text[], buckets timestamptz[], totals bigint[], errors bigint[],
    latency_counts bigint[], latency_sums double precision[], latency_maxes double precision[], hists bigint[])
RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    fine timestamptz;
BEGIN
    -- rollup_bucket(), spelt out: the watermark read once per call, in a statement of its own (on
    -- Citus, from this node's copy of the reference table; the INSERT below then reads no table)
    SELECT s.fine_since INTO fine FROM rollup_state s;
    INSERT INTO log_rollup (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
    SELECT u.s, u.k, sum(u.t), sum(u.e), sum(u.lc), sum(u.ls), max(u.lm),
           sum(hists[o + 1]), sum(hists[o + 2]), sum(hists[o + 3]), sum(hists[o + 4]), sum(hists[o + 5]),
           sum(hists[o + 6]), sum(hists[o + 7]), sum(hists[o + 8]), sum(hists[o + 9]), sum(hists[o + 10]),
           sum(hists[o + 11]), sum(hists[o + 12]), sum(hists[o + 13]), sum(hists[o + 14]), sum(hists[o + 15]),
           sum(hists[o + 16])
    FROM (SELECT w.*, CASE WHEN w.b < fine THEN date_trunc('minute', w.b) ELSE date_trunc('second', w.b) END AS k
          FROM unnest(services, buckets, totals, errors, latency_counts, latency_sums, latency_maxes)
                   WITH ORDINALITY AS w(s, b, t, e, lc, ls, lm, i)) u,
         LATERAL (SELECT ((u.i - 1) * 16)::int AS o) AS off
    GROUP BY u.s, u.k;
END $$;

COMMENT ON FUNCTION append_rollup(text[], timestamptz[], bigint[], bigint[], bigint[], double precision[], double precision[], bigint[]) IS
  'Appends per-(service, rollup_bucket()) rollup deltas (log_rollup rows with compacted = false). hists: the 16 '
  'histogram counts of each delta, flattened. Used by record_rollup() and by the logs triggers.';

-- What the collector calls: the deltas, and a wake-up for the detector (NOTIFYs with the same
-- payload are folded into one per transaction by PostgreSQL). The logs triggers append without
-- it: on Citus they run on the workers, where a NOTIFY would reach no detector and would forbid
-- the two-phase commit of a statement that spans workers.
CREATE OR REPLACE FUNCTION record_rollup(
    services text[], buckets timestamptz[], totals bigint[], errors bigint[],
    latency_counts bigint[], latency_sums double precision[], latency_maxes double precision[], hists bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM append_rollup(services, buckets, totals, errors, latency_counts, latency_sums, latency_maxes, hists);
    PERFORM pg_notify('logmon_ingest', '');
END $$;

COMMENT ON FUNCTION record_rollup(text[], timestamptz[], bigint[], bigint[], bigint[], double precision[], double precision[], bigint[]) IS
  'Appends per-(service, rollup_bucket()) rollup deltas for rows the caller COPYed in this transaction (append_rollup()) '
  'and wakes the detector. Used by the collector, which COPYs into the partitions of logs, where no trigger fires.';
