CREATE TABLE spans (
    account_id        TEXT NOT NULL REFERENCES accounts(id),
    trace_id          TEXT NOT NULL,
    span_id           TEXT NOT NULL,
    parent_span_id    TEXT,
    kind              TEXT NOT NULL,
    header_session_id TEXT,
    start_ns          BIGINT NOT NULL,
    end_ns            BIGINT NOT NULL,
    body              JSONB NOT NULL,
    done              BOOLEAN NOT NULL DEFAULT false,
    received_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, trace_id, span_id)
);
CREATE INDEX spans_pending ON spans(account_id, trace_id, done, start_ns);

CREATE TABLE session_aliases (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    alias      TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    PRIMARY KEY (account_id, alias)
);
CREATE INDEX session_aliases_session ON session_aliases(session_id);
