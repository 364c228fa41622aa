-- Less work in the database for each span the span worker writes (docs/benchmarks.md, "Ingest
-- on PostgreSQL, fewer statements a span (issue 23)"):
-- - span bodies and outbox event data are JSON text that is written and read back whole
--   (nothing queries inside them): TEXT, not JSONB, so the server no longer parses every
--   body on insert (a quarter of its time for a span batch) nor renders it again on read.
--   Rows written before keep their content, as JSON text. Span bodies stay lz4
--   (0014_toast_lz4; a new type resets the column's compression);
-- - spans_pending goes: the worker reads a trace's spans by the primary key's
--   (account_id, trace_id) prefix and nothing reads spans by done, so each span wrote an
--   index entry nobody used (and a done mark could not be a HOT update).
ALTER TABLE spans ALTER COLUMN body TYPE TEXT USING body::text;
ALTER TABLE outbox ALTER COLUMN data TYPE TEXT USING data::text;
DROP INDEX spans_pending;
DO $$
BEGIN
    EXECUTE 'ALTER TABLE spans ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available on this server: span bodies stay pglz';
END $$;
