"""The proxy's upstream pool on the event loop's own streams (``adapters.asyncio_network``), not
anyio's: plain and TLS upstreams, a kept-alive connection the server closed, a reset."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kontex.adapters.http_upstream import HttpUpstream
from kontex.domain.forwarding import UpstreamError
from kontex.ports import UpstreamRequest

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class OneShotServer:
    """Answers each request on a connection with ``ANSWER``; ``close_after`` closes the
    connection after that many answers without saying so (no ``Connection: close``), as a
    server whose keep-alive timeout ran out does. ``tls``: a context to wrap connections in."""

    def __init__(self, close_after: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.close_after, self.tls = close_after, tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            answered = 0
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                _, buffer = buffer.split(b"\r\n\r\n", 1)
                conn.sendall(ANSWER)
                answered += 1
                if self.close_after and answered >= self.close_after:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}"

    def __enter__(self) -> OneShotServer:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test on asyncio's own loop and on uvloop's (what uvicorn runs the proxy on)."""
    if request.param == "uvloop":
        import uvloop

        monkeypatch.setattr(asyncio, "run", uvloop.run)
    return str(request.param)


async def get(upstream: HttpUpstream, url: str) -> tuple[int, bytes]:
    answer = await upstream.request(UpstreamRequest(url, "GET", "/v1/models", "", {}, b"", 5.0))
    return answer.status, b"".join([chunk async for chunk in answer.chunks])


def test_a_kept_alive_connection_the_server_closed_is_not_used_again() -> None:
    async def run(server: OneShotServer) -> list[tuple[int, bytes]]:
        upstream = HttpUpstream()
        answers = []
        for _ in range(3):
            answers.append(await get(upstream, server.url))
            await asyncio.sleep(0.1)  # the server's FIN arrives while the connection is idle
        await upstream.aclose()
        return answers

    with OneShotServer(close_after=1) as server:
        assert asyncio.run(run(server)) == [(200, b"ok")] * 3
        assert server.connections == 3


def test_a_kept_alive_connection_is_used_again() -> None:
    async def run(server: OneShotServer) -> list[tuple[int, bytes]]:
        upstream = HttpUpstream()
        answers = [await get(upstream, server.url) for _ in range(3)]
        await upstream.aclose()
        return answers

    with OneShotServer() as server:
        assert asyncio.run(run(server)) == [(200, b"ok")] * 3
        assert server.connections == 1


@pytest.fixture
def certificate(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for ``localhost`` and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    yield cert_path, key_path


def test_a_tls_upstream_is_verified_and_answers(certificate: tuple[Path, Path]) -> None:
    cert_path, key_path = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert_path, key_path)

    async def run(server: OneShotServer, trusted: bool) -> tuple[int, bytes]:
        upstream = HttpUpstream()
        if trusted:  # the pool's context, trusting the test's certificate
            upstream._ssl = ssl.create_default_context(cafile=str(cert_path))
        try:
            return await get(upstream, server.url)
        finally:
            await upstream.aclose()

    with OneShotServer(tls=server_side) as server:
        assert asyncio.run(run(server, trusted=True)) == (200, b"ok")
        with pytest.raises(UpstreamError, match="unreachable"):  # an unknown certificate
            asyncio.run(run(server, trusted=False))


def test_the_upstream_pool_does_not_read_and_write_through_anyio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httpcore's default network layer on asyncio (anyio's) is never used: calls go through
    the loop's own streams."""
    import httpcore._backends.anyio as anyio_backend

    async def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the anyio network layer was used")

    monkeypatch.setattr(anyio_backend.AnyIOBackend, "connect_tcp", refused)

    async def run(server: OneShotServer) -> tuple[int, bytes]:
        upstream = HttpUpstream()
        try:
            return await get(upstream, server.url)
        finally:
            await upstream.aclose()

    with OneShotServer() as server:
        assert asyncio.run(run(server)) == (200, b"ok")


def test_a_request_head_and_body_go_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpcore writes a request's head and its body apart; they reach the socket in one write
    (one segment, one wake-up of the upstream), and a body-less request's head goes before
    its answer is awaited. A body over the hold limit goes with its head too."""
    from kontex.adapters import asyncio_network

    writes: list[bytes] = []
    write = asyncio.StreamWriter.write

    def spied(self: asyncio.StreamWriter, data: bytes) -> None:
        writes.append(bytes(data))
        write(self, data)

    monkeypatch.setattr(asyncio.StreamWriter, "write", spied)
    large = b"x" * (asyncio_network.HOLD_LIMIT + 1)

    async def run(server: OneShotServer) -> list[tuple[int, bytes]]:
        upstream = HttpUpstream()
        answers = []
        try:
            for body in (b'{"model":"m"}', large):
                sent = UpstreamRequest(server.url, "POST", "/v1/messages", "", {}, body, 5.0)
                answer = await upstream.request(sent)
                answers.append((answer.status, b"".join([c async for c in answer.chunks])))
            answers.append(await get(upstream, server.url))
        finally:
            await upstream.aclose()
        return answers

    with OneShotServer() as server:  # it skips the bodies: none holds a blank line
        assert asyncio.run(run(server)) == [(200, b"ok")] * 3
    small, whole, get_head = writes
    assert small.startswith(b"POST /v1/messages HTTP/1.1\r\n")
    assert small.endswith(b'\r\n\r\n{"model":"m"}')
    assert whole.startswith(b"POST /v1/messages HTTP/1.1\r\n") and whole.endswith(
        b"\r\n\r\n" + large
    )
    assert get_head.startswith(b"GET /v1/models HTTP/1.1\r\n") and get_head.endswith(b"\r\n\r\n")
