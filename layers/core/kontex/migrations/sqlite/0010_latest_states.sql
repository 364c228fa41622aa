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

