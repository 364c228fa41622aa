"""Accounts, API keys and the keys' rate-limit windows (``KeyRepository``)."""

from __future__ import annotations

from datetime import datetime

from kontex.adapters.sql.base import Repository
from kontex.domain.models import Account, ApiKey

INSERT_ACCOUNT_SQL = "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)"
SELECT_ACCOUNT_SQL = "SELECT id, name, created_at FROM accounts WHERE id = ?"
KEY_COLUMNS = "id, account_id, label, prefix, created_at, revoked_at"
INSERT_KEY_SQL = (
    "INSERT INTO api_keys (id, account_id, label, prefix, key_hash, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT_KEY_BY_HASH_SQL = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?"
SELECT_KEYS_SQL = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = ? ORDER BY created_at, id"
REVOKE_KEY_SQL = (
    "UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND id = ?"
    " AND revoked_at IS NULL RETURNING id"
)
# A window's count is spread over a few shard rows (docs/design.md, "Rate limits"): a hit adds
# its uses (one, or the proxy's several counted at once) to its shard's row and answers that
# row's count (``shard_hits``: the uses added when the row is new)
# and the window's (``hits``: the row's plus the other shards', read in the same statement).
_UPSERT_HIT = (
    " ON CONFLICT (key_id, kind, window_start, shard) DO UPDATE"
    " SET hits = rate_limits.hits + excluded.hits"
    " RETURNING hits AS shard_hits, hits + ("
    "SELECT COALESCE(SUM(o.hits), 0) FROM rate_limits o WHERE o.key_id = rate_limits.key_id"
    " AND o.kind = rate_limits.kind AND o.window_start = rate_limits.window_start"
    " AND o.shard <> rate_limits.shard) AS hits"
)
HIT_SQL = (
    "INSERT INTO rate_limits (key_id, kind, window_start, shard, hits) VALUES (?, ?, ?, ?, ?)"
    + _UPSERT_HIT
)
# the key's use counted in the same round trip as the key is found (none for a revoked one)
HIT_BY_HASH_SQL = (
    "INSERT INTO rate_limits (key_id, kind, window_start, shard, hits)"
    " SELECT id, ?, ?, ?, 1 FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL" + _UPSERT_HIT
)
DROP_OLD_WINDOWS_SQL = "DELETE FROM rate_limits WHERE key_id = ? AND kind = ? AND window_start < ?"


class SqlKeys(Repository):
    def add_account(self, account: Account) -> None:
        self._work.run(INSERT_ACCOUNT_SQL, [account.id, account.name, account.created_at])

    def account(self, account_id: str) -> Account | None:
        row = self._work.one(SELECT_ACCOUNT_SQL, [account_id])
        return Account(**row) if row else None

    def add(self, key: ApiKey, key_hash: str) -> None:
        self._work.run(
            INSERT_KEY_SQL,
            [key.id, key.account_id, key.label, key.prefix, key_hash, key.created_at],
        )

    def find(self, key_hash: str) -> ApiKey | None:
        row = self._work.one(SELECT_KEY_BY_HASH_SQL, [key_hash])
        return ApiKey(**row) if row else None

    def of_account(self, account_id: str) -> list[ApiKey]:
        return [ApiKey(**r) for r in self._work.run(SELECT_KEYS_SQL, [account_id])]

    def revoke(self, account_id: str, key_id: str, at: datetime) -> bool:
        return bool(self._work.run(REVOKE_KEY_SQL, [at, account_id, key_id]))

    def hit(self, key_id: str, kind: str, window_start: int, shard: int, uses: int = 1) -> int:
        (row,) = self._work.run(HIT_SQL, [key_id, kind, window_start, shard, uses])
        if row["shard_hits"] == uses:  # a new window (of this shard): the key's older ones go
            self._work.later(DROP_OLD_WINDOWS_SQL, [(key_id, kind, window_start)])
        return int(row["hits"])

    def find_and_hit(
        self, key_hash: str, kind: str, window_start: int, shard: int
    ) -> tuple[ApiKey | None, int]:
        found, hit = self._work.run_together(
            [
                (SELECT_KEY_BY_HASH_SQL, [key_hash]),
                (HIT_BY_HASH_SQL, [kind, window_start, shard, key_hash]),
            ]
        )
        key = ApiKey(**found[0]) if found else None
        if key is None or not hit:
            return key, 0
        if hit[0]["shard_hits"] == 1:
            self._work.later(DROP_OLD_WINDOWS_SQL, [(key.id, kind, window_start)])
        return key, int(hit[0]["hits"])
