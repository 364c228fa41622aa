"""The errors only HTTP has: a method a route does not take, a body in a media type it does not
read. The same error shape and mapping to status codes as every other (``kontex.api.errors``)."""

from __future__ import annotations

from kontex.domain.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    KontexError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Transient,
    Unauthorized,
)


class MethodNotAllowed(KontexError):
    code = "method_not_allowed"


class UnsupportedMediaType(KontexError):
    code = "unsupported_media_type"


RETRY_AFTER_SECONDS = "5"  # what a 503 asks the caller to wait

STATUS: list[tuple[type[KontexError], int]] = [
    (InvalidInput, 400),
    (Unauthorized, 401),
    (NotFound, 404),
    (Conflict, 409),  # includes EnrichWindowExpired
    (PayloadTooLarge, 413),
    (MethodNotAllowed, 405),
    (UnsupportedMediaType, 415),
    (RateLimited, 429),
    (Transient, 503),
]


def status_of(error: KontexError) -> tuple[int, dict[str, str]]:
    """The HTTP status of a domain error, and the headers that go with it (here, not in
    ``kontex.api.errors``, so ingest and the proxy map errors without Powertools' resolver)."""
    if isinstance(error, IntegrityError):
        from kontex import observability

        observability.count("IntegrityErrors")  # stored content failed its hash: alarm on it
        return 500, {}
    for kind, status in STATUS:
        if isinstance(error, kind):
            if isinstance(error, RateLimited):
                return status, {"Retry-After": str(error.retry_after)}
            if isinstance(error, Transient):
                return status, {"Retry-After": RETRY_AFTER_SECONDS}
            return status, {}
    return 500, {}
