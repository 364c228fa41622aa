-- Rate limits (docs/design.md, "Rate limits"): a key's count of a window is spread over a few
-- shard rows, so the requests of a key shared by many copies of a function do not all queue on
-- one row's lock. A window's count is the sum of its shards; the rows written before this
-- migration are shard 0 and keep their count. (SQLite cannot change a primary key: the table
-- is made again.)
CREATE TABLE rate_limits_sharded (
    key_id       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    shard        INTEGER NOT NULL DEFAULT 0,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (key_id, kind, window_start, shard)
);
INSERT INTO rate_limits_sharded (key_id, kind, window_start, shard, hits)
    SELECT key_id, kind, window_start, 0, hits FROM rate_limits;
DROP TABLE rate_limits;
ALTER TABLE rate_limits_sharded RENAME TO rate_limits;
