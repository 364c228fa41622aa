"""Bundles stored once: content-addressed items, shared prefixes, verified reads.

Each message, tool call, file entry, file body and log event is serialised to canonical JSON
and stored once per session in the blob store under ``<account>/<session>/<sha256>``. A list
is a chain of nodes in the database, each ``sha256(parent + item)``, so every snapshot that
repeats the history so far refers to the same nodes and adds only what is new. A snapshot's
manifest (also a blob) names the head of each list. Reading walks the chains back and checks
every object against its address: altered bytes raise ``IntegrityError`` and are never served.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kontex import tokens
from kontex.domain.errors import IntegrityError
from kontex.domain.models import (
    ContextBundle,
    ContextFile,
    LogEvent,
    Message,
    SnapshotSource,
    ToolCall,
    sha256_hex,
)
from kontex.ports import ChainNode
from kontex.services.deps import Deps

MANIFEST_VERSION = 1


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _node_hash(parent: str | None, item: str) -> str:
    """128 bits of sha256(parent + item): node ids only need to be unique within a session."""
    return hashlib.sha256(f"{parent or ''}:{item}".encode()).hexdigest()[:32]


@dataclass
class WrittenBundle:
    manifest_hash: str
    token_total: int
    nodes: list[ChainNode] = field(default_factory=list)
    stored_bytes: int = 0  # bytes of the blobs this bundle wrote first


def _block_types(content: str | list[dict[str, Any]]) -> set[str]:
    if isinstance(content, str):
        return {"text"}
    return {str(block.get("type")) for block in content}


class _Writer:
    """Plans the chains of one bundle and writes the objects that are new to the session."""

    def __init__(self, deps: Deps, account_id: str, session_id: str) -> None:
        self.deps = deps
        self.session_id = session_id
        self.prefix = f"{account_id}/{session_id}/"
        self.nodes: list[ChainNode] = []
        self.stored_bytes = 0

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        if self.deps.blobs.put(self.prefix + digest, data):
            self.stored_bytes += len(data)
        return digest

    def chain(
        self,
        kind: str,
        items: Sequence[bytes],
        count: Callable[[int], int],
        index: Callable[[int], dict[str, Any]],
    ) -> tuple[str | None, int]:
        """Head hash and cumulative tokens of a list; writes only the new suffix."""
        if not items:
            return None, 0
        item_hashes = [sha256_hex(b) for b in items]
        node_hashes: list[str] = []
        parent: str | None = None
        for item in item_hashes:
            parent = _node_hash(parent, item)
            node_hashes.append(parent)
        known = self.deps.store.known_nodes(self.session_id, node_hashes)
        # A node's hash covers its whole prefix, so the last known node marks the shared prefix.
        shared = max((i for i, h in enumerate(node_hashes) if h in known), default=-1)
        cumulative = known[node_hashes[shared]] if shared >= 0 else 0
        for i in range(shared + 1, len(items)):
            tokens_here = count(i)
            self.put(items[i])
            cumulative += tokens_here
            self.nodes.append(
                ChainNode(
                    node_hash=node_hashes[i],
                    parent_hash=node_hashes[i - 1] if i else None,
                    item_hash=item_hashes[i],
                    position=i,
                    tokens=cumulative,
                    kind=kind,
                    item_tokens=tokens_here,
                    **index(i),
                )
            )
        return node_hashes[-1], cumulative


def _zero(_: int) -> int:
    return 0


def _nothing(_: int) -> dict[str, Any]:
    return {}


def write_bundle(
    deps: Deps, account_id: str, session_id: str, bundle: ContextBundle
) -> WrittenBundle:
    """Store ``bundle`` for a session; returns its manifest address and token total.

    Objects go to the blob store first (idempotent); the returned chain nodes must then be
    inserted with the snapshot row in one transaction, so nothing is ever half-written.
    """
    writer = _Writer(deps, account_id, session_id)

    def message_index(i: int) -> dict[str, Any]:
        message = bundle.messages[i]
        types = _block_types(message.content)
        return {
            "role": message.role,
            "has_text": "text" in types,
            "has_tool_use": "tool_use" in types,
            "has_tool_result": "tool_result" in types,
        }

    messages = [canonical(m.model_dump(mode="json")) for m in bundle.messages]
    message_heads = writer.chain(
        "message",
        messages,
        lambda i: tokens.count_content(bundle.messages[i].content),
        message_index,
    )
    tool_calls = [canonical(t.model_dump(mode="json")) for t in bundle.tool_calls]
    tool_heads = writer.chain(
        "tool_call",
        tool_calls,
        _zero,
        lambda i: {
            "tool_name": bundle.tool_calls[i].tool,
            "is_error": bundle.tool_calls[i].status == "error",
        },
    )

    entries: list[dict[str, Any]] = []
    for f in bundle.files:
        entry = f.model_dump(mode="json", exclude={"content"})
        if entry["token_count"] is None:
            entry["token_count"] = tokens.count_text(f.content)
        entries.append(entry)

    def file_index(i: int) -> dict[str, Any]:
        writer.put(bundle.files[i].content.encode("utf-8"))  # the file's body
        return {}

    file_heads = writer.chain(
        "file",
        [canonical(e) for e in entries],
        lambda i: int(entries[i]["token_count"]),
        file_index,
    )
    events = [canonical(e.model_dump(mode="json")) for e in bundle.log_events]
    event_heads = writer.chain("log_event", events, _zero, _nothing)

    reasoning_hash = None
    reasoning_tokens = 0
    if bundle.reasoning is not None:
        reasoning_tokens = tokens.count_text(bundle.reasoning)
        reasoning_hash = writer.put(bundle.reasoning.encode("utf-8"))

    counted = message_heads[1] + file_heads[1] + reasoning_tokens
    token_total = bundle.token_total if bundle.token_total is not None else counted
    manifest = {
        "version": MANIFEST_VERSION,
        "messages": message_heads[0],
        "tool_calls": tool_heads[0],
        "files": file_heads[0],
        "log_events": event_heads[0],
        "reasoning": reasoning_hash,
        "model": bundle.model,
        "source": bundle.source.value,
        "captured_at": bundle.captured_at.isoformat() if bundle.captured_at else None,
        "token_total": token_total,
    }
    manifest_hash = writer.put(canonical(manifest))
    return WrittenBundle(manifest_hash, token_total, writer.nodes, writer.stored_bytes)


def read_objects(deps: Deps, account_id: str, session_id: str, digests: Sequence[str]) -> list[Any]:
    """JSON objects of a session by address, verified."""
    return [json.loads(b) for b in _fetch(deps, f"{account_id}/{session_id}/", digests)]


def _verified(keys_and_hashes: Sequence[tuple[str, str]], blobs: Sequence[bytes]) -> list[bytes]:
    for (key, digest), data in zip(keys_and_hashes, blobs, strict=True):
        if sha256_hex(data) != digest:
            raise IntegrityError(f"stored object {key} does not match its hash")
    return list(blobs)


def _fetch(deps: Deps, prefix: str, digests: Sequence[str]) -> list[bytes]:
    keyed = [(prefix + d, d) for d in digests]
    return _verified(keyed, deps.blobs.get_many([k for k, _ in keyed]))


def read_manifest(
    deps: Deps, account_id: str, session_id: str, manifest_hash: str
) -> dict[str, Any]:
    prefix = f"{account_id}/{session_id}/"
    return json.loads(_fetch(deps, prefix, [manifest_hash])[0])


def read_bundle(deps: Deps, account_id: str, session_id: str, manifest_hash: str) -> ContextBundle:
    prefix = f"{account_id}/{session_id}/"
    manifest = read_manifest(deps, account_id, session_id, manifest_hash)

    def items(name: str) -> list[Any]:
        head = manifest.get(name)
        if head is None:
            return []
        return [
            json.loads(b) for b in _fetch(deps, prefix, deps.store.read_chain(session_id, head))
        ]

    entries = items("files")
    bodies = _fetch(deps, prefix, [e["content_hash"] for e in entries])
    files = [
        ContextFile(**entry, content=body.decode("utf-8"))
        for entry, body in zip(entries, bodies, strict=True)
    ]
    reasoning = None
    if manifest.get("reasoning"):
        reasoning = _fetch(deps, prefix, [manifest["reasoning"]])[0].decode("utf-8")
    captured = manifest.get("captured_at")
    return ContextBundle(
        messages=[Message(**m) for m in items("messages")],
        tool_calls=[ToolCall(**t) for t in items("tool_calls")],
        files=files,
        reasoning=reasoning,
        log_events=[LogEvent(**e) for e in items("log_events")],
        model=manifest.get("model"),
        token_total=manifest.get("token_total"),
        source=SnapshotSource(manifest.get("source") or "api"),
        captured_at=datetime.fromisoformat(captured) if captured else None,
    )
