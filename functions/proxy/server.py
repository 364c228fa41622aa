"""uvicorn serving the proxy's ASGI app (``handler.app``) for the Lambda Web Adapter, which
streams each answer to the function URL (invoke mode RESPONSE_STREAM) as uvicorn writes it:
SSE reaches the client token by token for as long as the function may run (15 minutes).
uvicorn picks uvloop and httptools (both in the core layer) when they import, as `kontex dev`
does; tests/proxy/test_web_adapter_server.py checks that they do."""

from __future__ import annotations

import os

import uvicorn
from handler import app  # type: ignore[import-not-found]


def config() -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or 8080),
        lifespan="on",
        log_config=None,
        access_log=False,  # the app logs through the standard logging module
        timeout_keep_alive=60,  # the adapter keeps its connection to us open between calls
    )


def main() -> None:
    uvicorn.Server(config()).run()


if __name__ == "__main__":
    main()
