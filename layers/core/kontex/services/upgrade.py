"""Moving data of older versions (run by ``kontex migrate``): the v1 storage engine's content
to v2, and LangGraph threads indexed by thread-state documents to the checkpoint index.

The v1 engine:

v1 kept every message, tool call, file entry, file body and log event as an object-store blob
under ``<account>/<session>/<sha256>``, lists as ``chain_nodes`` rows (``sha256(parent:item)``),
and a manifest blob whose sha256 was the snapshot's ``bundle_hash``. For every snapshot and
revision still without a v2 manifest, this reads the v1 bundle (each object checked against its
hash), writes it as v2 items and chunks, and gives the sealed row its manifest: the one UPDATE
the seal allows, once per row. Scalars (model, source, captured_at, token_total) are kept
exactly. Idempotent and resumable: rows are upgraded one transaction each; a re-run picks up
what is left. The v1 blobs stay where they are until the session is purged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kontex.domain import models
from kontex.domain.errors import IntegrityError
from kontex.ports import CheckpointRow, CheckpointWrite
from kontex.services import bundles, snapshots
from kontex.services.deps import Deps


def _fetch(deps: Deps, prefix: str, digests: list[str]) -> list[bytes]:
    blobs = deps.blobs.get_many([prefix + d for d in digests])
    for digest, data in zip(digests, blobs, strict=True):
        if models.sha256_hex(data) != digest:
            raise IntegrityError("a v1 object does not match its hash")
    return blobs


def read_v1_bundle(
    deps: Deps, account_id: str, session_id: str, manifest_hash: str
) -> models.ContextBundle:
    """A bundle as the v1 engine stored it."""
    prefix = f"{account_id}/{session_id}/"
    manifest = json.loads(_fetch(deps, prefix, [manifest_hash])[0])

    def items(name: str) -> list[Any]:
        head = manifest.get(name)
        if head is None:
            return []
        with deps.store.unit(write=False) as uow:
            chain = uow.upgrade.v1_chain(session_id, head)
        return [json.loads(b) for b in _fetch(deps, prefix, chain)]

    entries = items("files")
    bodies = _fetch(deps, prefix, [e["content_hash"] for e in entries])
    files = [
        models.ContextFile(**entry, content=body.decode("utf-8"))
        for entry, body in zip(entries, bodies, strict=True)
    ]
    reasoning = None
    if manifest.get("reasoning"):
        reasoning = _fetch(deps, prefix, [manifest["reasoning"]])[0].decode("utf-8")
    captured = manifest.get("captured_at")
    return models.ContextBundle(
        messages=[models.Message(**m) for m in items("messages")],
        tool_calls=[models.ToolCall(**t) for t in items("tool_calls")],
        files=files,
        reasoning=reasoning,
        log_events=[models.LogEvent(**e) for e in items("log_events")],
        model=manifest.get("model"),
        token_total=manifest.get("token_total"),
        source=models.SnapshotSource(manifest.get("source") or "api"),
        captured_at=datetime.fromisoformat(captured) if captured else None,
    )


def upgrade_v1(deps: Deps, progress: Callable[[int, int], None] | None = None) -> int:
    """Give every v1 snapshot and revision its v2 manifest; returns how many rows moved."""
    with deps.store.unit(write=False) as uow:
        pending = uow.upgrade.v1_rows()
    for done, row in enumerate(pending, start=1):
        bundle = read_v1_bundle(deps, row["account_id"], row["session_id"], row["bundle_hash"])
        plan = bundles.plan(bundle)
        plan.given_total = bundle.token_total
        large = bundles.put_large_bodies(deps.blobs, row["account_id"], row["session_id"], plan)
        with deps.store.unit() as uow:
            written = bundles.write(
                uow.content, row["session_id"], plan, row["created_at"], large_bytes=large
            )
            uow.upgrade.set_v2_manifest(
                row["snapshot_id"], row["seq"], written.manifest, written.bundle_hash
            )
        if progress is not None:
            progress(done, len(pending))
    return len(pending)


def seal_rows(deps: Deps, batch: int = 500) -> int:
    """Seal the snapshot and revision rows written before seals existed (after ``upgrade_v1``:
    a v1 row is sealed once it has its v2 manifest); a batch per transaction, resumable."""
    total = 0
    while True:
        with deps.store.unit() as uow:
            done = uow.upgrade.seal_unsealed(batch)
        total += done
        if done == 0:
            return total


# -- LangGraph threads written before the checkpoint API ----------------------------------------

_LEGACY_CHECKPOINT_FILE = "langgraph/checkpoint.json"
_LEGACY_WRITES_FILE = "langgraph/parent-writes.json"


def _legacy_label(label: str) -> tuple[str, str | None] | None:
    if not label.startswith("checkpoint "):
        return None
    checkpoint_id, _, parent = label[len("checkpoint ") :].partition(" after ")
    return checkpoint_id, parent or None


def import_langgraph_threads(deps: Deps) -> int:
    """Index the checkpoints of every LangGraph thread the saver of before the checkpoint API
    wrote (a thread-state document ``thrd_lg-...`` naming its session and namespace tasks, the
    checkpoints as snapshots labelled ``checkpoint <id> after <parent>``, pending writes in the
    document or carried by the child, as ``langgraph/parent-writes.json``). Each thread is one
    unit of work that also removes its document, so a re-run finds nothing left to do. The
    snapshots stay as they are: the saver reads their files as it always did. Returns how many
    threads moved."""
    with deps.store.unit(write=False) as uow:
        documents = uow.upgrade.langgraph_documents()
    moved = 0
    for document in documents:
        doc = json.loads(document.user_data)
        account_id, thread_id = document.account_id, str(doc["thread_id"])
        with deps.store.unit() as uow:
            if uow.checkpoints.namespaces(account_id, thread_id):
                uow.threads.delete(account_id, document.thread_id)  # imported already
                continue
            session_id = doc["session_id"]
            writes: dict[tuple[str, str], dict[tuple[str, int], list[Any]]] = {}
            for ns, task_id in doc["tasks"].items():
                uow.checkpoints.add_namespace(
                    account_id, thread_id, ns, session_id, task_id, document.updated_at
                )
                for snapshot_id, label in uow.upgrade.task_snapshots(task_id):
                    parsed = _legacy_label(label)
                    if parsed is None:
                        continue
                    snapshot, _, bundle = snapshots.read_in(
                        deps, uow, account_id, snapshot_id, None
                    )
                    files = {f.path: f.content for f in bundle.files}
                    stored = json.loads(files[_LEGACY_CHECKPOINT_FILE])
                    metadata = stored.get("metadata", {}).get("json", {})
                    run_id = metadata.get("run_id") if isinstance(metadata, dict) else None
                    uow.checkpoints.put(
                        account_id,
                        CheckpointRow(
                            thread_id=thread_id,
                            ns=ns,
                            checkpoint_id=parsed[0],
                            parent_id=parsed[1],
                            session_id=session_id,
                            snapshot_id=snapshot_id,
                            metadata=metadata if isinstance(metadata, dict) else {},
                            run_id=run_id if isinstance(run_id, str) else None,
                            created_at=snapshot.created_at,
                        ),
                    )
                    if parsed[1] and _LEGACY_WRITES_FILE in files:
                        carried = writes.setdefault((ns, parsed[1]), {})
                        for w in json.loads(files[_LEGACY_WRITES_FILE]):
                            carried.setdefault((w[0], w[1]), w)
            for key, waiting in doc.get("writes", {}).items():
                ns, _, checkpoint_id = key.partition("\0")
                for w in waiting:
                    writes.setdefault((ns, checkpoint_id), {})[(w[0], w[1])] = w
            for (ns, checkpoint_id), found in writes.items():
                uow.checkpoints.add_writes(
                    account_id,
                    (thread_id, ns, checkpoint_id, session_id),
                    [
                        CheckpointWrite(w[0], w[1], w[2], json.dumps(w[3]), w[4])
                        for w in found.values()
                    ],
                    replace=True,
                )
            uow.threads.delete(account_id, document.thread_id)
        moved += 1
    return moved
