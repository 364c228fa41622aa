"""What passes between the caller and the upstream API (Anthropic), and how a call to it fails:
the rules every upstream client keeps (the client: ``kontex.adapters.http_upstream``, behind
the ``Upstream`` port).

Request headers: every end-to-end header goes upstream except the hop-by-hop ones, ``Host``,
``Content-Length`` (the client sets its own framing) and Kontex's ``X-Kontex-*``; a header
whose value carries a Kontex key (``kontex_...``) never does. Response headers: every
end-to-end header comes back (``Content-Length`` and ``Transfer-Encoding`` are the server's
framing; the proxy keeps ``Content-Length`` when the answer has a body, which it relays byte
for byte). The body is read as it arrives and passed on unchanged (still compressed if the
upstream compressed it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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


def returned_headers(headers: Any, length_kept: bool = False) -> dict[str, str]:
    """Every end-to-end response header; repeated ones joined with commas. ``length_kept``:
    the upstream's ``Content-Length`` comes back too (the body is relayed byte for byte, so
    the length holds, and the caller gets the framing a direct call gets, not a chunked
    answer)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in NOT_RETURNED and not (length_kept and key == "content-length"):
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out
