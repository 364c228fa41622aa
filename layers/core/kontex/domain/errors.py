"""One error hierarchy for the whole service; the HTTP layer maps it to status codes once."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class KontexError(Exception):
    """Base of every error Kontex raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(KontexError):
    code = "validation_error"


class Unauthorized(KontexError):
    code = "unauthorized"


class NotFound(KontexError):
    code = "not_found"


def found(value: T | None, what: str) -> T:
    """``value``, or ``NotFound`` ("<what> not found") when there is none."""
    if value is None:
        raise NotFound(f"{what} not found")
    return value


class Conflict(KontexError):
    code = "conflict"


class EnrichWindowExpired(Conflict):
    code = "enrich_window_expired"


class PayloadTooLarge(KontexError):
    code = "payload_too_large"


class RateLimited(KontexError):
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


class Transient(KontexError):
    """A dependency is unavailable for now; the caller may retry."""

    code = "unavailable"


class IntegrityError(KontexError):
    """Stored content no longer matches its address: never served."""

    code = "integrity_error"
