-- Patterns (sql/log_template.sql, src/pattern): every line's message template, a catalogue of
-- the templates each service uses, and exact counts per (service, pattern, level, minute), kept
-- like the rollup: delta rows written with the rows (the collector in its COPY transaction, the
-- logs triggers for SQL writers), merged by compact_patterns(), always read with sum().
CREATE TABLE log_patterns (
    service    text        NOT NULL,
    pattern_id bigint      NOT NULL,
    template   text        NOT NULL,
    example    text,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (service, pattern_id)
);
COMMENT ON TABLE log_patterns IS
  'The message templates each service uses: pattern_id (= log_pattern_id(message)), template (log_template()), an '
  'example line, and when the pattern was first and last seen (from log_pattern_counts, exact once compacted). '
  'Rows not seen within the retention are dropped by maintain_partitions().';

CREATE TABLE log_pattern_counts (
    service    text        NOT NULL,
    pattern_id bigint      NOT NULL,
    level      text        NOT NULL,
    bucket     timestamptz NOT NULL CHECK (bucket = date_trunc('minute', bucket)),
    count      bigint      NOT NULL,
    compacted  boolean     NOT NULL DEFAULT false
);
CREATE INDEX log_pattern_counts_service_idx ON log_pattern_counts (service, bucket);
CREATE INDEX log_pattern_counts_bucket_idx ON log_pattern_counts (bucket);
CREATE INDEX log_pattern_counts_uncompacted_idx ON log_pattern_counts (service, pattern_id, level, bucket)
    WHERE NOT compacted;
COMMENT ON TABLE log_pattern_counts IS
  'Lines per (service, pattern_id, level, minute): additive delta rows (compacted = false) merged by compact_patterns(). '
  'Always read with sum(): equal to count(*) over the committed raw rows with a message.';

-- A row of top_patterns() (a type, so that the function can take a `service` argument too).
CREATE TYPE pattern_rank AS (
    service    text,
    pattern_id bigint,
    template   text,
    example    text,
    levels     text[],
    count      bigint,
    share      double precision,
    previous   bigint,
    new        boolean,
    first_seen timestamptz,
    last_seen  timestamptz
);
COMMENT ON TYPE pattern_rank IS
  'A pattern of a window as top_patterns() ranks it: count, share of the service''s lines, previous (the window before), '
  'new (first seen inside the window).';
