"""A session's rows as stored, for its archive (``ArchiveRepository``): the sealed snapshot rows
as first written (with the usage their stats count), revisions, items, chunks, checkpoint rows
and the names the account knows the session by. Each snapshot and revision row is checked
against its seal, as every read of them is. Reads only: an import writes through the
repositories of each aggregate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kontex.adapters.sql.base import Repository, as_bytes, as_time, chunked, marks
from kontex.domain import seal
from kontex.domain.models import Snapshot, ThreadState, Usage
from kontex.ports import CheckpointRow, CheckpointWrite, ItemRow, Revision

Writes = list[tuple[str, str, str, CheckpointWrite]]  # thread id, ns, checkpoint id, write

SNAPSHOTS_SQL = (
    "SELECT id, account_id, session_id, task_id, label, source, model, token_total,"
    " parent_snapshot_id, rollback_of, forked_from, bundle_hash, stored_bytes, captured_at,"
    " created_at, manifest, seal, usage_input_tokens, usage_output_tokens,"
    " usage_cache_read_tokens, usage_cache_write_tokens, usage_latency_ms, usage_cost_usd"
    " FROM snapshots WHERE account_id = ? AND session_id = ? ORDER BY created_at, id"
)
REVISIONS_SQL = (
    "SELECT r.snapshot_id, r.seq, r.bundle_hash, r.token_total, r.model, r.created_at,"
    " r.stored_bytes, r.manifest, r.seal"
    " FROM snapshot_revisions r JOIN snapshots s ON s.id = r.snapshot_id"
    " WHERE s.account_id = ? AND s.session_id = ? ORDER BY r.snapshot_id, r.seq"
)
ITEMS_SQL = (
    "SELECT item_hash, kind, body, tokens, role, has_text, has_tool_use, has_tool_result,"
    " tool_name, is_error, position, first_seen_at FROM items WHERE session_id = ?"
    " ORDER BY item_hash"
)
CHUNKS_SQL = "SELECT chunk_hash, refs FROM chunks WHERE session_id = ? ORDER BY chunk_hash"
NAMESPACES_SQL = (
    "SELECT thread_id, ns, task_id, created_at FROM checkpoint_threads"
    " WHERE account_id = ? AND session_id = ? ORDER BY thread_id, ns"
)
CHECKPOINTS_SQL = (
    "SELECT thread_id, ns, checkpoint_id, parent_id, session_id, snapshot_id, metadata, run_id,"
    " created_at FROM checkpoints WHERE account_id = ? AND session_id = ?"
    " ORDER BY thread_id, ns, checkpoint_id"
)
WRITES_SQL = (
    "SELECT thread_id, ns, checkpoint_id, task_id, idx, channel, value, task_path"
    " FROM checkpoint_writes WHERE account_id = ? AND session_id = ?"
    " ORDER BY thread_id, ns, checkpoint_id, task_path, task_id, idx"
)
# thread states whose document names the session (``_`` is a LIKE wildcard: escaped)
THREAD_STATES_SQL = (
    "SELECT account_id, thread_id, user_data, version, updated_at FROM thread_states"
    " WHERE account_id = ? AND user_data LIKE ? ESCAPE '\\' ORDER BY thread_id"
)
TRACES_SQL = (
    "SELECT trace_id, created_at FROM session_traces WHERE account_id = ? AND session_id = ?"
    " ORDER BY trace_id"
)
ALIASES_SQL = (
    "SELECT alias FROM session_aliases WHERE account_id = ? AND session_id = ? ORDER BY alias"
)
EXISTING_SQL = (
    "SELECT id FROM sessions WHERE id IN ({marks}) UNION SELECT id FROM tasks WHERE id IN"
    " ({marks}) UNION SELECT id FROM snapshots WHERE id IN ({marks})"
)
USAGE = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _usage(row: dict[str, Any]) -> Usage | None:
    """The usage the row counts (its columns), None when it counts none."""
    values = {name: row.pop(f"usage_{name}") for name in (*USAGE, "latency_ms", "cost_usd")}
    if all(v is None for v in values.values()):
        return None
    return Usage.model_validate({k: v for k, v in values.items() if v is not None})


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SqlArchive(Repository):
    def snapshots(self, account_id: str, session_id: str) -> list[tuple[Snapshot, bytes | None]]:
        out = []
        for row in self._work.run(SNAPSHOTS_SQL, [account_id, session_id]):
            seal.check_snapshot(row, row.pop("seal"))
            manifest = as_bytes(row.pop("manifest"))
            usage = _usage(row)
            out.append((Snapshot(**row, usage=usage), manifest))
        return out

    def revisions(self, account_id: str, session_id: str) -> list[Revision]:
        out = []
        for r in self._work.run(REVISIONS_SQL, [account_id, session_id]):
            seal.check_revision(r, r.pop("seal"))
            r.update(manifest=as_bytes(r["manifest"]), created_at=as_time(r["created_at"]))
            out.append(Revision(**r))
        return out

    def items(self, session_id: str) -> list[tuple[ItemRow, Any]]:
        out = []
        for r in self._work.run(ITEMS_SQL, [session_id]):
            index = {
                "role": r["role"],
                "has_text": bool(r["has_text"]),
                "has_tool_use": bool(r["has_tool_use"]),
                "has_tool_result": bool(r["has_tool_result"]),
                "tool_name": r["tool_name"],
                "is_error": bool(r["is_error"]),
            }
            row = ItemRow(
                bytes(r["item_hash"]),
                r["kind"],
                bytes(r["body"]),
                int(r["tokens"]),
                int(r["position"]),
                index,
            )
            out.append((row, as_time(r["first_seen_at"])))
        return out

    def chunks(self, session_id: str) -> dict[bytes, bytes]:
        rows = self._work.run(CHUNKS_SQL, [session_id])
        return {bytes(r["chunk_hash"]): bytes(r["refs"]) for r in rows}

    def checkpoints(
        self, account_id: str, session_id: str
    ) -> tuple[
        list[dict[str, Any]], list[CheckpointRow], list[tuple[str, str, str, CheckpointWrite]]
    ]:
        """The session's checkpoint namespaces, checkpoints and pending writes (each write with
        its thread, namespace and checkpoint id)."""
        key = [account_id, session_id]
        namespaces = self._work.run(NAMESPACES_SQL, key)
        for n in namespaces:
            n["created_at"] = as_time(n["created_at"])
        rows = [CheckpointRow(**r) for r in self._work.run(CHECKPOINTS_SQL, key)]
        writes = []
        for w in self._work.run(WRITES_SQL, key):
            where = (w.pop("thread_id"), w.pop("ns"), w.pop("checkpoint_id"))
            writes.append((*where, CheckpointWrite(**w)))
        return namespaces, rows, writes

    def thread_states(self, account_id: str, naming: str) -> list[ThreadState]:
        """Thread states of the account whose document holds ``naming`` (a session id)."""
        rows = self._work.run(THREAD_STATES_SQL, [account_id, _like(naming)])
        return [ThreadState(**r) for r in rows if naming in r["user_data"]]

    def traces(self, account_id: str, session_id: str) -> list[tuple[str, Any]]:
        rows = self._work.run(TRACES_SQL, [account_id, session_id])
        return [(r["trace_id"], as_time(r["created_at"])) for r in rows]

    def aliases(self, account_id: str, session_id: str) -> list[str]:
        return [r["alias"] for r in self._work.run(ALIASES_SQL, [account_id, session_id])]

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` name a session, task or snapshot, of any account."""
        found: set[str] = set()
        for part in chunked(list(ids)):
            sql = EXISTING_SQL.format(marks=marks(part))
            found.update(r["id"] for r in self._work.run(sql, [*part, *part, *part]))
        return found
