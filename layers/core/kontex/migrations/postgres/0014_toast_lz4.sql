-- Span bodies and item bodies (the largest values the span worker writes, a few KB each) are
-- compressed with lz4 rather than PostgreSQL's default pglz: writing a batch of spans takes
-- about a third of the server's CPU (docs/benchmarks.md, "Ingest, third round (issue 23)"),
-- for more bytes on disk when the text is very repetitive. It applies to the rows written from
-- now on (older ones are read as they are); a server built without lz4 keeps pglz.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE spans ALTER COLUMN body SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE items ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available on this server: span and item bodies stay pglz';
END $$;
