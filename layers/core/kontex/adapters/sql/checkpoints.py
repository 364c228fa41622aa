"""Checkpoints (``CheckpointRepository``): which session and task hold each namespace of a
thread, the index of its checkpoints and their pending writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kontex.adapters.sql import snapshots
from kontex.adapters.sql.base import Repository, chunked, marks
from kontex.domain.models import Snapshot
from kontex.ports import CheckpointListing, CheckpointRow, CheckpointWrite

NAMESPACES_SQL = (
    "SELECT ns, session_id, task_id FROM checkpoint_threads WHERE account_id = ? AND thread_id = ?"
)
ADD_NAMESPACE_SQL = (
    "INSERT INTO checkpoint_threads (account_id, thread_id, ns, session_id, task_id, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
COLUMNS = (
    "thread_id, ns, checkpoint_id, parent_id, session_id, snapshot_id, metadata, run_id, created_at"
)
PUT_SQL = (
    f"INSERT INTO checkpoints (account_id, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, thread_id, ns, checkpoint_id) DO UPDATE SET"
    " parent_id = excluded.parent_id, snapshot_id = excluded.snapshot_id,"
    " metadata = excluded.metadata, run_id = excluded.run_id"
)
SELECT_SQL = f"SELECT {COLUMNS} FROM checkpoints WHERE account_id = ?"
WRITES_SQL = (
    "SELECT checkpoint_id, task_id, idx, channel, value, task_path FROM checkpoint_writes"
    " WHERE account_id = ? AND thread_id = ? AND ns = ? AND checkpoint_id IN ({marks})"
    " ORDER BY checkpoint_id, task_path, task_id, idx"
)
WRITE_COLUMNS = (
    "account_id, thread_id, ns, checkpoint_id, task_id, idx, channel, value, task_path, session_id"
)
ADD_WRITES_SQL = f"INSERT INTO checkpoint_writes ({WRITE_COLUMNS}) VALUES" + (
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, thread_id, ns, checkpoint_id,"
    " task_id, idx) DO "
)
KEEP = "NOTHING"
REPLACE = "UPDATE SET channel = excluded.channel, value = excluded.value,"
REPLACE += " task_path = excluded.task_path"
# A checkpoint with its snapshot as it stands (its manifest), and its writes: sent together, one
# round trip on PostgreSQL; "latest" is the namespace's highest checkpoint id
_CHECKPOINT_COLUMNS = ", ".join(f"c.{c.strip()} AS c_{c.strip()}" for c in COLUMNS.split(","))
READ_SQL = (
    snapshots.SELECT_SQL.replace(
        "\nFROM snapshots s\n",
        f", {_CHECKPOINT_COLUMNS}\nFROM checkpoints c JOIN snapshots s"
        " ON s.id = c.snapshot_id AND s.account_id = c.account_id\n",
    )
    + " WHERE c.account_id = ? AND c.thread_id = ? AND c.ns = ?"
)
LATEST_ID = (
    "(SELECT MAX(l.checkpoint_id) FROM checkpoints l"
    " WHERE l.account_id = ? AND l.thread_id = ? AND l.ns = ?)"
)
READ_WRITES_SQL = (
    "SELECT task_id, idx, channel, value, task_path FROM checkpoint_writes"
    " WHERE account_id = ? AND thread_id = ? AND ns = ? AND checkpoint_id = {which}"
    " ORDER BY task_path, task_id, idx"
)
# the latest checkpoint of each namespace, for prune(keep_latest)
LATEST = (
    " AND checkpoint_id <> (SELECT MAX(l.checkpoint_id) FROM checkpoints l"
    " WHERE l.account_id = checkpoints.account_id AND l.thread_id = checkpoints.thread_id"
    " AND l.ns = checkpoints.ns)"
)
# writes whose checkpoint is gone
ORPHAN_WRITES_SQL = (
    "DELETE FROM checkpoint_writes WHERE account_id = ? AND thread_id IN ({marks})"
    " AND NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.account_id = checkpoint_writes.account_id"
    " AND c.thread_id = checkpoint_writes.thread_id AND c.ns = checkpoint_writes.ns"
    " AND c.checkpoint_id = checkpoint_writes.checkpoint_id)"
)


def _where(listing: CheckpointListing) -> tuple[str, list[Any]]:
    sql, params = "", list[Any]()
    if listing.thread_id is not None:
        sql += " AND thread_id = ?"
        params.append(listing.thread_id)
    if listing.ns is not None:
        sql += " AND ns = ?"
        params.append(listing.ns)
    if listing.before is not None:
        sql += " AND checkpoint_id < ?"
        params.append(listing.before)
    if listing.run_ids is not None:
        sql += f" AND run_id IN ({marks(listing.run_ids)})"
        params += listing.run_ids
    return sql, params


class SqlCheckpoints(Repository):
    def _row(self, row: dict[str, Any]) -> CheckpointRow:
        return CheckpointRow(**row)

    def namespaces(self, account_id: str, thread_id: str) -> dict[str, tuple[str, str]]:
        rows = self._work.run(NAMESPACES_SQL, [account_id, thread_id])
        return {r["ns"]: (r["session_id"], r["task_id"]) for r in rows}

    def add_namespace(
        self, account_id: str, thread_id: str, ns: str, session_id: str, task_id: str, at: datetime
    ) -> None:
        self._work.later(ADD_NAMESPACE_SQL, [(account_id, thread_id, ns, session_id, task_id, at)])

    def put(self, account_id: str, row: CheckpointRow) -> None:
        r = row
        self._work.later(
            PUT_SQL,
            [
                (
                    account_id,
                    r.thread_id,
                    r.ns,
                    r.checkpoint_id,
                    r.parent_id,
                    r.session_id,
                    r.snapshot_id,
                    self._work.json(r.metadata),
                    r.run_id,
                    r.created_at,
                )
            ],
        )

    def read(
        self, account_id: str, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> tuple[CheckpointRow, Snapshot, bytes | None, list[CheckpointWrite]] | None:
        key = [account_id, thread_id, ns]
        if checkpoint_id is None:
            found_sql = READ_SQL + " ORDER BY c.checkpoint_id DESC LIMIT 1"
            found_params = key
            writes_sql, writes_params = READ_WRITES_SQL.format(which=LATEST_ID), key + key
        else:
            found_sql = READ_SQL + " AND c.checkpoint_id = ?"
            found_params = [*key, checkpoint_id]
            writes_sql = READ_WRITES_SQL.format(which="?")
            writes_params = [*key, checkpoint_id]
        found, writes = self._work.run_together(
            [(found_sql, found_params), (writes_sql, writes_params)]
        )
        if not found:
            return None
        row = found[0]
        checkpoint = CheckpointRow(**{k[2:]: row.pop(k) for k in list(row) if k.startswith("c_")})
        snapshot, manifest = snapshots.stored_of(row)
        return checkpoint, snapshot, manifest, [CheckpointWrite(**w) for w in writes]

    def page(self, account_id: str, listing: CheckpointListing) -> list[CheckpointRow]:
        where, params = _where(listing)
        if listing.after is not None:
            where += " AND (checkpoint_id < ? OR (checkpoint_id = ? AND (ns < ?"
            where += " OR (ns = ? AND thread_id < ?))))"
            checkpoint_id, ns, thread_id = listing.after
            params += [checkpoint_id, checkpoint_id, ns, ns, thread_id]
        rows = self._work.run(
            SELECT_SQL + where + " ORDER BY checkpoint_id DESC, ns DESC, thread_id DESC LIMIT ?",
            [account_id, *params, listing.limit],
        )
        return [self._row(r) for r in rows]

    def writes(
        self, account_id: str, thread_id: str, ns: str, checkpoint_ids: Sequence[str]
    ) -> dict[str, list[CheckpointWrite]]:
        out: dict[str, list[CheckpointWrite]] = {c: [] for c in checkpoint_ids}
        for part in chunked(list(checkpoint_ids)):
            rows = self._work.run(
                WRITES_SQL.format(marks=marks(part)), [account_id, thread_id, ns, *part]
            )
            for r in rows:
                out[r.pop("checkpoint_id")].append(CheckpointWrite(**r))
        return out

    def add_writes(
        self,
        account_id: str,
        key: tuple[str, str, str, str],
        writes: Sequence[CheckpointWrite],
        replace: bool,
    ) -> None:
        thread_id, ns, checkpoint_id, session_id = key
        self._work.later(
            ADD_WRITES_SQL + (REPLACE if replace else KEEP),
            [
                (
                    account_id,
                    thread_id,
                    ns,
                    checkpoint_id,
                    w.task_id,
                    w.idx,
                    w.channel,
                    w.value,
                    w.task_path,
                    session_id,
                )
                for w in writes
            ],
        )

    def sessions_of(self, account_id: str, thread_id: str) -> list[str]:
        return sorted({s for s, _ in self.namespaces(account_id, thread_id).values()})

    def remove(self, account_id: str, listing: CheckpointListing, keep_latest: bool) -> int:
        where, params = _where(listing)
        threads = [
            r["thread_id"]
            for r in self._work.run(
                "SELECT DISTINCT thread_id FROM checkpoints WHERE account_id = ?" + where,
                [account_id, *params],
            )
        ]
        if not threads:
            return 0
        gone = self._work.run(
            "DELETE FROM checkpoints WHERE account_id = ?"
            + where
            + (LATEST if keep_latest else "")
            + " RETURNING checkpoint_id",
            [account_id, *params],
        )
        for part in chunked(threads):
            self._work.run(ORPHAN_WRITES_SQL.format(marks=marks(part)), [account_id, *part])
        return len(gone)
