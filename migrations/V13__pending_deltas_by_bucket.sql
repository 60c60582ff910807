-- Pending rollup deltas are always looked up by time (a window's whole minutes, the baseline of
-- active_minutes(), compact_rollup() takes them all), never by service first. Indexed by
-- (service, bucket), a range on bucket alone could not use the partial index, so right after a
-- compaction, with the table's statistics still counting the deltas just folded, the planner read
-- the window's pending deltas through the index of every row (bucket) and filtered 72,000 rows to
-- find none: /stats 7x slower after a plain \copy of 5M rows until autovacuum came by.
DROP INDEX log_rollup_uncompacted_idx;
CREATE INDEX log_rollup_uncompacted_idx ON log_rollup (bucket) WHERE NOT compacted;
COMMENT ON INDEX log_rollup_uncompacted_idx IS
  'The deltas not folded yet by compact_rollup(), by time: what every window reads on top of the folded levels.';
