-- Storage engine v2: items and chunks in the database, one transaction per snapshot.
-- See the SQLite migration of the same name and docs/design.md.
CREATE TABLE items (
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    item_hash       BYTEA NOT NULL,
    kind            TEXT NOT NULL,
    body            BYTEA NOT NULL,
    tokens          INTEGER NOT NULL DEFAULT 0,
    role            TEXT,
    has_text        BOOLEAN NOT NULL DEFAULT false,
    has_tool_use    BOOLEAN NOT NULL DEFAULT false,
    has_tool_result BOOLEAN NOT NULL DEFAULT false,
    tool_name       TEXT,
    is_error        BOOLEAN NOT NULL DEFAULT false,
    position        INTEGER NOT NULL DEFAULT 0,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, item_hash)
);

CREATE TABLE chunks (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    chunk_hash BYTEA NOT NULL,
    refs       BYTEA NOT NULL,
    PRIMARY KEY (session_id, chunk_hash)
);

ALTER TABLE snapshots ADD COLUMN manifest BYTEA;
ALTER TABLE snapshots ADD COLUMN forked_from TEXT;  -- may name a snapshot of another session
ALTER TABLE snapshot_revisions ADD COLUMN manifest BYTEA;
ALTER TABLE tasks ADD COLUMN head_snapshot_id TEXT;

CREATE UNIQUE INDEX snapshots_one_child ON snapshots(task_id, parent_snapshot_id);
CREATE UNIQUE INDEX snapshots_one_root ON snapshots(task_id) WHERE parent_snapshot_id IS NULL;
-- a task's latest snapshot is its head now; the one-child index serves lookups by task
DROP INDEX snapshots_task;

UPDATE tasks SET head_snapshot_id = (
    SELECT s.id FROM snapshots s WHERE s.task_id = tasks.id
     ORDER BY s.created_at DESC, s.id DESC LIMIT 1
);

-- Sealed rows stay sealed; the one UPDATE allowed is the v1 -> v2 upgrade of a row whose
-- manifest is NULL, done once by `kontex migrate`.
CREATE FUNCTION kontex_refuse_update_unless_upgrade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.manifest IS NULL AND NEW.manifest IS NOT NULL
       AND (to_jsonb(NEW) - 'manifest' - 'bundle_hash') = (to_jsonb(OLD) - 'manifest' - 'bundle_hash')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% rows are sealed: UPDATE refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
DROP TRIGGER snapshots_sealed_update ON snapshots;
CREATE TRIGGER snapshots_sealed_update BEFORE UPDATE ON snapshots
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update_unless_upgrade();
DROP TRIGGER revisions_sealed_update ON snapshot_revisions;
CREATE TRIGGER revisions_sealed_update BEFORE UPDATE ON snapshot_revisions
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update_unless_upgrade();

CREATE TRIGGER items_sealed_update BEFORE UPDATE ON items
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update();
CREATE TRIGGER items_sealed_delete BEFORE DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_delete_outside_purge();
CREATE TRIGGER items_no_truncate BEFORE TRUNCATE ON items
    FOR EACH STATEMENT EXECUTE FUNCTION kontex_refuse_truncate();
CREATE TRIGGER chunks_sealed_update BEFORE UPDATE ON chunks
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update();
CREATE TRIGGER chunks_sealed_delete BEFORE DELETE ON chunks
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_delete_outside_purge();
CREATE TRIGGER chunks_no_truncate BEFORE TRUNCATE ON chunks
    FOR EACH STATEMENT EXECUTE FUNCTION kontex_refuse_truncate();
