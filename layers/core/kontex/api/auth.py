"""Authentication, content type and the per-key request limit, checked before routing.

They run before Powertools' request validation (which the resolver always runs first), so an
unauthenticated request is a 401 whatever its body, and nothing is parsed for it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from kontex.bootstrap import container
from kontex.domain.models import ApiKey
from kontex.http.errors import UnsupportedMediaType
from kontex.services import limits
from kontex.services.deps import Deps
from kontex.services.keys import Credential

PUBLIC_PATHS = {"/health", "/v1/openapi.json", "/v1/docs"}


def presented_key(headers: dict[str, str]) -> Credential:
    """The key from ``X-Kontex-Api-Key`` or ``Authorization: Bearer``, or what is wrong with
    the ``Authorization`` header (the refusal says so: services/keys.py)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("x-kontex-api-key", "").strip():
        return Credential(lowered["x-kontex-api-key"].strip())
    authorization = lowered.get("authorization", "").strip()
    if not authorization:
        return Credential()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Credential(problem="the Authorization header is not `Bearer <key>`")
    return Credential(token.strip())


CHECKPOINTS = "/v1/checkpoints"


def authorize(presented: Credential | str | None, path: str = "") -> ApiKey:
    """The key presented, if valid, counted against its hourly request limit: checkpoint
    requests (an agent's every step) against their own, ``KONTEX_CHECKPOINT_REQUESTS_PER_HOUR``."""
    deps, settings = container().deps, container().settings
    if path == CHECKPOINTS or path.startswith(CHECKPOINTS + "/"):
        kind, limit = "checkpoint_requests", settings.kontex_checkpoint_requests_per_hour
    else:
        kind, limit = "requests", settings.kontex_rate_limit_per_hour
    return limits.admit(deps, presented, kind, limit)


def admit(event: dict[str, Any]) -> ApiKey | None:
    """The caller's key for a protected path (None for public ones); raises ``KontexError``."""
    path = event.get("rawPath") or event.get("requestContext", {}).get("http", {}).get("path", "")
    if path in PUBLIC_PATHS:
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = authorize(presented_key(headers), path)
    content_type = headers.get("content-type", "application/json").lower()
    if event.get("body") and not content_type.startswith("application/json"):
        raise UnsupportedMediaType("send JSON with Content-Type: application/json")
    return key


# The admitted key of the request being handled. A context variable, not the router's shared
# ``context`` dict: routers are module objects, shared by every resolver in the process.
current_key: ContextVar[ApiKey] = ContextVar("kontex_api_key")


def caller() -> tuple[Deps, ApiKey]:
    """The container's deps and the authenticated key of the current request."""
    return container().deps, current_key.get()


def count_snapshot_write(key: ApiKey) -> None:
    limits.hit(
        container().deps,
        key.id,
        "snapshot_writes",
        container().settings.kontex_snapshot_writes_per_hour,
    )
