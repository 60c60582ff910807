CREATE OR REPLACE FUNCTION severity_rank(severity text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_position(ARRAY['LOW', 'MED', 'HIGH', 'CRITICAL'], severity);

COMMENT ON FUNCTION severity_rank(text) IS 'Order of severities (LOW < MED < HIGH < CRITICAL), for escalation.';
