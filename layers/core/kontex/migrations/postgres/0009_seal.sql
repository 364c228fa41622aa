-- The seal of each snapshot and revision row: the sha256 of every field the row serves
-- (kontex/domain/seal.py), checked on every read (docs/design.md, "Immutability"). Rows
-- written before this migration get theirs from `kontex migrate`, once: the one UPDATE the
-- triggers allow besides the v1 upgrade, and only of the seal, while it is still NULL.
ALTER TABLE snapshots ADD COLUMN seal TEXT;
ALTER TABLE snapshot_revisions ADD COLUMN seal TEXT;

CREATE OR REPLACE FUNCTION kontex_refuse_update_unless_upgrade() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- the v1 upgrade: a row's manifest (and so its content hash), once, seal untouched
    IF OLD.manifest IS NULL AND NEW.manifest IS NOT NULL
       AND (to_jsonb(NEW) - 'manifest' - 'bundle_hash') = (to_jsonb(OLD) - 'manifest' - 'bundle_hash')
    THEN
        RETURN NEW;
    END IF;
    -- the seal of a row written before 0009_seal, once, nothing else
    IF OLD.seal IS NULL AND NEW.seal IS NOT NULL
       AND (to_jsonb(NEW) - 'seal') = (to_jsonb(OLD) - 'seal')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% rows are sealed: UPDATE refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
