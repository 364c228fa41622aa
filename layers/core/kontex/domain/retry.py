"""How a queue worker's failed record is retried: at once to the dead letters when retrying
cannot help, else again and again with a growing delay, long enough to ride out an outage.

One rule for every queue (spans, capture, feed, embed), locally and on AWS:

- **Permanent**: the message itself is wrong, so every retry would fail the same way: input
  refused (``InvalidInput``, ``PayloadTooLarge``), stored content that no longer matches its
  address (``IntegrityError``), a body that does not parse or has the wrong shape (``ValueError``,
  which covers JSON, UTF-8 and pydantic validation errors, ``TypeError``, ``LookupError``,
  ``AttributeError``) and input nested too deep to walk (``RecursionError``). Such a record is
  dead-lettered after its first receive, with its reason.
- **Transient**: everything else: the database unavailable (``Transient``), connection errors
  and timeouts (``OSError``), throttling (``RateLimited``), a write that lost a race
  (``Conflict``) and whatever we cannot tell. Retried after ``QUEUE_RETRY.delay(receives)``
  (1 s, doubling, at most 60 s) up to ``QUEUE_RETRY.max_receives`` receives: about ten minutes
  in all, so a minute-long database outage is ridden out with room to spare.
"""

from __future__ import annotations

from dataclasses import dataclass

from kontex.domain.errors import (
    IntegrityError,
    InvalidInput,
    PayloadTooLarge,
    RateLimited,
    Transient,
)

# ``ValueError`` covers json.JSONDecodeError, UnicodeDecodeError and pydantic's ValidationError
_PERMANENT: tuple[type[BaseException], ...] = (
    InvalidInput,
    PayloadTooLarge,
    IntegrityError,
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    RecursionError,
)
_TRANSIENT: tuple[type[BaseException], ...] = (Transient, RateLimited, OSError)


def permanent(error: BaseException) -> bool:
    """True when retrying the record cannot help: it goes to the dead letters at once."""
    return not isinstance(error, _TRANSIENT) and isinstance(error, _PERMANENT)


def describe(error: BaseException) -> str:
    """The reason a dead letter keeps: ``<exception class>: <message>``."""
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Failure:
    """Why one record of a batch failed, and whether retrying it can help."""

    reason: str
    permanent: bool = False

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        return cls(describe(error), permanent(error))


@dataclass(frozen=True)
class RetryPolicy:
    """``delay(n)``: seconds before the receive after the ``n``-th one; ``max_receives``:
    receives before a transiently failing record is dead-lettered after all."""

    max_receives: int = 16
    first_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, receives: int) -> float:
        return float(min(self.first_delay * 2 ** max(receives - 1, 0), self.max_delay))

    def budget(self) -> float:
        """Seconds from the first receive to the last: how long an outage may last."""
        return sum(self.delay(n) for n in range(1, self.max_receives))


# infra/messaging.py's MAX_RECEIVE_COUNT equals max_receives (tests/infra checks it)
QUEUE_RETRY = RetryPolicy()
