"""A light HTTP/1.1 load generator for the proxy benchmarks, run in a process of its own.

``connections`` keep-alive connections on one event loop (uvloop when it imports), each
sending one request, reading its whole answer, then sending the next (a closed loop, as
``connections`` SDK clients calling one after another would); answers parsed by httptools
(llhttp, in C). The request is given as the bytes to send: ``bench/proxy.py`` records them
from the real SDK (``sdk_request``), so every system is sent exactly what the SDK would send.
Per call: the time to the whole answer and, for a stream, the time until the first body part
that ``first`` (a regular expression) matches: the first text delta, as the SDK rows time it.
An answer that is not a 200, or whose body misses ``complete`` (the stream's last event), is
an error; the run fails rather than count it.

    python bench/load.py < SPEC.json > RESULT.json   # spec and result: see ``run``
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
import time
from typing import Any

import httptools


class _Answer(asyncio.Protocol):
    """One connection's client side: a request written, its answer parsed as it arrives."""

    def __init__(self, first: re.Pattern[bytes] | None, complete: bytes) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.first, self.complete = first, complete
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] | None = None
        self.started = self.first_at = 0.0
        self.tail = b""
        self.closed = asyncio.get_running_loop().create_future()

    # one call
    def send(self, request: bytes) -> asyncio.Future[None]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.first_at, self.tail = 0.0, b""
        self.started = time.perf_counter()
        self.transport.write(request)
        return self.done

    # asyncio's callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(f"unparsable answer: {error}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("the server closed the connection")
        if not self.closed.done():
            self.closed.set_result(None)

    # httptools' callbacks
    def on_body(self, body: bytes) -> None:
        seen = self.tail + body
        if self.first is not None and not self.first_at and self.first.search(seen):
            self.first_at = time.perf_counter()
        self.tail = seen[-max(256, len(self.complete)) :]

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status != 200:
            self._fail(f"status {status}")
        elif self.complete and self.complete not in self.tail:
            self._fail(f"the answer did not end with {self.complete!r}")
        elif self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _fail(self, why: str) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(RuntimeError(why))


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    request = spec["request"].encode("latin-1")
    first = re.compile(spec["first"].encode()) if spec.get("first") else None
    complete = (spec.get("complete") or "").encode()
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(spec["connections"]):
        _, protocol = await loop.create_connection(
            lambda: _Answer(first, complete), spec["host"], spec["port"]
        )
        connections.append(protocol)
    for connection in connections:  # warm each connection (and the server's path)
        for _ in range(spec.get("warm", 3)):
            await connection.send(request)
    latencies: list[float] = []
    firsts: list[float] = []
    remaining = spec["calls"]

    async def client(connection: _Answer) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await connection.send(request)
            ended = time.perf_counter()
            latencies.append((ended - connection.started) * 1000)
            if connection.first_at:
                firsts.append((connection.first_at - connection.started) * 1000)

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    for connection in connections:
        assert connection.transport is not None
        connection.transport.close()
    return {
        "latencies_ms": latencies,
        "first_ms": firsts,
        "rps": len(latencies) / elapsed,
        "client_cpu_s": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime,
    }


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec``: host, port, request (the bytes to send, as latin-1 text), connections, calls,
    warm (calls per connection before the timed ones, default 3), first (a regular expression
    for the first token, or none), complete (text every answer's end must hold). The result:
    latencies_ms (each call's), first_ms (each stream's first token), rps (calls a second) and
    client_cpu_s (this process's CPU during the timed calls)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run(spec))
    return uvloop.run(_run(spec))


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
