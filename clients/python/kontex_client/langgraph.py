"""A LangGraph checkpointer on Kontex: ``KontexSaver`` (``pip install kontex-client[langgraph]``).

    from kontex_client.langgraph import KontexSaver
    graph = builder.compile(checkpointer=KontexSaver(base_url=..., api_key=...))

Each saver call is one request to Kontex's checkpoint API (``client.checkpoints``): ``put``,
``put_writes``, ``get_tuple`` and each page of ``list``; their cost follows what is new, not
the length of the thread. The async methods (``aput``, ``aget_tuple``...) are native: an
``AsyncKontex`` per event loop, never a worker thread.

How LangGraph's data lands in Kontex:

- a **thread** is a Kontex session (named ``langgraph <thread_id>``, metadata
  ``{"langgraph": {"thread_id": ...}}``); each checkpoint namespace is a task of it;
- a **checkpoint** is a snapshot labelled ``checkpoint <id> after <parent id>``, indexed by the
  server with its parent and metadata. The ``messages`` channel, when it holds LangChain
  messages, is the snapshot's ``messages`` (role and content readable in the dashboard, each
  message's other fields kept beside them, so it reads back equal); every other channel is kept
  exactly, serialised by the saver's ``serde``, as a file ``langgraph/channels/<name>``; the
  checkpoint's own fields and metadata are the file ``langgraph/checkpoint.json``;
- a put after the checkpoint this process last wrote or read on the thread is a **delta
  write**: only the messages appended (or the cut, when messages were removed or replaced) and
  the channels whose bytes changed are sent; Kontex composes and stores the whole state;
- **pending writes** are rows of their own, each write stored once (special writes such as
  errors and interrupts replace).

Checkpoint requests count against the server's ``KONTEX_CHECKPOINT_REQUESTS_PER_HOUR`` (20,000
by default), not the general request limit.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import json
import random
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
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

from kontex_client._api_models import CheckpointOut
from kontex_client._async_client import AsyncKontex
from kontex_client._models import SnapshotBase
from kontex_client._sync_client import Kontex

__all__ = ["KontexSaver"]

PREFIX = "langgraph/"
CHECKPOINT_FILE = PREFIX + "checkpoint.json"
CHANNEL_FILE = PREFIX + "channels/"
MESSAGES = "messages"
ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}
PAGE = 100  # checkpoints per page of list()
REMEMBERED = 1024  # threads whose last state a saver keeps for delta writes


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


class _Shared:
    """A page's distinct messages, each made a LangChain message once; every checkpoint gets
    its own copies (a state handed out is never shared with another)."""

    def __init__(self, table: list[dict[str, Any]]) -> None:
        self.table = table
        self.made: dict[int, Any] = {}

    def messages(self, refs: list[int]) -> list[Any]:
        missing = [i for i in dict.fromkeys(refs) if i not in self.made]
        if missing:
            made = _from_messages([self.table[i] for i in missing])
            self.made.update(zip(missing, made, strict=True))
        return [self.made[i].model_copy() for i in refs]


def _mappable(value: Any) -> bool:
    try:
        from langchain_core.messages import BaseMessage
    except ImportError:  # pragma: no cover (langgraph depends on langchain-core)
        return False
    return isinstance(value, list) and all(isinstance(m, BaseMessage) for m in value)


def _from_messages(messages: list[dict[str, Any]]) -> list[Any]:
    from langchain_core.messages import messages_from_dict

    dicts = []
    for message in messages:
        stored = message["langchain"]
        data = dict(stored["data"])
        data.setdefault("content", message["content"])
        dicts.append({"type": stored["type"], "data": data})
    return messages_from_dict(dicts)


# -- one put as a request -----------------------------------------------------------------------


@dataclass
class _Last:
    """The state of a thread's namespace this process last wrote or read: a put after it
    sends only what changed."""

    checkpoint_id: str
    snapshot_id: str
    messages: list[Any] | None  # the LangChain messages, when the channel was mapped
    files: dict[str, str]  # path -> content


def _common_prefix(old: list[Any], new: list[Any]) -> int:
    n = 0
    for a, b in zip(old, new, strict=False):
        if a is not b and a != b:
            break
        n += 1
    return n


def _config(thread_id: str, namespace: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint_id,
        }
    }


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """The JSON-exact pairs of the metadata: what the server's ``filter`` matches."""
    out = {}
    for k, v in value.items():
        try:
            if json.loads(json.dumps(v)) == v:
                out[k] = v
        except (TypeError, ValueError):
            continue
    return out


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
        async_client: AsyncKontex | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.client = client or Kontex(base_url, api_key)
        self._base_url = base_url or str(self.client._transport.base_url)
        self._api_key = api_key or self.client._transport.api_key
        self._given_async = async_client
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncKontex] = (
            weakref.WeakKeyDictionary()
        )
        # The messages channel is mapped only with the default serializer: an encrypting
        # serde must see every value.
        self.map_messages = map_messages and (serde is None or type(serde) is JsonPlusSerializer)
        self._last: OrderedDict[tuple[str, str], _Last] = OrderedDict()

    @property
    def aclient(self) -> AsyncKontex:
        """The async client of the running event loop (made on first use in it)."""
        if self._given_async is not None:
            return self._given_async
        loop = asyncio.get_running_loop()
        found = self._per_loop.get(loop)
        if found is None:
            found = self._per_loop[loop] = AsyncKontex(self._base_url, self._api_key)
        return found

    def _remember(self, thread_id: str, namespace: str, last: _Last) -> None:
        key = (thread_id, namespace)
        self._last[key] = last
        self._last.move_to_end(key)
        while len(self._last) > REMEMBERED:
            self._last.popitem(last=False)

    def _forget(self, thread_id: str) -> None:
        for key in [k for k in self._last if k[0] == thread_id]:
            self._last.pop(key, None)

    # -- encoding ------------------------------------------------------------------------------

    def _encode_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        map_messages: bool | None = None,
    ) -> tuple[dict[str, Any], _Last]:
        """The request of a put (a delta over the remembered parent when there is one) and what
        to remember once it is stored (its snapshot id still to fill in)."""
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        namespace = configurable.get("checkpoint_ns", "")
        parent_id = configurable.get("checkpoint_id")
        values = dict(checkpoint["channel_values"])
        rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        message_list = values.get(MESSAGES)
        mapping = self.map_messages if map_messages is None else map_messages
        mapped = mapping and _mappable(message_list)
        files: dict[str, str] = {}
        for name, value in values.items():
            if name == MESSAGES and mapped:
                continue
            files[CHANNEL_FILE + name] = json.dumps(_typed(self.serde, value))
        meta = get_checkpoint_metadata(config, metadata)
        stored = {
            "id": checkpoint["id"],
            "ts": checkpoint["ts"],
            "parent_checkpoint_id": parent_id,
            "channels": sorted(values),
            "messages_mapped": mapped,
            "checkpoint": _readable(self.serde, rest),
            "metadata": _readable(self.serde, meta),
        }
        files[CHECKPOINT_FILE] = json.dumps(stored, sort_keys=True)
        last = self._last.get((thread_id, namespace))
        base = None
        new_messages: list[Any] = list(message_list or []) if mapped else []
        send = files
        if last is not None and parent_id is not None and last.checkpoint_id == parent_id:
            keep: tuple[int | None, int | None] | None = None
            if mapped and last.messages is not None:
                common = _common_prefix(last.messages, new_messages)
                if common < len(last.messages):
                    keep = (0, common)
                new_messages = new_messages[common:]
            elif last.messages:
                keep = (0, 0)  # the channel is a file now: no messages kept
            send = {p: c for p, c in files.items() if last.files.get(p) != c}
            dropped = [p for p in last.files if p not in files]
            base = SnapshotBase(last.snapshot_id, messages=keep, drop_files=dropped)
        messages = _to_messages(new_messages) if mapped else []
        if mapped and messages is None:  # a message JSON cannot hold: the channel as a file
            return self._encode_put(config, checkpoint, metadata, map_messages=False)
        request = {
            "thread_id": thread_id,
            "checkpoint_id": checkpoint["id"],
            "namespace": namespace,
            "parent_id": parent_id,
            "metadata": _plain(dict(meta)),
            "messages": messages,
            "files": [
                {"path": p, "content": c, "token_count": 0}  # state, not context a model reads
                for p, c in send.items()
            ],
            "captured_at": _when(checkpoint.get("ts")),
            "base": base,
            **self._thread_info(thread_id),
        }
        kept = list(message_list or []) if mapped else None
        remembered = _Last(checkpoint["id"], "", kept, files)
        return request, remembered

    def _encode_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> dict[str, Any]:
        configurable = config["configurable"]
        return {
            "thread_id": configurable["thread_id"],
            "checkpoint_id": configurable["checkpoint_id"],
            "namespace": configurable.get("checkpoint_ns", ""),
            "writes": [
                {
                    "task_id": task_id,
                    "idx": WRITES_IDX_MAP.get(channel, idx),
                    "channel": channel,
                    "value": _typed(self.serde, value),
                    "task_path": task_path,
                }
                for idx, (channel, value) in enumerate(writes)
            ],
            # as LangGraph's own savers: special writes (errors, interrupts) replace
            "replace": all(channel in WRITES_IDX_MAP for channel, _ in writes),
            **self._thread_info(configurable["thread_id"]),
        }

    @staticmethod
    def _thread_info(thread_id: str) -> dict[str, Any]:
        """How the thread's session is named when a request makes it."""
        return {
            "thread_name": f"langgraph {thread_id}"[:200],
            "thread_metadata": {"langgraph": {"thread_id": thread_id}},
        }

    # -- decoding ------------------------------------------------------------------------------

    def _decode(
        self, found: CheckpointOut, remember: bool, shared: _Shared | None = None
    ) -> CheckpointTuple:
        bundle = found.bundle
        files = {f["path"]: f["content"] for f in bundle.files}
        stored = json.loads(files[CHECKPOINT_FILE])
        checkpoint: Checkpoint = _untyped(self.serde, stored["checkpoint"])
        values: dict[str, Any] = {}
        messages = None
        for name in stored["channels"]:
            if name == MESSAGES and stored.get("messages_mapped"):
                if shared is not None and found.message_refs is not None:
                    messages = values[name] = shared.messages(found.message_refs)
                else:
                    messages = values[name] = _from_messages(bundle.messages)
            else:
                values[name] = _untyped(self.serde, json.loads(files[CHANNEL_FILE + name]))
        checkpoint["channel_values"] = values
        thread_id, namespace = found.thread_id, found.namespace
        parent = _config(thread_id, namespace, found.parent_id) if found.parent_id else None
        if remember:
            last = _Last(found.checkpoint_id, found.snapshot_id, messages, files)
            self._remember(thread_id, namespace, last)
        return CheckpointTuple(
            config=_config(thread_id, namespace, found.checkpoint_id),
            checkpoint=checkpoint,
            metadata=_untyped(self.serde, stored["metadata"]),
            parent_config=parent,
            pending_writes=[
                (w.task_id, w.channel, _untyped(self.serde, w.value)) for w in found.writes
            ],
        )

    def _read_args(self, config: RunnableConfig) -> dict[str, Any]:
        configurable = config["configurable"]
        return {
            "thread_id": configurable["thread_id"],
            "namespace": configurable.get("checkpoint_ns", ""),
            "checkpoint_id": configurable.get("checkpoint_id") or None,
        }

    @staticmethod
    def _list_args(
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> tuple[dict[str, Any], str | None]:
        configurable = (config or {}).get("configurable", {})
        args = {
            "thread_id": configurable.get("thread_id"),
            "namespace": configurable.get("checkpoint_ns"),
            "before": (before or {}).get("configurable", {}).get("checkpoint_id"),
            "filter": filter or None,
            "limit": min(limit, PAGE) if limit else PAGE,
        }
        return args, configurable.get("checkpoint_id")

    @staticmethod
    def _one_args(args: dict[str, Any], checkpoint_id: str) -> dict[str, Any]:
        return {
            "thread_id": args["thread_id"],
            "namespace": args["namespace"] or "",
            "checkpoint_id": checkpoint_id,
        }

    def _one(self, found: CheckpointOut | None, args: dict[str, Any]) -> list[CheckpointTuple]:
        """``list`` of a config that names its checkpoint: it, if it passes the filters."""
        if found is None or not _matches(found, args["filter"], args["before"]):
            return []
        return [self._decode(found, remember=False)]

    def _page(self, page: Any, left: int | None) -> Iterator[CheckpointTuple]:
        """A page's checkpoints (at most ``left``), each distinct message made once."""
        shared = _Shared(getattr(page, "messages", None) or [])
        for found in page.data if left is None else page.data[:left]:
            yield self._decode(found, remember=False, shared=shared)

    # -- the saver: sync -----------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        args = self._read_args(config)
        found = self.client.checkpoints.get(**args)
        return self._decode(found, remember=True) if found is not None else None

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
        args, only = self._list_args(config, filter, before, limit)
        if only:  # one checkpoint: at most one answer
            yield from self._one(self.client.checkpoints.get(**self._one_args(args, only)), args)
            return
        left, cursor = limit, None
        while True:
            page = self.client.checkpoints.list(**args, cursor=cursor, shared_messages=True)
            yield from self._page(page, left)
            left = None if left is None else left - len(page.data)
            if not page.next_cursor or (left is not None and left <= 0):
                return
            cursor = page.next_cursor

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        request, last = self._encode_put(config, checkpoint, metadata)
        made = self.client.checkpoints.put(**request)
        last.snapshot_id = made.snapshot_id
        self._remember(made.thread_id, made.namespace, last)
        return _config(made.thread_id, made.namespace, made.checkpoint_id)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if writes:
            self.client.checkpoints.put_writes(
                **self._encode_writes(config, writes, task_id, task_path)
            )

    def delete_thread(self, thread_id: str) -> None:
        """Remove the thread: its session with every snapshot, checkpoint and write."""
        self._forget(thread_id)
        self.client.checkpoints.delete_thread(thread_id)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and pending write of a thread into a new thread."""
        self.client.checkpoints.copy_thread(
            source_thread_id,
            target_thread_id,
            **self._thread_info(target_thread_id),
        )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: only each namespace's latest checkpoint stays listed; ``delete``:
        none. Their snapshots stay in the session's history (``delete_thread`` removes it)."""
        for thread_id in thread_ids:
            self._forget(thread_id)
        if thread_ids:
            self.client.checkpoints.prune(builtins.list(thread_ids), strategy=strategy)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Remove the checkpoints (and their writes) whose metadata names one of the runs."""
        if run_ids:
            self._last.clear()
            self.client.checkpoints.delete_runs(builtins.list(run_ids))

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

    # -- the saver: async, on an AsyncKontex of the running loop ---------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        found = await self.aclient.checkpoints.get(**self._read_args(config))
        return self._decode(found, remember=True) if found is not None else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        args, only = self._list_args(config, filter, before, limit)
        client = self.aclient
        if only:
            for item in self._one(await client.checkpoints.get(**self._one_args(args, only)), args):
                yield item
            return
        left, cursor = limit, None
        while True:
            page = await client.checkpoints.list(**args, cursor=cursor, shared_messages=True)
            for item in self._page(page, left):
                yield item
            left = None if left is None else left - len(page.data)
            if not page.next_cursor or (left is not None and left <= 0):
                return
            cursor = page.next_cursor

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        request, last = self._encode_put(config, checkpoint, metadata)
        made = await self.aclient.checkpoints.put(**request)
        last.snapshot_id = made.snapshot_id
        self._remember(made.thread_id, made.namespace, last)
        return _config(made.thread_id, made.namespace, made.checkpoint_id)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if writes:
            request = self._encode_writes(config, writes, task_id, task_path)
            await self.aclient.checkpoints.put_writes(**request)

    async def adelete_thread(self, thread_id: str) -> None:
        self._forget(thread_id)
        await self.aclient.checkpoints.delete_thread(thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.aclient.checkpoints.copy_thread(
            source_thread_id,
            target_thread_id,
            **self._thread_info(target_thread_id),
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread_id in thread_ids:
            self._forget(thread_id)
        if thread_ids:
            await self.aclient.checkpoints.prune(builtins.list(thread_ids), strategy=strategy)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            self._last.clear()
            await self.aclient.checkpoints.delete_runs(builtins.list(run_ids))

    async def aclose(self) -> None:
        """Close the running event loop's HTTP client, when this saver made it."""
        found = self._per_loop.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.aclose()

    def close(self) -> None:
        self.client.close()


def _matches(found: CheckpointOut, wanted: dict[str, Any] | None, before: str | None) -> bool:
    if before is not None and found.checkpoint_id >= before:
        return False
    return not wanted or all(
        k in found.metadata and found.metadata[k] == v for k, v in wanted.items()
    )
