"""The dashboard's built page (``web/dist``, or the copy in the package of a wheel install)
served by ``kontex dev`` at ``/``, as CloudFront serves it on AWS (docs/design.md, "The
dashboard").

Only GET and HEAD of paths no function route claims reach it, and never a path under the API's
own prefixes (``RESERVED``), so it cannot shadow an API answer. A file is read once and kept
in memory (checked against its size and mtime, so a rebuild is picked up); a path that is not a
file and has no extension is the single-page app's fallback, ``index.html``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

# Paths the page never answers, whatever is built: the functions' and the live feed's.
RESERVED = ("/v1", "/ingest", "/proxy", "/mcp", "/ws", "/health")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


# Vite names assets by their content hash: they never change under one name.
# The dashboard's script and styles are files of its own origin: no inline script, no other
# origin but the live feed's socket (the same origin locally), never framed (infra/dashboard.py
# sends the same from CloudFront, with the deployed WebSocket API's origin).
def content_security_policy(live_origin: str = "") -> str:
    connect = " ".join(x for x in ("'self'", live_origin) if x)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


SECURITY_HEADERS = [
    ("Content-Security-Policy", content_security_policy()),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
]
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def web_dist() -> Path:
    """The built dashboard: the copy a wheel carries (``kontex/local/dashboard``, setup.py),
    else ``web/dist`` of the source tree this package was installed from (editable install)."""
    bundled = Path(__file__).resolve().parent / "dashboard"
    if (bundled / "index.html").is_file():
        return bundled
    return Path(__file__).resolve().parents[4] / "web" / "dist"


def reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED)


@dataclass(frozen=True)
class Asset:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class _Cached:
    stamp: tuple[int, int]
    body: bytes
    etag: str


class StaticSite:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or web_dist()).resolve()
        self._cache: dict[Path, _Cached] = {}
        self._lock = threading.Lock()

    def _file(self, path: str) -> Path | None:
        relative = path.lstrip("/") or "index.html"
        if "\x00" in relative or "\\" in relative:
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def _read(self, file: Path) -> _Cached:
        stat = file.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(file)
        if cached is None or cached.stamp != stamp:
            body = file.read_bytes()
            cached = _Cached(stamp, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
            with self._lock:
                self._cache[file] = cached
        return cached

    def get(self, path: str, if_none_match: str | None = None) -> Asset:
        """The answer to GET ``path`` (not a reserved one)."""
        file = self._file(path)
        if file is None and path == "/config.json":
            return _local_config()
        if file is None and "." not in path.rsplit("/", 1)[-1]:
            file = self._file("/index.html")  # a client-side route: the app decides
        if file is None:
            if not (self.root / "index.html").is_file():
                return _json_error(
                    404, "the dashboard is not built: `make dev` builds it (npm ci + vite build)"
                )
            return _json_error(404, "no such file")
        cached = self._read(file)
        immutable = file.parent.name == "assets" and file.parent.parent == self.root
        headers = [
            ("Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream")),
            ("Cache-Control", IMMUTABLE if immutable else REVALIDATE),
            ("ETag", cached.etag),
            *SECURITY_HEADERS,
        ]
        if if_none_match is not None and cached.etag in if_none_match:
            return Asset(304, headers, b"")
        return Asset(200, headers, cached.body)


# The page's config.json (written beside it at deploy on AWS: infra/dashboard.py). Locally the
# API and the live feed are the page's own origin, which is what the page makes of an empty
# api_url and an absent live_url; answered so that no load starts with a 404.
LOCAL_CONFIG = json.dumps({"api_url": ""}).encode()


def _local_config() -> Asset:
    headers = [
        ("Content-Type", "application/json"),
        ("Cache-Control", REVALIDATE),
        *SECURITY_HEADERS,
    ]
    return Asset(200, headers, LOCAL_CONFIG)


def _json_error(status: int, message: str) -> Asset:
    body = json.dumps({"error": "not_found", "message": message, "details": None}).encode()
    return Asset(status, [("Content-Type", "application/json")], body)
