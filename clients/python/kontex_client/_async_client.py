"""The asynchronous client. ``_sync_client.py`` is generated from this file by
``scripts/gen_sync.py`` (``tests/client/test_unasync.py`` fails when it is stale): edit here."""

from __future__ import annotations

import asyncio
import builtins
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import httpx

from kontex_client import _base, _live
from kontex_client._api_models import (
    AccountUsage,
    ApiKey,
    Bundle,
    CheckpointOut,
    CheckpointRef,
    CreatedKey,
    Diff,
    Fork,
    Graph,
    ImportedSession,
    LinkedTrace,
    MessageRecord,
    Revision,
    SearchResults,
    Session,
    SessionArchive,
    SessionStats,
    Snapshot,
    SnapshotWithBundle,
    Task,
    TaskNode,
    ThreadState,
    TimelineEntry,
    ToolCallRecord,
)
from kontex_client._base import route
from kontex_client._errors import NotFoundError
from kontex_client._live import AsyncLiveFeed
from kontex_client._models import Page, SnapshotBase

SessionStatus = Literal["active", "paused", "completed"]
TaskStatus = Literal["pending", "active", "completed", "failed"]
Order = Literal["asc", "desc"]


class AsyncTransport:
    """One pooled HTTP client, the key, and the retry policy."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        retry: _base.RetryPolicy,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        self.base_url, self.api_key = _base.settings(base_url, api_key)
        self.retry = retry
        self.http = http_client or httpx.AsyncClient(timeout=timeout)
        self.headers = _base.headers(self.api_key)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> Any:
        """Send with retries; ``headers`` are added to the defaults (None removes one)."""
        url = self.base_url + path
        query = _base.params(params or {})
        sent = {**self.headers, **(headers or {})}
        final = {k: v for k, v in sent.items() if v is not None}
        attempt = 0
        while True:
            try:
                response = await self.http.request(
                    method, url, params=query, json=json, content=content, headers=final
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                wait = self.retry.delay(attempt, None)  # never sent: safe to send again
                if wait is None:
                    raise _base.connection_error(error, self.base_url) from error
            except httpx.TransportError as error:
                wait = self.retry.delay(attempt, None) if method in _base.IDEMPOTENT else None
                if wait is None:
                    raise _base.connection_error(error, self.base_url) from error
            else:
                wait = self.retry.delay(attempt, response)
                if wait is None:
                    return _base.answer(response)
            attempt += 1
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.http.aclose()


class _Resource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport


class AsyncKeys(_Resource):
    @route("POST", "/v1/keys")
    async def create(self, label: str) -> CreatedKey:
        """A new key of the caller's account; ``.key`` is shown this once."""
        return CreatedKey.model_validate(
            await self._t.request("POST", "/v1/keys", json={"label": label})
        )

    @route("GET", "/v1/keys")
    async def list(self) -> list[ApiKey]:
        got = await self._t.request("GET", "/v1/keys")
        return [ApiKey.model_validate(k) for k in got["data"]]

    @route("DELETE", "/v1/keys/{key_id}")
    async def revoke(self, key_id: str) -> None:
        await self._t.request("DELETE", f"/v1/keys/{key_id}")


class AsyncSessions(_Resource):
    @route("POST", "/v1/sessions")
    async def create(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        json = _base.body({"name": name, "description": description, "metadata": metadata})
        return Session.model_validate(await self._t.request("POST", "/v1/sessions", json=json))

    @route("GET", "/v1/sessions")
    async def list(
        self,
        *,
        status: SessionStatus | None = None,
        limit: int = 20,
        cursor: str | None = None,
        order: Order = "desc",
    ) -> Page[Session]:
        """A page of sessions, newest first (``order="asc"``: oldest first)."""
        query = {"status": status, "limit": limit, "cursor": cursor, "order": order}
        got = await self._t.request("GET", "/v1/sessions", params=query)
        return Page[Session].model_validate(got)

    async def iter(
        self, *, status: SessionStatus | None = None, page_size: int = 100, order: Order = "desc"
    ) -> AsyncIterator[Session]:
        """Every session, newest first (``order="asc"``: oldest first), page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(status=status, limit=page_size, cursor=cursor, order=order)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    @route("GET", "/v1/sessions/{session_id}")
    async def get(self, session_id: str) -> Session:
        return Session.model_validate(await self._t.request("GET", f"/v1/sessions/{session_id}"))

    @route("PATCH", "/v1/sessions/{session_id}")
    async def update(
        self,
        session_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        status: SessionStatus | None = None,
    ) -> Session:
        json = _base.body(
            {"name": name, "description": description, "metadata": metadata, "status": status}
        )
        got = await self._t.request("PATCH", f"/v1/sessions/{session_id}", json=json)
        return Session.model_validate(got)

    @route("PATCH", "/v1/sessions/{session_id}")
    async def complete(self, session_id: str) -> Session:
        """Mark the session completed (its status); nothing is removed."""
        return await self.update(session_id, status="completed")

    @route("DELETE", "/v1/sessions/{session_id}")
    async def purge(self, session_id: str) -> None:
        """Remove the session with everything in it, for good (``DELETE ?purge=true``)."""
        await self._t.request("DELETE", f"/v1/sessions/{session_id}", params={"purge": True})

    @route("POST", "/v1/sessions/{session_id}/link-trace")
    async def link_trace(self, session_id: str, trace_id: str) -> LinkedTrace:
        got = await self._t.request(
            "POST", f"/v1/sessions/{session_id}/link-trace", json={"trace_id": trace_id}
        )
        return LinkedTrace.model_validate(got)

    @route("GET", "/v1/sessions/{session_id}/snapshots/timeline")
    async def timeline(self, session_id: str) -> builtins.list[TimelineEntry]:
        """Every snapshot of the session, oldest first, in one answer."""
        got = await self._t.request("GET", f"/v1/sessions/{session_id}/snapshots/timeline")
        return [TimelineEntry.model_validate(e) for e in got["data"]]

    @route("GET", "/v1/sessions/{session_id}/graph")
    async def graph(self, session_id: str) -> Graph:
        return Graph.model_validate(
            await self._t.request("GET", f"/v1/sessions/{session_id}/graph")
        )

    @route("GET", "/v1/sessions/{session_id}/stats")
    async def stats(self, session_id: str) -> SessionStats:
        got = await self._t.request("GET", f"/v1/sessions/{session_id}/stats")
        return SessionStats.model_validate(got)

    @route("GET", "/v1/sessions/{session_id}/export")
    async def export(self, session_id: str) -> SessionArchive:
        """The session as stored: its archive (docs/export-format.md; ``kontex export`` writes
        it to a ``.kontex`` file)."""
        got = await self._t.request("GET", f"/v1/sessions/{session_id}/export")
        return SessionArchive.model_validate(got)

    @route("POST", "/v1/sessions/import")
    async def import_archive(
        self, archive: SessionArchive | Mapping[str, Any], *, keep_ids: bool = False
    ) -> ImportedSession:
        """Write an archive into this account as it was stored, whole or not at all: new ids
        (the answer maps each archived id to its new one), or the same with ``keep_ids``."""
        body = archive.model_dump(mode="json") if isinstance(archive, SessionArchive) else archive
        got = await self._t.request(
            "POST", "/v1/sessions/import", params={"keep_ids": keep_ids or None}, json=body
        )
        return ImportedSession.model_validate(got)


class AsyncTasks(_Resource):
    @route("POST", "/v1/sessions/{session_id}/tasks")
    async def create(
        self, session_id: str, name: str, *, parent_task_id: str | None = None
    ) -> Task:
        json = _base.body({"name": name, "parent_task_id": parent_task_id})
        got = await self._t.request("POST", f"/v1/sessions/{session_id}/tasks", json=json)
        return Task.model_validate(got)

    @route("GET", "/v1/sessions/{session_id}/tasks")
    async def tree(self, session_id: str) -> list[TaskNode]:
        """The session's tasks as a tree (roots, each with ``children``)."""
        got = await self._t.request("GET", f"/v1/sessions/{session_id}/tasks")
        return [TaskNode.model_validate(n) for n in got["data"]]

    @route("GET", "/v1/tasks/{task_id}")
    async def get(self, task_id: str) -> Task:
        return Task.model_validate(await self._t.request("GET", f"/v1/tasks/{task_id}"))

    @route("PATCH", "/v1/tasks/{task_id}")
    async def update(
        self, task_id: str, *, name: str | None = None, status: TaskStatus | None = None
    ) -> Task:
        json = _base.body({"name": name, "status": status})
        return Task.model_validate(
            await self._t.request("PATCH", f"/v1/tasks/{task_id}", json=json)
        )


class AsyncSnapshots(_Resource):
    @route("POST", "/v1/tasks/{task_id}/snapshots")
    async def create(
        self,
        task_id: str,
        label: str,
        bundle: Bundle | Mapping[str, Any] | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        files: Sequence[Mapping[str, Any]] | None = None,
        reasoning: str | None = None,
        log_events: Sequence[Mapping[str, Any]] | None = None,
        model: str | None = None,
        token_total: int | None = None,
        captured_at: datetime | None = None,
        base: SnapshotBase | None = None,
    ) -> Snapshot:
        """Seal a snapshot of the task: a ``bundle`` (e.g. one read back), the fields given,
        or both (the fields win). With a ``base``, only what is new over it (a delta write)."""
        content = _base.bundle_in(
            bundle,
            messages=messages,
            tool_calls=tool_calls,
            files=files,
            reasoning=reasoning,
            log_events=log_events,
            model=model,
            token_total=token_total,
            captured_at=captured_at,
        )
        body: dict[str, Any] = {"label": label, "bundle": content}
        if base is not None:
            body["base"] = base.to_json()
        got = await self._t.request("POST", f"/v1/tasks/{task_id}/snapshots", json=body)
        return Snapshot.model_validate(got)

    @route("GET", "/v1/tasks/{task_id}/snapshots/latest")
    async def latest(self, task_id: str) -> SnapshotWithBundle:
        """The task's latest snapshot (its head) with its bundle, in one request."""
        got = await self._t.request("GET", f"/v1/tasks/{task_id}/snapshots/latest")
        return SnapshotWithBundle.model_validate(got)

    @route("GET", "/v1/sessions/{session_id}/snapshots")
    async def list(
        self, session_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[Snapshot]:
        """A page of the session's snapshots, oldest first."""
        got = await self._t.request(
            "GET",
            f"/v1/sessions/{session_id}/snapshots",
            params={"limit": limit, "cursor": cursor},
        )
        return Page[Snapshot].model_validate(got)

    async def iter(self, session_id: str, *, page_size: int = 100) -> AsyncIterator[Snapshot]:
        """Every snapshot of the session, oldest first, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(session_id, limit=page_size, cursor=cursor)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    @route("GET", "/v1/snapshots/{snapshot_id}")
    async def get(self, snapshot_id: str) -> SnapshotWithBundle:
        got = await self._t.request("GET", f"/v1/snapshots/{snapshot_id}")
        return SnapshotWithBundle.model_validate(got)

    @route("GET", "/v1/snapshots/{snapshot_id}/bundle")
    async def bundle(self, snapshot_id: str, *, revision: int | None = None) -> Bundle:
        """The snapshot's content (``revision``: an enrichment's, 0 the first written)."""
        got = await self._t.request(
            "GET", f"/v1/snapshots/{snapshot_id}/bundle", params={"revision": revision}
        )
        return Bundle.model_validate(got)

    @route("GET", "/v1/snapshots/{snapshot_id}/revisions")
    async def revisions(self, snapshot_id: str) -> builtins.list[Revision]:
        got = await self._t.request("GET", f"/v1/snapshots/{snapshot_id}/revisions")
        return [Revision.model_validate(r) for r in got["data"]]

    @route("POST", "/v1/snapshots/{snapshot_id}/rollback")
    async def rollback(self, snapshot_id: str) -> Snapshot:
        """A new forward snapshot in the same task with this one's content."""
        got = await self._t.request("POST", f"/v1/snapshots/{snapshot_id}/rollback")
        return Snapshot.model_validate(got)

    @route("POST", "/v1/snapshots/{snapshot_id}/fork")
    async def fork(
        self, snapshot_id: str, *, name: str | None = None, session_id: str | None = None
    ) -> Fork:
        """A new branch task whose first snapshot has this one's content."""
        json = _base.body({"name": name, "session_id": session_id})
        got = await self._t.request("POST", f"/v1/snapshots/{snapshot_id}/fork", json=json)
        return Fork.model_validate(got)

    @route("POST", "/v1/snapshots/{snapshot_id}/enrich")
    async def enrich(
        self,
        snapshot_id: str,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        files: Sequence[Mapping[str, Any]] | None = None,
        reasoning: str | None = None,
        log_events: Sequence[Mapping[str, Any]] | None = None,
        model: str | None = None,
    ) -> Snapshot:
        """Add to a fresh snapshot (within the server's enrich window); fields left out keep
        their content."""
        json = _base.body(
            {
                "messages": messages,
                "tool_calls": tool_calls,
                "files": files,
                "reasoning": reasoning,
                "log_events": log_events,
                "model": model,
            }
        )
        got = await self._t.request("POST", f"/v1/snapshots/{snapshot_id}/enrich", json=json)
        return Snapshot.model_validate(got)

    @route("GET", "/v1/sessions/{session_id}/diff")
    async def diff(self, from_id: str, to_id: str, *, session_id: str | None = None) -> Diff:
        """What changed from one snapshot to another of the same session."""
        if session_id is None:
            session_id = (await self.get(from_id)).session_id
        got = await self._t.request(
            "GET", f"/v1/sessions/{session_id}/diff", params={"from": from_id, "to": to_id}
        )
        return Diff.model_validate(got)


class AsyncThreads(_Resource):
    """Small per-thread documents (at most 1 MiB) saved and restored between requests."""

    @route("PUT", "/v1/threads/{thread_id}/state")
    async def save(self, thread_id: str, user_data: str) -> ThreadState:
        got = await self._t.request(
            "PUT", f"/v1/threads/{thread_id}/state", json={"user_data": user_data}
        )
        return ThreadState.model_validate(got)

    @route("GET", "/v1/threads/{thread_id}/state")
    async def get(self, thread_id: str) -> ThreadState:
        return ThreadState.model_validate(
            await self._t.request("GET", f"/v1/threads/{thread_id}/state")
        )

    @route("DELETE", "/v1/threads/{thread_id}/state")
    async def delete(self, thread_id: str) -> None:
        await self._t.request("DELETE", f"/v1/threads/{thread_id}/state")


def _thread_fields(name: str | None, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """How a request that may make a thread's session names it (only what is given)."""
    fields: dict[str, Any] = {}
    if name is not None:
        fields["thread_name"] = name
    if metadata is not None:
        fields["thread_metadata"] = dict(metadata)
    return fields


class AsyncCheckpoints(_Resource):
    """Checkpoints shaped like LangGraph's (what ``KontexSaver`` stands on): each call is one
    request. A thread is a Kontex session, a namespace a task, a checkpoint a snapshot."""

    @route("POST", "/v1/checkpoints")
    async def put(
        self,
        thread_id: str,
        checkpoint_id: str,
        *,
        namespace: str = "",
        parent_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        files: Sequence[Mapping[str, Any]] | None = None,
        captured_at: datetime | None = None,
        base: SnapshotBase | None = None,
        thread_name: str | None = None,
        thread_metadata: Mapping[str, Any] | None = None,
    ) -> CheckpointRef:
        """Store a checkpoint's state as a snapshot (with a ``base``: only what is new)."""
        body: dict[str, Any] = {
            "thread_id": thread_id,
            "namespace": namespace,
            "checkpoint_id": checkpoint_id,
            "parent_id": parent_id,
            "metadata": dict(metadata or {}),
            "bundle": _base.bundle_in(
                None, messages=messages, files=files, captured_at=captured_at
            ),
        }
        if base is not None:
            body["base"] = base.to_json()
        body.update(_thread_fields(thread_name, thread_metadata))
        return CheckpointRef.model_validate(
            await self._t.request("POST", "/v1/checkpoints", json=body)
        )

    @route("POST", "/v1/checkpoints/writes")
    async def put_writes(
        self,
        thread_id: str,
        checkpoint_id: str,
        writes: Sequence[Mapping[str, Any]],
        *,
        namespace: str = "",
        replace: bool = False,
        thread_name: str | None = None,
        thread_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Pending writes of a checkpoint: ``{task_id, idx, channel, value, task_path}`` each
        (``value`` any JSON); ``replace`` replaces those already stored. The thread's session
        is made (with ``thread_name`` and ``thread_metadata``) when this comes first."""
        body: dict[str, Any] = {
            "thread_id": thread_id,
            "namespace": namespace,
            "checkpoint_id": checkpoint_id,
            "writes": [dict(w) for w in writes],
            "replace": replace,
            **_thread_fields(thread_name, thread_metadata),
        }
        await self._t.request("POST", "/v1/checkpoints/writes", json=body)

    @route("GET", "/v1/checkpoints/tuple")
    async def get(
        self, thread_id: str, *, namespace: str = "", checkpoint_id: str | None = None
    ) -> CheckpointOut | None:
        """The checkpoint, or the namespace's latest, with its state and writes; None if none."""
        params = {"thread_id": thread_id, "namespace": namespace, "checkpoint_id": checkpoint_id}
        try:
            got = await self._t.request("GET", "/v1/checkpoints/tuple", params=params)
        except NotFoundError:
            return None
        return CheckpointOut.model_validate(got)

    @route("GET", "/v1/checkpoints")
    async def list(
        self,
        *,
        thread_id: str | None = None,
        namespace: str | None = None,
        before: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (LangGraph's name)
        limit: int = 20,
        cursor: str | None = None,
        shared_messages: bool = False,
    ) -> Page[CheckpointOut]:
        """A page of checkpoints, newest first: of the account or one thread (and namespace),
        older than ``before``, whose metadata holds every pair of ``filter``.
        ``shared_messages``: each distinct message of the page once, in the page's
        ``messages``, each checkpoint's ``message_refs`` indexing them (its bundle's
        ``messages`` empty)."""
        params = {
            "thread_id": thread_id,
            "namespace": namespace,
            "before": before,
            "filter": json.dumps(dict(filter)) if filter else None,
            "limit": limit,
            "cursor": cursor,
            "shared_messages": "true" if shared_messages else None,
        }
        got = await self._t.request("GET", "/v1/checkpoints", params=params)
        return Page[CheckpointOut].model_validate(got)

    async def iter(
        self,
        *,
        thread_id: str | None = None,
        namespace: str | None = None,
        before: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (LangGraph's name)
        page_size: int = 100,
    ) -> AsyncIterator[CheckpointOut]:
        """Every checkpoint ``list`` selects, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(
                thread_id=thread_id,
                namespace=namespace,
                before=before,
                filter=filter,
                limit=page_size,
                cursor=cursor,
            )
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    @route("DELETE", "/v1/checkpoints")
    async def delete_thread(self, thread_id: str) -> None:
        """Remove the thread: its session, snapshots, checkpoints and writes."""
        await self._t.request("DELETE", "/v1/checkpoints", params={"thread_id": thread_id})

    @route("POST", "/v1/checkpoints/copy")
    async def copy_thread(
        self,
        source_thread_id: str,
        target_thread_id: str,
        *,
        thread_name: str | None = None,
        thread_metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Copy every checkpoint and write of a thread into a new one; how many were copied."""
        body = {
            "source_thread_id": source_thread_id,
            "target_thread_id": target_thread_id,
            **_thread_fields(thread_name, thread_metadata),
        }
        got = await self._t.request("POST", "/v1/checkpoints/copy", json=body)
        return int(got["copied"])

    @route("POST", "/v1/checkpoints/prune")
    async def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> int:
        """Checkpoints leave the index (all but each namespace's latest, or all); how many."""
        body = {"thread_ids": builtins.list(thread_ids), "strategy": strategy}
        got = await self._t.request("POST", "/v1/checkpoints/prune", json=body)
        return int(got["removed"])

    @route("POST", "/v1/checkpoints/delete-runs")
    async def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Remove the checkpoints whose metadata names one of the runs; how many."""
        body = {"run_ids": builtins.list(run_ids)}
        got = await self._t.request("POST", "/v1/checkpoints/delete-runs", json=body)
        return int(got["removed"])


class AsyncQueries(_Resource):
    """Messages and tool calls across sessions, filtered."""

    @route("GET", "/v1/messages")
    async def messages(
        self,
        *,
        session_id: str | None = None,
        role: Literal["system", "user", "assistant", "tool"] | None = None,
        content_type: Literal["text", "tool_use", "tool_result"] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[MessageRecord]:
        query = {
            "session_id": session_id,
            "role": role,
            "content_type": content_type,
            "created_after": created_after,
            "created_before": created_before,
            "limit": limit,
            "cursor": cursor,
        }
        got = await self._t.request("GET", "/v1/messages", params=query)
        return Page[MessageRecord].model_validate(got)

    async def iter_messages(self, **filters: Any) -> AsyncIterator[MessageRecord]:
        cursor: str | None = None
        filters.setdefault("limit", 100)
        while True:
            page = await self.messages(cursor=cursor, **filters)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    @route("GET", "/v1/tool-calls")
    async def tool_calls(
        self,
        *,
        session_id: str | None = None,
        tool_name: str | None = None,
        is_error: bool | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ToolCallRecord]:
        query = {
            "session_id": session_id,
            "tool_name": tool_name,
            "is_error": is_error,
            "created_after": created_after,
            "created_before": created_before,
            "limit": limit,
            "cursor": cursor,
        }
        got = await self._t.request("GET", "/v1/tool-calls", params=query)
        return Page[ToolCallRecord].model_validate(got)

    async def iter_tool_calls(self, **filters: Any) -> AsyncIterator[ToolCallRecord]:
        cursor: str | None = None
        filters.setdefault("limit", 100)
        while True:
            page = await self.tool_calls(cursor=cursor, **filters)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor


class AsyncUsageResource(_Resource):
    @route("GET", "/v1/usage")
    async def get(self) -> AccountUsage:
        """The account's usage in all and this month (calls, tokens, cost)."""
        return AccountUsage.model_validate(await self._t.request("GET", "/v1/usage"))


class AsyncIngest(_Resource):
    """The OTLP/HTTP receiver, for callers without an OpenTelemetry exporter of their own."""

    @route("POST", "/ingest/v1/traces")
    async def traces(
        self,
        payload: Mapping[str, Any] | bytes,
        *,
        content_type: str | None = None,
        session_id: str | None = None,
    ) -> Any:
        """Send an ``ExportTraceServiceRequest``: a dict (OTLP/JSON) or encoded bytes
        (``application/x-protobuf`` unless ``content_type`` says otherwise). A JSON request
        is answered with the decoded response (``{}``, or ``partialSuccess`` for refused
        spans); a protobuf one with None (its answer is an encoded, usually empty, message)."""
        headers: dict[str, str | None] = {"X-Kontex-Session-Id": session_id}
        if isinstance(payload, bytes | bytearray):
            headers["Content-Type"] = content_type or "application/x-protobuf"
            return await self._t.request(
                "POST", "/ingest/v1/traces", content=bytes(payload), headers=headers
            )
        return await self._t.request("POST", "/ingest/v1/traces", json=payload, headers=headers)

    def endpoint(self) -> str:
        """``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` for this server."""
        return self._t.base_url + "/ingest/v1/traces"


class AsyncProxy(_Resource):
    """The Anthropic-compatible proxy: calls reach Anthropic unchanged and are captured."""

    def anthropic_options(
        self, *, session_id: str | None = None, task_id: str | None = None
    ) -> dict[str, Any]:
        """``anthropic.Anthropic(**client.proxy.anthropic_options(session_id="my run"))``."""
        headers = {"X-Kontex-Api-Key": self._t.api_key or ""}
        if session_id:
            headers["X-Kontex-Session-Id"] = session_id
        if task_id:
            headers["X-Kontex-Task-Id"] = task_id
        return {"base_url": self._t.base_url + "/proxy", "default_headers": headers}

    @route("POST", "/proxy/v1/messages")
    async def messages(
        self,
        *,
        upstream_api_key: str | None = None,
        session_id: str | None = None,
        task_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        **body: Any,
    ) -> Any:
        """``POST /v1/messages`` through the proxy (not streamed): ``body`` is the Messages API
        request, ``upstream_api_key`` the caller's Anthropic key (sent as ``x-api-key``)."""
        sent: dict[str, str | None] = {
            "Authorization": None,  # the upstream's header; the Kontex key goes apart
            "X-Kontex-Api-Key": self._t.api_key,
            "X-Kontex-Session-Id": session_id,
            "X-Kontex-Task-Id": task_id,
            "x-api-key": upstream_api_key,
            "anthropic-version": "2023-06-01",
            **(headers or {}),
        }
        return await self._t.request("POST", "/proxy/v1/messages", json=body, headers=sent)


class AsyncKontex:
    """The Kontex API: ``AsyncKontex(base_url, api_key)``; both default to ``KONTEX_URL``
    (else ``http://127.0.0.1:8787``) and ``KONTEX_API_KEY``.

    ``max_retries`` retries of 429/503 and of failed connections, honouring ``Retry-After`` up
    to ``max_retry_wait`` seconds."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        http_client: httpx.AsyncClient | None = None,
        live_url: str | None = None,
    ) -> None:
        self._live_url = live_url
        retry = _base.RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait)
        self._transport = AsyncTransport(
            base_url, api_key, timeout=timeout, retry=retry, http_client=http_client
        )
        self.keys = AsyncKeys(self._transport)
        self.sessions = AsyncSessions(self._transport)
        self.tasks = AsyncTasks(self._transport)
        self.snapshots = AsyncSnapshots(self._transport)
        self.threads = AsyncThreads(self._transport)
        self.checkpoints = AsyncCheckpoints(self._transport)
        self.queries = AsyncQueries(self._transport)
        self.usage = AsyncUsageResource(self._transport)
        self.ingest = AsyncIngest(self._transport)
        self.proxy = AsyncProxy(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def api_key(self) -> str | None:
        return self._transport.api_key

    @route("GET", "/v1/search")
    async def search(
        self,
        q: str,
        *,
        session_id: str | None = None,
        task_id: str | None = None,
        source: str | None = None,
        limit: int = 10,
    ) -> SearchResults:
        """Snapshots whose content is nearest in meaning to ``q`` (best first)."""
        query = {
            "q": q,
            "session_id": session_id,
            "task_id": task_id,
            "source": source,
            "limit": limit,
        }
        return SearchResults.model_validate(
            await self._t.request("GET", "/v1/search", params=query)
        )

    def live(self, session_id: str) -> AsyncLiveFeed:
        """The session's events as they happen, over the WebSocket feed (``ws://host/ws``, or
        ``live_url``)."""
        url = _live.live_url(self.base_url, self._live_url)
        return AsyncLiveFeed(url, self.api_key, session_id)

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._transport.request("GET", "/health")
        return result

    async def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document (``/v1/openapi.json``)."""
        result: dict[str, Any] = await self._transport.request("GET", "/v1/openapi.json")
        return result

    @property
    def _t(self) -> AsyncTransport:
        return self._transport

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncKontex:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
