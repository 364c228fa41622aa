-- Kontex foundation schema (SQLite). Times are ISO 8601 UTC text with microseconds.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    created_at  KTIME NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    label       TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  KTIME NOT NULL,
    revoked_at  KTIME
);
CREATE INDEX api_keys_account ON api_keys(account_id, created_at);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    description TEXT,
    metadata    KJSON NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed')),
    created_at  KTIME NOT NULL,
    updated_at  KTIME NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id, created_at, id);

CREATE TABLE tasks (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    parent_task_id TEXT REFERENCES tasks(id),
    name           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'failed')),
    created_at     KTIME NOT NULL,
    updated_at     KTIME NOT NULL
);
CREATE INDEX tasks_session ON tasks(session_id, created_at);

-- Content-addressed lists: one row per distinct prefix of a list in a session. Message and
-- tool-call nodes carry what GET /v1/messages and /v1/tool-calls filter on.
CREATE TABLE chain_nodes (
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    node_hash       TEXT NOT NULL,
    parent_hash     TEXT,
    item_hash       TEXT NOT NULL,
    position        INTEGER NOT NULL,
    tokens          INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    item_tokens     INTEGER NOT NULL DEFAULT 0,
    role            TEXT,
    has_text        INTEGER NOT NULL DEFAULT 0,
    has_tool_use    INTEGER NOT NULL DEFAULT 0,
    has_tool_result INTEGER NOT NULL DEFAULT 0,
    tool_name       TEXT,
    is_error        INTEGER NOT NULL DEFAULT 0,
    first_seen_at   KTIME NOT NULL,
    PRIMARY KEY (session_id, node_hash)
) WITHOUT ROWID;

CREATE TABLE snapshots (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    session_id         TEXT NOT NULL REFERENCES sessions(id),
    task_id            TEXT NOT NULL REFERENCES tasks(id),
    label              TEXT NOT NULL,
    source             TEXT NOT NULL,
    model              TEXT,
    token_total        INTEGER NOT NULL,
    parent_snapshot_id TEXT REFERENCES snapshots(id),
    rollback_of        TEXT REFERENCES snapshots(id),
    bundle_hash        TEXT NOT NULL,
    stored_bytes       INTEGER NOT NULL DEFAULT 0,
    captured_at        KTIME NOT NULL,
    created_at         KTIME NOT NULL
);
CREATE INDEX snapshots_session ON snapshots(session_id, created_at, id);
CREATE INDEX snapshots_task ON snapshots(task_id, created_at, id);

-- Enrichments: later bundles of a snapshot, appended; the original row never changes.
CREATE TABLE snapshot_revisions (
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
    seq         INTEGER NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    bundle_hash TEXT NOT NULL,
    token_total INTEGER NOT NULL,
    model       TEXT,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    created_at  KTIME NOT NULL,
    PRIMARY KEY (snapshot_id, seq)
);

-- A row here, inside the purge transaction, is the only thing that lets snapshot rows go.
CREATE TABLE session_purges (
    session_id TEXT PRIMARY KEY
);

CREATE TRIGGER snapshots_sealed_update BEFORE UPDATE ON snapshots
BEGIN
    SELECT RAISE(ABORT, 'snapshot rows are sealed: UPDATE refused');
END;

CREATE TRIGGER snapshots_sealed_delete BEFORE DELETE ON snapshots
WHEN NOT EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id)
BEGIN
    SELECT RAISE(ABORT, 'snapshot rows are sealed: DELETE refused outside a session purge');
END;

CREATE TRIGGER revisions_sealed_update BEFORE UPDATE ON snapshot_revisions
BEGIN
    SELECT RAISE(ABORT, 'snapshot revisions are sealed: UPDATE refused');
END;

CREATE TRIGGER revisions_sealed_delete BEFORE DELETE ON snapshot_revisions
WHEN NOT EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id)
BEGIN
    SELECT RAISE(ABORT, 'snapshot revisions are sealed: DELETE refused outside a session purge');
END;

CREATE TRIGGER chain_nodes_sealed_update BEFORE UPDATE ON chain_nodes
BEGIN
    SELECT RAISE(ABORT, 'chain nodes are content-addressed: UPDATE refused');
END;
