"""Search: each distinct piece of an account's content embedded once, and the hybrid query over it.

**What is searchable** (``held``): what a person or an agent would search for: a snapshot's
label, the text of its messages (text, thinking, tool uses with their inputs, tool results), its
tool calls with their inputs and outputs, its reasoning, its files (path and the start of the
content) and its log events. Never serialised framework state, base64 or binary: a file the
writer marks as state (a token count of 0) or a framework keeps its state in (``STATE_PATHS``)
is left out; from every text, encoded data is taken out (``clean``: serialised envelopes such as
LangGraph's ``{"type": "msgpack", "data": "<base64>"}``, base64 strings and runs, binary); a
piece with nothing left is not searched.

**Embedding** (``embed_snapshot``, run by the embed worker on ``snapshot.created`` and
``snapshot.enriched``): each piece is cut into chunks the embedder takes whole, and each chunk
is a point whose id is a UUID of the account, the source and the chunk's sha256: the same
content held by any number of snapshots of an account is one point, embedded once. The index
is asked which of the snapshot's points it has and only the others are embedded: a snapshot of
a sliding window embeds its one new message, a redelivered event embeds nothing. The points
are compared with the parent's (the previous snapshot of the task), and where points enter and
leave the task's chain is recorded in the store (``search_changes``) with the
``snapshot.embedded`` event, in one transaction.

**Searching** (``search``): the query is embedded (dense) and tokenised (sparse); the index
fuses both rankings by reciprocal rank within the caller's account (and the session's or task's
points when asked); each hit point maps back to the snapshots holding it (each run of a task's
chain from where the point entered to where it left, newest first). Each snapshot is answered
once, with its best chunk as the snippet, round by round: each point's newest holder by score
(equal scores newest first), then each one's second newest, and so on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from kontex.domain.errors import InvalidInput, NotFound
from kontex.domain.models import ContextBundle, Message, Snapshot
from kontex.ports import (
    Embedder,
    HeldRange,
    IndexFilter,
    IndexHit,
    IndexQuery,
    Point,
    SearchChange,
)
from kontex.services import lexical, outbox, snapshots
from kontex.services.deps import Deps

SOURCES = ("label", "message", "tool_call", "reasoning", "file", "log_event")
Source = Literal["label", "message", "tool_call", "reasoning", "file", "log_event"]
Mode = Literal["hybrid", "dense", "sparse"]
MAX_LIMIT = 50
MAX_QUERY_CHARS = 1000
FILE_CHARS = 4000  # of a file's content, beyond its path
JSON_CHARS = 1_000_000  # a JSON file up to this size is walked whole for what to take out
MAX_CHUNKS_PER_PIECE = 12  # a 100 KB tool output is not worth 150 points
SNIPPET_CHARS = 1000
EMBED_SLICE = 64  # chunks embedded and written together
BATCH_TEXTS = 32  # at most this many new texts of a queue batch go to the model in one call
NAMESPACE = uuid.UUID("3b0c7a52-55a8-4f0e-9d4e-6b7f5d1f2a90")
# where frameworks keep their serialised state as files (KontexSaver: a checkpoint's channels
# and its own fields); the writer also marks them with a token count of 0
STATE_PATHS = ("langgraph/",)


class Snippet(BaseModel):
    text: str
    role: str | None = None
    position: int
    source: Source


class SearchHit(BaseModel):
    snapshot_id: str
    session_id: str
    task_id: str
    label: str
    score: float
    created_at: datetime
    snippet: Snippet


class SearchResults(BaseModel):
    results: list[SearchHit]


# -- what is searchable -------------------------------------------------------------------------

_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")
_PADDED = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)")
_ODD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
_UPPER, _LOWER, _DIGIT = re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9]")
# a serialised value: {"type": "msgpack", "data": "<base64>"} (LangGraph's serde), an image's
# {"type": "base64", "media_type": "image/png", "data": ...}
_ENVELOPE_KEYS = frozenset({"type", "data", "media_type", "mime_type", "encoding"})
_SERIAL_TYPES = frozenset(
    {"msgpack", "pickle", "json", "bytes", "bytearray", "base64", "ext", "null", "empty"}
)
_LEFTOVER_KEYS = frozenset({"type", "media_type", "mime_type", "encoding"})


def is_binary(text: str) -> bool:
    """Bytes read as text: a NUL, or more than one character in 20 a control character or the
    replacement character."""
    if "\x00" in text:
        return True
    return len(_ODD.findall(text)) * 20 > len(text)


def _classes(c: str) -> int:
    return 0 if c.isupper() else 1 if c.islower() else 2 if c.isdigit() else 3


def is_blob(text: str) -> bool:
    """Encoded data, not words: padded base64, or 32 characters or more of the base64 alphabet
    mixing upper case, lower case and digits as random bytes do (the class changes at 45% of
    the characters or more, 62% in random base64; ``getUserProfileSettingsForAccount2`` changes
    at 39%, a hex digest has no upper case)."""
    if _PADDED.fullmatch(text):
        return True
    if len(text) < 32 or not _B64.fullmatch(text):
        return False
    if not (_UPPER.search(text) and _LOWER.search(text) and _DIGIT.search(text)):
        return False
    changes = sum(1 for a, b in zip(text, text[1:], strict=False) if _classes(a) != _classes(b))
    return changes * 20 >= len(text) * 9


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _envelope(value: dict[str, Any]) -> bool:
    data = value.get("data")
    if not isinstance(data, str) or not set(value) <= _ENVELOPE_KEYS:
        return False
    if data and not _B64.fullmatch(data):
        return False
    return str(value.get("type", "")).lower() in _SERIAL_TYPES or is_blob(data)


def _clean_text(text: str) -> str | None:
    if is_binary(text):
        return None
    stripped = text.strip()
    if is_blob(stripped):
        return None
    if stripped[:1] in ("{", "["):  # JSON in a string (a tool result, a state file): walked
        try:
            parsed = json.loads(stripped)
        except ValueError:
            pass
        else:
            kept = clean(parsed)
            return None if _empty(kept) else _json(kept)
    return _B64_RUN.sub(lambda m: "" if is_blob(m.group()) else m.group(), text)


def clean(value: Any) -> Any:
    """``value`` (text or JSON) without the encoded data in it; None when nothing is left."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        if _envelope(value):
            return None
        kept: dict[str, Any] = {}
        dropped = False
        for key, item in value.items():
            out = clean(item)
            if _empty(out):
                dropped = dropped or not _empty(item)
            else:
                kept[key] = out
        if not kept or (dropped and set(kept) <= _LEFTOVER_KEYS):
            return None  # what is left of an image block or an envelope: {"type": "image"}
        return kept
    if isinstance(value, list):
        items = [out for item in value if not _empty(out := clean(item))]
        return items or None
    return value


def text_of(value: Any) -> str:
    """The searchable text of ``value``: cleaned, JSON when it is not text."""
    kept = clean(value)
    if _empty(kept):
        return ""
    return kept if isinstance(kept, str) else _json(kept)


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def message_text(message: Message) -> str:
    """Its text, thinking, tool uses and tool results (Anthropic's blocks), and the calls of an
    OpenAI-shaped ``tool_calls`` (name and arguments); images and documents are data."""
    parts: list[str] = []
    for call in (message.model_extra or {}).get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            name = str(function.get("name") or "")
            parts.append(f"{name} {text_of(function.get('arguments'))}".strip())
    if isinstance(message.content, str):
        return "\n".join(p for p in (text_of(message.content), *parts) if p)
    for block in message.content:
        kind = block.get("type")
        if kind == "text":
            parts.append(text_of(str(block.get("text", ""))))
        elif kind in ("thinking", "redacted_thinking"):  # redacted: encrypted, nothing to read
            parts.append(text_of(str(block.get("thinking", ""))))
        elif kind == "tool_use":
            parts.append(f"{block.get('name', '')} {text_of(block.get('input'))}".strip())
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, list):  # its text blocks; images and documents are data
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            parts.append(text_of(content))
        else:
            parts.append(text_of(block))
    return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Piece:
    source: str
    role: str | None
    position: int
    text: str


def pieces(snapshot: Snapshot, bundle: ContextBundle) -> Iterator[Piece]:
    """Everything searchable the snapshot holds (see the module's docstring)."""
    yield Piece("label", None, 0, text_of(snapshot.label))
    for i, m in enumerate(bundle.messages):
        yield Piece("message", m.role, i, _cached(_key("m", m.model_dump_json()), message_text, m))
    for i, c in enumerate(bundle.tool_calls):
        yield Piece("tool_call", "tool", i, _cached(_key("c", c.model_dump_json()), _call_text, c))
    if bundle.reasoning:
        key = _key("r", bundle.reasoning)
        yield Piece("reasoning", "assistant", 0, _cached(key, text_of, bundle.reasoning))
    for i, f in enumerate(bundle.files):
        # a file given a token count of 0 is state, not context a model reads
        if f.token_count == 0 or f.path.startswith(STATE_PATHS):
            continue
        key = _key("f", f"{f.path}\0{f.content_hash or f.content}")
        yield Piece("file", None, i, _cached(key, _file_text, f.path, f.content))
    for i, e in enumerate(bundle.log_events):
        yield Piece("log_event", None, i, _cached(_key("l", e.model_dump_json()), _log_text, e))


def _call_text(call: Any) -> str:
    text = f"{call.tool}\ninput: {text_of(call.input)}"
    if call.output is not None:
        text += f"\noutput: {text_of(call.output)}"
    return text


def _file_text(path: str, content: str) -> str:
    """Path and the start of the content; nothing when the content is all encoded data. A
    JSON document is walked whole (up to ``JSON_CHARS``), other text from its start."""
    whole = content.lstrip()[:1] in ("{", "[") and len(content) <= JSON_CHARS
    body = text_of(content if whole else content[: FILE_CHARS * 4])
    return f"{path}\n{body[:FILE_CHARS]}" if body.strip() else ""


def _log_text(event: Any) -> str:
    head = " ".join(p for p in (event.type, event.message) if p)
    data = text_of(event.data) if event.data is not None else ""
    return f"{head}\n{data[:FILE_CHARS]}".strip()


# The searchable text of the last items seen, by a digest of the item: a snapshot is compared
# with its parent, which holds most of what it holds. At most CACHE_CHARS characters of text.
_CACHE: OrderedDict[bytes, str] = OrderedDict()
_CACHED_CHARS = 0
_CACHE_LOCK = threading.Lock()  # the embed worker's threads, reindex
CACHE_CHARS = 4_000_000


def _key(kind: str, item: str) -> bytes:
    return hashlib.blake2b(f"{kind}\0{item}".encode(), digest_size=16).digest()


def _cached(key: bytes, make: Callable[..., str], *args: Any) -> str:
    """``make(*args)``, remembered by ``key`` (a digest of the item)."""
    global _CACHED_CHARS
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    made = make(*args)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = made
            _CACHED_CHARS += len(made)
        while _CACHED_CHARS > CACHE_CHARS and _CACHE:
            _CACHED_CHARS -= len(_CACHE.popitem(last=False)[1])
    return made


def chunks(text: str, max_chars: int) -> list[str]:
    """``text`` cut into pieces of at most ``max_chars``, at whitespace where there is some,
    each overlapping the previous by about a tenth."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text]
    out: list[str] = []
    start = 0
    overlap = max_chars // 10
    while start < len(text) and len(out) < MAX_CHUNKS_PER_PIECE:
        end = min(start + max_chars, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + max_chars // 2, end)
            cut = max(cut, text.rfind("\n", start + max_chars // 2, end))
            end = cut if cut > start else end
        out.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
        space = text.find(" ", start, end)  # start the next chunk on a word
        start = space + 1 if 0 <= space < start + overlap else start
    return [c for c in out if c]


def point_id(account_id: str, source: str, text: str) -> str:
    """The point of ``text`` (one chunk) as ``source`` in the account, wherever it is held."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return str(uuid.uuid5(NAMESPACE, f"{account_id}/{source}/{digest}"))


@dataclass(frozen=True)
class Held:
    """One point a snapshot holds, where it first holds it."""

    point_id: str
    piece: Piece
    text: str  # the chunk


# The points of the last snapshots planned, by what they are made of (the account, the snapshot,
# its content address, which a revision changes, its label and the chunk size): a sliding
# window's snapshot is planned beside its parent, planned as the snapshot before it
_HELD: OrderedDict[tuple[str, str, str, str, int], dict[str, Held]] = OrderedDict()
HELD_SNAPSHOTS = 64


def held(
    account_id: str, snapshot: Snapshot, bundle: ContextBundle, max_chars: int
) -> dict[str, Held]:
    """The snapshot's points, each once (its first place), in the order it holds them."""
    key = (account_id, snapshot.id, snapshot.bundle_hash, snapshot.label, max_chars)
    with _CACHE_LOCK:
        known = _HELD.get(key)
        if known is not None:
            _HELD.move_to_end(key)
            return dict(known)
    found: dict[str, Held] = {}
    for piece in pieces(snapshot, bundle):
        if not piece.text.strip():
            continue
        for text in chunks(piece.text, max_chars):
            pid = point_id(account_id, piece.source, text)
            if pid not in found:
                found[pid] = Held(pid, piece, text)
    with _CACHE_LOCK:
        _HELD[key] = found
        while len(_HELD) > HELD_SNAPSHOTS:
            _HELD.popitem(last=False)
    return dict(found)


# -- the dense model's input -------------------------------------------------------------------

# Random identifiers (UUIDs, hex digests, prefixed ids such as toolu_01A09q90qw90lq917835lq9)
# mean nothing to a dense model and cost it the most tokens (a checkpoint's label, "checkpoint
# <uuid> after <uuid>", is 59 WordPiece tokens, 2 without them): the model reads the text
# without them; the lexical vector keeps them, so they are still found exactly.
_IDENTIFIERS = re.compile(
    r"\b(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?=[0-9a-f]*[0-9])[0-9a-f]{16,}"
    r"|[A-Za-z]{2,12}_(?=[0-9A-Za-z]*[0-9])[0-9A-Za-z]{16,})\b"
)
# per embedder (its instance: a test's counting wrapper has its own), the last dense vectors
_VECTORS: weakref.WeakKeyDictionary[Any, OrderedDict[str, list[float]]] = (
    weakref.WeakKeyDictionary()
)
_VECTORS_SIZE = 256  # dense texts repeat (every checkpoint label reads "checkpoint after")


def dense_text(text: str) -> str:
    """What the dense model reads of ``text``: the text without random identifiers."""
    return _IDENTIFIERS.sub("", text).strip()


def _dense(embedder: Embedder, texts: Sequence[str]) -> list[list[float]]:
    """The dense vectors of ``texts`` (without their identifiers), each distinct text embedded
    once, the last few remembered."""
    wanted = [dense_text(t) for t in texts]
    found: dict[str, list[float]] = {}
    with _CACHE_LOCK:
        cache = _VECTORS.setdefault(embedder, OrderedDict())
        for text in dict.fromkeys(wanted):
            known = cache.get(text)
            if known is not None:
                cache.move_to_end(text)
                found[text] = known
    missing = [t for t in dict.fromkeys(wanted) if t not in found]
    if missing:
        vectors = embedder.embed_documents(missing)
        with _CACHE_LOCK:
            for text, vector in zip(missing, vectors, strict=True):
                found[text] = cache[text] = vector
                if len(cache) > _VECTORS_SIZE:
                    cache.popitem(last=False)
    return [found[t] for t in wanted]


# -- embedding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Embedded:
    snapshot_id: str
    points: int  # the snapshot's points
    written: int  # of which this call embedded and wrote (0 when the account had them all)


def _read_with_parent(
    deps: Deps, account_id: str, snapshot_id: str
) -> tuple[Snapshot, ContextBundle, tuple[Snapshot, ContextBundle] | None] | None:
    """The snapshot and its parent (the previous snapshot of its task), as they stand, in one
    transaction; None when the snapshot is gone (its session was purged)."""
    with deps.store.unit(write=False) as uow:
        try:
            snapshot, _, bundle = snapshots.read_in(deps, uow, account_id, snapshot_id, None)
        except NotFound:
            return None
        parent = None
        if snapshot.parent_snapshot_id is not None:
            try:
                p, _, pb = snapshots.read_in(
                    deps, uow, account_id, snapshot.parent_snapshot_id, None
                )
            except NotFound:
                pass
            else:
                parent = (p, pb) if p.task_id == snapshot.task_id else None
    return snapshot, bundle, parent


@dataclass(frozen=True)
class _Plan:
    """What embedding a snapshot takes: its points, its parent's, those the index lacks."""

    snapshot: Snapshot
    mine: dict[str, Held]
    theirs: dict[str, Held]
    todo: list[Held]


def _plan(deps: Deps, account_id: str, snapshot_id: str) -> _Plan | None:
    found = _read_with_parent(deps, account_id, snapshot_id)
    if found is None:
        return None
    snapshot, bundle, parent = found
    embedder, index = deps.search_ports()
    mine = held(account_id, snapshot, bundle, embedder.max_chars)
    theirs = held(account_id, *parent, embedder.max_chars) if parent else {}
    # every point of the snapshot is asked, not only the new ones: whatever the parent's
    # embedding missed (failed for good, or not yet run) is embedded here
    have = index.existing(list(mine))
    return _Plan(snapshot, mine, theirs, [h for pid, h in mine.items() if pid not in have])


def _upsert(deps: Deps, todo: Sequence[tuple[str, Held]]) -> None:
    """Embed and write ``todo``'s points (each with its account; the dense vectors of a batch
    come from the cache), in slices, each written before the next is embedded: a snapshot too
    big for one invocation still progresses, and its retry skips what the last one wrote."""
    embedder, index = deps.search_ports()
    for start in range(0, len(todo), EMBED_SLICE):
        part = todo[start : start + EMBED_SLICE]
        vectors = _dense(embedder, [h.text for _, h in part])
        index.upsert(
            [
                Point(
                    h.point_id,
                    vector,
                    lexical.document_vector(h.text),
                    _payload(account_id, h, embedder.name),
                )
                for (account_id, h), vector in zip(part, vectors, strict=True)
            ]
        )


def _record(
    deps: Deps, uow: Any, plan: _Plan, *, announce: bool, follow: bool
) -> tuple[Embedded, str | None]:
    """In ``uow``: where the plan's snapshot's points enter and leave its task's chain, its
    ``snapshot.embedded`` (``announce``), and its child when ``follow`` (to compare again)."""
    snapshot, account_id = plan.snapshot, plan.snapshot.account_id
    mine, theirs = plan.mine, plan.theirs
    changes = [
        _change(snapshot, pid, True, h.piece) for pid, h in mine.items() if pid not in theirs
    ]
    changes += [_change(snapshot, pid, False, None) for pid in theirs if pid not in mine]
    result = Embedded(snapshot.id, len(mine), len(plan.todo))
    uow.search_changes.replace(snapshot.id, changes)
    if announce:
        data = {"snapshot_id": snapshot.id, "points": result.points, "written": result.written}
        uow.announce(
            outbox.event("snapshot.embedded", account_id, snapshot.session_id, data, deps.clock())
        )
    child = (
        uow.search_changes.child_of(account_id, snapshot.task_id, snapshot.id) if follow else None
    )
    return result, child


def _write(deps: Deps, plan: _Plan, *, announce: bool, follow: bool) -> Embedded:
    """Embed and write the plan's points, then record where the snapshot's points enter and
    leave its task's chain."""
    _upsert(deps, [(plan.snapshot.account_id, h) for h in plan.todo])
    with deps.store.unit() as uow:
        result, child = _record(deps, uow, plan, announce=announce, follow=follow)
    if child is not None:
        embed_snapshot(deps, plan.snapshot.account_id, child, announce=False)
    return result


def _write_together(deps: Deps, plans: Sequence[_Plan]) -> list[Embedded]:
    """Several plans written as ``_write`` writes each (announced, not followed), but their
    points (each once) in one upsert and their records in one unit of work: one commit and one
    publication of their ``snapshot.embedded`` events, not one each. All or nothing: on an
    error the caller writes each alone."""
    # a point id is the account's own (point_id): each new point once
    todo = {h.point_id: (p.snapshot.account_id, h) for p in plans for h in p.todo}
    _upsert(deps, list(todo.values()))
    written: set[str] = set()
    results: list[Embedded] = []
    with deps.store.unit() as uow:
        for plan in plans:
            mine = [h for h in plan.todo if h.point_id not in written]  # counted once
            written.update(h.point_id for h in mine)
            results.append(
                _record(deps, uow, replace(plan, todo=mine), announce=True, follow=False)[0]
            )
    return results


def embed_snapshot(
    deps: Deps,
    account_id: str,
    snapshot_id: str,
    *,
    announce: bool = True,
    follow: bool = False,
) -> Embedded | None:
    """Embed what of the snapshot the account's index lacks and record where its points enter
    and leave its task's chain; None when it is gone (its session was purged). ``follow`` (an
    enriched snapshot, whose content changed after its child was compared with it): its child
    is compared again."""
    plan = _plan(deps, account_id, snapshot_id)
    if plan is None:
        return None
    return _write(deps, plan, announce=announce, follow=follow)


def _change(snapshot: Snapshot, pid: str, entered: bool, piece: Piece | None) -> SearchChange:
    return SearchChange(
        point_id=pid,
        snapshot_id=snapshot.id,
        account_id=snapshot.account_id,
        session_id=snapshot.session_id,
        task_id=snapshot.task_id,
        created_at=snapshot.created_at,
        entered=entered,
        role=piece.role if piece else None,
        position=piece.position if piece else 0,
    )


def _payload(account_id: str, h: Held, model: str) -> dict[str, Any]:
    """What a hit answers with besides the snapshots holding it (those come from the store)."""
    return {
        "account_id": account_id,
        "source": h.piece.source,
        "text": h.text[:SNIPPET_CHARS],
        "model": model,
    }


def forget_session(deps: Deps, account_id: str, session_id: str) -> None:
    """A purged session's points go with it, but for those another session holds too; then its
    changes. In this order, so a retry after a failure finds the same points to delete."""
    with deps.store.unit(write=False) as uow:
        orphaned = uow.search_changes.orphaned_by(account_id, session_id)
    deps.search_ports()[1].delete(account_id, orphaned)
    with deps.store.unit() as uow:
        uow.search_changes.forget(account_id, session_id)


EMBEDS = ("snapshot.created", "snapshot.enriched")


def _embeds(body: dict[str, Any]) -> tuple[str, str] | None:
    """(account, snapshot) of an event that embeds a snapshot, else None."""
    account_id = body.get("account_id")
    data = body.get("data") or {}
    # contract 1 names it snapshot_id; the snapshot's own dump (before it) says id
    snapshot_id = data.get("snapshot_id") or data.get("id")
    if body.get("type") in EMBEDS and account_id and isinstance(snapshot_id, str):
        return account_id, snapshot_id
    return None


def handle_event(deps: Deps, body: dict[str, Any]) -> str:
    """One event of the fan-out (contract: ``{id, type, account_id, session_id, data}``);
    returns what was done: ``embedded``, ``gone``, ``forgotten`` or ``ignored``."""
    outcome = handle_events(deps, [body])[0]
    if isinstance(outcome, Exception):
        raise outcome
    return "embedded" if isinstance(outcome, Embedded) else outcome


def handle_events(deps: Deps, bodies: Sequence[dict[str, Any]]) -> list[Embedded | str | Exception]:
    """A batch of events, in order: what was done with each (an embedded snapshot's
    ``Embedded``, else as ``handle_event`` says), or the error it failed with (the others go
    on). A batch of a few new texts (a sliding window's snapshots bring one message each) is
    embedded first, each distinct text once, then written together: the points in one upsert,
    the snapshots' records and ``snapshot.embedded`` events in one unit of work. Otherwise,
    or when that fails, each snapshot is written as ``embed_snapshot`` writes it (its vectors
    from the cache), and fails alone."""
    outcomes: list[str | Exception | _Plan | None] = []
    for body in bodies:
        embeds = _embeds(body)
        try:
            outcomes.append(
                _plan(deps, *embeds) if embeds is not None else _other_event(deps, body)
            )
        except Exception as error:  # this event fails; the others go on
            outcomes.append(error)
    plans = [o for o in outcomes if isinstance(o, _Plan)]
    # each new point once: the plans are made before any is written, so a snapshot's plan
    # also lists what the earlier snapshots of the batch bring (a window's snapshot n holds the
    # messages of n-1, n-2... of the batch: 65 texts for 11 distinct in a batch of ten)
    texts = list(
        {h.point_id: h.text for p in plans if len(p.todo) <= EMBED_SLICE for h in p.todo}.values()
    )
    # a batch of a few new texts (a sliding window's snapshots: one message each) in one call;
    # a batch of large snapshots (an OTLP trace's prompts) is embedded snapshot by snapshot,
    # as each already fills the model's batches (and a larger call holds more activations)
    if len(plans) > 1 and 0 < len(texts) <= BATCH_TEXTS:
        with contextlib.suppress(Exception):  # the model is down: each snapshot fails below
            _dense(deps.search_ports()[0], texts)  # into the cache, in one call
            # then their points in one upsert and their records in one commit (a commit and a
            # publication of its snapshot.embedded were 20% of a snapshot's time); an enriched
            # snapshot's child is compared again after it: such a batch goes snapshot by one
            if not any(b.get("type") == "snapshot.enriched" for b in bodies):
                together = iter(_write_together(deps, plans))
                return [
                    next(together) if isinstance(o, _Plan) else "gone" if o is None else o
                    for o in outcomes
                ]
    written: set[str] = set()  # points an earlier snapshot of the batch wrote
    done: list[Embedded | str | Exception] = []
    for body, outcome in zip(bodies, outcomes, strict=True):
        if isinstance(outcome, _Plan):
            todo = [h for h in outcome.todo if h.point_id not in written]
            try:
                follow = body.get("type") == "snapshot.enriched"
                embedded = _write(deps, replace(outcome, todo=todo), announce=True, follow=follow)
            except Exception as error:
                done.append(error)
                continue
            written.update(h.point_id for h in todo)
            done.append(embedded)
        else:
            done.append("gone" if outcome is None else outcome)
    return done


def _other_event(deps: Deps, body: dict[str, Any]) -> str:
    data = body.get("data") or {}
    account_id = body.get("account_id")
    if body.get("type") == "session.purged" and account_id:
        session_id = data.get("session_id") or body.get("session_id")
        if session_id:
            forget_session(deps, account_id, session_id)
            return "forgotten"
    return "ignored"


# -- searching ----------------------------------------------------------------------------------


def search(
    deps: Deps,
    account_id: str,
    q: str,
    *,
    session_id: str | None = None,
    task_id: str | None = None,
    source: str | None = None,
    limit: int = 10,
    mode: Mode = "hybrid",
) -> SearchResults:
    """The ``limit`` snapshots of the account best matching ``q``, each with its best chunk."""
    if not isinstance(q, str) or not q.strip():
        raise InvalidInput("q must not be empty")
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidInput(f"q must be at most {MAX_QUERY_CHARS} characters")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    if source is not None and source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}")
    embedder, index = deps.search_ports()
    scope: frozenset[str] | None = None
    if session_id is not None or task_id is not None:
        with deps.store.unit(write=False) as uow:
            scope = frozenset(uow.search_changes.points_of(account_id, session_id, task_id))
        if not scope:
            return SearchResults(results=[])
    dense = embedder.embed_query(dense_text(q) or q) if mode != "sparse" else None
    sparse = lexical.query_vector(q) if mode != "dense" else None
    where = IndexFilter(account_id, source=source, point_ids=scope)
    hits = index.query(IndexQuery(where, limit * 5, dense, sparse, mode))
    # the filter already did; never trust one layer
    hits = [h for h in hits if h.payload.get("account_id") == account_id]
    if not hits:
        return SearchResults(results=[])
    per = max(1, -(-limit // len(hits)))  # holders asked of each point: enough for one round
    while True:
        held = _holders(deps, account_id, hits, per, session_id, task_id)
        results = _ranked(hits, held, limit)
        more = any(len(found) == per for found in held.values())
        if len(results) == limit or per >= limit or not more:
            return SearchResults(results=results)
        per = min(limit, per * 4)


def _ranked(
    hits: Sequence[IndexHit],
    held: dict[str, list[tuple[Snapshot, SearchChange]]],
    limit: int,
) -> list[SearchHit]:
    """Each snapshot once, with its best chunk (its best scoring hit; the first on a tie),
    ranked round by round: first each hit's newest holder, by score (equal scores newest
    first), then each hit's second newest, and so on: the best matches first, each once, then
    more snapshots holding them."""
    best: dict[str, tuple[IndexHit, int, Snapshot, SearchChange]] = {}
    for hit in hits:  # best score first
        for n, (snapshot, change) in enumerate(held.get(hit.id, ())):
            found = best.get(snapshot.id)
            if found is None or hit.score > found[0].score:
                best[snapshot.id] = (hit, n, snapshot, change)
    ranked = sorted(
        best.values(),
        key=lambda b: (b[1], -b[0].score, -b[2].created_at.timestamp(), b[2].id),
    )
    return [
        SearchHit(
            snapshot_id=snapshot.id,
            session_id=snapshot.session_id,
            task_id=snapshot.task_id,
            label=snapshot.label,
            score=round(hit.score, 6),
            created_at=snapshot.created_at,
            snippet=Snippet(
                text=hit.payload["text"],
                role=change.role,
                position=change.position,
                source=hit.payload["source"],
            ),
        )
        for hit, _, snapshot, change in ranked[:limit]
    ]


def _holders(
    deps: Deps,
    account_id: str,
    hits: Sequence[IndexHit],
    per: int,
    session_id: str | None,
    task_id: str | None,
) -> dict[str, list[tuple[Snapshot, SearchChange]]]:
    """Per hit point, up to ``per`` snapshots holding it, newest first, each with the change
    that brought the point into its run (its role and position there)."""
    with deps.store.unit(write=False) as uow:
        changes = uow.search_changes.changes(account_id, [h.id for h in hits], session_id, task_id)
        runs = [(pid, c, r) for pid, found in runs_of(changes, per).items() for c, r in found]
        found = uow.search_changes.snapshots_in(account_id, [r for _, _, r in runs], per)
    held: dict[str, list[tuple[Snapshot, SearchChange]]] = {}
    for (pid, change, _), snaps in zip(runs, found, strict=True):
        held.setdefault(pid, []).extend((s, change) for s in snaps)
    for pid, pairs in held.items():
        pairs.sort(key=lambda t: (t[0].created_at, t[0].id), reverse=True)
        held[pid] = pairs[:per]
    return held


def runs_of(
    changes: Sequence[SearchChange], per: int
) -> dict[str, list[tuple[SearchChange, HeldRange]]]:
    """Per point, the runs of snapshots holding it: in each task's chain, from a snapshot it
    entered up to the next it left (or the head), with the change that began the run; at most
    ``per`` of them per point, the newest (still open first, then those that ended last)."""
    runs: dict[str, list[tuple[SearchChange, HeldRange]]] = {}
    opened: SearchChange | None = None
    chain: tuple[str, str, str] | None = None
    for c in changes:  # by point, session, task, then along the chain
        if (c.point_id, c.session_id, c.task_id) != chain:
            if opened is not None:
                runs.setdefault(opened.point_id, []).append((opened, _range(opened, None)))
            chain, opened = (c.point_id, c.session_id, c.task_id), None
        if c.entered and opened is None:
            opened = c
        elif not c.entered and opened is not None:
            runs.setdefault(c.point_id, []).append((opened, _range(opened, c)))
            opened = None
    if opened is not None:
        runs.setdefault(opened.point_id, []).append((opened, _range(opened, None)))
    for pid, found in runs.items():
        found.sort(
            key=lambda r: (r[1].end is None, r[1].end or r[1].start, r[1].start), reverse=True
        )
        runs[pid] = found[:per]
    return runs


def _range(entered: SearchChange, left: SearchChange | None) -> HeldRange:
    return HeldRange(
        entered.session_id,
        entered.task_id,
        (entered.created_at, entered.snapshot_id),
        (left.created_at, left.snapshot_id) if left is not None else None,
    )


# -- backfill ---------------------------------------------------------------------------------


def existing_snapshots(
    deps: Deps, account_id: str | None = None, session_id: str | None = None
) -> Iterator[Snapshot]:
    """Every stored snapshot (of one account, one session), oldest first in each session."""
    every = deps.clock() + timedelta(days=1)  # "idle since tomorrow": every session
    with deps.store.unit(write=False) as uow:
        rows = uow.sessions.inactive(every, account_id, 10**9)
    for row in rows:
        if session_id is not None and row["session_id"] != session_id:
            continue
        after: tuple[str, str] | None = None
        while True:
            with deps.store.unit(write=False) as uow:
                page = uow.snapshots.page(row["account_id"], row["session_id"], 500, after)
            yield from page
            if len(page) < 500:
                break
            after = (page[-1].created_at.isoformat(), page[-1].id)


def count_snapshots(
    deps: Deps, account_id: str | None = None, session_id: str | None = None
) -> int:
    every = deps.clock() + timedelta(days=1)
    with deps.store.unit(write=False) as uow:
        rows = uow.sessions.inactive(every, account_id, 10**9)
    return sum(r["snapshots"] for r in rows if session_id is None or r["session_id"] == session_id)


def reindex(
    deps: Deps,
    *,
    account_id: str | None = None,
    session_id: str | None = None,
    progress: Callable[[Embedded | None], None] | None = None,
) -> tuple[int, int]:
    """Embed every existing snapshot again (what is there already is skipped); returns the
    snapshots seen and the points written."""
    seen = written = 0
    for snapshot in existing_snapshots(deps, account_id, session_id):
        done = embed_snapshot(deps, snapshot.account_id, snapshot.id, announce=False)
        seen += 1
        written += done.written if done else 0
        if progress is not None:
            progress(done)
    return seen, written


def reindex_events(
    deps: Deps, account_id: str | None = None, session_id: str | None = None
) -> Iterator[str]:
    """The same backfill as queue messages for the embed worker (the migrate function on AWS):
    one ``snapshot.created``-shaped body per snapshot."""
    for s in existing_snapshots(deps, account_id, session_id):
        yield json.dumps(
            {
                "id": f"reindex_{s.id}",
                "type": "snapshot.created",
                "account_id": s.account_id,
                "session_id": s.session_id,
                "data": {"snapshot_id": s.id},
            }
        )
