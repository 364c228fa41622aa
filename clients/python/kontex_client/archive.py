"""The ``.kontex`` archive: one session exactly as a server stores it, portable between servers
(docs/export-format.md).

Version 2 is the server's archive (``GET /v1/sessions/{id}/export``) as a zip, its bytes as
members named by their hashes:

- ``kontex-export.json``: the archive's rows (session, tasks, snapshots with their revisions,
  items' metadata, checkpoints, thread states, traces, aliases), each byte string replaced by
  the member holding it;
- ``manifests/<sha256>``: each snapshot's and revision's manifest (its bundle hash);
- ``items/<address>``: each item's bytes (address: sha256 of kind, NUL, bytes; first 16 bytes);
- ``chunks/<address>``: each list chunk (address: sha256 of ``chunk``, NUL, its references);
- ``bodies/<sha256>``: file bodies over 64 KiB;
- ``SHA256SUMS``: the sha256 of every other member.

The zip is the same bytes for the same archive (fixed member times and order), so an archive
exported, imported with ``keep_ids`` into an empty server and exported again is byte for byte
the file it was. ``read`` checks every member against its hash and its name before anything is
sent; the server checks every hash again, and every reference, and writes the archive in one
transaction (``POST /v1/sessions/import``).

Version 1 archives (bundles as served, written by clients before 2026-12) are still read and
imported by replaying REST writes, as they were (their source, usage and lineage are not
restored: version 1 did not keep what that needs).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kontex_client._errors import IntegrityError, KontexError
from kontex_client._sync_client import Kontex

FORMAT, VERSION = "kontex-session", 2
READS = (1, 2)
MANIFEST, SUMS = "kontex-export.json", "SHA256SUMS"
LISTS = ("messages", "tool_calls", "files", "log_events")
SCALARS = ("reasoning", "model", "token_total", "captured_at")
# what one import request may carry: API Gateway's limit (kontex dev's too); on AWS Lambda's
# own 6 MB payload limit is lower (docs/export-format.md, "Size")
MAX_REQUEST_BYTES = 10 * 1024 * 1024
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member's time: the same archive is the same bytes
Progress = Callable[[int, int], None]


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def item_address(kind: str, data: bytes) -> str:
    """An item's address, as the server computes it (docs/design.md, "Storage")."""
    return hashlib.sha256(kind.encode() + b"\0" + data).digest()[:16].hex()


def chunk_address(refs: bytes) -> str:
    return hashlib.sha256(b"chunk\0" + refs).digest()[:16].hex()


@dataclass
class Archive:
    """A verified archive in memory: version 2's document (bytes as base64, as the API takes
    it), or version 1's manifest with each snapshot's bundle resolved."""

    manifest: dict[str, Any]
    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)
    document: dict[str, Any] | None = None

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

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


# -- version 2: the server's archive as members named by their hashes ----------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def to_members(document: dict[str, Any]) -> dict[str, bytes]:
    """The zip's members of an archive document (``SHA256SUMS`` apart)."""
    rows = copy.deepcopy(document)
    members: dict[str, bytes] = {}

    def put(name: str, text: str) -> str:
        members[name] = base64.b64decode(text)
        return name

    for snapshot in rows["snapshots"]:
        snapshot["manifest"] = put(f"manifests/{snapshot['bundle_hash']}", snapshot["manifest"])
        for revision in snapshot["revisions"]:
            name = f"manifests/{revision['bundle_hash']}"
            revision["manifest"] = put(name, revision["manifest"])
    for item in rows["items"]:
        item["body"] = put(f"items/{item['address']}", item["body"])
    rows["chunks"] = [put(f"chunks/{c['address']}", c["refs"]) for c in rows["chunks"]]
    rows["bodies"] = [put(f"bodies/{b['sha256']}", b["data"]) for b in rows["bodies"]]
    members[MANIFEST] = json.dumps(rows, indent=1, sort_keys=True, ensure_ascii=False).encode()
    return members


def write_zip(members: dict[str, bytes], target: Path) -> None:
    """``members`` and their ``SHA256SUMS`` as a zip at ``target``, written whole or not at
    all; the same members always make the same bytes."""
    sums = "".join(f"{sha256(data)}  {name}\n" for name, data in sorted(members.items()))
    order = [MANIFEST, *sorted(n for n in members if n != MANIFEST)]
    tmp = target.with_name(target.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, data in [*((n, members[n]) for n in order), (SUMS, sums.encode())]:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, wherever it is written
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(target)  # a complete archive or none


def export_session(
    client: Kontex, session_id: str, target: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the session to ``target`` (a ``.kontex`` zip); answers a summary."""
    document = client.sessions.export(session_id).model_dump(mode="json")
    if progress:
        progress(1, 1)
    write_zip(to_members(document), target)
    return {
        "session_id": session_id,
        "path": str(target),
        "version": VERSION,
        "tasks": len(document["tasks"]),
        "snapshots": len(document["snapshots"]),
        "revisions": sum(len(s["revisions"]) for s in document["snapshots"]),
        "items": len(document["items"]),
        "checkpoints": len(document["checkpoints"]),
        "thread_states": len(document["thread_states"]),
        "bytes": target.stat().st_size,
    }


def _refuse(message: str) -> IntegrityError:
    return IntegrityError(f"archive refused: {message}", code="integrity_error")


def _verified_members(source: Path | bytes) -> dict[str, bytes]:
    """The members but ``SHA256SUMS``, each checked against it."""
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
    return members


def from_members(members: dict[str, bytes], rows: dict[str, Any]) -> dict[str, Any]:
    """The archive document of a version 2 zip: every member checked against its name (its
    hash) and every member the rows name present, none left over."""
    used: set[str] = {MANIFEST}
    document = copy.deepcopy(rows)

    def take(name: Any, prefix: str, check: Callable[[bytes], str]) -> bytes:
        if not isinstance(name, str) or not name.startswith(prefix) or name not in members:
            raise _refuse(f"{name!r} is not a member of the archive")
        data = members[name]
        if check(data) != name[len(prefix) :]:
            raise _refuse(f"{name} is not named by its hash")
        used.add(name)
        return data

    try:
        for snapshot in document["snapshots"]:
            for row in [snapshot, *snapshot["revisions"]]:
                row["manifest"] = _b64(take(row["manifest"], "manifests/", sha256))
        for item in document["items"]:
            kind = str(item["kind"])

            def address(data: bytes, kind: str = kind) -> str:
                return item_address(kind, data)

            data = take(item["body"], "items/", address)
            if item["body"] != f"items/{item['address']}":
                raise _refuse(f"item {item['address']} is not in its member")
            item["body"] = _b64(data)
        document["chunks"] = [
            {"address": name[len("chunks/") :], "refs": _b64(take(name, "chunks/", chunk_address))}
            for name in document["chunks"]
        ]
        document["bodies"] = [
            {"sha256": name[len("bodies/") :], "data": _b64(take(name, "bodies/", sha256))}
            for name in document["bodies"]
        ]
    except (KeyError, TypeError) as error:
        raise _refuse(f"{MANIFEST} is not a version 2 archive ({error!r})") from error
    if set(members) - used:
        raise _refuse(f"members no row names: {', '.join(sorted(set(members) - used)[:5])}")
    return document


def read(source: Path | bytes) -> Archive:
    """The archive, verified: every member against ``SHA256SUMS`` and against its name, every
    member named present. Raises ``IntegrityError`` on any mismatch, before anything is sent."""
    members = _verified_members(source)
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as error:
        raise _refuse(f"{MANIFEST} is not JSON") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _refuse(f"not a {FORMAT} archive")
    if manifest.get("version") not in READS:
        raise KontexError(
            f"archive version {manifest.get('version')} is not supported (this client reads"
            f" versions {', '.join(map(str, READS))})",
            code="unsupported_version",
        )
    if manifest["version"] == 1:
        return _read_v1(members, manifest)
    return Archive(manifest, document=from_members(members, manifest))


def import_session(
    client: Kontex,
    archive: Archive,
    progress: Progress | None = None,
    *,
    keep_ids: bool = False,
) -> dict[str, Any]:
    """Write the archive's session into ``client``'s account, whole or not at all. Version 2:
    as it was stored, in one request (new ids unless ``keep_ids``); version 1: by REST writes,
    purged again when one fails."""
    if archive.document is None:
        if keep_ids:
            raise KontexError(
                "a version 1 archive cannot keep its ids (export it again)", code="unsupported"
            )
        return _import_v1(client, archive, progress)
    body = json.dumps(archive.document, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_REQUEST_BYTES:
        raise KontexError(
            f"the archive is {len(body)} bytes as a request, over the {MAX_REQUEST_BYTES} one"
            " request can carry (docs/export-format.md, Size)",
            code="payload_too_large",
        )
    made = client.sessions.import_archive(archive.document, keep_ids=keep_ids)
    if progress:
        progress(1, 1)
    return {
        "from_session_id": archive.session["id"],
        **made.model_dump(mode="json"),
    }


# -- version 1: bundles as served, imported by REST writes --------------------------------------


def _read_v1(members: dict[str, bytes], manifest: dict[str, Any]) -> Archive:
    for name, data in members.items():
        if name.startswith("items/") and name != f"items/{sha256(data)}.json":
            raise _refuse(f"{name} is not named by its sha256")
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


def _import_v1(client: Kontex, archive: Archive, progress: Progress | None) -> dict[str, Any]:
    """A version 1 archive as a new session, by REST writes: the same names, tree, labels and
    content; a failed write purges the new session."""
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
        "ids": {session["id"]: made.id, **task_ids, **snapshot_ids},
        "tasks": len(task_ids),
        "snapshots": len(snapshot_ids),
    }
