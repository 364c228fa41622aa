-- Queries serve the latest state. See the SQLite migration of the same name and
-- docs/design.md, "Latest states".
ALTER TABLE items ADD COLUMN call_id TEXT;
-- items are sealed: the one-time backfill of the new column lifts the seal for this statement
ALTER TABLE items DISABLE TRIGGER items_sealed_update;
UPDATE items SET call_id = convert_from(body, 'UTF8')::json ->> 'id' WHERE kind = 'tool_call';
ALTER TABLE items ENABLE TRIGGER items_sealed_update;
CREATE INDEX items_calls ON items(session_id, call_id, first_seen_at, position)
    WHERE kind = 'tool_call';

CREATE TABLE revision_usage (
    snapshot_id        TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    session_id         TEXT NOT NULL REFERENCES sessions(id),
    input_tokens       BIGINT,
    output_tokens      BIGINT,
    cache_read_tokens  BIGINT,
    cache_write_tokens BIGINT,
    latency_ms         DOUBLE PRECISION,
    cost_usd           DOUBLE PRECISION,
    PRIMARY KEY (snapshot_id, seq),
    FOREIGN KEY (snapshot_id, seq) REFERENCES snapshot_revisions(snapshot_id, seq)
);

CREATE TRIGGER revision_usage_sealed_update BEFORE UPDATE ON revision_usage
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_update();
CREATE TRIGGER revision_usage_sealed_delete BEFORE DELETE ON revision_usage
    FOR EACH ROW EXECUTE FUNCTION kontex_refuse_delete_outside_purge();
CREATE TRIGGER revision_usage_no_truncate BEFORE TRUNCATE ON revision_usage
    FOR EACH STATEMENT EXECUTE FUNCTION kontex_refuse_truncate();
