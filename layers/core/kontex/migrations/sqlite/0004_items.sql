-- Storage engine v2: items and chunks in the database, one transaction per snapshot.
-- Each distinct message, tool call, file entry (with its body up to 64 KiB), log event and
-- reasoning text of a session is one row of `items`, addressed by sha256 of its bytes. A list
-- is a sequence of content-defined chunks of item references (`chunks`); a snapshot's manifest
-- (on its sealed row) names the chunk slices of each list. See docs/design.md.
CREATE TABLE items (
    session_id      TEXT NOT NULL REFERENCES sessions(id),
    item_hash       BLOB NOT NULL,
    kind            TEXT NOT NULL,
    body            BLOB NOT NULL,
    tokens          INTEGER NOT NULL DEFAULT 0,
    role            TEXT,
    has_text        INTEGER NOT NULL DEFAULT 0,
    has_tool_use    INTEGER NOT NULL DEFAULT 0,
    has_tool_result INTEGER NOT NULL DEFAULT 0,
    tool_name       TEXT,
    is_error        INTEGER NOT NULL DEFAULT 0,
    position        INTEGER NOT NULL DEFAULT 0,
    first_seen_at   KTIME NOT NULL,
    PRIMARY KEY (session_id, item_hash)
);

CREATE TABLE chunks (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    chunk_hash BLOB NOT NULL,
    refs       BLOB NOT NULL,
    PRIMARY KEY (session_id, chunk_hash)
) WITHOUT ROWID;

ALTER TABLE snapshots ADD COLUMN manifest BLOB;
ALTER TABLE snapshots ADD COLUMN forked_from TEXT;  -- may name a snapshot of another session
ALTER TABLE snapshot_revisions ADD COLUMN manifest BLOB;
ALTER TABLE tasks ADD COLUMN head_snapshot_id TEXT;

-- Linear lineage: a parent has at most one child per task, and a task one first snapshot.
CREATE UNIQUE INDEX snapshots_one_child ON snapshots(task_id, parent_snapshot_id);
CREATE UNIQUE INDEX snapshots_one_root ON snapshots(task_id) WHERE parent_snapshot_id IS NULL;
-- a task's latest snapshot is its head now; the one-child index serves lookups by task
DROP INDEX snapshots_task;

UPDATE tasks SET head_snapshot_id = (
    SELECT s.id FROM snapshots s WHERE s.task_id = tasks.id
     ORDER BY s.created_at DESC, s.id DESC LIMIT 1
);

-- Sealed rows stay sealed. The one UPDATE allowed is the upgrade of a row written by the v1
-- engine (manifest NULL): `kontex migrate` gives it its v2 manifest, once.
DROP TRIGGER snapshots_sealed_update;
CREATE TRIGGER snapshots_sealed_update BEFORE UPDATE ON snapshots
WHEN OLD.manifest IS NOT NULL OR NEW.manifest IS NULL OR NEW.id IS NOT OLD.id
  OR NEW.task_id IS NOT OLD.task_id OR NEW.session_id IS NOT OLD.session_id
  OR NEW.account_id IS NOT OLD.account_id OR NEW.created_at IS NOT OLD.created_at
  OR NEW.parent_snapshot_id IS NOT OLD.parent_snapshot_id
BEGIN
    SELECT RAISE(ABORT, 'snapshot rows are sealed: UPDATE refused');
END;

DROP TRIGGER revisions_sealed_update;
CREATE TRIGGER revisions_sealed_update BEFORE UPDATE ON snapshot_revisions
WHEN OLD.manifest IS NOT NULL OR NEW.manifest IS NULL OR NEW.snapshot_id IS NOT OLD.snapshot_id
  OR NEW.seq IS NOT OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'snapshot revisions are sealed: UPDATE refused');
END;

CREATE TRIGGER items_sealed_update BEFORE UPDATE ON items
BEGIN
    SELECT RAISE(ABORT, 'items are content-addressed and sealed: UPDATE refused');
END;
CREATE TRIGGER items_sealed_delete BEFORE DELETE ON items
WHEN NOT EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id)
BEGIN
    SELECT RAISE(ABORT, 'items are sealed: DELETE refused outside a session purge');
END;
CREATE TRIGGER chunks_sealed_update BEFORE UPDATE ON chunks
BEGIN
    SELECT RAISE(ABORT, 'chunks are content-addressed and sealed: UPDATE refused');
END;
CREATE TRIGGER chunks_sealed_delete BEFORE DELETE ON chunks
WHEN NOT EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id)
BEGIN
    SELECT RAISE(ABORT, 'chunks are sealed: DELETE refused outside a session purge');
END;
