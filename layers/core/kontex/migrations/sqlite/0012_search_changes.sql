-- Search by content (docs/design.md, "Search"): each distinct piece of searchable content of an
-- account is one point of the vector index, embedded once. This table says which snapshots
-- hold it, as changes along each task's chain of snapshots: a row where a point enters a
-- snapshot (its parent did not hold it: entered = 1, with the role and position it has there)
-- and a row where it leaves (the parent held it, the snapshot does not: entered = 0). The
-- snapshots holding a point are those of each run from an entry to the next exit, so a chain
-- of N snapshots that appends or slides a window costs rows for what changed, not N x its
-- length. The rows of a session go with its points on `session.purged`.
CREATE TABLE search_changes (
    snapshot_id TEXT NOT NULL,
    point_id    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    created_at  KTIME NOT NULL,  -- the snapshot's
    entered     INTEGER NOT NULL,
    role        TEXT,
    position    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (snapshot_id, point_id)
) WITHOUT ROWID;
CREATE INDEX search_changes_point ON search_changes(point_id, session_id, task_id, created_at);
CREATE INDEX search_changes_session ON search_changes(session_id, point_id);
CREATE INDEX search_changes_task ON search_changes(task_id, point_id);
