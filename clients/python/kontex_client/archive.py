"""The ``.kontex`` archive: one session with its tasks, snapshots and content, portable between
servers (docs/export-format.md).

A zip file holding:

- ``kontex-export.json``: the manifest (``format: "kontex-session"``, ``version: 1``), the
  session, its tasks (parents before children), and its snapshots oldest first, each with the
  file of its bundle;
- ``bundles/<snapshot id>.json``: the bundle, its lists (messages, tool calls, files, log
  events) as references to items;
- ``items/<sha256>.json``: each distinct item once, named by the sha256 of its bytes;
- ``SHA256SUMS``: the sha256 of every other member.

``read`` checks every member against its hash and every reference before anything is written;
``import_session`` then writes the session and, if any write fails, purges what it wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kontex_client._errors import IntegrityError, KontexError
from kontex_client._sync_client import Kontex

FORMAT, VERSION = "kontex-session", 1
MANIFEST, SUMS = "kontex-export.json", "SHA256SUMS"
LISTS = ("messages", "tool_calls", "files", "log_events")
SCALARS = ("reasoning", "model", "token_total", "captured_at")
Progress = Callable[[int, int], None]


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Archive:
    """A verified archive in memory: the manifest and each snapshot's bundle, resolved."""

    manifest: dict[str, Any]
    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def session(self) -> dict[str, Any]:
        session: dict[str, Any] = self.manifest["session"]
        return session

    @property
    def tasks(self) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.manifest["tasks"]
        return tasks

    @property
    def snapshots(self) -> list[dict[str, Any]]:
        snapshots: list[dict[str, Any]] = self.manifest["snapshots"]
        return snapshots


def _tree_order(nodes: Iterable[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        out.append(node.model_dump(mode="json", exclude={"children"}))
        for child in node.children:
            walk(child)

    for node in nodes:
        walk(node)
    return out


def export_session(
    client: Kontex, session_id: str, target: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the session to ``target`` (a ``.kontex`` zip); answers the manifest's summary."""
    session = client.sessions.get(session_id).model_dump(mode="json")
    tasks = _tree_order(client.tasks.tree(session_id))
    timeline = client.sessions.timeline(session_id)
    items: dict[str, bytes] = {}
    members: dict[str, bytes] = {}
    snapshots: list[dict[str, Any]] = []
    for done, entry in enumerate(timeline, start=1):
        bundle = client.snapshots.bundle(entry.id).model_dump(mode="json")
        stored: dict[str, Any] = {k: bundle.get(k) for k in SCALARS}
        for name in LISTS:
            refs = []
            for item in bundle.get(name) or []:
                data = canonical(item)
                digest = sha256(data)
                items.setdefault(digest, data)
                refs.append(digest)
            stored[name] = refs
        path = f"bundles/{entry.id}.json"
        members[path] = canonical(stored)
        row = entry.model_dump(mode="json", exclude={"task_name", "token_delta"})
        snapshots.append({**row, "bundle": path})
        if progress:
            progress(done, len(timeline))
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "source_url": client.base_url,
        "session": session,
        "tasks": tasks,
        "snapshots": snapshots,
        "items": len(items),
    }
    members[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    for digest, data in items.items():
        members[f"items/{digest}.json"] = data
    sums = "".join(f"{sha256(data)}  {name}\n" for name, data in sorted(members.items()))
    tmp = target.with_name(target.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, members.pop(MANIFEST))
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(SUMS, sums)
    tmp.replace(target)  # a complete archive or none
    return {
        "session_id": session_id,
        "path": str(target),
        "tasks": len(tasks),
        "snapshots": len(snapshots),
        "items": len(items),
        "bytes": target.stat().st_size,
    }


def _refuse(message: str) -> IntegrityError:
    return IntegrityError(f"archive refused: {message}", code="integrity_error")


def read(source: Path | bytes) -> Archive:
    """The archive, verified: every member against ``SHA256SUMS``, every item against its
    name, every reference resolved. Raises ``IntegrityError`` on any mismatch."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (OSError, zipfile.BadZipFile) as error:
        raise _refuse(f"not a .kontex archive ({error})") from error
    with zf:
        try:
            members = {name: zf.read(name) for name in zf.namelist()}
        except (zipfile.BadZipFile, OSError) as error:  # a damaged member fails its CRC
            raise _refuse(f"damaged member ({error})") from error
    if SUMS not in members or MANIFEST not in members:
        raise _refuse(f"{SUMS} or {MANIFEST} is missing")
    listed: dict[str, str] = {}
    for line in members.pop(SUMS).decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    if set(listed) != set(members):
        extra = sorted(set(members) - set(listed)) + sorted(set(listed) - set(members))
        raise _refuse(f"members do not match {SUMS}: {', '.join(extra[:5])}")
    for name, data in members.items():
        if sha256(data) != listed[name]:
            raise _refuse(f"{name} does not match its sha256")
        if name.startswith("items/") and name != f"items/{sha256(data)}.json":
            raise _refuse(f"{name} is not named by its sha256")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as error:
        raise _refuse(f"{MANIFEST} is not JSON") from error
    if manifest.get("format") != FORMAT:
        raise _refuse(f"not a {FORMAT} archive")
    if manifest.get("version") != VERSION:
        raise KontexError(
            f"archive version {manifest.get('version')} is not supported (this client reads "
            f"version {VERSION})",
            code="unsupported_version",
        )
    archive = Archive(manifest)
    for snapshot in archive.snapshots:
        stored = json.loads(members[snapshot["bundle"]])
        bundle = {k: stored.get(k) for k in SCALARS}
        for name in LISTS:
            bundle[name] = []
            for ref in stored.get(name, []):
                item = members.get(f"items/{ref}.json")
                if item is None:
                    raise _refuse(f"{snapshot['bundle']} refers to a missing item {ref}")
                bundle[name].append(json.loads(item))
        archive.bundles[snapshot["id"]] = bundle
    return archive


def import_session(
    client: Kontex, archive: Archive, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the archive's session into ``client``'s account as a new session. All or
    nothing: when a write fails, the new session is purged and the error raised."""
    session = archive.session
    made = client.sessions.create(
        session["name"], description=session.get("description"), metadata=session.get("metadata")
    )
    try:
        task_ids: dict[str, str] = {}
        for task in archive.tasks:
            parent = task_ids.get(task["parent_task_id"]) if task["parent_task_id"] else None
            new = client.tasks.create(made.id, task["name"], parent_task_id=parent)
            task_ids[task["id"]] = new.id
        snapshot_ids: dict[str, str] = {}
        total = len(archive.snapshots)
        for done, snapshot in enumerate(archive.snapshots, start=1):
            written = client.snapshots.create(
                task_ids[snapshot["task_id"]],
                snapshot["label"],
                archive.bundles[snapshot["id"]],
            )
            snapshot_ids[snapshot["id"]] = written.id
            if progress:
                progress(done, total)
        for task in archive.tasks:  # statuses last: a completed task still took snapshots
            if task["status"] != "pending":
                client.tasks.update(task_ids[task["id"]], status=task["status"])
        if session.get("status") and session["status"] != "active":
            client.sessions.update(made.id, status=session["status"])
    except BaseException:
        with contextlib.suppress(KontexError):  # the first error is the one to report
            client.sessions.purge(made.id)
        raise
    return {
        "session_id": made.id,
        "from_session_id": session["id"],
        "tasks": len(task_ids),
        "snapshots": len(snapshot_ids),
        "snapshot_ids": snapshot_ids,
    }
