"""``kontex dev``: every Lambda handler served on one port, as API Gateway would call it."""

from __future__ import annotations

import importlib.util
import json
import logging
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from kontex import bootstrap
from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue, batch_failure_reasons
from kontex.local.apigw import LocalContext, http_api_event, response_parts
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
]


def functions_dir() -> Path:
    """``functions/`` of the source tree this package was installed from (editable install)."""
    return Path(__file__).resolve().parents[4] / "functions"


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


Streamed = tuple[int, dict[str, str], Iterator[bytes]]


# Functions whose module holds a Powertools resolver. Powertools keeps the event being resolved
# on a class attribute (``BaseRouter.current_event``), shared by every resolver in a process:
# Lambda is safe (one request per process at a time), threads are not. These run in worker
# processes, each one request at a time, like warm Lambda environments.
PROCESS_ISOLATED = {"api"}
ENVIRONMENTS = 4

_environment: Callable[[dict, Any], dict] | None = None


def _start_environment(name: str, settings: Settings, root: str | None) -> None:
    """Initializer of a worker process: its own container, the handler loaded once."""
    global _environment
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    bootstrap.configure(bootstrap.Container(settings))
    _environment = load_handler(name, Path(root) if root else None)


def _run_in_environment(name: str, event: dict[str, Any]) -> dict[str, Any]:
    assert _environment is not None
    return _environment(event, LocalContext(function_name=f"kontex-{name}"))


class LocalStack:
    """Dispatches HTTP requests to the handlers as API Gateway and Lambda would.

    Functions in ``PROCESS_ISOLATED`` run in a pool of worker processes; the others (which
    keep no per-request state in their module) run on the server's threads. A handler module
    that also defines ``stream_handler(event)`` (the proxy) is called through it, so its
    answer streams to the client as it arrives.
    """

    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self._settings = settings
        self._root = root
        self._modules: dict[str, ModuleType] = {}
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._lock = threading.Lock()

    def function_for(self, path: str) -> str | None:
        for prefix, name in ROUTES:
            handler = (self._root or functions_dir()) / name / "handler.py"
            matches = path == prefix if not prefix.endswith("/") else path.startswith(prefix)
            if matches and handler.exists():
                return name
        return None

    def _pool(self, name: str) -> ProcessPoolExecutor:
        with self._lock:
            if name not in self._pools:
                self._pools[name] = ProcessPoolExecutor(
                    max_workers=ENVIRONMENTS,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_environment,
                    initargs=(name, self._settings, str(self._root) if self._root else None),
                )
            return self._pools[name]

    def _module(self, name: str) -> ModuleType:
        with self._lock:
            if name not in self._modules:
                self._modules[name] = load_module(name, self._root)
            return self._modules[name]

    def warm(self) -> None:
        """Start the worker processes now rather than on the first requests."""
        for name in PROCESS_ISOLATED:
            if ((self._root or functions_dir()) / name / "handler.py").exists():
                pool = self._pool(name)
                for _ in range(ENVIRONMENTS):
                    pool.submit(int)

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any] | Streamed:
        if name in PROCESS_ISOLATED:
            return self._pool(name).submit(_run_in_environment, name, event).result()
        module = self._module(name)
        streaming = getattr(module, "stream_handler", None)
        if streaming is not None:
            return streaming(event)  # type: ignore[no-any-return]
        return module.lambda_handler(  # type: ignore[no-any-return]
            event, LocalContext(function_name=f"kontex-{name}")
        )

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


def _make_request_handler(stack: LocalStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kontex-dev"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._error(413, "payload_too_large", "the request body is over 10 MB")
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            name = stack.function_for(path)
            if name is None:
                self._error(404, "not_found", "no such route")
                return
            event = http_api_event(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            try:
                result = stack.invoke(name, event)
                if isinstance(result, tuple):
                    self._stream(*result)
                    return
            except Exception:  # what Lambda would answer for a crashed invocation
                log.exception("handler %s failed", name)
                self._error(500, "internal_error", "the handler failed")
                return
            self._send(*response_parts(result))

        def _error(self, status: int, code: str, message: str) -> None:
            body = {"error": code, "message": message, "details": None}
            self._send(status, [("Content-Type", "application/json")], json.dumps(body).encode())

        def _stream(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in chunks:
                if chunk:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.info("%s %s", self.address_string(), format % args)

    return Handler


class DevServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away: nothing to report
        super().handle_error(request, client_address)


def make_server(host: str, port: int, stack: LocalStack) -> DevServer:
    return DevServer((host, port), _make_request_handler(stack))


def load_worker(path: Path) -> ModuleType:
    """A worker module (``functions/workers/<queue>.py``), loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"kontex_workers_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"no worker at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def worker_paths(root: Path | None = None) -> dict[str, Path]:
    """Queue name -> worker module file."""
    folder = (root or functions_dir()) / "workers"
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.stem.startswith("_")}


def start_workers(data_dir: Path | None, root: Path | None = None) -> LocalQueue:
    """The durable queue in ``data_dir`` (in memory when None), with each
    ``functions/workers/<queue>.py`` consuming its queue; pending messages resume at once."""
    local_queue = LocalQueue(data_dir / QUEUE_FILE if data_dir is not None else None)
    for queue, path in worker_paths(root).items():
        module = load_worker(path)
        processor = getattr(module, "processor", None)
        reasons = batch_failure_reasons(processor) if processor is not None else None
        local_queue.register(queue, module.lambda_handler, reasons)
    local_queue.start()
    return local_queue


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


def serve(container: bootstrap.Container, host: str, port: int) -> None:
    private_data_dir(container.settings.kontex_data_dir)
    applied = container.migrate()
    bootstrap.configure(container)
    workers = start_workers(container.settings.kontex_data_dir)
    container.queue = workers
    stack = LocalStack(container.settings)
    stack.warm()
    server = make_server(host, port, stack)
    base = f"http://{host}:{server.server_address[1]}"
    print(f"kontex dev: data in {container.settings.kontex_data_dir.resolve()}", flush=True)
    if applied:
        print(f"kontex dev: applied migrations {', '.join(applied)}", flush=True)
    print(f"kontex dev: serving {base}  (health {base}/health, API {base}/v1)", flush=True)
    print("kontex dev: press Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nkontex dev: stopping", flush=True)
    finally:
        server.server_close()
        stack.close()
        workers.close()
