"""An OpenAI Agents SDK session on Kontex: ``KontexSession``
(``pip install kontex-client[openai-agents]``), a drop-in for the SDK's ``SQLiteSession``.

    from kontex_client.openai_agents import KontexSession
    result = await Runner.run(agent, "hi", session=KontexSession("user-42", api_key=...))

It implements the SDK's ``Session`` protocol (``get_items``, ``add_items``, ``pop_item``,
``clear_session``), honours ``SessionSettings`` (``limit``) and has ``close()``. The
conversation is a Kontex session (named ``openai-agents <id>``) with one task; every change is
a snapshot of that task holding the whole item list, so each turn can be read, diffed, searched
and rolled back in Kontex, and nothing is ever lost: ``pop_item`` and ``clear_session`` write a
new snapshot rather than deleting history.

Each operation is one request once the session is known: ``get_items`` reads the task's head
snapshot; ``add_items`` sends only the new items, which the server appends to the head it holds
at write time (under the task's lock, so writers in many tasks, threads or processes never lose
or reorder each other's items); ``pop_item`` reads the head and writes "the head less its last
item" only if that head is still the head (else reads again); ``clear_session`` writes an empty
head. Kontex stores each distinct item once per session, so a snapshot per turn costs only the
new items.

Items map to Kontex messages: role messages keep their role (``developer`` is ``system``) and
content; a ``function_call`` is an assistant message with OpenAI-style ``tool_calls``; a
``function_call_output`` is a ``tool`` message; any other item is an assistant message. The
rest of each item is kept beside it (``item``), so items read back exactly as added.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import threading
import weakref
from collections.abc import Generator
from typing import Any

from kontex_client import SnapshotBase
from kontex_client._async_client import AsyncKontex
from kontex_client._errors import ConflictError, NotFoundError

# The SDK's settings type (None in an SDK too old to have one)
SessionSettings: Any = getattr(importlib.import_module("agents.memory"), "SessionSettings", None)

__all__ = ["KontexSession"]

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
LABEL = "openai-agents"

# Sessions of this process being created, by (server, key, session id): two KontexSession
# objects (in two threads, say) on a new session id make one Kontex session, not two. A lock
# lives while some creation holds or awaits it.
_creating: weakref.WeakValueDictionary[tuple[str, str | None, str], threading.Lock] = (
    weakref.WeakValueDictionary()
)
_creating_guard = threading.Lock()


def session_doc_id(session_id: str) -> str:
    """The Kontex thread-state id that indexes an Agents SDK session."""
    return "thrd_oa-" + hashlib.sha256(session_id.encode()).hexdigest()[:40]


def _verbatim(content: Any) -> bool:
    return isinstance(content, str) or (
        isinstance(content, list) and all(isinstance(b, dict) for b in content)
    )


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _without_nul(value: Any) -> Any:
    """``value`` with each NUL character (which Kontex refuses in text) shown as U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def to_message(item: Any) -> dict[str, Any]:
    """An item as a Kontex message (the item's other fields under ``item``). Kontex refuses
    NUL characters in text: an item holding one is kept whole as JSON text (``item_json``,
    where JSON escapes the NUL), beside a message showing each NUL as U+FFFD."""
    if _has_nul(item):
        shown = to_message(_without_nul(item))
        del shown["item"]
        shown["item_json"] = json.dumps(item)
        return shown
    item = dict(item)
    role = item.get("role")
    kind = item.get("type")
    message: dict[str, Any]
    if role in ROLES and _verbatim(item.get("content")):
        message = {"role": ROLES[role], "content": item.pop("content")}
    elif kind == "function_call":
        call = {"name": item.get("name"), "arguments": item.get("arguments", "{}")}
        message = {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": item.get("call_id"), "type": "function", "function": call}],
        }
    elif kind == "function_call_output":
        output = item.get("output")
        message = {
            "role": "tool",
            "tool_call_id": item.get("call_id"),
            "content": output if isinstance(output, str) else json.dumps(output, default=str),
        }
    else:
        message = {"role": ROLES.get(role or "", "assistant"), "content": ""}
    message["item"] = item
    return message


def from_message(message: dict[str, Any]) -> dict[str, Any]:
    """The item a Kontex message was made from (or a role message for foreign ones)."""
    if "item_json" in message:
        found: dict[str, Any] = json.loads(message["item_json"])
        return found
    if "item" not in message:
        return {"role": message["role"], "content": message["content"]}
    item = dict(message["item"])
    if "content" not in item and item.get("role") in ROLES:
        item["content"] = message["content"]
    return item


def _settings(given: Any) -> Any:
    """``session_settings`` as ``SQLiteSession`` keeps them: a ``SessionSettings`` (a dict is
    read as one), the default one when none are given."""
    if SessionSettings is None:
        return given
    if given is None:
        return SessionSettings()
    if isinstance(given, dict):
        return SessionSettings(**given)
    return given


def _last(items: list[Any], limit: int | None) -> list[Any]:
    """The latest ``limit`` items, as ``SQLiteSession`` reads them (``None`` or a negative
    limit: all; 0: none)."""
    if limit is None or limit < 0:
        return items
    return items[-limit:] if limit else []


class _Closing:
    """What ``close()`` returns: nothing to wait for when called as ``SQLiteSession.close()``
    is; awaited, it waits until the running loop's HTTP client is closed."""

    def __init__(self, pending: list[asyncio.Task[None]]) -> None:
        self._pending = pending

    def __await__(self) -> Generator[Any, None, None]:
        for task in self._pending:
            yield from task.__await__()


class KontexSession:
    """Conversation history for one Agents SDK session id, kept in Kontex."""

    session_settings: Any = None

    def __init__(
        self,
        session_id: str,
        client: AsyncKontex | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        session_settings: Any = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = _settings(session_settings)
        self._given = client
        self._base_url, self._api_key = base_url, api_key
        # An HTTP client's connections belong to the event loop they were first used in: one
        # client per loop, so the session works across ``asyncio.run()`` calls and threads,
        # as the SDK's SQLiteSession does.
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncKontex] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()
        # (Kontex session id, task id) once known: they never change for a session id.
        self._ids: tuple[str, str] | None = None

    @property
    def client(self) -> AsyncKontex:
        """The client of the running event loop (made on first use in it)."""
        loop = asyncio.get_running_loop()
        with self._guard:
            found = self._per_loop.get(loop)
            if found is None:
                found = self._given or AsyncKontex(self._base_url, self._api_key)
                self._per_loop[loop] = found
        return found

    # -- the session -> task index (a thread-state document, written once) ----------------------

    async def _read_index(self) -> tuple[str, str] | None:
        try:
            state = await self.client.threads.get(session_doc_id(self.session_id))
        except NotFoundError:
            return None
        doc = json.loads(state.user_data)
        self._ids = (doc["session_id"], doc["task_id"])
        return self._ids

    async def _index(self, create: bool) -> tuple[str, str] | None:
        if self._ids is not None:
            return self._ids
        found = await self._read_index()
        if found is not None or not create:
            return found
        client = self.client
        key = (client.base_url, client.api_key, self.session_id)
        with _creating_guard:
            lock = _creating.setdefault(key, threading.Lock())
        while not lock.acquire(blocking=False):  # another loop or thread is creating it
            await asyncio.sleep(0.005)
        try:
            found = await self._read_index()
            if found is not None:
                return found
            shown = _without_nul(self.session_id)
            session = await client.sessions.create(
                f"{LABEL} {shown}"[:200], metadata={"openai_agents": {"session_id": shown}}
            )
            task = await client.tasks.create(session.id, "conversation")
            doc = {"session_id": session.id, "task_id": task.id}
            await client.threads.save(session_doc_id(self.session_id), json.dumps(doc))
            # Another process may have saved its index at the same time: the one saved last
            # is the one every writer uses from now on.
            return await self._read_index()
        finally:
            lock.release()

    async def kontex_ids(self) -> tuple[str, str] | None:
        """``(session id, task id)`` of the Kontex session holding this conversation."""
        return await self._index(create=False)

    async def _head(self, task_id: str) -> tuple[str | None, list[dict[str, Any]]]:
        """The task's head snapshot id and its messages (``None, []`` before the first)."""
        try:
            head = await self.client.snapshots.latest(task_id)
        except NotFoundError:
            return None, []
        return head.id, list(head.bundle.messages)

    # -- the Session protocol ------------------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The conversation, or its latest ``limit`` items (else ``session_settings.limit``)."""
        if limit is None:
            limit = getattr(self.session_settings, "limit", None)
        ids = await self._index(create=False)
        if ids is None:
            return []
        _, messages = await self._head(ids[1])
        return _last([from_message(m) for m in messages], limit)

    async def add_items(self, items: list[Any]) -> None:
        if not items:
            return
        ids = await self._index(create=True)
        assert ids is not None
        await self.client.snapshots.create(
            ids[1],
            f"{LABEL}: {len(items)} item(s) added",
            messages=[to_message(i) for i in items],
            base=SnapshotBase(snapshot_id=None),  # appended to the head at write time
        )

    async def pop_item(self) -> Any | None:
        ids = await self._index(create=False)
        if ids is None:
            return None
        while True:
            head, messages = await self._head(ids[1])
            if head is None or not messages:
                return None
            try:
                await self.client.snapshots.create(
                    ids[1],
                    f"{LABEL}: last item removed",
                    messages=[],
                    base=SnapshotBase(snapshot_id=head, messages=(0, -1), if_head=True),
                )
            except ConflictError:
                continue  # another writer moved the head: pop from the new one
            return from_message(messages[-1])

    async def clear_session(self) -> None:
        ids = await self._index(create=False)
        if ids is None:
            return
        await self.client.snapshots.create(
            ids[1],
            f"{LABEL}: cleared",
            messages=[],
            base=SnapshotBase(snapshot_id=None, messages=(0, 0)),
        )

    def close(self) -> _Closing:
        """Close the HTTP clients this session made. Synchronous, as ``SQLiteSession.close()``
        is; in an event loop ``await session.close()`` also waits for that loop's client. The
        session stays usable: its next operation makes a new client."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self._guard:
            made = list(self._per_loop.items())
            self._per_loop.clear()
        pending: list[asyncio.Task[None]] = []
        if self._given is not None:
            return _Closing(pending)  # the caller's client: the caller closes it
        for loop, client in made:
            if loop is running:
                pending.append(loop.create_task(client.aclose()))
            elif loop.is_closed():
                continue  # its connections went with it
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
            else:
                loop.run_until_complete(client.aclose())
        return _Closing(pending)
