-- spans_pending goes (see the PostgreSQL migration of the same name): the worker reads a
-- trace's spans by the primary key's (account_id, trace_id) prefix and nothing reads spans by
-- done. Span bodies and outbox data were JSON text here already.
DROP INDEX spans_pending;
