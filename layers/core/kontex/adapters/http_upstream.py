"""The proxy's upstream APIs (Anthropic, OpenAI) over one pooled ``httpx.AsyncClient``, bytes
passed through (the ``Upstream`` port; which headers pass and how a call fails:
``kontex.domain.forwarding``).

``HttpUpstream`` keeps its connections open across calls and, in Lambda, across warm
invocations (it lives in the composition root): a call costs no TCP or TLS handshake after the
first. A request is built as ``httpx.Request`` and sent as is, so none of the client's default
headers (``User-Agent``, ``Accept-Encoding``...) is added to what the caller sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from kontex.domain.forwarding import (
    UpstreamError,
    UpstreamTimeout,
    returned_headers,
    upstream_headers,
)
from kontex.ports import UpstreamRequest, UpstreamResponse


class HttpUpstream:
    """One connection pool per event loop (one in a server process), reused by every call."""

    def __init__(self, maxsize: int = 64) -> None:
        self.maxsize = maxsize
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:  # a pool belongs to its loop
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=self.maxsize),
                follow_redirects=False,
                trust_env=False,
            )
            self._loop = loop
        return self._client

    def warm(self) -> None:
        """Make this loop's client now (called on the server's startup)."""
        self.client()

    async def request(self, sent: UpstreamRequest) -> UpstreamResponse:
        timeout = sent.timeout
        request = httpx.Request(
            sent.method,
            sent.url,
            headers=upstream_headers(sent.headers),
            content=sent.body or None,
            extensions={"timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)).as_dict()},
        )
        try:
            response = await self.client().send(request, stream=True)
        except httpx.TimeoutException as error:
            raise UpstreamTimeout("the upstream API did not answer in time") from error
        except httpx.HTTPError as error:
            raise UpstreamError(f"the upstream API is unreachable: {error}") from error

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():  # as received: no decoding
                    yield chunk
            except httpx.TimeoutException as error:
                raise UpstreamTimeout("the upstream API stopped answering") from error
            except httpx.HTTPError as error:
                raise UpstreamError(f"the upstream connection failed: {error}") from error
            finally:
                await response.aclose()  # read to the end: back to the pool; else dropped

        return UpstreamResponse(response.status_code, returned_headers(response.headers), chunks())

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
