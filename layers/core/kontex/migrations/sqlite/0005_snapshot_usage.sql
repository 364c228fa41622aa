-- What the captured LLM call of a snapshot used (services/pricing.py), copied from the
-- manifest's `usage` scalar so that stats and /v1/usage sum calls in SQL. NULL: the snapshot
-- is not one call (API writes, rollbacks, forks). Each call is one snapshot, counted once.
ALTER TABLE snapshots ADD COLUMN usage_input_tokens INTEGER;
ALTER TABLE snapshots ADD COLUMN usage_output_tokens INTEGER;
ALTER TABLE snapshots ADD COLUMN usage_cache_read_tokens INTEGER;
ALTER TABLE snapshots ADD COLUMN usage_cache_write_tokens INTEGER;
ALTER TABLE snapshots ADD COLUMN usage_latency_ms REAL;
ALTER TABLE snapshots ADD COLUMN usage_cost_usd REAL;
