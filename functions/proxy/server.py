"""The proxy as a small HTTP server, for the Lambda Web Adapter (AWS) to stream through.

Each request becomes the API Gateway event the handler knows, and the answer is written as
chunked HTTP as the upstream sends it, so SSE reaches the client token by token for as long
as the function may run (15 minutes), not API Gateway's 30 s.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from handler import stream_handler  # type: ignore[import-not-found]

from kontex.http.apigw import http_api_event

MAX_BODY = 10 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        if self.path == "/health":  # the adapter's readiness check
            self._write(200, {"content-type": "application/json"}, b'{"status":"ok"}')
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            error = {"error": "payload_too_large", "message": "over 10 MB", "details": None}
            self._write(413, {"content-type": "application/json"}, json.dumps(error).encode())
            return
        body = self.rfile.read(length) if length else b""
        event = http_api_event(self.command, self.path, list(self.headers.items()), body)
        status, headers, chunks = stream_handler(event)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _write(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the handler logs through Powertools


def main() -> None:
    port = int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or 8080)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
