"""The proxy's upstream APIs (Anthropic, OpenAI) over one pooled HTTP/1.1 connection pool
(``httpcore``), bytes passed through (the ``Upstream`` port; which headers pass and how a call
fails: ``kontex.domain.forwarding``).

``HttpUpstream`` keeps its connections open across calls and, in Lambda, across warm
invocations (it lives in the composition root): a call costs no TCP or TLS handshake after the
first. It speaks to ``httpcore`` (the transport under ``httpx``) directly: a proxy needs none
of ``httpx``'s client layer (cookie jar, redirects, auth, URL and header models), which cost
about as much CPU per call as the exchange itself (docs/benchmarks.md, issue 25), nor its
network layer through ``anyio`` (``adapters.asyncio_network`` instead). The request
goes as the caller sent it plus ``Host`` and ``Content-Length``: no client default header
(``User-Agent``, ``Accept-Encoding``...) is added, and no cookie is kept between callers.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpcore

from kontex.adapters.asyncio_network import AsyncioBackend
from kontex.domain.forwarding import (
    UpstreamError,
    UpstreamTimeout,
    returned_headers,
    upstream_headers,
)
from kontex.ports import UpstreamRequest, UpstreamResponse

UNREACHABLE = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol)
KEEPALIVE_SECONDS = 5.0  # an idle connection is closed after this (before the server does)


@functools.lru_cache(maxsize=16)
def _origin(base_url: str) -> tuple[bytes, bytes, int | None, bytes, bytes]:
    """``(scheme, host, port, path prefix, Host header)`` of a base URL (parsed once)."""
    parsed = urllib.parse.urlsplit(base_url)
    scheme = (parsed.scheme or "https").encode("ascii")
    host = (parsed.hostname or "").encode("idna")
    default = {b"http": 80, b"https": 443}.get(scheme)
    port = parsed.port
    netloc = host if port is None or port == default else host + b":%d" % port
    return scheme, host, port, parsed.path.rstrip("/").encode("ascii"), netloc


def _ssl_context() -> ssl.SSLContext:
    try:
        import certifi  # the CA bundle httpx uses (Lambda's system store may be older)

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpcore
        return ssl.create_default_context()


class HttpUpstream:
    """One connection pool per event loop (one in a server process), reused by every call."""

    def __init__(self, maxsize: int = 64) -> None:
        self.maxsize = maxsize
        self._pool: httpcore.AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ssl: ssl.SSLContext | None = None

    def pool(self) -> httpcore.AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:  # a pool belongs to its loop
            if self._ssl is None:
                self._ssl = _ssl_context()
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=self._ssl,
                max_connections=None,
                max_keepalive_connections=self.maxsize,
                keepalive_expiry=KEEPALIVE_SECONDS,
                http1=True,
                http2=False,
                network_backend=AsyncioBackend(),  # the loop's streams, not anyio's
            )
            self._loop = loop
        return self._pool

    def warm(self) -> None:
        """Make this loop's pool now (called on the server's startup): the TLS context takes
        about 0.3 s to load, better not on the first call."""
        self.pool()

    async def request(self, sent: UpstreamRequest) -> UpstreamResponse:
        scheme, host, port, prefix, netloc = _origin(sent.base_url)
        target = prefix + sent.path.encode("latin-1")
        if sent.query:
            target += b"?" + sent.query.encode("latin-1")
        headers: list[tuple[bytes, bytes]] = [(b"host", netloc)]
        headers += [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream_headers(sent.headers).items()
        ]
        body = sent.body or b""
        if body or sent.method in ("POST", "PUT", "PATCH"):  # as httpx frames a request
            headers.append((b"content-length", b"%d" % len(body)))
        timeout = sent.timeout
        request = httpcore.Request(
            sent.method.encode("ascii"),
            httpcore.URL(scheme=scheme, host=host, port=port, target=target),
            headers=headers,
            content=body,
            extensions={
                "timeout": {
                    "connect": min(timeout, 10.0),
                    "read": timeout,
                    "write": timeout,
                    "pool": timeout,
                }
            },
        )
        try:
            response = await self.pool().handle_async_request(request)
        except httpcore.TimeoutException as error:
            raise UpstreamTimeout("the upstream API did not answer in time") from error
        except UNREACHABLE as error:
            raise UpstreamError(f"the upstream API is unreachable: {error!r}") from error
        stream: Any = response.stream

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream:  # as received: no decoding
                    yield chunk
            except httpcore.TimeoutException as error:
                raise UpstreamTimeout("the upstream API stopped answering") from error
            except (httpcore.NetworkError, httpcore.ProtocolError) as error:
                raise UpstreamError(f"the upstream connection failed: {error!r}") from error
            finally:
                await stream.aclose()  # read to the end: back to the pool; else dropped

        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
        # the body passes byte for byte, so its length holds (not for answers without a body:
        # a 304's Content-Length is the representation's, which uvicorn would count against it)
        length_kept = response.status >= 200 and response.status not in (204, 304)
        return UpstreamResponse(
            response.status, returned_headers(_Pairs(pairs), length_kept), chunks()
        )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class _Pairs:
    """Header pairs (repeats kept, in order) seen through ``items()``."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def items(self) -> list[tuple[str, str]]:
        return self.pairs
