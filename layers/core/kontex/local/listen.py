"""``kontex dev``'s listening socket, bound before anything slow (migrations, the search model):
a port it cannot have is one line naming the cause and the fix, within a second or two.

Only the standard library here: the check runs before the heavy imports of the server.
"""

from __future__ import annotations

import errno
import json
import socket
import urllib.request

from kontex.domain.errors import KontexError

PROBE_SECONDS = 0.5  # how long the busy port's /health may take to answer
SUGGESTIONS = 20  # ports after the busy one tried for a free one to propose


class PortUnavailable(KontexError):
    """The host and port cannot be listened on; the message says why and what to do."""

    code = "port_unavailable"


def new_socket(host: str) -> socket.socket:
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # socket says it is TCP; without it every answer (head, then body) met a 40 ms delayed ACK
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free one), or ``PortUnavailable``."""
    sock = new_socket(host)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise PortUnavailable(refusal(host, port, error)) from None
    return sock


def listen(sock: socket.socket, host: str, port: int) -> None:
    """Listen on a bound socket: two processes may both bind a port (``SO_REUSEADDR``) before
    either listens; the second to listen is refused here, as a bind would be."""
    try:
        sock.listen(socket.SOMAXCONN)
    except OSError as error:
        raise PortUnavailable(refusal(host, port, error)) from None


def refusal(host: str, port: int, error: OSError) -> str:
    """One line: why ``host:port`` cannot be listened on, and the fix."""
    if isinstance(error, socket.gaierror):
        return f"cannot listen on {host}: no such host ({error.strerror}); give --host 127.0.0.1"
    if error.errno == errno.EADDRINUSE:
        return busy(host, port)
    if error.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} (ports below 1024 need root): pick another"
            f" with {_port_options(free_port(host, 8787))}"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}: it is not an address of this machine; give --host"
            " 127.0.0.1 (make dev HOST=127.0.0.1)"
        )
    return f"cannot listen on {host}:{port}: {error.strerror or error}"


def busy(host: str, port: int) -> str:
    where = f"port {port} on {host} is already in use"
    health = f"http://{_url_host(host)}:{port}/health"
    version = kontex_version(health)
    options = _port_options(free_port(host, port + 1))
    if version is not None:
        return (
            f"{where}: a Kontex server (kontex {version}) answers {health}; use it, or stop it,"
            f" or start another on a free port: {options}"
        )
    return (
        f"{where} by another program (no Kontex server answered {health} within"
        f" {PROBE_SECONDS:g} s); stop it, or pick a free port: {options}"
    )


def kontex_version(health_url: str) -> str | None:
    """The version a Kontex server reports at ``/health``; None when nothing like it answers."""
    try:
        with urllib.request.urlopen(health_url, timeout=PROBE_SECONDS) as answer:
            body = json.loads(answer.read(4096))
    except (OSError, ValueError):
        return None
    if isinstance(body, dict) and body.get("status") == "ok" and "version" in body:
        return str(body["version"])
    return None


def free_port(host: str, start: int) -> int | None:
    """A port from ``start`` on that could be bound right now, if one is found quickly."""
    for port in range(start, min(start + SUGGESTIONS, 65536)):
        sock = new_socket(host)
        try:
            sock.bind((host, port))
        except OSError:
            continue
        finally:
            sock.close()
        return port
    return None


def _port_options(port: int | None) -> str:
    shown = str(port) if port is not None else "<port>"
    return f"kontex dev --port {shown} (make dev PORT={shown})"


def _url_host(host: str) -> str:
    """Where to reach a server listening on ``host`` (the wildcard addresses: loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
