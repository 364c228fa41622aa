"""Request bodies and the public JSON of each resource (snake_case, ISO 8601 UTC).

The response models below are the one source of the API's response shapes: ``RESPONSES`` puts
them in ``/v1/openapi.json`` (``kontex.api.openapi``), from which the Python client's models
and the dashboard's types are generated (``clients/python/scripts/gen_models.py``), and the MCP
tools answer the same models (``kontex.mcp.shapes``). A resource's model is its stored record
without the private fields (``public``), so its fields are written once, in
``kontex.domain.models``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from kontex.domain.models import (
    ApiKey,
    Session,
    Task,
)
from kontex.later import later_from
from kontex.ports import Page

if TYPE_CHECKING:
    from kontex.api.checkpoint_shapes import (
        CheckpointId as CheckpointId,
    )
    from kontex.api.checkpoint_shapes import (
        CheckpointOut as CheckpointOut,
    )
    from kontex.api.checkpoint_shapes import (
        CheckpointPage as CheckpointPage,
    )
    from kontex.api.checkpoint_shapes import (
        CheckpointRef as CheckpointRef,
    )
    from kontex.api.checkpoint_shapes import (
        Copied as Copied,
    )
    from kontex.api.checkpoint_shapes import (
        CopyThread as CopyThread,
    )
    from kontex.api.checkpoint_shapes import (
        DeleteRuns as DeleteRuns,
    )
    from kontex.api.checkpoint_shapes import (
        Namespace as Namespace,
    )
    from kontex.api.checkpoint_shapes import (
        PendingWrite as PendingWrite,
    )
    from kontex.api.checkpoint_shapes import (
        PruneThreads as PruneThreads,
    )
    from kontex.api.checkpoint_shapes import (
        PutCheckpoint as PutCheckpoint,
    )
    from kontex.api.checkpoint_shapes import (
        PutWrites as PutWrites,
    )
    from kontex.api.checkpoint_shapes import (
        Removed as Removed,
    )
    from kontex.api.checkpoint_shapes import (
        ThreadId as ThreadId,
    )
    from kontex.api.checkpoint_shapes import (
        WriteIn as WriteIn,
    )
    from kontex.api.resource_shapes import (
        AccountUsage as AccountUsage,
    )
    from kontex.api.resource_shapes import (
        ApiKeyList as ApiKeyList,
    )
    from kontex.api.resource_shapes import (
        ApiKeyOut as ApiKeyOut,
    )
    from kontex.api.resource_shapes import (
        Bundle as Bundle,
    )
    from kontex.api.resource_shapes import (
        BundleContent as BundleContent,
    )
    from kontex.api.resource_shapes import (
        BundleIn as BundleIn,
    )
    from kontex.api.resource_shapes import (
        CreatedKey as CreatedKey,
    )
    from kontex.api.resource_shapes import (
        CreateKey as CreateKey,
    )
    from kontex.api.resource_shapes import (
        CreateSnapshot as CreateSnapshot,
    )
    from kontex.api.resource_shapes import (
        EnrichSnapshot as EnrichSnapshot,
    )
    from kontex.api.resource_shapes import (
        Fork as Fork,
    )
    from kontex.api.resource_shapes import (
        ForkSnapshot as ForkSnapshot,
    )
    from kontex.api.resource_shapes import (
        LiveEvent as LiveEvent,
    )
    from kontex.api.resource_shapes import (
        MessageRecord as MessageRecord,
    )
    from kontex.api.resource_shapes import (
        MessageRecordPage as MessageRecordPage,
    )
    from kontex.api.resource_shapes import (
        PatchTask as PatchTask,
    )
    from kontex.api.resource_shapes import (
        Revision as Revision,
    )
    from kontex.api.resource_shapes import (
        RevisionList as RevisionList,
    )
    from kontex.api.resource_shapes import (
        SaveThreadState as SaveThreadState,
    )
    from kontex.api.resource_shapes import (
        SnapshotWithBundle as SnapshotWithBundle,
    )
    from kontex.api.resource_shapes import (
        ThreadStateOut as ThreadStateOut,
    )
    from kontex.api.resource_shapes import (
        ToolCallRecord as ToolCallRecord,
    )
    from kontex.api.resource_shapes import (
        ToolCallRecordPage as ToolCallRecordPage,
    )
    from kontex.api.session_shapes import (
        CreateSession as CreateSession,
    )
    from kontex.api.session_shapes import (
        CreateTask as CreateTask,
    )
    from kontex.api.session_shapes import (
        LinkedTrace as LinkedTrace,
    )
    from kontex.api.session_shapes import (
        LinkTrace as LinkTrace,
    )
    from kontex.api.session_shapes import (
        PatchSession as PatchSession,
    )
    from kontex.api.session_shapes import (
        TaskNode as TaskNode,
    )
    from kontex.api.session_shapes import (
        TaskOut as TaskOut,
    )
    from kontex.api.session_shapes import (
        TaskTree as TaskTree,
    )
    from kontex.api.session_view_shapes import (
        Activity as Activity,
    )
    from kontex.api.session_view_shapes import (
        Diff as Diff,
    )
    from kontex.api.session_view_shapes import (
        FilesDiff as FilesDiff,
    )
    from kontex.api.session_view_shapes import (
        Graph as Graph,
    )
    from kontex.api.session_view_shapes import (
        GraphEdge as GraphEdge,
    )
    from kontex.api.session_view_shapes import (
        GraphNode as GraphNode,
    )
    from kontex.api.session_view_shapes import (
        GraphNodeData as GraphNodeData,
    )
    from kontex.api.session_view_shapes import (
        MessagesDiff as MessagesDiff,
    )
    from kontex.api.session_view_shapes import (
        Position as Position,
    )
    from kontex.api.session_view_shapes import (
        SessionStats as SessionStats,
    )
    from kontex.api.session_view_shapes import (
        SnapshotOut as SnapshotOut,
    )
    from kontex.api.session_view_shapes import (
        SnapshotPage as SnapshotPage,
    )
    from kontex.api.session_view_shapes import (
        Timeline as Timeline,
    )
    from kontex.api.session_view_shapes import (
        TimelineEntry as TimelineEntry,
    )
    from kontex.api.session_view_shapes import (
        ToolCallsDiff as ToolCallsDiff,
    )
    from kontex.domain.models import Snapshot

MAX_TOKENS = 10**12


# Every model here builds its validator and serializer on first use (``defer_build``), not at
# import: a router's first request then pays only for the models it uses, and the response
# models (in the OpenAPI document and the MCP tools) only where they are used (cold start,
# docs/benchmarks.md, "Cold start of the api function (issue 25)").


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


def key_json(key: ApiKey) -> dict[str, Any]:
    return key.model_dump(mode="json", exclude={"account_id"})


def session_json(session: Session) -> dict[str, Any]:
    return session.model_dump(mode="json", exclude={"account_id"})


def task_json(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json", exclude={"account_id"})


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return snapshot.model_dump(mode="json", exclude={"account_id", "bundle_hash"})


def page_json(page: Page, shape: Any) -> dict[str, Any]:
    return {"data": [shape(item) for item in page.items], "next_cursor": page.next_cursor}


# -- responses ----------------------------------------------------------------------------------


class Out(BaseModel):
    """A response model: every field is always written (so required in the schema)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True, defer_build=True)


def public(model: type[BaseModel], name: str, *, without: set[str], doc: str) -> type[Out]:
    """``model``'s fields but ``without``, as the response model ``name``."""
    fields: dict[str, Any] = {
        n: (f.annotation, f) for n, f in model.model_fields.items() if n not in without
    }
    made: type[Out] = create_model(name, __base__=Out, __doc__=doc, __module__=__name__, **fields)
    return made


SessionOut = public(Session, "Session", without={"account_id"}, doc="A session.")


def _listing(item: Any, name: str, *, paged: bool) -> type[Out]:
    fields: dict[str, Any] = {"data": (list[item], ...)}
    if paged:
        fields["next_cursor"] = (str | None, Field(description="null on the last page"))
    made: type[Out] = create_model(name, __base__=Out, __module__=__name__, **fields)
    return made


SessionPage = _listing(SessionOut, "SessionPage", paged=True)


# The checkpoint routes' bodies and answers live in kontex.api.checkpoint_shapes and are created
# with their first use (PEP 562): another router's first request does not pay for them.
LATER = frozenset(
    {
        "CheckpointId",
        "CheckpointOut",
        "CheckpointPage",
        "CheckpointRef",
        "CopyThread",
        "Copied",
        "DeleteRuns",
        "Namespace",
        "PendingWrite",
        "PruneThreads",
        "PutCheckpoint",
        "PutWrites",
        "Removed",
        "ThreadId",
        "WriteIn",
    }
)
# The other routers' bodies and answers (keys, tasks, snapshots, threads, queries) and the live
# feed's event live in kontex.api.resource_shapes, likewise: a session listing, the REST
# function's usual first request, does not create them (the sessions router's are here).
LATER_RESOURCES = frozenset(
    {
        "AccountUsage",
        "ApiKeyList",
        "ApiKeyOut",
        "Bundle",
        "BundleContent",
        "BundleIn",
        "CreateKey",
        "CreateSnapshot",
        "CreatedKey",
        "EnrichSnapshot",
        "Fork",
        "ForkSnapshot",
        "LiveEvent",
        "MessageRecord",
        "MessageRecordPage",
        "PatchTask",
        "Revision",
        "RevisionList",
        "SaveThreadState",
        "SnapshotWithBundle",
        "ThreadStateOut",
        "ToolCallRecord",
        "ToolCallRecordPage",
    }
)


# The session routes' bodies and their task and trace answers (kontex.api.sessions) live in
# kontex.api.session_shapes, likewise: a session listing (kontex.api.session_listing) creates
# only its own answer, SessionPage (with SessionOut), here.
LATER_SESSIONS = frozenset(
    {
        "CreateSession",
        "CreateTask",
        "LinkTrace",
        "LinkedTrace",
        "PatchSession",
        "TaskNode",
        "TaskOut",
        "TaskTree",
    }
)


# The snapshot listing's and the session views' answers (the snapshots, timeline, diff, graph and
# stats routes, kontex.api.session_views) live in kontex.api.session_view_shapes, likewise: with
# them a session listing would create a snapshot's content models (kontex.domain.snapshot_content).
LATER_SESSION_VIEWS = frozenset(
    {
        "Activity",
        "Diff",
        "FilesDiff",
        "Graph",
        "GraphEdge",
        "GraphNode",
        "GraphNodeData",
        "MessagesDiff",
        "Position",
        "SessionStats",
        "SnapshotOut",
        "SnapshotPage",
        "Timeline",
        "TimelineEntry",
        "ToolCallsDiff",
    }
)


__getattr__ = later_from(
    globals(),
    {
        "kontex.api.checkpoint_shapes": LATER,
        "kontex.api.resource_shapes": LATER_RESOURCES,
        "kontex.api.session_view_shapes": LATER_SESSION_VIEWS,
        "kontex.api.session_shapes": LATER_SESSIONS,
    },
)


def answers(model: Any) -> dict[int, Any]:
    """A route's ``responses``: it answers ``model`` (``kontex.api.openapi`` moves the schema to
    the route's real success code)."""
    return {
        200: {
            "description": "Successful Response",
            "content": {"application/json": {"model": model}},
        }
    }
