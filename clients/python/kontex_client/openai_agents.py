"""An OpenAI Agents SDK session on Kontex: ``KontexSession``
(``pip install kontex-client[openai-agents]``).

    from kontex_client.openai_agents import KontexSession
    result = await Runner.run(agent, "hi", session=KontexSession("user-42", api_key=...))

It implements the SDK's ``Session`` protocol (``get_items``, ``add_items``, ``pop_item``,
``clear_session``). The conversation is a Kontex session (named ``openai-agents <id>``) with
one task; every change is a snapshot holding the whole item list, so each turn can be read,
diffed, searched and rolled back in Kontex, and nothing is ever lost: ``pop_item`` and
``clear_session`` write a new snapshot rather than deleting history. Kontex stores each
distinct item once per session, so a snapshot per turn costs only the new items.

Items map to Kontex messages: role messages keep their role (``developer`` is ``system``) and
content; a ``function_call`` is an assistant message with OpenAI-style ``tool_calls``; a
``function_call_output`` is a ``tool`` message; any other item is an assistant message. The
rest of each item is kept beside it (``item``), so items read back exactly as added.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from typing import Any

from kontex_client._async_client import AsyncKontex
from kontex_client._errors import NotFoundError

__all__ = ["KontexSession"]

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def session_doc_id(session_id: str) -> str:
    """The Kontex thread-state id that indexes an Agents SDK session."""
    return "thrd_oa-" + hashlib.sha256(session_id.encode()).hexdigest()[:40]


def _verbatim(content: Any) -> bool:
    return isinstance(content, str) or (
        isinstance(content, list) and all(isinstance(b, dict) for b in content)
    )


def to_message(item: Any) -> dict[str, Any]:
    """An item as a Kontex message (the item's other fields under ``item``)."""
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
    if "item" not in message:
        return {"role": message["role"], "content": message["content"]}
    item = dict(message["item"])
    if "content" not in item and item.get("role") in ROLES:
        item["content"] = message["content"]
    return item


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
        self.session_settings = session_settings
        self._given = client
        self._base_url, self._api_key = base_url, api_key
        # An HTTP client's connections and an asyncio.Lock belong to the event loop they were
        # first used in: one of each per loop, so the session works across ``asyncio.run()``
        # calls, as the SDK's SQLiteSession does.
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncKontex, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def _bound(self) -> tuple[AsyncKontex, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        found = self._per_loop.get(loop)
        if found is None:
            client = self._given or AsyncKontex(self._base_url, self._api_key)
            found = self._per_loop[loop] = (client, asyncio.Lock())
        return found

    @property
    def client(self) -> AsyncKontex:
        """The client of the running event loop (made on first use in it)."""
        return self._bound()[0]

    @property
    def _lock(self) -> asyncio.Lock:
        return self._bound()[1]

    async def _index(self, create: bool) -> dict[str, Any] | None:
        doc_id = session_doc_id(self.session_id)
        try:
            doc: dict[str, Any] = json.loads((await self.client.threads.get(doc_id)).user_data)
            return doc
        except NotFoundError:
            if not create:
                return None
        session = await self.client.sessions.create(
            f"openai-agents {self.session_id}"[:200],
            metadata={"openai_agents": {"session_id": self.session_id}},
        )
        task = await self.client.tasks.create(session.id, "conversation")
        doc = {"session_id": session.id, "task_id": task.id, "head": None, "writes": 0}
        await self.client.threads.save(doc_id, json.dumps(doc))
        return doc

    async def _messages(self, doc: dict[str, Any] | None) -> list[dict[str, Any]]:
        if not doc or not doc.get("head"):
            return []
        return list((await self.client.snapshots.bundle(doc["head"])).messages)

    async def _write(self, doc: dict[str, Any], messages: list[dict[str, Any]], label: str) -> None:
        made = await self.client.snapshots.create(doc["task_id"], label, messages=messages)
        doc["head"], doc["writes"] = made.id, doc["writes"] + 1
        await self.client.threads.save(session_doc_id(self.session_id), json.dumps(doc))

    async def kontex_ids(self) -> tuple[str, str] | None:
        """``(session id, task id)`` of the Kontex session holding this conversation."""
        doc = await self._index(create=False)
        return (doc["session_id"], doc["task_id"]) if doc else None

    # -- the Session protocol ------------------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[Any]:
        if limit is None and self.session_settings is not None:
            limit = getattr(self.session_settings, "limit", None)
        async with self._lock:
            items = [from_message(m) for m in await self._messages(await self._index(False))]
        return items[-limit:] if limit else items

    async def add_items(self, items: list[Any]) -> None:
        if not items:
            return
        async with self._lock:
            doc = await self._index(create=True)
            assert doc is not None
            messages = await self._messages(doc) + [to_message(i) for i in items]
            label = f"turn {doc['writes'] + 1}: {len(items)} item(s) added"
            await self._write(doc, messages, label)

    async def pop_item(self) -> Any | None:
        async with self._lock:
            doc = await self._index(create=False)
            messages = await self._messages(doc)
            if doc is None or not messages:
                return None
            popped = messages.pop()
            await self._write(doc, messages, f"turn {doc['writes'] + 1}: last item removed")
            return from_message(popped)

    async def clear_session(self) -> None:
        async with self._lock:
            doc = await self._index(create=False)
            if doc is None or not doc.get("head"):
                return
            await self._write(doc, [], f"turn {doc['writes'] + 1}: cleared")

    async def close(self) -> None:
        """Close the running event loop's HTTP client, when this session made it."""
        found = self._per_loop.pop(asyncio.get_running_loop(), None)
        if found is not None and self._given is None:
            await found[0].aclose()
