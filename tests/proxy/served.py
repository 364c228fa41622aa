"""An ASGI app served by a real uvicorn on a free port, in a thread (the proxy's tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from kontex import bootstrap
from kontex.adapters.local_blobs import LocalBlobs
from kontex.services import keys, sessions
from kontex.settings import Settings


class Served:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock])

    def settle(self) -> None:
        """Wait for the captures the app is still queueing (it queues them after the answer)."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.app.drain(), self.loop).result(10)

    @contextmanager
    def running(self) -> Iterator[Served]:
        thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        try:
            yield self
        finally:
            self.server.should_exit = True
            thread.join(10)
            self.sock.close()


class RecordingQueue:
    """The capture queue, kept in memory: what the proxy queued, for the worker to take."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.durable: list[bool] = []  # each send's ``durable``

    def send(
        self, queue: str, bodies: list[str], delay_seconds: int = 0, *, durable: bool = True
    ) -> None:
        assert queue == "capture"
        self.sent += bodies
        self.durable.append(durable)


@contextmanager
def proxy_stack(
    app: Any, store: Any, data_dir: Path, env: dict[str, str], label: str
) -> Iterator[Any]:
    """A container over ``store`` with ``env``, a key, a session and a recording capture queue,
    installed for the handlers, and ``app`` (the proxy) served over HTTP: ``.served``."""
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "s", **env}, kontex_data_dir=data_dir)
    made: Any = bootstrap.Container(config, store=store, blobs=LocalBlobs(data_dir / "blobs"))
    made.queue = RecordingQueue()
    bootstrap.configure(made)
    try:
        key, made.key = keys.create_key(made.deps, label)
        made.account_id = key.account_id
        made.session = sessions.create_session(made.deps, key.account_id, "chat")
        with Served(app).running() as served:
            made.served = served
            yield made
    finally:
        bootstrap.configure(None)
