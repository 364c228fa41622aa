"""Errors as exceptions carrying the server's error code (``{"error", "message", "details"}``)."""

from __future__ import annotations

from typing import Any


class KontexError(Exception):
    """An error answer of the Kontex API, or a failure to reach it.

    ``code`` is the server's snake_case error code (``not_found``, ``rate_limit_exceeded``...),
    ``status`` the HTTP status (0 when no answer came), ``details`` what the server added.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status: int = 0,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status else ""
        return f"{self.code}: {self.message}{where}"


class BadRequestError(KontexError):
    """400 ``validation_error`` and other refusals of the request's content."""


class AuthenticationError(KontexError):
    """401 ``unauthorized``: no key, an unknown key or a revoked one."""


class NotFoundError(KontexError):
    """404 ``not_found`` (another account's ids read exactly like missing ones)."""


class ConflictError(KontexError):
    """409 ``conflict`` or ``enrich_window_expired``."""


class PayloadTooLargeError(KontexError):
    """413 ``payload_too_large``."""


class RateLimitError(KontexError):
    """429 ``rate_limit_exceeded``; ``retry_after`` says when to try again (seconds)."""


class IntegrityError(KontexError):
    """Stored content failed its hash check (``integrity_error``), or an archive did."""


class UnavailableError(KontexError):
    """503 ``unavailable`` (``retry_after`` when the server gave one), 502 ``upstream_error``."""


class ConnectionError(KontexError):  # noqa: A001 (the client's own, carries a code)
    """The server could not be reached (code ``connection_error``)."""


_BY_CODE: dict[str, type[KontexError]] = {
    "validation_error": BadRequestError,
    "unsupported_media_type": BadRequestError,
    "unauthorized": AuthenticationError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "enrich_window_expired": ConflictError,
    "payload_too_large": PayloadTooLargeError,
    "rate_limit_exceeded": RateLimitError,
    "integrity_error": IntegrityError,
    "unavailable": UnavailableError,
    "upstream_error": UnavailableError,
}
_BY_STATUS: dict[int, type[KontexError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
    502: UnavailableError,
    503: UnavailableError,
}


SHOWN_FIELD_ERRORS = 3  # a validation error's message names at most this many fields


def field_errors(details: Any) -> list[str]:
    """``where: why`` for each field of a validation error's details (``[{"loc", "msg"}]``);
    the location without its ``body`` part: ``bundle.messages.0.role: Input should be ...``."""
    if not isinstance(details, list):
        return []
    found = []
    for error in details:
        if not isinstance(error, dict) or not error.get("msg"):
            continue
        loc = [str(part) for part in error.get("loc") or []]
        where = ".".join(loc[1:] if loc[:1] == ["body"] and len(loc) > 1 else loc)
        found.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return found


def error_for(status: int, body: Any, retry_after: float | None = None) -> KontexError:
    """The exception for an error answer (its class chosen by code, else by status); a
    validation error's message names each field and why (the details stay in ``details``)."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body["error"]
        message = str(body.get("message") or code)
        details = body.get("details")
        fields = field_errors(details) if code == "validation_error" else []
        if fields:
            shown = "; ".join(fields[:SHOWN_FIELD_ERRORS])
            more = len(fields) - SHOWN_FIELD_ERRORS
            message = f"{message}: {shown}" + (f" (and {more} more)" if more > 0 else "")
    else:
        code, message, details = f"http_{status}", f"HTTP {status}", body
    kind = _BY_CODE.get(code) or _BY_STATUS.get(status, KontexError)
    return kind(message, code=code, status=status, details=details, retry_after=retry_after)
