# The LangGraph saver as it was before the checkpoint API (kontex-client at 6189289), kept to
# write threads in its format: tests/client/test_langgraph.py checks that they still read.
# ruff: noqa
"""A LangGraph checkpointer on Kontex: ``KontexSaver`` (``pip install kontex-client[langgraph]``).

    from kontex_client.langgraph import KontexSaver
    graph = builder.compile(checkpointer=KontexSaver(base_url=..., api_key=...))

How LangGraph's data lands in Kontex:

- a **thread** is a Kontex session (named ``langgraph <thread_id>``, metadata
  ``{"langgraph": {"thread_id": ...}}``); each checkpoint namespace is a task of it (the root
  namespace: task ``langgraph``);
- a **checkpoint** is a snapshot labelled ``checkpoint <id>`` (``... after <parent id>``). The
  ``messages`` channel, when it holds LangChain messages, is the snapshot's ``messages``
  (role and content readable in the dashboard, each message's other fields kept beside them,
  so it reads back equal); every other channel is kept exactly, serialised by the saver's
  ``serde``, as a file ``langgraph/channels/<name>``; the checkpoint's own fields and metadata
  are the file ``langgraph/checkpoint.json`` (plain JSON when they read back equal). Kontex
  stores each distinct message and file once per session, so a long thread does not store its
  history again at every step;
- **pending writes** of a checkpoint wait in a small thread-state document
  (``/v1/threads/{id}/state``, also the thread -> session index) until the next checkpoint is
  written after it, which carries them (file ``langgraph/parent-writes.json``).

The async methods run the sync ones in a worker thread (``asyncio.to_thread``), so they never
block the event loop. One process per thread at a time, as with LangGraph's own savers.
Snapshot writes count against the server's ``KONTEX_SNAPSHOT_WRITES_PER_HOUR``: raise it
for agents that take many steps.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import hashlib
import json
import random
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from kontex_client._errors import NotFoundError
from kontex_client._sync_client import Kontex

__all__ = ["KontexSaver"]

PREFIX = "langgraph/"
CHECKPOINT_FILE = PREFIX + "checkpoint.json"
WRITES_FILE = PREFIX + "parent-writes.json"
CHANNEL_FILE = PREFIX + "channels/"
MESSAGES = "messages"
ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


def thread_doc_id(thread_id: str) -> str:
    """The Kontex thread-state id that indexes a LangGraph thread."""
    return "thrd_lg-" + hashlib.sha256(thread_id.encode()).hexdigest()[:40]


def _typed(serde: SerializerProtocol, value: Any) -> dict[str, str]:
    kind, data = serde.dumps_typed(value)
    return {"type": kind, "data": base64.b64encode(data).decode("ascii")}


def _untyped(serde: SerializerProtocol, value: dict[str, Any]) -> Any:
    if "json" in value:
        return value["json"]
    return serde.loads_typed((value["type"], base64.b64decode(value["data"])))


def _readable(serde: SerializerProtocol, value: Any) -> dict[str, Any]:
    """Plain JSON when it reads back equal (the checkpoint's versions, metadata), else the
    serde's bytes."""
    try:
        if json.loads(json.dumps(value)) == value:
            return {"json": value}
    except (TypeError, ValueError):
        pass
    return _typed(serde, value)


def _when(ts: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(ts) if isinstance(ts, str) else None
    except ValueError:
        return None


def _label(checkpoint_id: str, parent_id: str | None) -> str:
    return f"checkpoint {checkpoint_id}" + (f" after {parent_id}" if parent_id else "")


def _parse_label(label: str) -> tuple[str, str | None] | None:
    if not label.startswith("checkpoint "):
        return None
    rest = label[len("checkpoint ") :]
    checkpoint_id, _, parent = rest.partition(" after ")
    return checkpoint_id, parent or None


# -- the messages channel as Kontex messages ----------------------------------------------------


def _to_messages(value: Any) -> list[dict[str, Any]] | None:
    """LangChain messages as Kontex messages (role, content, the rest kept beside them), or
    None when the channel holds anything else."""
    try:
        from langchain_core.messages import BaseMessage, message_to_dict
    except ImportError:  # pragma: no cover (langgraph depends on langchain-core)
        return None
    if not isinstance(value, list) or not all(isinstance(m, BaseMessage) for m in value):
        return None
    out = []
    for message in value:
        dumped = message_to_dict(message)
        data = dict(dumped["data"])
        content = data.get("content")
        plain = isinstance(content, str) or (
            isinstance(content, list) and all(isinstance(b, dict) for b in content)
        )
        if plain:
            del data["content"]  # stored once, as the Kontex message's content
        else:  # raw strings in a list: shown as text blocks, the original kept in data
            items = content if isinstance(content, list) else [content]
            content = [
                b if isinstance(b, dict) else {"type": "text", "text": str(b)} for b in items
            ]
        kontex: dict[str, Any] = {
            "role": ROLES.get(dumped["type"], "user"),
            "content": content,
            "langchain": {"type": dumped["type"], "data": data},
        }
        for call in data.get("tool_calls") or []:  # readable by to_openai / to_anthropic
            kontex.setdefault("tool_calls", []).append(
                {
                    "id": call.get("id"),
                    "type": "function",
                    "function": {"name": call.get("name"), "arguments": json.dumps(call["args"])},
                }
            )
        if data.get("tool_call_id"):
            kontex["tool_call_id"] = data["tool_call_id"]
        try:
            json.dumps(kontex)
        except (TypeError, ValueError):
            return None  # a field JSON cannot hold: keep the channel as a serialised file
        out.append(kontex)
    return out


def _from_messages(messages: list[dict[str, Any]]) -> list[Any]:
    from langchain_core.messages import messages_from_dict

    dicts = []
    for message in messages:
        stored = message["langchain"]
        data = dict(stored["data"])
        data.setdefault("content", message["content"])
        dicts.append({"type": stored["type"], "data": data})
    return messages_from_dict(dicts)


# -- the index of a thread ----------------------------------------------------------------------


@dataclass
class _Entry:
    checkpoint_id: str
    parent_id: str | None
    snapshot_id: str
    namespace: str


@dataclass
class _Thread:
    """What the thread-state document holds, and the checkpoints read from the timeline."""

    thread_id: str
    session_id: str
    tasks: dict[str, str]  # namespace -> task id
    writes: dict[str, list[list[Any]]]  # "<ns>\0<checkpoint id>" -> writes
    entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)

    def document(self) -> str:
        return json.dumps(
            {
                "kind": "langgraph",
                "thread_id": self.thread_id,
                "session_id": self.session_id,
                "tasks": self.tasks,
                "writes": self.writes,
            }
        )


def _key(namespace: str, checkpoint_id: str) -> str:
    return f"{namespace}\0{checkpoint_id}"


class KontexSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints as Kontex snapshots (see the module's docstring)."""

    def __init__(
        self,
        client: Kontex | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        serde: SerializerProtocol | None = None,
        map_messages: bool = True,
    ) -> None:
        super().__init__(serde=serde)
        self.client = client or Kontex(base_url, api_key)
        # The messages channel is mapped only with the default serializer: an encrypting
        # serde must see every value.
        self.map_messages = map_messages and (serde is None or type(serde) is JsonPlusSerializer)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, thread_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(thread_id, threading.Lock())

    # -- the thread ----------------------------------------------------------------------------

    def _load(self, thread_id: str) -> _Thread | None:
        try:
            state = self.client.threads.get(thread_doc_id(thread_id))
        except NotFoundError:
            return None
        doc = json.loads(state.user_data)
        return _Thread(thread_id, doc["session_id"], doc["tasks"], doc["writes"])

    def _load_or_create(self, thread_id: str) -> _Thread:
        thread = self._load(thread_id)
        if thread is not None:
            return thread
        session = self.client.sessions.create(
            f"langgraph {thread_id}"[:200], metadata={"langgraph": {"thread_id": thread_id}}
        )
        thread = _Thread(thread_id, session.id, {}, {})
        self._save(thread)
        return thread

    def _save(self, thread: _Thread) -> None:
        self.client.threads.save(thread_doc_id(thread.thread_id), thread.document())

    def _task(self, thread: _Thread, namespace: str) -> str:
        if namespace not in thread.tasks:
            name = (namespace or "langgraph")[:200]
            thread.tasks[namespace] = self.client.tasks.create(thread.session_id, name).id
            self._save(thread)
        return thread.tasks[namespace]

    def _index(self, thread: _Thread) -> None:
        """Read every checkpoint of the thread from the session's timeline (one request)."""
        by_task = {task: ns for ns, task in thread.tasks.items()}
        thread.entries = {}
        for entry in self.client.sessions.timeline(thread.session_id):
            parsed = _parse_label(entry.label)
            namespace = by_task.get(entry.task_id)
            if parsed is None or namespace is None:
                continue
            checkpoint_id, parent_id = parsed
            thread.entries[(namespace, checkpoint_id)] = _Entry(
                checkpoint_id, parent_id, entry.id, namespace
            )

    # -- reading -------------------------------------------------------------------------------

    def _writes(self, thread: _Thread, entry: _Entry) -> list[tuple[str, str, Any]]:
        """The checkpoint's pending writes: waiting in the document, or carried by a child."""
        found: dict[tuple[str, int], list[Any]] = {}
        for child in thread.entries.values():
            if child.namespace == entry.namespace and child.parent_id == entry.checkpoint_id:
                bundle = self.client.snapshots.bundle(child.snapshot_id)
                for file in bundle.files:
                    if file.get("path") == WRITES_FILE:
                        for write in json.loads(file["content"]):
                            found.setdefault((write[0], write[1]), write)
        for write in thread.writes.get(_key(entry.namespace, entry.checkpoint_id), []):
            found[(write[0], write[1])] = write
        ordered = sorted(found.values(), key=lambda w: (w[4], w[0], w[1]))  # writes_sort_key
        return [(w[0], w[2], _untyped(self.serde, w[3])) for w in ordered]

    def _tuple(self, thread: _Thread, entry: _Entry) -> CheckpointTuple:
        bundle = self.client.snapshots.bundle(entry.snapshot_id)
        files = {f["path"]: f for f in bundle.files}
        stored = json.loads(files[CHECKPOINT_FILE]["content"])
        checkpoint: Checkpoint = _untyped(self.serde, stored["checkpoint"])
        values: dict[str, Any] = {}
        for name in stored["channels"]:
            if name == MESSAGES and stored.get("messages_mapped"):
                values[name] = _from_messages(bundle.messages)
            else:
                values[name] = _untyped(
                    self.serde, json.loads(files[CHANNEL_FILE + name]["content"])
                )
        checkpoint["channel_values"] = values
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread.thread_id,
                "checkpoint_ns": entry.namespace,
                "checkpoint_id": entry.checkpoint_id,
            }
        }
        parent: RunnableConfig | None = None
        if entry.parent_id:
            parent = {
                "configurable": {
                    "thread_id": thread.thread_id,
                    "checkpoint_ns": entry.namespace,
                    "checkpoint_id": entry.parent_id,
                }
            }
        return CheckpointTuple(
            config=config,
            checkpoint=checkpoint,
            metadata=_untyped(self.serde, stored["metadata"]),
            parent_config=parent,
            pending_writes=self._writes(thread, entry),
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        namespace = configurable.get("checkpoint_ns", "")
        checkpoint_id = configurable.get("checkpoint_id")
        with self._lock(thread_id):
            thread = self._load(thread_id)
            if thread is None:
                return None
            self._index(thread)
            if checkpoint_id:
                entry = thread.entries.get((namespace, checkpoint_id))
            else:
                ours = [e for (ns, _), e in thread.entries.items() if ns == namespace]
                entry = max(ours, key=lambda e: e.checkpoint_id, default=None)
            return self._tuple(thread, entry) if entry else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of one thread (and namespace, when the config names
        one), or of every thread of the account when ``config`` is None."""
        if config is not None:
            thread_ids = [config["configurable"]["thread_id"]]
        else:
            thread_ids = [
                s.metadata["langgraph"]["thread_id"]
                for s in self.client.sessions.iter()
                if isinstance(s.metadata.get("langgraph"), dict)
                and "thread_id" in s.metadata["langgraph"]
            ]
        configurable = (config or {}).get("configurable", {})
        namespace = configurable.get("checkpoint_ns")
        only_id = configurable.get("checkpoint_id")
        before_id = (before or {}).get("configurable", {}).get("checkpoint_id")
        count = 0
        for thread_id in thread_ids:
            with self._lock(thread_id):
                thread = self._load(thread_id)
                if thread is None:
                    continue
                self._index(thread)
                entries = sorted(
                    thread.entries.values(), key=lambda e: e.checkpoint_id, reverse=True
                )
                for entry in entries:
                    if namespace is not None and entry.namespace != namespace:
                        continue
                    if only_id and entry.checkpoint_id != only_id:
                        continue
                    if before_id and entry.checkpoint_id >= before_id:
                        continue
                    found = self._tuple(thread, entry)
                    if filter and not all(found.metadata.get(k) == v for k, v in filter.items()):
                        continue
                    yield found
                    count += 1
                    if limit is not None and count >= limit:
                        return

    # -- writing -------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        namespace = configurable.get("checkpoint_ns", "")
        parent_id = configurable.get("checkpoint_id")
        values = dict(checkpoint["channel_values"])
        rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        messages = _to_messages(values.get(MESSAGES)) if self.map_messages else None
        files: builtins.list[dict[str, Any]] = []
        for name, value in values.items():
            if name == MESSAGES and messages is not None:
                continue
            files.append(self._file(CHANNEL_FILE + name, json.dumps(_typed(self.serde, value))))
        meta = get_checkpoint_metadata(config, metadata)
        stored = {
            "id": checkpoint["id"],
            "ts": checkpoint["ts"],
            "parent_checkpoint_id": parent_id,
            "channels": sorted(values),
            "messages_mapped": messages is not None,
            "checkpoint": _readable(self.serde, rest),
            "metadata": _readable(self.serde, meta),
        }
        files.insert(0, self._file(CHECKPOINT_FILE, json.dumps(stored, sort_keys=True)))
        with self._lock(thread_id):
            thread = self._load_or_create(thread_id)
            task_id = self._task(thread, namespace)
            carried = thread.writes.get(_key(namespace, parent_id)) if parent_id else None
            if carried:
                files.append(self._file(WRITES_FILE, json.dumps(carried)))
            self.client.snapshots.create(
                task_id,
                _label(checkpoint["id"], parent_id)[:500],
                messages=messages or [],
                files=files,
                captured_at=_when(checkpoint.get("ts")),
            )
            if carried and parent_id:
                del thread.writes[_key(namespace, parent_id)]  # the child holds them now
                self._save(thread)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": namespace,
                "checkpoint_id": checkpoint["id"],
            }
        }

    @staticmethod
    def _file(path: str, content: str) -> dict[str, Any]:
        # token_count 0: serialised state is not context a model reads
        return {"path": path, "content": content, "token_count": 0}

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        namespace = configurable.get("checkpoint_ns", "")
        key = _key(namespace, configurable["checkpoint_id"])
        with self._lock(thread_id):
            thread = self._load_or_create(thread_id)
            waiting = thread.writes.setdefault(key, [])
            have = {(w[0], w[1]): i for i, w in enumerate(waiting)}
            changed = False
            for idx, (channel, value) in enumerate(writes):
                index = WRITES_IDX_MAP.get(channel, idx)
                write = [task_id, index, channel, _typed(self.serde, value), task_path]
                at = have.get((task_id, index))
                if at is not None:
                    if index >= 0:
                        continue  # a write is stored once (a retried task sends it again)
                    waiting[at] = write  # special writes (errors, interrupts) replace
                else:
                    have[(task_id, index)] = len(waiting)
                    waiting.append(write)
                changed = True
            if changed:
                self._save(thread)

    def delete_thread(self, thread_id: str) -> None:
        """Remove the thread: its session with every snapshot, and its document."""
        with self._lock(thread_id):
            thread = self._load(thread_id)
            if thread is None:
                return
            with contextlib.suppress(NotFoundError):
                self.client.sessions.purge(thread.session_id)
            self.client.threads.delete(thread_doc_id(thread_id))

    def get_next_version(self, current: str | int | float | None, channel: None = None) -> str:
        """``<counter>.<random>``, as LangGraph's own savers: increasing, and unique across
        forks."""
        if current is None:
            number = 0
        elif isinstance(current, int | float):
            number = int(current)
        else:
            number = int(current.split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- async: the same, in a worker thread ---------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)
