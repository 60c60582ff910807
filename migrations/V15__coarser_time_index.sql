-- The time index of logs, 64 heap pages per block range instead of 16.
-- A BRIN scan reads the partition's whole index, and a minmax-multi summary costs about the same
-- to read whatever it holds, so a scan's cost is the number of block ranges: with 16 pages per
-- range, one search slice in a full hour partition at 100M rows a day spent 2.3 ms in the index
-- alone (0.6 ms with 64 pages; heap blocks read for a 3-second slice 96 -> 128), and that cost
-- grew 10x with rows a day while everything else in a slice did not. What it costs: each range
-- covers 4x the rows with the same 32 values, so it absorbs about a quarter as many late rows
-- (one per ~90 rows instead of one per ~23 at 100M rows a day) before its summary widens.
-- Rebuilding reads every partition once (about 1 s per 700 MB partition here) and holds writes
-- to each partition meanwhile.
-- In a DO block: on a Citus coordinator, DDL on a distributed table that arrives in a query string
-- of several statements (as refinery sends a migration) fails on the workers with "cannot insert
-- multiple commands into a prepared statement"; statements run from PL/pgSQL arrive one by one.
DO $$
BEGIN
    DROP INDEX logs_ts_brin;
    CREATE INDEX logs_ts_brin ON logs USING brin (ts timestamptz_minmax_multi_ops)
        WITH (pages_per_range = 64, autosummarize = on);
END $$;
COMMENT ON INDEX logs_ts_brin IS
  'Time index of logs (minmax-multi: a few late rows do not widen a block range; 64 pages per range: a scan reads '
  'the whole index, so fewer ranges make every search slice cheaper). Search narrows its time slices with it.';
