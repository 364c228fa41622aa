-- Kontex foundation schema (PostgreSQL 15+ / Aurora PostgreSQL 16).
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    label       TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_account ON api_keys(account_id, created_at);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    description TEXT,
    metadata    JSONB NOT NULL DEFAULT '{}'::jsonb,
    status      TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id, created_at, id);

CREATE TABLE tasks (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    parent_task_id TEXT REFERENCES tasks(id),
    name           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'failed')),
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
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
    tokens          BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    item_tokens     INTEGER NOT NULL DEFAULT 0,
    role            TEXT,
    has_text        BOOLEAN NOT NULL DEFAULT false,
    has_tool_use    BOOLEAN NOT NULL DEFAULT false,
    has_tool_result BOOLEAN NOT NULL DEFAULT false,
    tool_name       TEXT,
    is_error        BOOLEAN NOT NULL DEFAULT false,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, node_hash)
);

CREATE TABLE snapshots (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    session_id         TEXT NOT NULL REFERENCES sessions(id),
    task_id            TEXT NOT NULL REFERENCES tasks(id),
    label              TEXT NOT NULL,
    source             TEXT NOT NULL,
    model              TEXT,
    token_total        BIGINT NOT NULL,
    parent_snapshot_id TEXT REFERENCES snapshots(id),
    rollback_of        TEXT REFERENCES snapshots(id),
    bundle_hash        TEXT NOT NULL,
    stored_bytes       BIGINT NOT NULL DEFAULT 0,
    captured_at        TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX snapshots_session ON snapshots(session_id, created_at, id);
CREATE INDEX snapshots_task ON snapshots(task_id, created_at, id);

CREATE TABLE snapshot_revisions (
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
    seq         INTEGER NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    bundle_hash TEXT NOT NULL,
    token_total BIGINT NOT NULL,
    model       TEXT,
    stored_bytes BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (snapshot_id, seq)
);

CREATE TABLE session_purges (
    session_id TEXT PRIMARY KEY
);

CREATE FUNCTION kontex_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are sealed: UPDATE refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE FUNCTION kontex_refuse_delete_outside_purge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% rows are sealed: DELETE refused outside a session purge', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER snapshots_sealed_update BEFORE UPDATE ON snapshots
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update();
CREATE TRIGGER snapshots_sealed_delete BEFORE DELETE ON snapshots
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_delete_outside_purge();
CREATE TRIGGER revisions_sealed_update BEFORE UPDATE ON snapshot_revisions
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update();
CREATE TRIGGER revisions_sealed_delete BEFORE DELETE ON snapshot_revisions
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_delete_outside_purge();
CREATE TRIGGER chain_nodes_sealed_update BEFORE UPDATE ON chain_nodes
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update();

-- TRUNCATE bypasses row triggers: refuse it on the sealed tables too.
CREATE FUNCTION kontex_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are sealed: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER snapshots_no_truncate BEFORE TRUNCATE ON snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION kontex_refuse_truncate();
CREATE TRIGGER revisions_no_truncate BEFORE TRUNCATE ON snapshot_revisions
    FOR EACH STATEMENT EXECUTE FUNCTION kontex_refuse_truncate();
