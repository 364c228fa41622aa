"""The local server's listening socket says it is TCP, so asyncio sets TCP_NODELAY on every
accepted connection (a socket of proto 0 never got it: each answer waited ~40 ms for a
delayed ACK between its head and its body)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

from kontex.local.server import make_server
from kontex.settings import Settings


def test_accepted_connections_get_tcp_nodelay(tmp_path: object) -> None:
    stack = SimpleNamespace(settings=Settings(kontex_data_dir=tmp_path))
    server, listening = make_server("127.0.0.1", 0, stack)  # type: ignore[arg-type]
    assert listening.proto == socket.IPPROTO_TCP
    port = listening.getsockname()[1]
    flags: list[int] = []

    async def run() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            flags.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listening.listen()
        served = await asyncio.start_server(accepted, sock=listening)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if flags:
                break
            await asyncio.sleep(0.01)
        writer.close()
        served.close()

    asyncio.run(run())
    assert flags and flags[0] != 0
    server.config.app.close()
