-- The seal of each snapshot and revision row: the sha256 of every field the row serves
-- (kontex/domain/seal.py), checked on every read (docs/design.md, "Immutability"). Rows
-- written before this migration get theirs from `kontex migrate`, once: the one UPDATE the
-- triggers allow besides the v1 upgrade, and only of the seal, while it is still NULL.
ALTER TABLE snapshots ADD COLUMN seal TEXT;
ALTER TABLE snapshot_revisions ADD COLUMN seal TEXT;

DROP TRIGGER snapshots_sealed_update;
CREATE TRIGGER snapshots_sealed_update BEFORE UPDATE ON snapshots
WHEN NOT (
    (OLD.manifest IS NULL AND NEW.manifest IS NOT NULL AND NEW.seal IS OLD.seal
     AND NEW.id IS OLD.id AND NEW.task_id IS OLD.task_id AND NEW.session_id IS OLD.session_id
     AND NEW.account_id IS OLD.account_id AND NEW.created_at IS OLD.created_at
     AND NEW.parent_snapshot_id IS OLD.parent_snapshot_id)
    OR
    (OLD.seal IS NULL AND NEW.seal IS NOT NULL AND NEW.manifest IS OLD.manifest
     AND NEW.id IS OLD.id AND NEW.account_id IS OLD.account_id
     AND NEW.session_id IS OLD.session_id AND NEW.task_id IS OLD.task_id
     AND NEW.label IS OLD.label AND NEW.source IS OLD.source AND NEW.model IS OLD.model
     AND NEW.token_total IS OLD.token_total
     AND NEW.parent_snapshot_id IS OLD.parent_snapshot_id
     AND NEW.rollback_of IS OLD.rollback_of AND NEW.forked_from IS OLD.forked_from
     AND NEW.bundle_hash IS OLD.bundle_hash AND NEW.stored_bytes IS OLD.stored_bytes
     AND NEW.captured_at IS OLD.captured_at AND NEW.created_at IS OLD.created_at
     AND NEW.usage_input_tokens IS OLD.usage_input_tokens
     AND NEW.usage_output_tokens IS OLD.usage_output_tokens
     AND NEW.usage_cache_read_tokens IS OLD.usage_cache_read_tokens
     AND NEW.usage_cache_write_tokens IS OLD.usage_cache_write_tokens
     AND NEW.usage_latency_ms IS OLD.usage_latency_ms
     AND NEW.usage_cost_usd IS OLD.usage_cost_usd)
)
BEGIN
    SELECT RAISE(ABORT, 'snapshot rows are sealed: UPDATE refused');
END;

DROP TRIGGER revisions_sealed_update;
CREATE TRIGGER revisions_sealed_update BEFORE UPDATE ON snapshot_revisions
WHEN NOT (
    (OLD.manifest IS NULL AND NEW.manifest IS NOT NULL AND NEW.seal IS OLD.seal
     AND NEW.snapshot_id IS OLD.snapshot_id AND NEW.seq IS OLD.seq)
    OR
    (OLD.seal IS NULL AND NEW.seal IS NOT NULL AND NEW.manifest IS OLD.manifest
     AND NEW.snapshot_id IS OLD.snapshot_id AND NEW.seq IS OLD.seq
     AND NEW.session_id IS OLD.session_id AND NEW.bundle_hash IS OLD.bundle_hash
     AND NEW.token_total IS OLD.token_total AND NEW.model IS OLD.model
     AND NEW.stored_bytes IS OLD.stored_bytes AND NEW.created_at IS OLD.created_at)
)
BEGIN
    SELECT RAISE(ABORT, 'snapshot revisions are sealed: UPDATE refused');
END;
