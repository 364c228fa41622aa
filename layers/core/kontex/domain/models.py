"""The Kontex domain: pydantic v2 models, no I/O.

Snapshot content (a ``ContextBundle``) is kept exactly as written: message content may be a
string or a list of content blocks, and unknown keys on messages, blocks, tool calls and log
events are preserved. Three things are filled in when absent: a file's ``content_hash`` and
its ``token_count``, and a tool call's ``id`` (derived from its content, so the same call
always gets the same id).

Bundles of the original system are accepted as they are: its camelCase keys (``toolCalls``,
``logEvents``, ``contentHash``, ``tokenCount``, ``capturedAt``, ``tokenTotal``) are aliases of
the snake_case fields, and a log event may be ``{type, timestamp, data}`` with no ``message``.
What Kontex answers is always snake_case.

The annotations are objects, not strings (no ``from __future__ import annotations``): pydantic
then has no string to evaluate (compile) for each field when a class is made, in every function's
cold start (docs/benchmarks.md, "Cold start of the api, seventh round (issue 25)").
"""

import hashlib
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
)

from kontex.domain.errors import InvalidInput
from kontex.later import later

if TYPE_CHECKING:
    from kontex.domain.snapshot_content import (
        ContentBlock as ContentBlock,
    )
    from kontex.domain.snapshot_content import (
        ContextBundle as ContextBundle,
    )
    from kontex.domain.snapshot_content import (
        ContextFile as ContextFile,
    )
    from kontex.domain.snapshot_content import (
        LogEvent as LogEvent,
    )
    from kontex.domain.snapshot_content import (
        Message as Message,
    )
    from kontex.domain.snapshot_content import (
        Snapshot as Snapshot,
    )
    from kontex.domain.snapshot_content import (
        SnapshotBase as SnapshotBase,
    )
    from kontex.domain.snapshot_content import (
        ThreadState as ThreadState,
    )
    from kontex.domain.snapshot_content import (
        ToolCall as ToolCall,
    )
    from kontex.domain.snapshot_content import (
        Usage as Usage,
    )
    from kontex.domain.snapshot_content import (
        _Content as _Content,
    )

# A snapshot's content, and a thread's state, live in kontex.domain.snapshot_content and load
# with the first use of one of them (PEP 562): a function whose first request reads no snapshot
# does not create them (docs/benchmarks.md, "Cold start, fourth round (issue 25)").
LATER = frozenset(
    {
        "ContentBlock",
        "ContextBundle",
        "ContextFile",
        "LogEvent",
        "Message",
        "Snapshot",
        "SnapshotBase",
        "ThreadState",
        "ToolCall",
        "Usage",
        "_Content",
    }
)


__getattr__ = later(globals(), "kontex.domain.snapshot_content", LATER)


def _json_integer(value: Any) -> Any:
    """A JSON integer as JSON Schema reads one (``3`` and ``3.0``), not ``"3"`` or ``true``,
    which pydantic's lax mode would turn into one."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be an integer")
    return value


def _json_time(value: Any) -> Any:
    """A time as the document says (an RFC 3339 string), not a number of seconds, which
    pydantic's lax mode would take (``0``, ``"0.5"``)."""
    if isinstance(value, bool | int | float):
        raise ValueError("must be an RFC 3339 date-time string")
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("must be an RFC 3339 date-time string")
    return value


# An integer of a request body: what the document says (``type: integer``), nothing else
# (``Annotated[int, Field(ge=...), JsonIntCheck]``: bounds before it, so the schema has them).
JsonIntCheck = BeforeValidator(_json_integer)
JsonInt = Annotated[int, JsonIntCheck]
# A time of a request body or query: a date-time string (or a datetime, made in process).
JsonTime = Annotated[datetime, BeforeValidator(_json_time)]
JsonBool = StrictBool  # true or false, not 0, 1 or "yes"


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def camel(*names: str) -> AliasChoices:
    """Accept the snake_case name and its camelCase spelling (first name is the field's)."""
    first = names[0]
    head, *rest = first.split("_")
    return AliasChoices(*names, head + "".join(p.title() for p in rest))


class SessionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class TaskStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


class SnapshotSource(StrEnum):
    API = "api"
    OPENLLMETRY = "openllmetry"
    PROXY = "proxy"
    MCP = "mcp"
    ROLLBACK = "rollback"


# Every model builds its validator and serializer on first use (``defer_build``), so a function
# builds only the models it uses (cold start: docs/benchmarks.md, issue 25).


class _Record(BaseModel):
    """A stored row: strict field names, no extras."""

    model_config = ConfigDict(defer_build=True, extra="forbid")


class Account(_Record):
    id: str
    name: str | None = None
    created_at: datetime


class ApiKey(_Record):
    id: str
    account_id: str
    label: str
    prefix: str = Field(description="The first characters of the key, for display only.")
    created_at: datetime
    revoked_at: datetime | None = None


class Session(_Record):
    id: str
    account_id: str
    name: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: SessionStatus = SessionStatus.ACTIVE
    created_at: datetime
    updated_at: datetime


class Task(_Record):
    id: str
    account_id: str
    session_id: str
    parent_task_id: str | None = None
    name: str
    status: TaskStatus = TaskStatus.PENDING
    created_at: datetime
    updated_at: datetime


THREAD_ID_RE = re.compile(r"^thrd_[a-zA-Z0-9-]{27,59}$")
THREAD_STATE_MAX_BYTES = 1024 * 1024


def validate_thread_id(thread_id: str) -> str:
    if not THREAD_ID_RE.fullmatch(thread_id):
        raise ValueError("thread ids are 'thrd_' followed by 27 to 59 of [a-zA-Z0-9-]")
    return thread_id


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests lists and objects more than ``limit`` levels deep (walked
    without recursion, so a value of any depth is measured)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def validate_name(value: str, what: str = "name") -> str:
    """A session's or task's name (``what`` says which, for the error): 1 to 200 characters
    once stripped, returned stripped."""
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 200:
        raise InvalidInput(f"{what} must be 1 to 200 characters")
    return value.strip()
