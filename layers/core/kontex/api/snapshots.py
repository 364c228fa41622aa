from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller, count_snapshot_write
from kontex.api.guard import MAX_NUMBER
from kontex.api.shapes import EnrichSnapshot, ForkSnapshot, answers, snapshot_json, task_json
from kontex.domain.models import ContextBundle, Snapshot
from kontex.services import snapshots

router = APIGatewayHttpRouter()
Revision = Annotated[int | None, Query(ge=0, le=MAX_NUMBER)]


def bundle_json(
    snapshot: Snapshot, bundle: ContextBundle, with_messages: bool = True
) -> dict[str, Any]:
    """A bundle's answer (``with_messages=False``: without its messages, which the caller
    adds)."""
    content = bundle.model_dump(mode="json", exclude=None if with_messages else {"messages"})
    return {
        "snapshot_id": snapshot.id,
        "session_id": snapshot.session_id,
        "task_id": snapshot.task_id,
        "captured_at": content["captured_at"],
        "model": content["model"],
        "token_total": content["token_total"],
        "source": content["source"],
        "usage": content.get("usage"),
        **{
            k: content[k]
            for k in ("messages", "tool_calls", "files", "reasoning", "log_events")
            if k in content
        },
    }


@router.get(
    "/v1/snapshots/<snapshot_id>", tags=["snapshots"], responses=answers(shapes.SnapshotWithBundle)
)
def get_snapshot(snapshot_id: str) -> dict[str, Any]:
    deps, me = caller()
    snapshot = snapshots.get_snapshot(deps, me.account_id, snapshot_id)
    bundle = snapshots.get_bundle(deps, me.account_id, snapshot_id)
    return {**snapshot_json(snapshot), "bundle": bundle_json(snapshot, bundle)}


@router.get(
    "/v1/snapshots/<snapshot_id>/bundle", tags=["snapshots"], responses=answers(shapes.Bundle)
)
def get_bundle(snapshot_id: str, revision: Revision = None) -> dict[str, Any]:
    deps, me = caller()
    return bundle_json(*snapshots.read(deps, me.account_id, snapshot_id, revision))


@router.get(
    "/v1/snapshots/<snapshot_id>/revisions",
    tags=["snapshots"],
    responses=answers(shapes.RevisionList),
)
def list_revisions(snapshot_id: str) -> dict[str, Any]:
    deps, me = caller()
    revisions = snapshots.list_revisions(deps, me.account_id, snapshot_id)
    return {
        "data": [
            {
                "seq": r.seq,
                "token_total": r.token_total,
                "model": r.model,
                "created_at": r.created_at.isoformat(),
            }
            for r in revisions
        ]
    }


@router.post(
    "/v1/snapshots/<snapshot_id>/rollback",
    tags=["snapshots"],
    responses=answers(shapes.SnapshotOut),
)
def rollback(snapshot_id: str) -> tuple[dict[str, Any], int]:
    deps, me = caller()
    snapshots.get_snapshot(deps, me.account_id, snapshot_id)  # 404 before counting a write
    count_snapshot_write(me)
    return snapshot_json(snapshots.rollback(deps, me.account_id, snapshot_id)), 201


@router.post("/v1/snapshots/<snapshot_id>/fork", tags=["snapshots"], responses=answers(shapes.Fork))
def fork(snapshot_id: str, body: ForkSnapshot | None = None) -> tuple[dict[str, Any], int]:
    """A new task (a branch of the source's task) whose first snapshot has the source's content."""
    deps, me = caller()
    snapshots.get_snapshot(deps, me.account_id, snapshot_id)  # 404 before counting a write
    count_snapshot_write(me)
    given = body or ForkSnapshot()
    task, snapshot = snapshots.fork(
        deps, me.account_id, snapshot_id, name=given.name, session_id=given.session_id
    )
    return {"task": task_json(task), "snapshot": snapshot_json(snapshot)}, 201


@router.post(
    "/v1/snapshots/<snapshot_id>/enrich", tags=["snapshots"], responses=answers(shapes.SnapshotOut)
)
def enrich(snapshot_id: str, body: EnrichSnapshot) -> dict[str, Any]:
    deps, me = caller()
    snapshots.get_snapshot(deps, me.account_id, snapshot_id)
    count_snapshot_write(me)
    changes = body.model_dump(mode="json", exclude_unset=True)
    return snapshot_json(snapshots.enrich(deps, me.account_id, snapshot_id, changes))
