"""``httpcore``'s network layer on the running asyncio loop's own streams (uvloop's under
uvicorn), for the proxy's upstream pool (``adapters.http_upstream``).

httpcore's default backend on asyncio goes through ``anyio``: each read and write of the
connection opens a cancel scope for its timeout and passes through anyio's stream classes, and
each reuse of a kept-alive connection polls its socket. For a proxy relaying a stream chunk by
chunk that was a large part of the CPU of a call (docs/benchmarks.md, "The proxy hop, second
round"). Here a read or write is the loop's ``StreamReader``/``StreamWriter`` call under one
``asyncio.timeout``, and a kept-alive connection is known to be closed by the server from the
reader's own state (the transport reads continuously, so the socket itself would not show it).

Errors are httpcore's, as its own backends raise them: ``ConnectError``/``ConnectTimeout``,
``ReadError``/``ReadTimeout``, ``WriteError``/``WriteTimeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

READ_LIMIT = 2**16  # the reader's buffer before it stops reading the socket (asyncio's default)
HOLD_LIMIT = 2**14  # a write under this waits for the next write or read (AsyncioStream)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """A connection. A small write (under ``HOLD_LIMIT``) with nothing held waits, in memory,
    for the next write or read: httpcore writes a request's head and its body apart, and they
    go in one ``send`` (one segment, one wake-up of the upstream) instead of two."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._held = b""

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:  # the request is complete: it goes before its answer is awaited
            await self.write(b"", timeout)
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as error:
            raise httpcore.ReadTimeout(str(error)) from error
        except OSError as error:  # reset by the peer, and the like
            raise httpcore.ReadError(str(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` after what is held; ``b""``: send what is held."""
        if not self._held and len(buffer) < HOLD_LIMIT:
            self._held = buffer  # b"" holds nothing
            return
        buffer, self._held = self._held + buffer, b""
        try:
            if self._writer.is_closing():
                raise httpcore.WriteError("the connection is closed")
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()  # returns at once unless the buffer is full
        except TimeoutError as error:
            raise httpcore.WriteTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # reset, or a TLS error on the way out: closed
            await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as error:
            await self.aclose()
            raise httpcore.ConnectTimeout(str(error)) from error
        except (OSError, ssl.SSLError) as error:
            await self.aclose()
            raise httpcore.ConnectError(str(error)) from error
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # idle yet readable: the server closed it (or misbehaved)
            reader = self._reader
            return (
                self._writer.is_closing()
                or reader.at_eof()
                or reader.exception() is not None
                or bool(getattr(reader, "_buffer", b""))
            )
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    limit=READ_LIMIT,
                )
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:  # asyncio and uvloop set it already; said here, as the upstream needs it
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for option in socket_options or ():
                    sock.setsockopt(*option)
            except OSError:  # pragma: no cover - a socket that takes no TCP options
                pass
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=READ_LIMIT)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
