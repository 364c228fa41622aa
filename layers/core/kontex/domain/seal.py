"""The seal of a snapshot row and of a revision row: the sha256 of every field the row serves.

A snapshot's content is bound to its row by ``bundle_hash`` (the manifest's sha256, and the
manifest names the items by their hashes). The row's own fields (label, token total, source,
model, lineage, timestamps, usage) are bound by the seal: computed when the row is written,
stored beside it, and recomputed on every read of the row. A row whose fields do not give its
seal back is altered and is never served (``IntegrityError``; docs/design.md, "Immutability").

The seal is a plain hash, as ``bundle_hash`` is: it catches a row changed behind the
application's back (triggers dropped or disabled), not a database owner who recomputes it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from kontex.domain.errors import IntegrityError

SEAL_VERSION = "s1"

# The row's columns in the order they are sealed (the row's own values, before any revision)
SNAPSHOT_FIELDS = (
    "id",
    "account_id",
    "session_id",
    "task_id",
    "label",
    "source",
    "model",
    "token_total",
    "parent_snapshot_id",
    "rollback_of",
    "forked_from",
    "bundle_hash",
    "stored_bytes",
    "captured_at",
    "created_at",
    "usage_input_tokens",
    "usage_output_tokens",
    "usage_cache_read_tokens",
    "usage_cache_write_tokens",
    "usage_latency_ms",
    "usage_cost_usd",
)
REVISION_FIELDS = (
    "snapshot_id",
    "seq",
    "bundle_hash",
    "token_total",
    "model",
    "stored_bytes",
    "created_at",
)
_FLOATS = {"usage_latency_ms", "usage_cost_usd"}


def _plain(name: str, value: Any) -> Any:
    """One canonical form per value, whatever the driver handed back (SQLite gives times as
    text and numbers as it stored them; PostgreSQL times in the session's zone)."""
    if value is None:
        return None
    if name.endswith("_at"):
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat(timespec="microseconds")
    if name in _FLOATS:
        return repr(float(value))
    if isinstance(value, bool):
        return value
    if isinstance(value, int) or name in ("token_total", "stored_bytes", "seq"):
        return int(value)
    return getattr(value, "value", value)  # an enum's value


def _seal(kind: str, fields: tuple[str, ...], values: dict[str, Any]) -> str:
    body = [SEAL_VERSION, kind, *(_plain(name, values.get(name)) for name in fields)]
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()


def snapshot_seal(values: dict[str, Any]) -> str:
    """The seal of a snapshot row from its columns (``SNAPSHOT_FIELDS``)."""
    return _seal("snapshot", SNAPSHOT_FIELDS, values)


def revision_seal(values: dict[str, Any]) -> str:
    """The seal of a revision row from its columns (``REVISION_FIELDS``)."""
    return _seal("revision", REVISION_FIELDS, values)


def check_snapshot(values: dict[str, Any], seal: str | None) -> None:
    if seal is None or snapshot_seal(values) != seal:
        raise IntegrityError(f"snapshot {values.get('id')} does not match its seal")


def check_revision(values: dict[str, Any], seal: str | None) -> None:
    if seal is None or revision_seal(values) != seal:
        raise IntegrityError(
            f"revision {values.get('seq')} of snapshot {values.get('snapshot_id')}"
            " does not match its seal"
        )
