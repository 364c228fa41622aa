"""Checkpoints shaped like LangGraph's (docs/design.md, "Checkpoints"): each LangGraph saver
call is one request. Thread ids travel in bodies and queries, never in paths: LangGraph's are
any string."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller
from kontex.api.shapes import (
    CopyThread,
    DeleteRuns,
    PruneThreads,
    PutCheckpoint,
    PutWrites,
    answers,
)
from kontex.api.snapshots import bundle_json
from kontex.domain.errors import InvalidInput
from kontex.domain.models import ContextBundle, SnapshotSource
from kontex.ports import CheckpointListing, CheckpointRow, CheckpointWrite
from kontex.services import checkpoints
from kontex.services.checkpoints import Checkpoint, ThreadInfo

router = APIGatewayHttpRouter()
Text = Annotated[str, Query(max_length=512)]
ThreadText = Annotated[str, Query(min_length=1, max_length=512)]


class _Encoder:
    """JSON of checkpoints whose messages are spliced in as stored (a read bundle keeps each
    message's JSON), not dumped and encoded again: most of an answer's bytes, and of its time.
    A random marker stands where they go, so no stored text can take its place."""

    def __init__(self, shared: bool = False) -> None:
        self.marker = f"kontex-messages-{secrets.token_hex(16)}-"
        self.parts: list[bytes | None] = []
        self.shared = shared  # each distinct message once, the bundles referring to them
        self.table: dict[bytes, int] = {}

    def checkpoint(self, found: Checkpoint) -> dict[str, Any]:
        row = found.row
        bundle = bundle_json(found.snapshot, found.bundle, with_messages=False)
        raw = found.bundle._message_json
        if raw is None:  # not read from storage: its messages as models dump them
            raw = [m.model_dump_json().encode() for m in found.bundle.messages]
        refs = None
        if self.shared:
            bundle["messages"] = []
            refs = [self.table.setdefault(m, len(self.table)) for m in raw]
        else:
            bundle["messages"] = self._spliced(b",".join(raw))
        return {
            "thread_id": row.thread_id,
            "namespace": row.ns,
            "checkpoint_id": row.checkpoint_id,
            "parent_id": row.parent_id,
            "metadata": row.metadata,
            "created_at": row.created_at.isoformat(),
            "session_id": row.session_id,
            "snapshot_id": row.snapshot_id,
            "bundle": bundle,
            "writes": [
                {
                    "task_id": w.task_id,
                    "idx": w.idx,
                    "channel": w.channel,
                    "value": json.loads(w.value),
                    "task_path": w.task_path,
                }
                for w in found.writes
            ],
            "message_refs": refs,
        }

    def _spliced(self, joined: bytes) -> str:
        self.parts.append(joined)
        return f"{self.marker}{len(self.parts) - 1}"

    def page(self, found: list[Checkpoint], next_cursor: str | None) -> Response[str]:
        data = [self.checkpoint(c) for c in found]
        table = self._spliced(b",".join(self.table)) if self.shared else None
        return self.response({"data": data, "next_cursor": next_cursor, "messages": table})

    def response(self, payload: dict[str, Any]) -> Response[str]:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        first, *rest = text.split(f'"{self.marker}')  # one pass: linear in the answer
        out = [first]
        for part in rest:
            n, _, after = part.partition('"')
            out += ["[", (self.parts[int(n)] or b"").decode(), "]", after]
        return Response(status_code=200, content_type="application/json", body="".join(out))


@router.post("/v1/checkpoints", tags=["checkpoints"], responses=answers(shapes.CheckpointRef))
def put(body: PutCheckpoint) -> tuple[dict[str, Any], int]:
    """LangGraph's ``put``: the checkpoint's state as the next snapshot of its namespace's task
    (a delta over ``base`` when given), indexed; the thread's session is made by its first."""
    deps, me = caller()
    run_id = body.metadata.get("run_id")
    row = CheckpointRow(
        thread_id=body.thread_id,
        ns=body.namespace,
        checkpoint_id=body.checkpoint_id,
        parent_id=body.parent_id,
        session_id="",
        snapshot_id="",
        metadata=body.metadata,
        run_id=run_id if isinstance(run_id, str) else None,
        created_at=deps.clock(),
    )
    bundle = ContextBundle(**dict(body.bundle), source=SnapshotSource.API)
    info = ThreadInfo(body.thread_name, body.thread_metadata)
    stored, snapshot = checkpoints.put(
        deps, me.account_id, row, bundle, base=body.base, thread=info
    )
    return {
        "thread_id": stored.thread_id,
        "namespace": stored.ns,
        "checkpoint_id": stored.checkpoint_id,
        "session_id": stored.session_id,
        "task_id": snapshot.task_id,
        "snapshot_id": stored.snapshot_id,
    }, 201


@router.post("/v1/checkpoints/writes", tags=["checkpoints"])
def put_writes(body: PutWrites) -> Response[None]:
    """LangGraph's ``put_writes``: pending writes of a checkpoint (which may not be stored
    yet: LangGraph sends a step's writes while its checkpoint's put may still be on its way)."""
    deps, me = caller()
    writes = [
        CheckpointWrite(w.task_id, w.idx, w.channel, json.dumps(w.value), w.task_path)
        for w in body.writes
    ]
    key = (body.thread_id, body.namespace, body.checkpoint_id)
    info = ThreadInfo(body.thread_name, body.thread_metadata)
    checkpoints.put_writes(deps, me.account_id, key, writes, body.replace, info)
    return Response(status_code=204)


@router.get("/v1/checkpoints/tuple", tags=["checkpoints"], responses=answers(shapes.CheckpointOut))
def get_tuple(
    thread_id: ThreadText,
    namespace: Text = "",
    checkpoint_id: Annotated[str | None, Query(max_length=128)] = None,
) -> Response[str]:
    """LangGraph's ``get_tuple``: the checkpoint, or the namespace's latest, with its state and
    pending writes (404 when there is none)."""
    deps, me = caller()
    found = checkpoints.get(deps, me.account_id, thread_id, namespace, checkpoint_id)
    encoder = _Encoder()
    return encoder.response(encoder.checkpoint(found))


@router.get("/v1/checkpoints", tags=["checkpoints"], responses=answers(shapes.CheckpointPage))
def list_checkpoints(
    thread_id: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    namespace: Annotated[str | None, Query(max_length=512)] = None,
    before: Annotated[str | None, Query(max_length=128)] = None,
    filter: Annotated[  # noqa: A002 (LangGraph's name)
        str | None, Query(description="A JSON object: metadata pairs a checkpoint must hold.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query()] = None,
    shared_messages: Annotated[
        bool,
        Query(
            description="Each distinct message of the page once (`messages`), the checkpoints"
            " referring to them (`message_refs`): a history's checkpoints share most messages."
        ),
    ] = False,
) -> Response[str]:
    """LangGraph's ``list``, a page at a time: newest first, of the account or one thread (and
    namespace), older than ``before``, matching ``filter``."""
    deps, me = caller()
    wanted = None
    if filter:
        try:
            wanted = json.loads(filter)
        except ValueError:
            wanted = None
        if not isinstance(wanted, dict):
            raise InvalidInput("filter must be a JSON object")
    listing = CheckpointListing(limit, thread_id, namespace, before)
    found, next_cursor = checkpoints.page(deps, me.account_id, listing, wanted, cursor)
    return _Encoder(shared_messages).page(found, next_cursor)


@router.delete("/v1/checkpoints", tags=["checkpoints"])
def delete_thread(thread_id: ThreadText) -> Response[None]:
    """LangGraph's ``delete_thread``: the thread's session with every snapshot, checkpoint and
    write (a purge)."""
    deps, me = caller()
    checkpoints.delete_thread(deps, me.account_id, thread_id)
    return Response(status_code=204)


@router.post("/v1/checkpoints/copy", tags=["checkpoints"], responses=answers(shapes.Copied))
def copy_thread(body: CopyThread) -> tuple[dict[str, Any], int]:
    """LangGraph's ``copy_thread``: every checkpoint and write of a thread into a new one."""
    deps, me = caller()
    info = ThreadInfo(body.thread_name, body.thread_metadata)
    copied = checkpoints.copy_thread(
        deps, me.account_id, body.source_thread_id, body.target_thread_id, info
    )
    return {"copied": copied}, 201


@router.post("/v1/checkpoints/prune", tags=["checkpoints"], responses=answers(shapes.Removed))
def prune(body: PruneThreads) -> dict[str, Any]:
    """LangGraph's ``prune``: checkpoints leave the index (``keep_latest``: all but each
    namespace's latest; ``delete``: all) with their writes; their snapshots stay."""
    deps, me = caller()
    return {"removed": checkpoints.prune(deps, me.account_id, body.thread_ids, body.strategy)}


@router.post("/v1/checkpoints/delete-runs", tags=["checkpoints"], responses=answers(shapes.Removed))
def delete_runs(body: DeleteRuns) -> dict[str, Any]:
    """LangGraph's ``delete_for_runs``: the checkpoints whose metadata names one of the runs."""
    deps, me = caller()
    return {"removed": checkpoints.delete_runs(deps, me.account_id, body.run_ids)}
