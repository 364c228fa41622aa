"""Bundles stored once: items and chunks in the database, verified on every read.

Each message, tool call, file entry, log event and reasoning text of a bundle is an **item**:
its JSON bytes (messages, tool calls and log events as pydantic writes them: declared fields,
then extra keys in their given order; file entries with sorted keys; reasoning as UTF-8 text),
stored once per session in the database and addressed by
``sha256(kind, bytes)[:16]``. File bodies up to ``LARGE_BODY`` bytes travel inside their file
entry; larger bodies go to the object store under ``<account>/<session>/<sha256>`` (the only
object-store traffic of a snapshot).

A list (messages, tool calls, files, log events) is a sequence of item references cut into
**content-defined chunks**: a chunk ends after an item whose address ends in ``CHUNK_BITS``
zero bits (16 items on average, at most ``CHUNK_MAX``), so cut points depend on the items
alone, not on their positions. Appending rewrites only the last chunk; dropping old messages
(a sliding window) or replacing them by a summary (compaction) leaves the later chunks intact,
and a first chunk that lost its head is stored as a *slice* of its old self. A chunk is
addressed by the hash of its references.

A snapshot's **manifest** (on its sealed row; ``bundle_hash`` = its sha256) names, per list,
the chunk slices ``(chunk, start, end)`` in order, plus the reasoning item and the bundle's
scalars. Reading is one transaction: the row with its manifest, the chunks, the items (three
statements whatever the length); every chunk and item is checked against its address, so
altered bytes raise ``IntegrityError`` and are never served. A snapshot write stores what is
new (new items, new chunks, its manifest) in one transaction: its size follows what changed,
not the length of the history.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
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
    Usage,
    nested_deeper_than,
    sha256_hex,
)
from kontex.ports import BlobStore, ContentRepository, ItemRow

MANIFEST_VERSION = 2
LARGE_BODY = 64 * 1024  # file bodies above this go to the object store
CHUNK_BITS = 4  # a chunk ends after an item whose address ends in 4 zero bits: 16 on average
CHUNK_MAX = 256  # ... or after this many items
LISTS = ("messages", "tool_calls", "files", "log_events")
_KIND = {
    "messages": "message",
    "tool_calls": "tool_call",
    "files": "file",
    "log_events": "log_event",
}
_SLICE = struct.Struct(">16sHH")  # chunk address, start, end


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder()
_PREFIXED = {  # sha256 states after "<kind>\0", copied per item (no concatenation)
    kind: hashlib.sha256(kind.encode() + b"\0")
    for kind in ("message", "tool_call", "file", "log_event", "reasoning")
}


def canonical(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def _loads(data: bytes) -> Any:
    return _DECODER.decode(data.decode("utf-8"))


def item_address(kind: str, data: bytes) -> bytes:
    state = _PREFIXED[kind].copy()
    state.update(data)
    return state.digest()[:16]


def chunk_address(refs: bytes) -> bytes:
    return hashlib.sha256(b"chunk\0" + refs).digest()[:16]


def manifest_hash(manifest: bytes) -> str:
    return sha256_hex(manifest)


# -- planning a bundle (pure) -----------------------------------------------------------------


@dataclass
class _Item:
    address: bytes
    kind: str
    body: bytes
    position: int
    index: dict[str, Any] = field(default_factory=dict)
    tokens: int | None = None  # known without counting (a file's given token_count)
    count: Any = None  # how to count its tokens when it is new: () -> int


@dataclass
class Plan:
    """A bundle cut into items, before any I/O; large file bodies listed apart."""

    lists: dict[str, list[_Item]]
    reasoning: _Item | None
    large_bodies: dict[str, bytes]  # sha256 hex -> bytes, for the object store
    scalars: dict[str, Any]
    given_total: int | None
    needed: tuple[list[bytes], list[bytes]] | None = None  # ``needs``, once asked


def _block_types(content: str | list[dict[str, Any]]) -> set[str]:
    if isinstance(content, str):
        return {"text"}
    return {str(block.get("type")) for block in content}


@lru_cache(maxsize=1024)
def _file_tokens(text: str) -> int:
    return tokens.count_text(text)


def plan(bundle: ContextBundle) -> Plan:
    lists: dict[str, list[_Item]] = {name: [] for name in LISTS}
    for i, message in enumerate(bundle.messages):
        body = message.model_dump_json().encode()
        types = _block_types(message.content)
        lists["messages"].append(
            _Item(
                item_address("message", body),
                "message",
                body,
                i,
                {
                    "role": message.role,
                    "has_text": "text" in types,
                    "has_tool_use": "tool_use" in types,
                    "has_tool_result": "tool_result" in types,
                },
                count=lambda m=message: tokens.count_content(m.content),
            )
        )
    for i, call in enumerate(bundle.tool_calls):
        body = call.model_dump_json().encode()
        lists["tool_calls"].append(
            _Item(
                item_address("tool_call", body),
                "tool_call",
                body,
                i,
                {"tool_name": call.tool, "is_error": call.status == "error", "call_id": call.id},
                tokens=0,
            )
        )
    large: dict[str, bytes] = {}
    for i, f in enumerate(bundle.files):
        entry = f.model_dump(mode="json", exclude={"content"})
        data = f.content.encode("utf-8")
        if len(data) > LARGE_BODY:
            large[str(entry["content_hash"])] = data
        else:
            entry["content"] = f.content
        if entry.get("token_count") is None:  # part of the entry: counted now (cached)
            entry["token_count"] = _file_tokens(f.content)
        body = canonical(entry)
        lists["files"].append(
            _Item(item_address("file", body), "file", body, i, tokens=entry["token_count"])
        )
    for i, event in enumerate(bundle.log_events):
        body = event.model_dump_json().encode()
        lists["log_events"].append(
            _Item(item_address("log_event", body), "log_event", body, i, tokens=0)
        )
    reasoning = None
    if bundle.reasoning is not None:
        text = bundle.reasoning
        body = text.encode("utf-8")
        reasoning = _Item(
            item_address("reasoning", body),
            "reasoning",
            body,
            0,
            count=lambda: tokens.count_text(text),
        )
    scalars: dict[str, Any] = {
        "model": bundle.model,
        "source": bundle.source.value,
        "captured_at": bundle.captured_at.isoformat() if bundle.captured_at else None,
        "usage": bundle.usage,
    }
    if bundle.usage is not None:  # only then: manifests without usage keep their bytes
        scalars["usage"] = bundle.usage.model_dump(mode="json", exclude_none=True)
    return Plan(lists, reasoning, large, scalars, bundle.token_total)


def put_large_bodies(blobs: BlobStore, account_id: str, session_id: str, plan_: Plan) -> int:
    """Write the plan's large file bodies (idempotent); bytes written for the first time."""
    written = 0
    for digest, data in plan_.large_bodies.items():
        if blobs.put(f"{account_id}/{session_id}/{digest}", data):
            written += len(data)
    return written


# -- chunking ---------------------------------------------------------------------------------


def cut(refs: Sequence[bytes]) -> list[list[bytes]]:
    """Content-defined chunks of a list of item addresses."""
    chunks: list[list[bytes]] = []
    current: list[bytes] = []
    mask = (1 << CHUNK_BITS) - 1
    for ref in refs:
        current.append(ref)
        if ref[-1] & mask == 0 or len(current) >= CHUNK_MAX:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


Slice = tuple[bytes, int, int]


def _manifest(header: dict[str, Any], lists: dict[str, list[Slice]]) -> bytes:
    """Canonical JSON of the scalars (with each list's slice count), a newline, then the
    slices of every list packed as 20 bytes each (address, start, end)."""
    header = {**header, "v": MANIFEST_VERSION, "lists": {n: len(lists[n]) for n in LISTS}}
    packed = b"".join(_SLICE.pack(*x) for n in LISTS for x in lists[n])
    return canonical(header) + b"\n" + packed


def _parse(manifest: bytes) -> tuple[dict[str, Any], dict[str, list[Slice]]]:
    head, sep, packed = manifest.partition(b"\n")
    try:
        header: dict[str, Any] = json.loads(head)
        counts = [int(header["lists"][n]) for n in LISTS]
    except (ValueError, KeyError, TypeError) as error:
        raise IntegrityError("a snapshot manifest is malformed") from error
    if not sep or header.get("v") != MANIFEST_VERSION or len(packed) != 20 * sum(counts):
        raise IntegrityError("a snapshot manifest is malformed")
    slices = [_SLICE.unpack_from(packed, i) for i in range(0, len(packed), _SLICE.size)]
    lists: dict[str, list[Slice]] = {}
    at = 0
    for name, count in zip(LISTS, counts, strict=True):
        lists[name] = slices[at : at + count]
        at += count
    return header, lists


def _refs(data: bytes) -> list[bytes]:
    return [data[i : i + 16] for i in range(0, len(data), 16)]


class _Lister:
    """Turns lists of item addresses into chunk slices, reusing what the session has."""

    def __init__(self, stored: dict[bytes, bytes], parent_chunks: list[bytes]) -> None:
        self.stored = stored  # chunk address -> refs, of the chunks looked up
        self.new_chunks: dict[bytes, bytes] = {}
        # where each item address ends a run in one of the parent's chunks
        self.where: dict[bytes, list[tuple[bytes, int]]] = {}
        for address in parent_chunks:
            refs = _refs(stored.get(address, b""))
            for j, ref in enumerate(refs):
                self.where.setdefault(ref, []).append((address, j))

    def _chunk(self, refs: list[bytes]) -> Slice:
        data = b"".join(refs)
        address = chunk_address(data)
        if address not in self.stored:
            self.new_chunks[address] = data
        return (address, 0, len(refs))

    def slices(self, refs: Sequence[bytes]) -> list[Slice]:
        out: list[Slice] = []
        for chunk in cut(refs):
            address = chunk_address(b"".join(chunk))
            if address in self.stored or address in self.new_chunks:
                out.append((address, 0, len(chunk)))
                continue
            # the longest tail of this chunk that ends a run of a parent chunk: a first chunk
            # that lost its head (sliding window) or got a summary in front (compaction)
            best: tuple[int, bytes, int] = (0, b"", 0)
            for parent, j in self.where.get(chunk[-1], []):
                prefs = _refs(self.stored[parent])
                k = 0
                while k < len(chunk) and k <= j and chunk[-1 - k] == prefs[j - k]:
                    k += 1
                if k > best[0]:
                    best = (k, parent, j)
            k, parent, j = best
            if k == len(chunk):
                out.append((parent, j + 1 - k, j + 1))
            elif k >= 2:
                out.append(self._chunk(chunk[: len(chunk) - k]))
                out.append((parent, j + 1 - k, j + 1))
            else:
                out.append(self._chunk(chunk))
        return out


# -- writing ----------------------------------------------------------------------------------


@dataclass
class Written:
    manifest: bytes
    bundle_hash: str
    token_total: int
    stored_bytes: int  # bytes of items, chunks and manifest this write stored first


def _parent_chunks(manifest: bytes | None) -> list[bytes]:
    if manifest is None:
        return []
    try:
        _, lists = _parse(manifest)
    except IntegrityError:
        return []  # only a hint: a damaged parent is refused when it is read
    return [s[0] for name in LISTS for s in lists[name]]


_HINTS: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()  # (session, chunk) -> refs
_HINTS_MAX = 8192


def _remember(session_id: str, chunks: dict[bytes, bytes]) -> None:
    """Chunks this process wrote or read, kept as hints for slicing the next write: a chunk is
    addressed by its refs, so a remembered one is exactly the stored one (reads never use it)."""
    for address, refs in chunks.items():
        _HINTS[(session_id, address)] = refs
        _HINTS.move_to_end((session_id, address))
    while len(_HINTS) > _HINTS_MAX:
        _HINTS.popitem(last=False)


def needs(plan_: Plan) -> tuple[list[bytes], list[bytes]]:
    """The item and chunk addresses a write of ``plan_`` looks up (worked out once a plan:
    a batch asks before its transaction, ``prepare``, and its write asks again)."""
    if plan_.needed is not None:
        return plan_.needed
    addresses = {item.address for items in plan_.lists.values() for item in items}
    if plan_.reasoning is not None:
        addresses.add(plan_.reasoning.address)
    wanted = {
        chunk_address(b"".join(c))
        for items in plan_.lists.values()
        for c in cut([i.address for i in items])
    }
    plan_.needed = (list(addresses), list(wanted))
    return plan_.needed


def write(
    content: ContentRepository,
    session_id: str,
    plan_: Plan,
    at: datetime,
    *,
    parent_manifest: bytes | None = None,
    large_bytes: int = 0,
    looked_up: tuple[dict[bytes, int], dict[bytes, bytes]] | None = None,
) -> Written:
    """Store a planned bundle in ``content``'s unit of work: new items, new chunks; its manifest.

    ``parent_manifest`` (the task's previous snapshot) is where slices of old chunks are found;
    ``looked_up`` is the answer of ``content.lookup`` for ``needs(plan_)`` when the caller has
    it, and gets this write's new items and chunks (a batch passes one per session to each of
    its writes in turn, ``services/snapshots.seal_all``).
    """
    addresses, wanted = needs(plan_)
    if looked_up is None:
        looked_up = content.lookup(session_id, addresses, wanted)
    known, found = looked_up
    unique = {item.address: item for items in plan_.lists.values() for item in items}
    if plan_.reasoning is not None:
        unique[plan_.reasoning.address] = plan_.reasoning
    list_refs = {name: [i.address for i in items] for name, items in plan_.lists.items()}
    parents = _parent_chunks(parent_manifest)
    missing = [p for p in parents if p not in found and (session_id, p) not in _HINTS]
    if missing:  # the parent's chunks, read only when not remembered from an earlier write
        found.update(content.chunks(session_id, missing))
    for p in parents:
        if p not in found and (session_id, p) in _HINTS:
            found[p] = _HINTS[(session_id, p)]
    counted = known  # the caller's: a batch's next write of the session sees these items
    new_rows: list[ItemRow] = []
    stored = large_bytes
    for address, item in unique.items():
        if address in counted:
            continue
        n = _tokens(item)
        counted[address] = n
        new_rows.append(ItemRow(address, item.kind, item.body, n, item.position, item.index))
        stored += len(item.body)
    lister = _Lister(found, [p for p in parents if p in found])
    lists = {name: lister.slices(refs) for name, refs in list_refs.items()}
    found.update(lister.new_chunks)  # ... and these chunks

    def total(name: str) -> int:
        return sum(counted[i.address] for i in plan_.lists[name])

    counted_total = total("messages") + total("files")
    if plan_.reasoning is not None:
        counted_total += counted[plan_.reasoning.address]
    token_total = plan_.given_total if plan_.given_total is not None else counted_total
    manifest = _manifest(
        {
            "reasoning": plan_.reasoning.address.hex() if plan_.reasoning else None,
            "token_total": token_total,
            **plan_.scalars,
        },
        lists,
    )
    return _store(content, session_id, at, new_rows, lister, manifest, token_total, stored)


# Tokens of an item by its address (an address names one content, so one count): the same
# system prompt in every trace of a batch, or in every session, is counted once per process.
_TOKENS: dict[bytes, int] = {}
_TOKENS_MAX = 65536


def _tokens(item: _Item) -> int:
    """The item's tokens: given, remembered by its address, else counted (and remembered)."""
    if item.tokens is not None:
        return item.tokens
    if item.count is None:
        return 0
    n = _TOKENS.get(item.address)
    if n is None:
        n = int(item.count())
        if len(_TOKENS) >= _TOKENS_MAX:
            _TOKENS.clear()  # a bound, not an LRU: counting again is only slower
        _TOKENS[item.address] = n
    return n


def count(plan_: Plan) -> None:
    """Count the tokens of the plan's items now (each distinct content once per process, by
    its address), so that ``write`` counts nothing: a batch counts before its write
    transaction, which then holds the database's writer lock (SQLite) and the task rows for
    its lookups and inserts alone. An item the session stores already is counted too (its
    count is the same); a process counts it once."""
    items = [item for items in plan_.lists.values() for item in items]
    if plan_.reasoning is not None:
        items.append(plan_.reasoning)
    for item in items:
        if item.tokens is None and item.count is not None:
            item.tokens = _tokens(item)


class Pending:
    """A batch's content writes (``write`` into it): reads go to ``content`` at once, the new
    items and chunks are kept and written by ``flush`` together, one statement per table."""

    def __init__(self, content: ContentRepository) -> None:
        self.content = content
        self._items: list[tuple[str, datetime, Sequence[ItemRow]]] = []
        self._chunks: list[tuple[str, dict[bytes, bytes]]] = []

    def lookup(
        self, session_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
        return self.content.lookup(session_id, items, chunks)

    def known_items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, int]:
        return self.content.known_items(session_id, addresses)

    def items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]:
        return self.content.items(session_id, addresses)

    def chunks(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]:
        return self.content.chunks(session_id, addresses)

    def add_items(self, session_id: str, at: datetime, rows: Sequence[ItemRow]) -> None:
        if rows:
            self._items.append((session_id, at, rows))

    def add_chunks(self, session_id: str, chunks: dict[bytes, bytes]) -> None:
        if chunks:
            self._chunks.append((session_id, chunks))

    def flush(self) -> None:
        """Write what was kept (its unit joins consecutive rows of a statement into one)."""
        items, self._items = self._items, []
        chunks, self._chunks = self._chunks, []
        for session_id, at, rows in items:
            self.content.add_items(session_id, at, rows)
        for session_id, found in chunks:
            self.content.add_chunks(session_id, found)


def _store(
    content: ContentRepository,
    session_id: str,
    at: datetime,
    new_rows: list[ItemRow],
    lister: _Lister,
    manifest: bytes,
    token_total: int,
    stored: int,
) -> Written:
    """Queue a write's new items and chunks in its unit, remember them as verified, and
    account for what it stored first."""
    content.add_items(session_id, at, new_rows)
    content.add_chunks(session_id, lister.new_chunks)
    _remember(session_id, lister.new_chunks)
    _keep(session_id, {r.address: r.body for r in new_rows})
    stored += sum(len(d) for d in lister.new_chunks.values()) + len(manifest)
    return Written(manifest, manifest_hash(manifest), token_total, stored)


def manifest_model(manifest: bytes) -> str | None:
    """The model a manifest names (a delta write may inherit its base's)."""
    model = _parse(manifest)[0].get("model")
    return str(model) if model is not None else None


def usage_of_manifest(manifest: bytes) -> dict[str, Any] | None:
    """The ``usage`` scalar of a manifest (the snapshot of one captured LLM call), if any."""
    found: dict[str, Any] | None = _parse(manifest)[0].get("usage")
    return found


def restamp(manifest: bytes, **scalars: Any) -> bytes:
    """The same content under other scalars (a rollback's source and time): nothing new.
    A rollback is not an LLM call: the source's ``usage`` is not carried over."""
    header, lists = _parse(manifest)
    header.pop("usage", None)
    return _manifest({**header, **scalars}, lists)


# -- content as stored, carried between sessions (an archive, services/archive.py) -------------

_ITEM_MODELS: dict[str, Any] = {"message": Message, "tool_call": ToolCall, "log_event": LogEvent}
ITEM_MAX_DEPTH = 128  # what any writer stores (a proxied body is refused past 128 levels)


def _check_item(kind: str, body: bytes) -> dict[str, Any] | None:
    """``body`` reads as an item of ``kind`` (what a read will make of it); a file entry is
    answered, to find its body. Raises ``IntegrityError``."""
    try:
        if kind == "reasoning":
            body.decode("utf-8")
            return None
        value = _loads(body)
        if nested_deeper_than(value, ITEM_MAX_DEPTH):
            raise ValueError(f"nested more than {ITEM_MAX_DEPTH} levels")
        if kind == "file":
            if not isinstance(value, dict) or not isinstance(value.get("path"), str):
                raise ValueError("a file entry needs a path")
            if not isinstance(value.get("content_hash"), str):
                raise ValueError("a file entry needs its content_hash")
            if "content" in value:
                ContextFile.model_validate(value)
            return value
        _ITEM_MODELS[kind].model_validate(value)
    except (ValueError, TypeError, RecursionError) as error:
        raise IntegrityError(f"a {kind} item is not a valid {kind}: {error}"[:300]) from None
    return None


def _check_header(header: dict[str, Any]) -> None:
    try:
        SnapshotSource(header.get("source") or "api")
        if header.get("captured_at") is not None:
            datetime.fromisoformat(header["captured_at"])
        if header.get("usage"):
            Usage.model_validate(header["usage"])
        if header.get("model") is not None and not isinstance(header["model"], str):
            raise ValueError("model is not a string")
        if not isinstance(header.get("token_total") or 0, int):
            raise ValueError("token_total is not an integer")
        if header.get("reasoning") is not None:
            bytes.fromhex(header["reasoning"])
    except (ValueError, TypeError) as error:
        raise IntegrityError(f"a snapshot manifest is malformed: {error}"[:300]) from None


def check_stored(
    manifests: Sequence[tuple[bytes, str]],
    items: dict[bytes, tuple[str, bytes]],
    chunks: dict[bytes, bytes],
    bodies: dict[str, bytes],
) -> None:
    """Content as stored, checked as a read checks it, before anything of it is written: each
    item against its address (and readable as its kind), each chunk against the hash of its
    references, each large body against its sha256, each manifest against its bundle hash
    (``manifests``: (manifest, bundle_hash) pairs), and every chunk slice, item and file body
    a manifest names present. Raises ``IntegrityError`` naming the first failure."""
    files: dict[bytes, dict[str, Any]] = {}
    for address, (kind, body) in items.items():
        if kind not in _PREFIXED or item_address(kind, body) != address:
            raise IntegrityError(f"item {address.hex()} does not match its address")
        entry = _check_item(kind, body)
        if entry is not None:
            files[address] = entry
    for address, refs in chunks.items():
        if len(refs) % 16 or chunk_address(refs) != address:
            raise IntegrityError(f"chunk {address.hex()} does not match its address")
    for digest, data in bodies.items():
        if sha256_hex(data) != digest:
            raise IntegrityError(f"file body {digest} does not match its sha256")
    for manifest, bundle_hash in manifests:
        try:
            header, slices = parse_manifest(manifest, bundle_hash)
        except RecursionError:
            raise IntegrityError(f"manifest {bundle_hash} is malformed") from None
        _check_header(header)
        for name, group in slices.items():
            for address, start, end in group:
                chunk = chunks.get(address)
                if chunk is None:
                    raise IntegrityError(f"manifest {bundle_hash} names a missing chunk")
                part = _refs(chunk)[start:end]
                if len(part) != end - start:
                    raise IntegrityError(f"manifest {bundle_hash} names a chunk past its end")
                for ref in part:
                    found = items.get(ref)
                    if found is None or found[0] != _KIND[name]:
                        raise IntegrityError(
                            f"manifest {bundle_hash} names a missing {_KIND[name]} {ref.hex()}"
                        )
                    entry = files.get(ref)
                    if entry and "content" not in entry and entry["content_hash"] not in bodies:
                        raise IntegrityError(f"the body of file {entry['path']!r} is missing")
        if header.get("reasoning"):
            found = items.get(bytes.fromhex(header["reasoning"]))
            if found is None or found[0] != "reasoning":
                raise IntegrityError(f"manifest {bundle_hash} names a missing reasoning item")


def stored_bodies(
    blobs: BlobStore, account_id: str, session_id: str, items: Sequence[ItemRow]
) -> dict[str, bytes]:
    """The object-store bodies of the file entries among ``items`` (those stored without their
    content), each checked against its sha256."""
    bodies: dict[str, bytes] = {}
    for row in items:
        if row.kind != "file":
            continue
        entry = _loads(row.body)
        digest = str(entry.get("content_hash"))
        if "content" in entry or digest in bodies:
            continue
        try:
            data = blobs.get(f"{account_id}/{session_id}/{digest}")
        except Exception as error:  # a missing object is damage, never a 500
            raise IntegrityError("a stored file body is missing") from error
        if sha256_hex(data) != digest:
            raise IntegrityError("a stored file body does not match its hash")
        bodies[digest] = data
    return bodies


def add_stored(
    content: ContentRepository,
    session_id: str,
    items: Sequence[tuple[ItemRow, datetime]],
    chunks: dict[bytes, bytes],
) -> None:
    """Queue items and chunks checked by ``check_stored`` in ``content``'s unit, as they were
    stored (tokens, first position and first-seen time kept), and keep them as verified."""
    by_time: dict[datetime, list[ItemRow]] = {}
    for row, seen in items:
        by_time.setdefault(seen, []).append(row)
    for seen, rows in by_time.items():
        content.add_items(session_id, seen, rows)
    content.add_chunks(session_id, chunks)
    _remember(session_id, chunks)
    _keep(session_id, {row.address: row.body for row, _ in items})


# -- a delta write: a base snapshot's lists, and what is new ------------------------------------


def _verified_chunks(chunks: dict[bytes, bytes], wanted: set[bytes]) -> dict[bytes, bytes]:
    for address in wanted:
        data = chunks.get(address)
        if data is None or chunk_address(data) != address:
            raise IntegrityError("a stored list chunk is missing or altered")
    return chunks


def _list_refs(
    slices: dict[str, list[Slice]], chunks: dict[bytes, bytes]
) -> dict[str, list[bytes]]:
    refs: dict[str, list[bytes]] = {}
    for name, group in slices.items():
        out: list[bytes] = []
        for address, start, end in group:
            part = _refs(chunks[address])[start:end]
            if len(part) != end - start:
                raise IntegrityError("a stored list chunk is shorter than its reference")
            out.extend(part)
        refs[name] = out
    return refs


def write_delta(
    content: ContentRepository,
    session_id: str,
    plan_: Plan,
    at: datetime,
    *,
    base_manifest: bytes,
    base_hash: str,
    keep: tuple[int | None, int | None] | None,
    drop_files: Sequence[str] = (),
    large_bytes: int = 0,
) -> Written:
    """Store the snapshot made of a base snapshot's content and ``plan_``, what is new: the
    base's messages ``keep`` (a slice) with the plan's appended; its files without
    ``drop_files``, each of the plan's replacing the base's of its path (in place) or appended;
    its tool calls and log events with the plan's appended; its reasoning and model unless the
    plan gives them.

    It reads back exactly as a full write of the composed bundle (the same items, in the same
    lists, under the same scalars), but only the plan's items are hashed and counted: the
    base's lists are taken as references (their chunks, remembered or read), the token total
    is the base's minus what was left out plus what is new.
    """
    header, slices = parse_manifest(base_manifest, base_hash)
    wanted = {s[0] for group in slices.values() for s in group}
    chunks = {a: _HINTS[(session_id, a)] for a in wanted if (session_id, a) in _HINTS}
    missing = [a for a in wanted if a not in chunks]
    if missing:
        read_ = content.chunks(session_id, missing)
        chunks.update(_verified_chunks(read_, set(missing)))
        _remember(session_id, read_)
    base = _list_refs(slices, chunks)
    new = {name: [i.address for i in items] for name, items in plan_.lists.items()}
    left_out: list[bytes] = []  # items of the base whose tokens leave the total

    messages = base["messages"]
    kept = messages[slice(*keep)] if keep is not None else messages
    if len(kept) != len(messages):
        start, stop, _ = slice(*keep).indices(len(messages))  # type: ignore[misc]
        left_out += messages[:start] + messages[max(start, stop) :]

    files = list(base["files"])
    removed_tokens = 0
    if plan_.lists["files"] or drop_files:
        bodies = {a: _ITEMS[(session_id, a)] for a in files if (session_id, a) in _ITEMS}
        absent = [a for a in files if a not in bodies]
        if absent:  # read from storage, verified and kept
            loaded = content.items(session_id, absent)
            for ref in absent:
                data = loaded.get(ref)
                if data is None or item_address("file", data) != ref:
                    raise IntegrityError("a stored file is missing or altered")
            _keep(session_id, loaded)
            bodies.update(loaded)
        by_path: dict[str, int] = {}
        for position, ref in enumerate(files):
            entry = _loads(bodies[ref])
            by_path[entry["path"]] = position
            if entry["path"] in drop_files:
                removed_tokens += int(entry.get("token_count") or 0)
        replaced: dict[int, bytes] = {}
        appended: list[bytes] = []
        for item in plan_.lists["files"]:
            path = _loads(item.body)["path"]
            at_ = by_path.get(path)
            if at_ is not None and path not in drop_files:
                if at_ not in replaced:
                    removed_tokens += int(_loads(bodies[files[at_]]).get("token_count") or 0)
                replaced[at_] = item.address
            else:
                appended.append(item.address)
        dropped = {by_path[p] for p in drop_files if p in by_path}
        files = [replaced.get(i, ref) for i, ref in enumerate(files) if i not in dropped]
        files += appended
        new["files"] = []
    else:
        files += new.pop("files")

    reasoning = header.get("reasoning")
    if plan_.reasoning is not None:
        if reasoning:
            left_out.append(bytes.fromhex(reasoning))
        reasoning = plan_.reasoning.address.hex()

    list_refs = {
        "messages": kept + new["messages"],
        "tool_calls": base["tool_calls"] + new["tool_calls"],
        "files": files,
        "log_events": base["log_events"] + new["log_events"],
    }
    unique = {item.address: item for items in plan_.lists.values() for item in items}
    if plan_.reasoning is not None:
        unique[plan_.reasoning.address] = plan_.reasoning
    wanted_chunks = [chunk_address(b"".join(c)) for refs in list_refs.values() for c in cut(refs)]
    counted, found_chunks = content.lookup(session_id, list(unique), wanted_chunks)
    new_rows: list[ItemRow] = []
    stored = large_bytes
    offset = {"messages": len(kept), "tool_calls": len(base["tool_calls"])}
    for name, items in plan_.lists.items():
        for item in items:
            if item.address in counted:
                continue
            n = _tokens(item)
            counted[item.address] = n
            position = item.position + offset.get(name, 0)
            new_rows.append(ItemRow(item.address, item.kind, item.body, n, position, item.index))
            stored += len(item.body)
    if plan_.reasoning is not None and plan_.reasoning.address not in counted:
        r = plan_.reasoning
        counted[r.address] = n = _tokens(r)
        new_rows.append(ItemRow(r.address, r.kind, r.body, n, 0, r.index))
        stored += len(r.body)

    if plan_.given_total is not None:
        token_total = plan_.given_total
    else:
        gone = content.known_items(session_id, list(set(left_out))) if left_out else {}
        token_total = int(header.get("token_total") or 0) - removed_tokens
        token_total -= sum(gone.get(ref, 0) for ref in left_out)
        token_total += sum(counted[i.address] for i in plan_.lists["messages"])
        token_total += sum(counted[i.address] for i in plan_.lists["files"])
        if plan_.reasoning is not None:
            token_total += counted[plan_.reasoning.address]
        token_total = max(token_total, 0)

    lister = _Lister({**chunks, **found_chunks}, list(chunks))
    lists = {name: lister.slices(refs) for name, refs in list_refs.items()}
    scalars = dict(plan_.scalars)
    if scalars.get("model") is None:
        scalars["model"] = header.get("model")
    manifest = _manifest({"reasoning": reasoning, "token_total": token_total, **scalars}, lists)
    return _store(content, session_id, at, new_rows, lister, manifest, token_total, stored)


# -- reading ----------------------------------------------------------------------------------


def parse_manifest(
    manifest: bytes, bundle_hash: str
) -> tuple[dict[str, Any], dict[str, list[Slice]]]:
    if manifest_hash(manifest) != bundle_hash:
        raise IntegrityError("a snapshot manifest does not match its hash")
    return _parse(manifest)


# Content never changes once written, so a read serves items and chunks from memory, keyed by
# session and address: verified once, when loaded from storage (or computed, when written).
# A row altered in storage after that is not re-read by this process: it goes on serving the
# verified bytes, never the altered ones, and a process that loads the row refuses it
# (docs/design.md, "Threat model"). ``forget()`` empties both caches.
_ITEMS: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
_ITEMS_MAX_BYTES = 64 * 1024 * 1024
_items_bytes = 0


def _keep(session_id: str, bodies: dict[bytes, bytes]) -> None:
    global _items_bytes
    for address, data in bodies.items():
        key = (session_id, address)
        if key not in _ITEMS:
            _items_bytes += len(data)
        _ITEMS[key] = data
        _ITEMS.move_to_end(key)
    while _items_bytes > _ITEMS_MAX_BYTES and _ITEMS:
        _items_bytes -= len(_ITEMS.popitem(last=False)[1])


def forget() -> None:
    """Empty the caches of verified content (as a new process starts)."""
    global _items_bytes
    _ITEMS.clear()
    _HINTS.clear()
    _TOKENS.clear()
    _MESSAGES.clear()
    _items_bytes = 0


# Messages decoded from verified bytes, by address (an address names one content): a read skips
# the JSON decode and the model. Messages are shared between bundles read: treat them as
# read-only.
_MESSAGES: OrderedDict[bytes, tuple[bytes, Message]] = OrderedDict()
_MESSAGES_MAX = 16384


def read(
    content: ContentRepository,
    blobs: BlobStore,
    account_id: str,
    session_id: str,
    manifest: bytes,
    bundle_hash: str,
) -> ContextBundle:
    """The bundle a manifest names, every chunk and item checked against its address."""
    parsed, slices = parse_manifest(manifest, bundle_hash)
    wanted = {s[0] for group in slices.values() for s in group}
    chunks = {a: _HINTS[(session_id, a)] for a in wanted if (session_id, a) in _HINTS}
    missing = [a for a in wanted if a not in chunks]
    if missing:  # read from storage and verified once; remembered chunks were verified then
        loaded = _verified_chunks(content.chunks(session_id, missing), set(missing))
        _remember(session_id, loaded)
        chunks.update(loaded)
    refs = _list_refs(slices, chunks)
    reasoning_ref = bytes.fromhex(parsed["reasoning"]) if parsed.get("reasoning") else None
    kinds: dict[bytes, str] = {r: _KIND[name] for name, group in refs.items() for r in group}
    if reasoning_ref is not None:
        kinds[reasoning_ref] = "reasoning"
    bodies = {a: _ITEMS[(session_id, a)] for a in kinds if (session_id, a) in _ITEMS}
    absent = [a for a in kinds if a not in bodies]
    if absent:
        loaded_items = content.items(session_id, absent)
        for address in absent:
            data = loaded_items.get(address)
            if data is None or item_address(kinds[address], data) != address:
                raise IntegrityError(f"a stored {kinds[address]} is missing or altered")
        _keep(session_id, loaded_items)
        bodies.update(loaded_items)

    def body(kind: str, address: bytes) -> bytes:
        return bodies[address]  # verified: when loaded from storage, or when written

    def objects(name: str) -> list[dict[str, Any]]:
        return [_loads(body(_KIND[name], r)) for r in refs[name]]

    files = []
    for entry in objects("files"):
        if "content" not in entry:
            digest = entry["content_hash"]
            try:
                data = blobs.get(f"{account_id}/{session_id}/{digest}")
            except Exception as error:  # a missing object is damage, never a 500
                raise IntegrityError("a stored file body is missing") from error
            if sha256_hex(data) != digest:
                raise IntegrityError("a stored file body does not match its hash")
            entry["content"] = data.decode("utf-8")
        files.append(ContextFile.model_construct(**entry))
    reasoning = body("reasoning", reasoning_ref).decode("utf-8") if reasoning_ref else None
    captured = parsed.get("captured_at")
    messages = []
    for r in refs["messages"]:
        seen = _MESSAGES.get(r)
        if seen is not None:  # an address names one content: decoded once
            messages.append(seen[1])
            continue
        message = Message.model_construct(**_loads(body("message", r)))
        _MESSAGES[r] = (bodies[r], message)
        if len(_MESSAGES) > _MESSAGES_MAX:
            _MESSAGES.popitem(last=False)
        messages.append(message)
    bundle = ContextBundle.model_construct(
        messages=messages,
        tool_calls=[ToolCall.model_validate(t) for t in objects("tool_calls")],
        files=files,
        reasoning=reasoning,
        log_events=[LogEvent.model_validate(e) for e in objects("log_events")],
        model=parsed.get("model"),
        token_total=parsed.get("token_total"),
        source=SnapshotSource(parsed.get("source") or "api"),
        captured_at=datetime.fromisoformat(captured) if captured else None,
        usage=Usage.model_validate(parsed["usage"]) if parsed.get("usage") else None,
    )
    bundle._message_json = [bodies[r] for r in refs["messages"]]
    return bundle
