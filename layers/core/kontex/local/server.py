"""``kontex dev``: every Lambda handler served on one port by uvicorn, as API Gateway would call
it (see docs/design.md, "The local stack")."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import uvicorn
from pydantic import SecretStr

from kontex import bootstrap
from kontex.adapters.local_connections import CLOSE, LocalConnections
from kontex.adapters.local_index import RemoteEmbedder, RemoteIndex
from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
from kontex.functions import functions_dir, worker_paths
from kontex.http.apigw import (
    LocalContext,
    http_api_event,
    new_connection_id,
    response_parts,
    websocket_event,
)
from kontex.local import listen
from kontex.local.pipeline_process import QUEUES as PIPELINE_QUEUES
from kontex.local.pipeline_process import Pipelines
from kontex.local.search_process import QUEUES as SEARCH_QUEUES
from kontex.local.search_process import SearchProcess
from kontex.local.static import StaticSite, reserved
from kontex.local.workers import load_worker as load_worker
from kontex.local.workers import log_to_stdout, start_workers
from kontex.settings import Settings

log = logging.getLogger("kontex.dev")

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit

# Path prefix -> function folder, first match wins, as the HTTP API routes them on AWS
# (infra/api.py); any other path is a 404 before any function runs, there as here.
ROUTES: list[tuple[str, str]] = [
    ("/ingest/", "ingest"),
    ("/proxy/", "proxy"),
    ("/v1/", "api"),
    ("/health", "api"),
    ("/mcp", "api"),
]
# WebSocket path -> function folder, as the WebSocket API routes $connect/$default/$disconnect
WEBSOCKET_ROUTES: dict[str, str] = {"/ws": "live"}
WS_MAX_BYTES = 4 * 1024 * 1024  # larger messages close the socket (1009); the live handler
# answers anything over API Gateway's 128 KB with a clear error


def load_module(name: str, root: Path | None = None, instance: int = 0) -> ModuleType:
    """A fresh copy of ``functions/<name>/handler.py``: one per simulated execution environment."""
    path = (root or functions_dir()) / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"kontex_functions_{name}_{instance}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"no handler at {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_handler(
    name: str, root: Path | None = None, instance: int = 0
) -> Callable[[dict, Any], dict]:
    return load_module(name, root, instance).lambda_handler  # type: ignore[no-any-return]


# Functions whose module holds a Powertools resolver. Powertools keeps the event being resolved
# on a class attribute (``BaseRouter.current_event``), shared by every resolver in a process:
# Lambda is safe (one request per process at a time), threads are not. Each runs one request
# at a time in an environment like a warm Lambda's: one in the server's process, and more in
# worker processes for the requests that meet it busy: started for the first such request
# (each process about 60 MB), and let go after POOL_IDLE_SECONDS without one.
PROCESS_ISOLATED = {"api"}
ENVIRONMENTS = 4
POOL_IDLE_SECONDS = 60.0
RESIDENT_WAIT = 0.25  # seconds a request waits for the in-process environment (see invoke)

_environment: Callable[[dict, Any], dict] | None = None


def _start_environment(name: str, settings: Settings, root: str | None) -> None:
    """Initializer of a worker process: its own container, the handler loaded once."""
    global _environment
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    # its events go to the data dir's queue file (Container.events: the local topic)
    bootstrap.configure(bootstrap.Container(settings))
    _environment = load_handler(name, Path(root) if root else None)


def _run_in_environment(name: str, event: dict[str, Any]) -> dict[str, Any]:
    assert _environment is not None
    return _environment(event, LocalContext(function_name=f"kontex-{name}"))


class LocalStack:
    """Dispatches HTTP requests to the handlers as API Gateway and Lambda would.

    Functions in ``PROCESS_ISOLATED`` run in a pool of worker processes; the others (which
    keep no per-request state in their module) run on the server's threads. A handler module
    that defines an ASGI ``app`` (the proxy) is mounted as it is: the same app uvicorn runs on
    AWS, its answer streamed to the client as it arrives.
    """

    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self.settings = settings
        self._settings = settings
        self._root = root
        self._modules: dict[str, ModuleType] = {}
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._pooled: dict[str, int] = {}  # requests running in each pool now
        self._pool_used: dict[str, float] = {}  # when each pool last finished one (monotonic)
        self._residents: dict[str, tuple[ModuleType, threading.Lock]] = {}
        self._found: set[str] = set()
        self._lock = threading.Lock()
        self.connections = LocalConnections()  # the local Management API: the open sockets

    def _deployed(self, name: str) -> bool:
        """Whether the function has a handler (looked up once: a function found stays)."""
        if name not in self._found:
            handler = (self._root or functions_dir()) / name / "handler.py"
            if not handler.exists():
                return False
            self._found.add(name)
        return True

    def function_for(self, path: str) -> str | None:
        for prefix, name in ROUTES:
            matches = path == prefix if not prefix.endswith("/") else path.startswith(prefix)
            if matches and self._deployed(name):
                return name
        return None

    def websocket_function(self, path: str) -> str | None:
        name = WEBSOCKET_ROUTES.get(path)
        if name is None or not self._deployed(name):
            return None
        return name

    def _in_pool(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        """Run the request in one of the pool's environments: the pool starts a process when
        none is idle (up to ENVIRONMENTS; spawn start method, so one at a time, on demand)."""
        with self._lock:
            if name not in self._pools:
                self._pools[name] = ProcessPoolExecutor(
                    max_workers=ENVIRONMENTS,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_environment,
                    initargs=(name, self._settings, str(self._root) if self._root else None),
                )
            pool = self._pools[name]
            self._pooled[name] = self._pooled.get(name, 0) + 1
        try:
            return pool.submit(_run_in_environment, name, event).result()
        finally:
            with self._lock:
                self._pooled[name] -= 1
                self._pool_used[name] = time.monotonic()

    def environments(self, name: str) -> int:
        """How many worker processes the function's pool runs now (0: none started)."""
        with self._lock:
            pool = self._pools.get(name)
            return len(getattr(pool, "_processes", None) or {}) if pool is not None else 0

    def retire_idle(self, idle: float = POOL_IDLE_SECONDS, now: float | None = None) -> None:
        """Let a pool's processes go once it has run nothing for ``idle`` seconds (the next
        request that meets the resident environment busy starts one again)."""
        now = time.monotonic() if now is None else now
        retired = []
        with self._lock:
            for name in list(self._pools):
                if self._pooled.get(name, 0) == 0 and now - self._pool_used.get(name, 0) >= idle:
                    retired.append(self._pools.pop(name))
        for pool in retired:
            pool.shutdown(wait=True)

    def _module(self, name: str) -> ModuleType:
        with self._lock:
            if name not in self._modules:
                self._modules[name] = load_module(name, self._root)
            return self._modules[name]

    def warm(self) -> None:
        """Load the handler of this process's environment now rather than on the first request
        (the first ``/health`` answers at once: a second ``kontex dev`` on the port asks it
        whether a Kontex server is there, local/listen.py). The pool starts when needed."""
        for name in PROCESS_ISOLATED:
            if ((self._root or functions_dir()) / name / "handler.py").exists():
                self._resident(name)

    def _resident(self, name: str) -> tuple[ModuleType, threading.Lock]:
        with self._lock:
            if name not in self._residents:
                self._residents[name] = (load_module(name, self._root), threading.Lock())
            return self._residents[name]

    def asgi_app(self, name: str) -> Any:
        """The function's ASGI ``app``, when its module defines one (else None)."""
        if name in PROCESS_ISOLATED:
            return None
        return getattr(self._module(name), "app", None)

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        if name in PROCESS_ISOLATED:
            # One environment lives in this process (no pickling, no hop to another process).
            # Requests queue for it, woken at once, rather than meeting each other as writers
            # of the SQLite file from several processes (whose busy handler sleeps 1 to 100 ms
            # between tries: an agent's concurrent put and put_writes waited ~10 ms each); a
            # request that waits longer than RESIDENT_WAIT (a slow one is running) goes to the
            # pool's environments, each also one request at a time.
            module, busy = self._resident(name)
            if busy.acquire(timeout=RESIDENT_WAIT):
                try:
                    return module.lambda_handler(  # type: ignore[no-any-return]
                        event, LocalContext(function_name=f"kontex-{name}")
                    )
                finally:
                    busy.release()
            return self._in_pool(name, event)
        module = self._module(name)
        return module.lambda_handler(  # type: ignore[no-any-return]
            event, LocalContext(function_name=f"kontex-{name}")
        )

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
BODY_TIMEOUT_SECONDS = 10.0  # a body that stops arriving for this long is a 408
HANDLER_THREADS = 32

access = logging.getLogger("kontex.access")


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": code, "message": message, "details": None}).encode()


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class AsgiApp:
    """The local API Gateway: an ASGI app that turns each request into the HTTP API (payload
    2.0) event and answers with what the handler returns; uvicorn does the HTTP/1.1 framing
    (chunked bodies, Content-Length checks, keep-alive, TCP_NODELAY)."""

    def __init__(
        self,
        stack: LocalStack,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
        site: StaticSite | None = None,
    ) -> None:
        self.stack = stack
        self.body_timeout = body_timeout
        self.site = site  # the dashboard (web/dist), for GET paths no function claims
        self.executor = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="kontex-handler")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            name = self.stack.websocket_function(scope["path"])
            if name is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await self._websocket(name, scope, receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        status = await self._serve(scope, receive, send)
        ms = (time.perf_counter() - started) * 1000
        access.info("%s %s %d %.1f ms", method, path, status, ms)

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        method = scope["method"]
        try:
            if method not in ALLOWED_METHODS:
                raise _Refused(405, "method_not_allowed", f"{method} is not allowed")
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            declared = next((v for k, v in headers if k.lower() == "content-length"), None)
            if declared is not None and not declared.strip().isdigit():
                raise _Refused(400, "validation_error", "the Content-Length is not a number")
            if declared is not None and int(declared) > MAX_BODY:
                raise _Refused(413, "payload_too_large", "the request body is over 10 MB")
            name = self.stack.function_for(scope["path"])
            mounted = self.stack.asgi_app(name) if name is not None else None
            if mounted is not None:  # the function is an ASGI app (the proxy): it serves itself
                return await _serve_mounted(mounted, scope, receive, send)
            body = await self._body(receive)
            path = scope["path"]
            if name is None and self.site and method in ("GET", "HEAD") and not reserved(path):
                etag = next((v for k, v in headers if k.lower() == "if-none-match"), None)
                asset = self.site.get(path, etag)
                await self._send(send, asset.status, asset.headers, asset.body, method)
                return asset.status
            if name is None:
                raise _Refused(404, "not_found", "no such route")
        except _Refused as refused:
            extra = [("Allow", ", ".join(ALLOWED_METHODS))] if refused.status == 405 else []
            closing = [("Connection", "close")] if refused.status in (408, 413) else []
            await self._send(
                send,
                refused.status,
                [("Content-Type", "application/json"), *extra, *closing],
                _error_body(refused.code, refused.message),
                method,
            )
            return refused.status
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        target = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        client = (scope.get("client") or ("127.0.0.1", 0))[0]
        event = http_api_event(method, target, headers, body, client)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.executor, self.stack.invoke, name, event)
        except Exception:  # what Lambda would answer for a crashed invocation
            log.exception("handler %s failed", name)
            await self._send(
                send,
                500,
                [("Content-Type", "application/json")],
                _error_body("internal_error", "the handler failed"),
                method,
            )
            return 500
        status, reply_headers, reply = response_parts(result)
        await self._send(send, status, reply_headers, reply, method)
        return status

    async def _body(self, receive: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                raise _Refused(
                    408, "request_timeout", "the request body did not arrive in time"
                ) from None
            if message["type"] == "http.disconnect":
                raise _Refused(400, "validation_error", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:  # chunked bodies have no Content-Length to check first
                raise _Refused(413, "payload_too_large", "the request body is over 10 MB")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _websocket(self, name: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The local WebSocket API: each connect, message and disconnect is the event the live
        function gets on AWS; what it posts (``LocalConnections``) goes out on this socket."""
        if (await receive())["type"] != "websocket.connect":
            return
        loop = asyncio.get_running_loop()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        client = (scope.get("client") or ("127.0.0.1", 0))[0]
        connection_id, connected_at = new_connection_id(), time.time()

        def invoke(route: str, **parts: Any) -> Any:
            event = websocket_event(
                route, connection_id, source_ip=client, connected_at=connected_at, **parts
            )
            return loop.run_in_executor(self.executor, self.stack.invoke, name, event)

        try:
            answer = await invoke("$connect", headers=headers)
        except Exception:
            log.exception("handler %s failed on $connect", name)
            answer = {"statusCode": 500}
        if not isinstance(answer, dict) or int(answer.get("statusCode", 200)) != 200:
            await send({"type": "websocket.close", "code": 1011})
            return
        outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
        await send({"type": "websocket.accept"})
        access.info("WS %s %s connected", scope["path"], connection_id)
        self.stack.connections.attach(connection_id, loop, outgoing)
        sender = asyncio.create_task(self._ws_sender(send, outgoing))
        close_code = 1005
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    close_code = int(message.get("code") or 1005)
                    break
                text, data = message.get("text"), message.get("bytes")
                try:
                    await invoke("$default", body=text if text is not None else data)
                except Exception:  # API Gateway keeps the connection when the function fails
                    log.exception("handler %s failed on a message", name)
        finally:
            self.stack.connections.detach(connection_id)
            sender.cancel()
            try:
                await invoke("$disconnect", close_code=close_code)
            except Exception:
                log.exception("handler %s failed on $disconnect", name)
            access.info("WS %s %s disconnected (%d)", scope["path"], connection_id, close_code)

    @staticmethod
    async def _ws_sender(send: Any, outgoing: asyncio.Queue[bytes | None]) -> None:
        """Frames posted to the connection, in order; ``CLOSE`` closes it."""
        try:
            while True:
                frame = await outgoing.get()
                if frame is CLOSE:
                    await send({"type": "websocket.close", "code": 1000})
                    return
                await send({"type": "websocket.send", "text": frame.decode("utf-8")})
        except (OSError, RuntimeError):  # the client has gone; $disconnect follows
            return
        except Exception as error:  # uvicorn's ClientDisconnected and the like
            log.debug("WebSocket sender stopped: %s", error)

    @staticmethod
    def _head(status: int, headers: list[tuple[str, str]] | dict[str, str]) -> dict[str, Any]:
        items = headers.items() if isinstance(headers, dict) else headers
        kept = [
            (k.lower().encode("latin-1"), str(v).encode("latin-1"))
            for k, v in items
            if k.lower() not in ("content-length", "connection", "transfer-encoding")
        ]
        return {"type": "http.response.start", "status": status, "headers": kept}

    async def _send(
        self, send: Any, status: int, headers: list[tuple[str, str]], body: bytes, method: str
    ) -> None:
        start = self._head(status, headers)
        start["headers"].append((b"content-length", str(len(body)).encode()))
        close = any(k.lower() == "connection" for k, _ in headers)
        if close:
            start["headers"].append((b"connection", b"close"))
        await send(start)
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _serve_mounted(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> int:
    """Run a mounted ASGI app on the request; the status it sent, for the access log."""
    sent = {"status": 500}

    async def recording(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = int(message["status"])
        await send(message)

    await app(scope, receive, recording)
    return sent["status"]


def make_server(
    host: str, port: int, stack: LocalStack, sock: socket.socket | None = None
) -> tuple[uvicorn.Server, socket.socket]:
    """uvicorn on a socket bound here (or given, bound by ``listen.bind``), so port 0 works and
    the real port is known at once."""
    if sock is None:
        sock = listen.bind(host, port)
    config = uvicorn.Config(
        AsgiApp(stack, stack.settings.kontex_dev_body_timeout_seconds, StaticSite()),
        lifespan="off",
        access_log=False,  # ours is one line with the time taken
        log_config=None,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        ws="websockets-sansio",
        ws_max_size=WS_MAX_BYTES,
    )
    return uvicorn.Server(config), sock


def private_data_dir(path: Path) -> None:
    """The data dir, made ``0700`` (its files are ``0600``); an existing one looser than that
    is reported, not changed (it may be a folder the user shares on purpose)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        print(
            f"kontex dev: warning: {path} is mode {mode:o}; `chmod 700 {path}` keeps other"
            " users out of its data",
            flush=True,
        )


def serve(
    container: bootstrap.Container,
    host: str,
    port: int,
    sock: socket.socket | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Serve until Ctrl-C or SIGTERM on ``sock`` (bound by ``listen.bind`` before the caller's
    slow start-up work), else on a socket bound here; ``notes`` are printed with the banner."""
    if sock is None:
        sock = listen.bind(host, port)  # before the slow work: a busy port is one line at once
    # No X-Ray daemon and no CloudWatch here: EMF lines and trace segments would be noise
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    private_data_dir(container.settings.kontex_data_dir)
    with contextlib.ExitStack() as stopping:  # on the way out, whatever failed: last first
        # search: a process of its own holds Qdrant's local folder, the model and the embed
        # worker (local/search_process.py); this process and the API's reach the index through
        # it. Started first: it opens the index while this process migrates. Stopped last
        search = SearchProcess(container.settings)
        stopping.callback(search.close)
        # The queue file: events of the migration and of every handler go through it (the
        # API's worker processes and the other processes open the same file), fanned out to
        # the consumers' queues; this process consumes `feed` (beside the WebSockets)
        workers = LocalQueue(container.settings.kontex_data_dir / QUEUE_FILE)
        stopping.callback(workers.close)
        # the span and capture workers: processes of their own (local/pipeline_process.py:
        # spans in one or more), loading them while this process migrates; stopped first
        # (they send to the others)
        pipelines = Pipelines(container.settings)
        stopping.callback(pipelines.close)
        stopping.callback(sock.close)
        container.queue = workers
        container.events = container.local_topic(workers)  # type: ignore[assignment]
        serving = False
        try:
            applied = container.migrate()
            address, authkey = search.address(), search.authkey
            container.index = RemoteIndex(address, authkey.encode())  # type: ignore[assignment]
            container.embedder = RemoteEmbedder(address, authkey.encode())  # type: ignore[assignment]
            update = {"kontex_index_address": address, "kontex_index_authkey": SecretStr(authkey)}
            stack = LocalStack(container.settings.model_copy(update=update))
            stopping.callback(stack.close)
            container.connections = stack.connections
            bootstrap.configure(container)
            log_to_stdout()  # from here: what the queue resumes is said as `kontex dev: ...`
            here = set(worker_paths()) - SEARCH_QUEUES - PIPELINE_QUEUES  # feed
            start_workers(container.settings.kontex_data_dir, local_queue=workers, queues=here)
            pipelines.consume(update, workers)
            search.consume()
            sweeper = Sweeper(container, chores=[stack.retire_idle, pipelines.check])
            sweeper.start()
            stopping.callback(sweeper.stop)
            stack.warm()
            server, sock = make_server(host, port, stack, sock)
            listen.listen(sock, host, port)  # another `kontex dev` may have bound it meanwhile
            serving = True
            for line in _banner(container, host, sock.getsockname()[1], applied, notes):
                print(f"kontex dev: {line}", flush=True)
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # uvicorn has stopped serving; it raises the signal again once it is done
        finally:
            if serving:
                print("\nkontex dev: stopping", flush=True)  # may fail: stdout gone


def _banner(
    container: bootstrap.Container,
    host: str,
    bound: int,
    applied: list[str],
    notes: Sequence[str],
) -> list[str]:
    base = f"http://{host}:{bound}"
    return [
        f"data in {container.settings.kontex_data_dir.resolve()}",
        *([f"applied migrations {', '.join(applied)}"] if applied else []),
        f"proxy upstream {container.settings.anthropic_api_url}"
        f" (/proxy/openai: {container.settings.openai_api_url})",
        f"search {_search_line(container)}",
        f"serving {base}  (health {base}/health, API {base}/v1)",
        f"live feed ws://{host}:{bound}/ws",
        *notes,
        "press Ctrl-C to stop",
    ]


def _search_line(container: bootstrap.Container) -> str:
    config = container.settings
    embedder = "Voyage AI" if config.voyage_api_key else "offline model (no VOYAGE_API_KEY)"
    store = config.qdrant_url or f"Qdrant local mode in {config.kontex_data_dir / 'qdrant'}"
    return f"embeddings by {container.embedder.name}, {embedder}; vectors in {store}"


SWEEP_SECONDS = 2.0  # how often the local sweeper looks for events the relay could not publish
PRUNE_SECONDS = 60.0  # how often expired live connections are dropped
LAG_REPORT_SECONDS = 10.0  # while a pipeline is behind, how often `kontex dev` says so


class LagWatch:
    """`kontex dev`'s word on its pipelines: a line while any is behind (at most one per
    ``every`` seconds), and one when all have caught up (services/health.py)."""

    def __init__(self, pipelines: Any, say: Any = None, every: float = LAG_REPORT_SECONDS):
        self.pipelines, self.every = pipelines, every
        self.say = say or (lambda line: print(f"kontex dev: {line}", flush=True))
        self._said_at: float | None = None

    def check(self, now: float | None = None) -> None:
        from kontex.services import health

        now = time.monotonic() if now is None else now
        line = health.lag_line(self.pipelines.lag())
        if line is None:
            if self._said_at is not None:
                self.say("pipelines caught up")
            self._said_at = None
        elif self._said_at is None or now - self._said_at >= self.every:
            self.say(line)
            self._said_at = now


class Sweeper:
    """The local stand-in for the scheduled sweeper function: a timer thread publishing outbox
    rows still unsent (``outbox.sweep``) and dropping expired WebSocket connections; it also
    says when a pipeline falls behind (``LagWatch``), and runs the server's ``chores`` (the
    API pool's idle processes let go, the pipeline process checked)."""

    def __init__(
        self,
        container: bootstrap.Container,
        every: float = SWEEP_SECONDS,
        chores: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.container, self.every, self.chores = container, every, chores
        pipelines = container.pipelines
        self.lag = LagWatch(pipelines) if pipelines is not None else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kontex-sweeper")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from kontex.services import live, outbox

        pruned_at = 0.0
        while not self._stop.wait(self.every):
            try:
                if self.lag is not None:
                    self.lag.check()
                outbox.sweep(self.container.deps)
                if time.monotonic() - pruned_at > PRUNE_SECONDS:
                    live.prune(self.container.deps)
                    pruned_at = time.monotonic()
                for chore in self.chores:
                    chore()
            except Exception:  # the next round tries again
                log.exception("the outbox sweep failed")
