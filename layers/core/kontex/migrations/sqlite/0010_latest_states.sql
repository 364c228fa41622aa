-- Queries serve the latest state (docs/design.md, "Latest states").
--
-- A tool call is stored once per state it was seen in (pending, then with its output): its id
-- is a column of its items, so the tool-call query lists each call once, in its latest state.
ALTER TABLE items ADD COLUMN call_id TEXT;
-- items are sealed: the one-time backfill of the new column lifts the seal for this statement
DROP TRIGGER items_sealed_update;
UPDATE items SET call_id = json_extract(CAST(body AS TEXT), '$.id') WHERE kind = 'tool_call';
CREATE TRIGGER items_sealed_update BEFORE UPDATE ON items
BEGIN
    SELECT RAISE(ABORT, 'items are content-addressed and sealed: UPDATE refused');
END;
CREATE INDEX items_calls ON items(session_id, call_id, first_seen_at, position)
    WHERE kind = 'tool_call';

-- The usage a revision's manifest carries, copied (as snapshots' usage_* columns copy the
-- original's) so that stats and /v1/usage sum calls in SQL: a snapshot's call is its latest
-- row here, else its own columns. Written with the revision (SqlSnapshots.add_revision), for
-- the snapshot of a call only (not a fork's or a rollback's: they restate a call).
CREATE TABLE revision_usage (
    snapshot_id        TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    session_id         TEXT NOT NULL REFERENCES sessions(id),
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    cache_read_tokens  INTEGER,
    cache_write_tokens INTEGER,
    latency_ms         REAL,
    cost_usd           REAL,
    PRIMARY KEY (snapshot_id, seq),
    FOREIGN KEY (snapshot_id, seq) REFERENCES snapshot_revisions(snapshot_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER revision_usage_sealed_update BEFORE UPDATE ON revision_usage
BEGIN
    SELECT RAISE(ABORT, 'revision usage is sealed: UPDATE refused');
END;
CREATE TRIGGER revision_usage_sealed_delete BEFORE DELETE ON revision_usage
WHEN NOT EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id)
BEGIN
    SELECT RAISE(ABORT, 'revision usage is sealed: DELETE refused outside a session purge');
END;
