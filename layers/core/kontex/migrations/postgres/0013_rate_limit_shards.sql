-- Rate limits (docs/design.md, "Rate limits"): a key's count of a window is spread over a few
-- shard rows, so the requests of a key shared by many copies of a function do not all queue on
-- one row's lock. A window's count is the sum of its shards; the rows written before this
-- migration are shard 0 and keep their count.
ALTER TABLE rate_limits ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE rate_limits DROP CONSTRAINT rate_limits_pkey;
ALTER TABLE rate_limits ADD PRIMARY KEY (key_id, kind, window_start, shard);
