-- The collector's half of the rollup: one delta row per (service, second) of the batch it just
-- COPYed, in the same transaction (so the rollup commits or aborts with the rows). hists is the
-- 16 histogram counts of every row, flattened.
CREATE OR REPLACE FUNCTION append_rollup(
    services text[], buckets timestamptz[], totals bigint[], errors bigint[],
    latency_counts bigint[], latency_sums double precision[], latency_maxes double precision[], hists bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO log_rollup (service, bucket, total, errors, latency_count, latency_sum, latency_max,
                            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15)
    SELECT u.s, date_trunc('second', u.b), u.t, u.e, u.lc, u.ls, u.lm,
           hists[o + 1], hists[o + 2], hists[o + 3], hists[o + 4], hists[o + 5], hists[o + 6], hists[o + 7], hists[o + 8],
           hists[o + 9], hists[o + 10], hists[o + 11], hists[o + 12], hists[o + 13], hists[o + 14], hists[o + 15], hists[o + 16]
    FROM unnest(services, buckets, totals, errors, latency_counts, latency_sums, latency_maxes)
             WITH ORDINALITY AS u(s, b, t, e, lc, ls, lm, i),
         LATERAL (SELECT ((u.i - 1) * 16)::int AS o) AS off;
END $$;

COMMENT ON FUNCTION append_rollup(text[], timestamptz[], bigint[], bigint[], bigint[], double precision[], double precision[], bigint[]) IS
  'Appends per-(service, second) rollup deltas (log_rollup rows with compacted = false). hists: the 16 histogram counts '
  'of each delta, flattened. Used by record_rollup() and by the logs triggers.';

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
  'Appends per-(service, second) rollup deltas for rows the caller COPYed in this transaction (append_rollup()) and '
  'wakes the detector. Used by the collector, which COPYs into the partitions of logs, where no trigger fires.';
