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
