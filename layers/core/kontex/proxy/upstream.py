"""The upstream API (Anthropic), called through one pooled HTTP client, bytes passed through.

Request headers: every end-to-end header goes upstream except the hop-by-hop ones, ``Host``,
``Content-Length`` (the client sets its own framing) and Kontex's ``X-Kontex-*``; a header
whose value carries a Kontex key (``kontex_...``) never does. Response headers: every
end-to-end header comes back (``Content-Length`` and ``Transfer-Encoding`` are the server's
framing). The body is read as it arrives and passed on unchanged (still compressed if the
upstream compressed it).

``Upstream`` keeps its connections open across calls and, in Lambda, across warm invocations
(it lives in the composition root): a call costs no TCP or TLS handshake after the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from kontex.domain.errors import KontexError

# RFC 9110 7.6.1 plus the classic list (RFC 2616 13.5.1)
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
NOT_RETURNED = HOP_BY_HOP | {"content-length"}
KONTEX_KEY = re.compile(r"kontex_[A-Za-z0-9_\-]{8,}")
CHUNK = 65536


class UpstreamError(KontexError):
    code = "upstream_error"
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504


def carries_kontex_key(value: str) -> bool:
    return KONTEX_KEY.search(value) is not None


def upstream_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers that go upstream (names lower-case)."""
    out = {}
    connection_listed = set()
    for name, value in headers.items():
        if name.lower() == "connection":  # headers it names are hop-by-hop for this hop
            connection_listed = {t.strip().lower() for t in value.split(",") if t.strip()}
    for name, value in headers.items():
        key = name.lower()
        if key in NOT_FORWARDED or key in connection_listed or key.startswith("x-kontex-"):
            continue
        if carries_kontex_key(value):
            continue
        out[key] = value
    return out


def returned_headers(headers: Any) -> dict[str, str]:
    """Every end-to-end response header; repeated ones joined with commas."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in NOT_RETURNED:
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


@dataclass
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]

    @property
    def is_stream(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")


class Upstream:
    """One connection pool per process, reused by every call."""

    def __init__(self, pool: urllib3.PoolManager | None = None, maxsize: int = 32) -> None:
        self.pool = pool or urllib3.PoolManager(
            num_pools=8, maxsize=maxsize, block=False, retries=False
        )

    def request(
        self,
        base_url: str,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> UpstreamResponse:
        """``method {base_url}{path}?{query}``; the answer's body is read lazily."""
        url = base_url.rstrip("/") + path + (f"?{query}" if query else "")
        try:
            response = self.pool.request(
                method,
                url,
                body=body or None,
                headers=upstream_headers(headers),
                preload_content=False,
                decode_content=False,
                redirect=False,
                retries=False,
                timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            )
        except NewConnectionError as error:  # a subclass of the connect timeout: first
            raise UpstreamError(f"the upstream API is unreachable: {error}") from error
        except (ReadTimeoutError, Urllib3Timeout) as error:
            raise UpstreamTimeout("the upstream API did not answer in time") from error
        except HTTPError as error:
            raise UpstreamError(f"the upstream API is unreachable: {error}") from error

        def chunks() -> Iterator[bytes]:
            complete = False
            try:
                while True:
                    try:
                        chunk = response.read1(CHUNK, decode_content=False)
                    except (ReadTimeoutError, Urllib3Timeout) as error:
                        raise UpstreamTimeout("the upstream API stopped answering") from error
                    except (ProtocolError, HTTPError, OSError) as error:
                        raise UpstreamError(f"the upstream connection failed: {error}") from error
                    if not chunk:
                        complete = True
                        return
                    yield chunk
            finally:
                if complete:
                    response.release_conn()  # back to the pool for the next call
                else:
                    response.close()  # a half-read connection is never reused

        return UpstreamResponse(response.status, returned_headers(response.headers), chunks())
