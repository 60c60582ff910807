CREATE OR REPLACE FUNCTION interval_label(i interval) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN extract(epoch FROM i) >= 3600 AND extract(epoch FROM i)::bigint % 3600 = 0 THEN (extract(epoch FROM i)::bigint / 3600) || ' h'
    WHEN extract(epoch FROM i) >= 60 AND extract(epoch FROM i)::bigint % 60 = 0 THEN (extract(epoch FROM i)::bigint / 60) || ' min'
    ELSE round(extract(epoch FROM i)) || ' s'
END;

COMMENT ON FUNCTION interval_label(interval) IS 'Short label of a window for incident summaries: 5 min, 1 h, 30 s.';
