"""Calls to the Anthropic Messages API, passed through byte for byte (JSON or SSE).

Only the caller's upstream credentials and ``anthropic-*`` headers go upstream; Kontex's own
``x-kontex-*`` headers never do. Useful response headers (request id, rate limits,
``retry-after``) come back unchanged.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from kontex.domain.errors import KontexError

FORWARDED = {"x-api-key", "authorization", "content-type", "accept", "user-agent"}
RETURNED_PREFIXES = ("anthropic-", "x-ratelimit", "x-should-retry")
RETURNED = {"content-type", "request-id", "x-request-id", "retry-after", "cache-control"}


class UpstreamError(KontexError):
    code = "upstream_error"
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504


def upstream_headers(headers: dict[str, str]) -> dict[str, str]:
    """The request headers that go to Anthropic (names lower-case)."""
    out = {}
    for name, value in headers.items():
        key = name.lower()
        if key.startswith("x-kontex-"):
            continue
        if key in FORWARDED or key.startswith("anthropic-"):
            out[key] = value
    out.setdefault("content-type", "application/json")
    return out


def returned_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for name, value in headers:
        key = name.lower()
        if key in RETURNED or key.startswith(RETURNED_PREFIXES):
            out[key] = value
    return out


@dataclass
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]

    @property
    def is_stream(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")


def post_messages(
    base_url: str, body: bytes, headers: dict[str, str], timeout: float
) -> UpstreamResponse:
    """POST ``{base_url}/v1/messages``; the body is read lazily, chunk by chunk."""
    url = urlsplit(base_url.rstrip("/") + "/v1/messages")
    port = url.port or (443 if url.scheme == "https" else 80)
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(
            url.hostname or "", port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(url.hostname or "", port, timeout=timeout)
    path = url.path + (f"?{url.query}" if url.query else "")
    try:
        connection.request("POST", path, body=body, headers=upstream_headers(headers))
        response = connection.getresponse()
    except TimeoutError as error:
        connection.close()
        raise UpstreamTimeout("the upstream API did not answer in time") from error
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        raise UpstreamError(f"the upstream API is unreachable: {error}") from error

    def chunks() -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = response.read1(65536)
                except TimeoutError as error:
                    raise UpstreamTimeout("the upstream API stopped answering") from error
                except (OSError, http.client.HTTPException) as error:
                    raise UpstreamError(f"the upstream connection failed: {error}") from error
                if not chunk:
                    return
                yield chunk
        finally:
            connection.close()

    return UpstreamResponse(response.status, returned_headers(response.getheaders()), chunks())
