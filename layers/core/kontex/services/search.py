"""Search: embedding what is new in each snapshot, and the hybrid query over it.

**Embedding** (``embed_snapshot``, run by the embed worker on ``snapshot.created`` and
``snapshot.enriched``): the snapshot's label, and what its bundle has that its parent's has not
(messages, tool calls with their inputs and outputs, reasoning, file paths with the start of their
content), each cut into chunks the embedder takes whole. A chunk is one point: its id a UUID
derived from the account, the snapshot, where the text sits (source, position, chunk) and the
text's hash, so a redelivered event finds its points there and embeds and writes nothing again.
Every point carries its snapshot's ids, label and time, and the snippet (text, role, position,
source). The use case ends with a ``snapshot.embedded`` event through the outbox.

**Searching** (``search``): the query is embedded (dense) and tokenised (sparse), the index fuses
both rankings by reciprocal rank within the caller's account, and the best chunk of each snapshot
is its snippet; equal scores go newest first.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from kontex.domain.errors import InvalidInput, NotFound
from kontex.domain.models import ContextBundle, Message, Snapshot
from kontex.ports import Embedder, IndexFilter, IndexQuery, Point
from kontex.services import lexical, outbox, snapshots
from kontex.services.deps import Deps

SOURCES = ("label", "message", "tool_call", "reasoning", "file")
Source = Literal["label", "message", "tool_call", "reasoning", "file"]
Mode = Literal["hybrid", "dense", "sparse"]
MAX_LIMIT = 50
MAX_QUERY_CHARS = 1000
FILE_CHARS = 4000  # of a file's content, beyond its path
MAX_CHUNKS_PER_PIECE = 12  # a 100 KB tool output is not worth 150 points
SNIPPET_CHARS = 1000
EMBED_SLICE = 64  # chunks embedded and written together
NAMESPACE = uuid.UUID("3b0c7a52-55a8-4f0e-9d4e-6b7f5d1f2a90")


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


# -- searching --------------------------------------------------------------------------------


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
    dense = embedder.embed_query(q) if mode != "sparse" else None
    sparse = lexical.query_vector(q) if mode != "dense" else None
    where = IndexFilter(account_id, session_id=session_id, task_id=task_id, source=source)
    hits = index.query(IndexQuery(where, limit * 5, dense, sparse, mode))
    hits.sort(key=lambda h: (-h.score, -float(h.payload.get("created_ts", 0))))
    best: dict[str, SearchHit] = {}
    for hit in hits:
        p = hit.payload
        if p.get("account_id") != account_id:  # the filter already did; never trust one layer
            continue
        if p["snapshot_id"] in best:
            continue
        best[p["snapshot_id"]] = SearchHit(
            snapshot_id=p["snapshot_id"],
            session_id=p["session_id"],
            task_id=p["task_id"],
            label=p["label"],
            score=round(hit.score, 6),
            created_at=p["created_at"],
            snippet=Snippet(
                text=p["text"], role=p.get("role"), position=p["position"], source=p["source"]
            ),
        )
        if len(best) == limit:
            break
    return SearchResults(results=list(best.values()))


# -- what a snapshot adds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    source: str
    role: str | None
    position: int
    text: str


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def message_text(message: Message) -> str:
    if isinstance(message.content, str):
        return message.content
    parts: list[str] = []
    for block in message.content:
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind in ("thinking", "redacted_thinking"):
            parts.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            parts.append(f"{block.get('name', '')} {_json(block.get('input'))}")
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, list):
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            parts.append(_json(content))
        else:
            parts.append(_json(block))
    return "\n".join(p for p in parts if p)


def new_pieces(
    snapshot: Snapshot, bundle: ContextBundle, parent: ContextBundle | None
) -> list[Piece]:
    """The label, and what ``bundle`` has that ``parent`` (the previous snapshot) has not."""
    pieces = [Piece("label", None, 0, snapshot.label)]
    seen_messages = {m.model_dump_json() for m in parent.messages} if parent else set()
    for i, m in enumerate(bundle.messages):
        if m.model_dump_json() not in seen_messages:
            pieces.append(Piece("message", m.role, i, message_text(m)))
    seen_calls = {_call_key(c) for c in parent.tool_calls} if parent else set()
    for i, c in enumerate(bundle.tool_calls):
        if _call_key(c) not in seen_calls:
            text = f"{c.tool}\ninput: {_json(c.input)}"
            if c.output is not None:
                text += f"\noutput: {_json(c.output)}"
            pieces.append(Piece("tool_call", "tool", i, text))
    if bundle.reasoning and (parent is None or parent.reasoning != bundle.reasoning):
        pieces.append(Piece("reasoning", "assistant", 0, bundle.reasoning))
    seen_files = {(f.path, f.content_hash) for f in parent.files} if parent else set()
    for i, f in enumerate(bundle.files):
        # a file given a token count of 0 is state, not context a model reads (a checkpoint's
        # serialised channels): not searched
        if (f.path, f.content_hash) not in seen_files and f.token_count != 0:
            pieces.append(Piece("file", None, i, f"{f.path}\n{(f.content or '')[:FILE_CHARS]}"))
    return [p for p in pieces if p.text.strip()]


def _call_key(call: Any) -> str:
    return _json({"tool": call.tool, "input": call.input, "output": call.output})


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


def point_id(account_id: str, snapshot_id: str, piece: Piece, n: int, text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    name = f"{account_id}/{snapshot_id}/{piece.source}/{piece.position}/{n}/{digest}"
    return str(uuid.uuid5(NAMESPACE, name))


@dataclass(frozen=True)
class Embedded:
    snapshot_id: str
    points: int  # the snapshot's points
    written: int  # of which this call embedded and wrote (0 on a redelivery)


def _bundle_or_none(deps: Deps, account_id: str, snapshot_id: str | None) -> Any:
    if snapshot_id is None:
        return None
    try:
        return snapshots.read(deps, account_id, snapshot_id)
    except NotFound:
        return None


def embed_snapshot(
    deps: Deps, account_id: str, snapshot_id: str, *, announce: bool = True
) -> Embedded | None:
    """Embed what the snapshot adds; None when it is gone (its session was purged)."""
    found = _bundle_or_none(deps, account_id, snapshot_id)
    if found is None:
        return None
    snapshot, bundle = found
    parent = _bundle_or_none(deps, account_id, snapshot.parent_snapshot_id)
    embedder, index = deps.search_ports()
    planned: list[tuple[str, Piece, int, str]] = []
    for piece in new_pieces(snapshot, bundle, parent[1] if parent else None):
        for n, text in enumerate(chunks(piece.text, embedder.max_chars)):
            planned.append((point_id(account_id, snapshot_id, piece, n, text), piece, n, text))
    have = index.existing([p[0] for p in planned])
    todo = [p for p in planned if p[0] not in have]
    # in slices, each written before the next is embedded: a snapshot too big for one
    # invocation still progresses, and its retry skips what the last one wrote
    for start in range(0, len(todo), EMBED_SLICE):
        part = todo[start : start + EMBED_SLICE]
        vectors = embedder.embed_documents([text for _, _, _, text in part])
        index.upsert(
            [
                Point(
                    pid,
                    vector,
                    lexical.document_vector(text),
                    _payload(snapshot, piece, n, text, embedder),
                )
                for (pid, piece, n, text), vector in zip(part, vectors, strict=True)
            ]
        )
    result = Embedded(snapshot_id, len(planned), len(todo))
    if announce:
        _announce(deps, snapshot, result)
    return result


def _payload(
    snapshot: Snapshot, piece: Piece, n: int, text: str, embedder: Embedder
) -> dict[str, Any]:
    return {
        "account_id": snapshot.account_id,
        "session_id": snapshot.session_id,
        "task_id": snapshot.task_id,
        "snapshot_id": snapshot.id,
        "label": snapshot.label,
        "created_at": snapshot.created_at.isoformat(),
        "created_ts": snapshot.created_at.timestamp(),
        "source": piece.source,
        "role": piece.role,
        "position": piece.position,
        "chunk": n,
        "text": text[:SNIPPET_CHARS],
        "model": embedder.name,
    }


def _announce(deps: Deps, snapshot: Snapshot, result: Embedded) -> None:
    """``snapshot.embedded`` through the outbox: written, then published (or swept later)."""
    data = {"snapshot_id": snapshot.id, "points": result.points, "written": result.written}
    event = outbox.event(
        "snapshot.embedded", snapshot.account_id, snapshot.session_id, data, deps.clock()
    )
    with deps.store.unit() as uow:
        uow.announce(event)


def forget_session(deps: Deps, account_id: str, session_id: str) -> None:
    """A purged session's points go with it."""
    deps.search_ports()[1].delete_session(account_id, session_id)


EMBEDS = ("snapshot.created", "snapshot.enriched")


def handle_event(deps: Deps, body: dict[str, Any]) -> str:
    """One event of the fan-out (contract: ``{id, type, account_id, session_id, data}``);
    returns what was done: ``embedded``, ``gone``, ``forgotten`` or ``ignored``."""
    kind = body.get("type")
    account_id = body.get("account_id")
    data = body.get("data") or {}
    # contract 1 names it snapshot_id; the snapshot's own dump (before it) says id
    snapshot_id = data.get("snapshot_id") or data.get("id")
    if kind in EMBEDS and account_id and isinstance(snapshot_id, str):
        done = embed_snapshot(deps, account_id, snapshot_id)
        return "embedded" if done is not None else "gone"
    if kind == "session.purged" and account_id:
        session_id = data.get("session_id") or body.get("session_id")
        if session_id:
            forget_session(deps, account_id, session_id)
            return "forgotten"
    return "ignored"


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
