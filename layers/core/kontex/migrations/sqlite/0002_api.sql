-- Objects: every distinct blob a session stores, with what the query APIs filter on.
CREATE TABLE session_objects (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    kind            TEXT NOT NULL,
    object_hash     TEXT NOT NULL,
    bytes           INTEGER NOT NULL,
    tokens          INTEGER NOT NULL DEFAULT 0,
    role            TEXT,
    has_text        INTEGER NOT NULL DEFAULT 0,
    has_tool_use    INTEGER NOT NULL DEFAULT 0,
    has_tool_result INTEGER NOT NULL DEFAULT 0,
    tool_name       TEXT,
    is_error        INTEGER NOT NULL DEFAULT 0,
    position        INTEGER NOT NULL DEFAULT 0,
    first_seen_at   KTIME NOT NULL,
    PRIMARY KEY (session_id, kind, object_hash)
);
CREATE INDEX session_objects_query ON session_objects(account_id, kind, first_seen_at, position, object_hash);

CREATE TABLE session_traces (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    trace_id   TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    created_at KTIME NOT NULL,
    PRIMARY KEY (account_id, trace_id)
);
CREATE INDEX session_traces_session ON session_traces(session_id);

CREATE TABLE thread_states (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    thread_id  TEXT NOT NULL,
    user_data  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at KTIME NOT NULL,
    PRIMARY KEY (account_id, thread_id)
);

CREATE TABLE rate_limits (
    key_id       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (key_id, kind, window_start)
);
