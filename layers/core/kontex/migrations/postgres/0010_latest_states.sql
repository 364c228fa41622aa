-- Queries serve the latest state. See the SQLite migration of the same name and
-- docs/design.md, "Latest states".
ALTER TABLE items ADD COLUMN call_id TEXT;
-- items are sealed: the one-time backfill of the new column lifts the seal for this statement
ALTER TABLE items DISABLE TRIGGER items_sealed_update;
UPDATE items SET call_id = convert_from(body, 'UTF8')::json ->> 'id' WHERE kind = 'tool_call';
ALTER TABLE items ENABLE TRIGGER items_sealed_update;
CREATE INDEX items_calls ON items(session_id, call_id, first_seen_at, position)
    WHERE kind = 'tool_call';

