from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller, count_snapshot_write
from kontex.api.shapes import CreateSnapshot, PatchTask, answers, snapshot_json, task_json
from kontex.api.snapshots import bundle_json
from kontex.domain.models import ContextBundle, SnapshotSource
from kontex.services import sessions, snapshots

router = APIGatewayHttpRouter()


@router.get("/v1/tasks/<task_id>", tags=["tasks"], responses=answers(shapes.TaskOut))
def get_task(task_id: str) -> dict[str, Any]:
    deps, me = caller()
    return task_json(sessions.get_task(deps, me.account_id, task_id))


@router.patch("/v1/tasks/<task_id>", tags=["tasks"], responses=answers(shapes.TaskOut))
def patch_task(task_id: str, body: PatchTask) -> dict[str, Any]:
    deps, me = caller()
    changes = body.model_dump(exclude_unset=True)
    return task_json(sessions.update_task(deps, me.account_id, task_id, **changes))


@router.post(
    "/v1/tasks/<task_id>/snapshots", tags=["snapshots"], responses=answers(shapes.SnapshotOut)
)
def create_snapshot(task_id: str, body: CreateSnapshot) -> tuple[dict[str, Any], int]:
    deps, me = caller()
    sessions.get_task(deps, me.account_id, task_id)  # 404 before counting a write
    count_snapshot_write(me)
    bundle = ContextBundle(**dict(body.bundle), source=SnapshotSource.API)
    made = snapshots.create_snapshot(
        deps, me.account_id, task_id, body.label, bundle, base=body.base
    )
    return snapshot_json(made), 201


@router.get(
    "/v1/tasks/<task_id>/snapshots/latest",
    tags=["snapshots"],
    responses=answers(shapes.SnapshotWithBundle),
)
def latest_snapshot(task_id: str) -> dict[str, Any]:
    """The task's head (its latest snapshot) with its bundle, in one read."""
    deps, me = caller()
    snapshot, bundle = snapshots.read_latest(deps, me.account_id, task_id)
    return {**snapshot_json(snapshot), "bundle": bundle_json(snapshot, bundle)}
