"""The proxy's upstream API (Anthropic) over one pooled urllib3 client, bytes passed through
(the ``Upstream`` port; which headers pass and how a call fails: ``kontex.proxy.upstream``).

``HttpUpstream`` keeps its connections open across calls and, in Lambda, across warm
invocations (it lives in the composition root): a call costs no TCP or TLS handshake after the
first.
"""

from __future__ import annotations

from collections.abc import Iterator

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from kontex.ports import UpstreamRequest, UpstreamResponse
from kontex.proxy.upstream import UpstreamError, UpstreamTimeout, returned_headers, upstream_headers

CHUNK = 65536


class HttpUpstream:
    """One connection pool per process, reused by every call."""

    def __init__(self, pool: urllib3.PoolManager | None = None, maxsize: int = 32) -> None:
        self.pool = pool or urllib3.PoolManager(
            num_pools=8, maxsize=maxsize, block=False, retries=False
        )

    def request(self, sent: UpstreamRequest) -> UpstreamResponse:
        timeout = sent.timeout
        try:
            response = self.pool.request(
                sent.method,
                sent.url,
                body=sent.body or None,
                headers=upstream_headers(sent.headers),
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
