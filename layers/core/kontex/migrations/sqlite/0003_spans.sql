-- OTLP spans, kept by (account, trace, span): re-exports and redeliveries create nothing twice.
CREATE TABLE spans (
    account_id        TEXT NOT NULL REFERENCES accounts(id),
    trace_id          TEXT NOT NULL,
    span_id           TEXT NOT NULL,
    parent_span_id    TEXT,
    kind              TEXT NOT NULL,
    header_session_id TEXT,
    start_ns          INTEGER NOT NULL,
    end_ns            INTEGER NOT NULL,
    body              KJSON NOT NULL,
    done              INTEGER NOT NULL DEFAULT 0,
    received_at       KTIME NOT NULL,
    PRIMARY KEY (account_id, trace_id, span_id)
);
CREATE INDEX spans_pending ON spans(account_id, trace_id, done, start_ns);

-- External session names (traceloop session_id, session.id, gen_ai.conversation.id).
CREATE TABLE session_aliases (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    alias      TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    PRIMARY KEY (account_id, alias)
);
CREATE INDEX session_aliases_session ON session_aliases(session_id);
