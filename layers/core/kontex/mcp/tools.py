"""The Kontex MCP server: twelve tools over the same services as the REST API.

The tool names and arguments are those of the original system's MCP endpoint, so agents
configured for it keep working; ``kontex_diff``, ``kontex_fork`` and
``kontex_restore_messages`` are new. Each tool answers structured content matching its output
schema (the models of ``kontex.mcp.shapes``) plus one short sentence of text; a failure is a
tool error (``isError``) whose text starts with the REST error code (``not_found: ...``).

The caller is the key ``kontex.api.auth`` admitted for the HTTP request (a context variable set
by the Lambda adapter for this request only), so a tool sees exactly what that key sees on REST:
another account's ids are missing ones.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from kontex import __version__
from kontex.api.auth import caller, count_snapshot_write
from kontex.api.errors import status_of
from kontex.api.shapes import session_json, snapshot_json, task_json
from kontex.domain.errors import InvalidInput, KontexError, RateLimited, Transient
from kontex.domain.models import (
    ContextBundle,
    ContextFile,
    Message,
    SessionStatus,
    SnapshotSource,
    TaskStatus,
    ToolCall,
)
from kontex.mcp.shapes import (
    BundleOut,
    ContextOut,
    DiffOut,
    ForkOut,
    RestoredOut,
    RollbackOut,
    SearchOut,
    SessionOut,
    SnapshotList,
    SnapshotOut,
    TaskOut,
)
from kontex.services import restore, sessions, snapshots, views

logger = Logger(service="kontex-api", child=True)

INSTRUCTIONS = """\
Kontex keeps the state of your run as immutable snapshots: sessions (one per run or project)
hold a tree of tasks, and each task a chain of snapshots of your context (messages, tool
calls, files, reasoning). Start a session and a task, save a snapshot at each checkpoint worth
returning to, and roll back or fork when a path fails: history is never changed or deleted.
Ids are opaque strings (sess_..., task_..., snap_...): pass them back exactly as given."""

SessionId = Annotated[str, Field(description="A session id (sess_...).")]
TaskId = Annotated[str, Field(description="A task id (task_...).")]
SnapshotId = Annotated[str, Field(description="A snapshot id (snap_...).")]

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
SET = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def describe(error: KontexError) -> str:
    """A tool error's text: the REST error code, then what happened."""
    status, _ = status_of(error)
    if status == 500:
        logger.error("internal error in a tool", extra={"error": str(error), "code": error.code})
        return f"{error.code}: internal error"
    text = f"{error.code}: {error.message}"
    if isinstance(error, RateLimited):
        text += f"; retry after {error.retry_after} s"
    elif isinstance(error, Transient):
        text += "; retry in a few seconds"
    return text


@contextmanager
def tool_errors() -> Iterator[None]:
    """Domain errors become tool errors with a clear message; anything else is logged and
    answered without internals."""
    try:
        yield
    except ToolError:
        raise
    except KontexError as error:
        raise ToolError(describe(error)) from None
    except Exception:
        logger.exception("a tool failed")
        raise ToolError("internal_error: the tool failed; try again") from None


def answer(structured: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured.model_dump(mode="json", by_alias=True),
    )


def _bundle_out(bundle: ContextBundle) -> BundleOut:
    return BundleOut.model_validate(bundle.model_dump(mode="json"))


# -- sessions and tasks -------------------------------------------------------------------------


def kontex_session_start(
    name: Annotated[str, Field(min_length=1, max_length=200, description="What this run is.")],
    description: Annotated[
        str | None, Field(max_length=5000, description="Optional longer description.")
    ] = None,
) -> Annotated[CallToolResult, SessionOut]:
    """Start a new Kontex session: the container for one agent run or project.

    Call this once at the beginning of a run, then kontex_task_start to open a task in it.
    Returns the session (keep its `id`), status `active`."""
    with tool_errors():
        deps, me = caller()
        made = sessions.create_session(deps, me.account_id, name, description)
    return answer(SessionOut.model_validate(session_json(made)), f"Started session {made.id}.")


def kontex_session_pause(session_id: SessionId) -> Annotated[CallToolResult, SessionOut]:
    """Pause a session: mark the run as stopped for now (its history stays, it can go on later).

    Call this when you stop working on a run you may resume. Returns the session, status
    `paused`."""
    with tool_errors():
        deps, me = caller()
        paused = sessions.update_session(
            deps, me.account_id, session_id, status=SessionStatus.PAUSED
        )
    return answer(SessionOut.model_validate(session_json(paused)), f"Paused session {paused.id}.")


def kontex_task_start(
    session_id: SessionId,
    name: Annotated[str, Field(min_length=1, max_length=200, description="What this task does.")],
    parent_task_id: Annotated[
        str | None,
        Field(description="Make it a subtask of this task (of the same session)."),
    ] = None,
) -> Annotated[CallToolResult, TaskOut]:
    """Start a task (a unit of work) in a session; tasks nest with `parent_task_id`.

    Call this before saving snapshots: every snapshot belongs to a task. Returns the task
    (keep its `id`), status `active`."""
    with tool_errors():
        deps, me = caller()
        task = sessions.create_task(deps, me.account_id, session_id, name, parent_task_id)
        task = sessions.update_task(deps, me.account_id, task.id, status=TaskStatus.ACTIVE)
    return answer(TaskOut.model_validate(task_json(task)), f"Started task {task.id}.")


def kontex_task_done(
    task_id: TaskId,
    status: Annotated[Literal["completed", "failed"], Field(description="How the task ended.")],
) -> Annotated[CallToolResult, TaskOut]:
    """Finish a task as `completed` or `failed`.

    Call this when the task's work is over; its snapshots stay readable. Returns the task."""
    with tool_errors():
        deps, me = caller()
        task = sessions.update_task(deps, me.account_id, task_id, status=status)
    return answer(TaskOut.model_validate(task_json(task)), f"Task {task.id} is {status}.")


# -- snapshots ----------------------------------------------------------------------------------


def kontex_snapshot(
    task_id: TaskId,
    label: Annotated[
        str,
        Field(min_length=1, max_length=500, description="A short name for this checkpoint."),
    ],
    messages: Annotated[
        list[Message] | None,
        Field(
            description="The conversation so far: {role, content} with content a string or"
            " content blocks (text, tool_use, tool_result)."
        ),
    ] = None,
    tool_calls: Annotated[
        list[ToolCall] | None,
        Field(description="Tool calls made: {tool, input, output, status, timestamp}."),
    ] = None,
    files: Annotated[
        list[ContextFile] | None,
        Field(description="Files in your context: {path, content}."),
    ] = None,
    reasoning: Annotated[str | None, Field(description="Your reasoning so far.")] = None,
    model: Annotated[str | None, Field(description="The model you run on.")] = None,
) -> Annotated[CallToolResult, SnapshotOut]:
    """Save a checkpoint of your context as an immutable snapshot in a task.

    Call this at points worth returning to (after a plan, before a risky step, after a
    milestone). Each snapshot holds everything given here; the task's snapshots form a chain
    (`parent_snapshot_id`). Counts against the hourly snapshot-write limit. Returns the
    snapshot's metadata (keep its `id` for kontex_rollback or kontex_fork)."""
    with tool_errors():
        deps, me = caller()
        sessions.get_task(deps, me.account_id, task_id)  # not found before counting a write
        count_snapshot_write(me)
        bundle = ContextBundle(
            messages=messages or [],
            tool_calls=tool_calls or [],
            files=files or [],
            reasoning=reasoning,
            model=model,
            source=SnapshotSource.MCP,
        )
        made = snapshots.create_snapshot(deps, me.account_id, task_id, label, bundle)
    return answer(
        SnapshotOut.model_validate(snapshot_json(made)),
        f"Saved snapshot {made.id} ({made.label!r}, {made.token_total} tokens).",
    )


def kontex_get_context(snapshot_id: SnapshotId) -> Annotated[CallToolResult, ContextOut]:
    """Read a snapshot: its metadata and its full content (messages, tool calls, files,
    reasoning, log events).

    Call this to look at a checkpoint before rolling back to it, or to recall what you knew
    then. To resend its conversation to a model, kontex_restore_messages is simpler."""
    with tool_errors():
        deps, me = caller()
        snapshot, bundle = snapshots.read(deps, me.account_id, snapshot_id)
    out = ContextOut(
        snapshot=SnapshotOut.model_validate(snapshot_json(snapshot)), bundle=_bundle_out(bundle)
    )
    return answer(
        out,
        f"Snapshot {snapshot.id} ({snapshot.label!r}): {len(bundle.messages)} messages,"
        f" {len(bundle.tool_calls)} tool calls, {len(bundle.files)} files.",
    )


def kontex_list_snapshots(
    session_id: SessionId,
    limit: Annotated[int, Field(ge=1, le=100, description="How many (1 to 100).")] = 20,
    cursor: Annotated[
        str | None, Field(description="`next_cursor` of the previous page, for the next one.")
    ] = None,
) -> Annotated[CallToolResult, SnapshotList]:
    """List a session's snapshots (every task), oldest first, as metadata.

    Call this to find the checkpoint to read, roll back to or fork from. Returns
    `snapshots` and `next_cursor` (null on the last page)."""
    with tool_errors():
        deps, me = caller()
        page = snapshots.list_snapshots(deps, me.account_id, session_id, limit, cursor)
    out = SnapshotList(
        snapshots=[SnapshotOut.model_validate(snapshot_json(s)) for s in page.items],
        next_cursor=page.next_cursor,
    )
    more = " (more with next_cursor)" if page.next_cursor else ""
    return answer(out, f"{len(page.items)} snapshots of session {session_id}{more}.")


def kontex_rollback(snapshot_id: SnapshotId) -> Annotated[CallToolResult, RollbackOut]:
    """Roll back to a snapshot: write a new snapshot, at the head of the same task, holding that
    snapshot's content. Nothing is deleted; the snapshots in between stay in history.

    Call this when the run went wrong after a good checkpoint. Returns the new snapshot, the
    restored content and how to resume from it. Counts against the snapshot-write limit."""
    with tool_errors():
        deps, me = caller()
        snapshots.get_snapshot(deps, me.account_id, snapshot_id)  # not found before counting
        count_snapshot_write(me)
        made = snapshots.rollback(deps, me.account_id, snapshot_id)
        _, bundle = snapshots.read(deps, me.account_id, made.id)
    resume = (
        f"Your state is back to snapshot {snapshot_id}, now saved as {made.id} at the head of"
        f" task {made.task_id}. Continue from the restored messages (kontex_restore_messages"
        f" with snapshot_id {made.id} gives them ready for your model API) and keep saving"
        f" snapshots to task {made.task_id}: they follow this one."
    )
    out = RollbackOut(
        snapshot=SnapshotOut.model_validate(snapshot_json(made)),
        rolled_back_to=snapshot_id,
        bundle=_bundle_out(bundle),
        resume=resume,
    )
    return answer(out, f"Rolled back to {snapshot_id} as new snapshot {made.id}. {resume}")


def kontex_fork(
    snapshot_id: SnapshotId,
    name: Annotated[
        str | None, Field(min_length=1, max_length=200, description="The new branch's name.")
    ] = None,
) -> Annotated[CallToolResult, ForkOut]:
    """Fork from a snapshot: a new task (a branch, a subtask of the snapshot's task) whose
    first snapshot has that snapshot's content.

    Call this to try another approach from a checkpoint while keeping the current line.
    Returns the new task and its first snapshot. Counts against the snapshot-write limit."""
    with tool_errors():
        deps, me = caller()
        snapshots.get_snapshot(deps, me.account_id, snapshot_id)  # not found before counting
        count_snapshot_write(me)
        task, made = snapshots.fork(deps, me.account_id, snapshot_id, name=name)
    out = ForkOut(
        task=TaskOut.model_validate(task_json(task)),
        snapshot=SnapshotOut.model_validate(snapshot_json(made)),
    )
    return answer(out, f"Forked {snapshot_id} into task {task.id} (snapshot {made.id}).")


def kontex_diff(**arguments: str) -> Annotated[CallToolResult, DiffOut]:
    """Compare two snapshots of one session: messages added and removed after their common
    prefix, tool calls added and removed, files added, removed and modified, token change.

    Call this to see what changed between two checkpoints (`from` the older, `to` the
    newer)."""
    from_id, to_id = arguments["from"], arguments["to"]
    with tool_errors():
        deps, me = caller()
        older, newer = (snapshots.get_snapshot(deps, me.account_id, i) for i in (from_id, to_id))
        if older.session_id != newer.session_id:
            raise InvalidInput("from and to must be snapshots of the same session")
        found = views.diff(deps, me.account_id, older.session_id, from_id, to_id)
    out = DiffOut.model_validate(found)
    return answer(
        out,
        f"{len(out.messages.added)} messages added, {len(out.messages.removed)} removed;"
        f" {len(out.files.modified)} files modified; token change {out.token_delta:+d}.",
    )


# ``from`` is a Python keyword: the argument is declared by alias on a signature of our own
setattr(  # noqa: B010 (mypy has no __signature__ on functions)
    kontex_diff,
    "__signature__",
    inspect.Signature(
        [
            inspect.Parameter(
                "from_",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    str, Field(alias="from", description="The older snapshot id (snap_...).")
                ],
            ),
            inspect.Parameter(
                "to",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    str, Field(description="The newer snapshot id, of the same session.")
                ],
            ),
        ],
        return_annotation=Annotated[CallToolResult, DiffOut],
    ),
)


def kontex_restore_messages(
    snapshot_id: SnapshotId,
    format: Annotated[
        Literal["anthropic", "openai"],
        Field(description="`anthropic` (Messages API) or `openai` (Chat Completions)."),
    ],
) -> Annotated[CallToolResult, RestoredOut]:
    """A snapshot's conversation ready to send to a model API, to resume the run from it.

    `anthropic`: `system` (pass it as the `system` parameter) and `messages` with tool_use /
    tool_result blocks paired as the API requires. `openai`: `messages` with system messages
    in place, assistant `tool_calls` and `tool` messages. `repairs` lists what had to change
    (for example a tool call without a recorded result)."""
    with tool_errors():
        deps, me = caller()
        _, bundle = snapshots.read(deps, me.account_id, snapshot_id)
        restored = restore.restore(bundle.messages, format, bundle.tool_calls)
    out = RestoredOut(
        snapshot_id=snapshot_id,
        format=format,
        system=restored.system,
        messages=restored.messages,
        repairs=restored.repairs,
    )
    return answer(out, f"{len(out.messages)} messages of {snapshot_id} ready for {format}.")


# -- search -------------------------------------------------------------------------------------

SEARCH_MODULE = "kontex.services.search"


def _search_service() -> Any:
    """``kontex.services.search``, or a tool error when this build has no search."""
    try:
        return importlib.import_module(SEARCH_MODULE)
    except ModuleNotFoundError as missing:
        if missing.name != SEARCH_MODULE:
            raise
        raise ToolError("unavailable: search is not available on this server") from None


def kontex_search(
    query: Annotated[
        str, Field(min_length=1, max_length=2000, description="What to look for, in words.")
    ],
    session_id: Annotated[
        str | None, Field(description="Search only this session (default: all yours).")
    ] = None,
    limit: Annotated[int, Field(ge=1, le=50, description="How many results (1 to 50).")] = 10,
) -> Annotated[CallToolResult, SearchOut]:
    """Search your snapshots by meaning: messages, tool calls, files, log events, reasoning.

    Call this to find an earlier checkpoint about something ("where did I fix the login
    bug?"). Returns the best matches first, each with its snapshot id and a snippet; read one
    with kontex_get_context."""
    with tool_errors():
        search = _search_service()
        deps, me = caller()
        found = search.search(deps, me.account_id, query, session_id=session_id, limit=limit)
        out = SearchOut.model_validate(found.model_dump(mode="json"))
    return answer(out, f"{len(out.results)} snapshots match {query!r}.")


# -- the server ---------------------------------------------------------------------------------

TOOLS = (
    (kontex_session_start, WRITE),
    (kontex_session_pause, SET),
    (kontex_task_start, WRITE),
    (kontex_task_done, SET),
    (kontex_snapshot, WRITE),
    (kontex_rollback, WRITE),
    (kontex_get_context, READ),
    (kontex_list_snapshots, READ),
    (kontex_search, READ),
    (kontex_diff, READ),
    (kontex_fork, WRITE),
    (kontex_restore_messages, READ),
)


def build_server() -> MCPServer:
    server: MCPServer = MCPServer(
        name="kontex", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )
    for fn, hints in TOOLS:
        server.add_tool(
            fn,
            description=inspect.cleandoc(fn.__doc__ or ""),
            annotations=hints,
            structured_output=True,
        )
    return server
