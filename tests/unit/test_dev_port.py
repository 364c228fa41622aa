"""`kontex dev` on a port it cannot have: exit status 2 within 2 s, one line on stderr naming
the cause and the fix (`--port`, `make dev PORT=`), no traceback, nothing set up (issue 24).

The port is held by a stand-in: a plain listener (another program), or a small HTTP server
answering ``/health`` as Kontex does (tests/e2e/test_dev_server.py holds it with a real
`kontex dev`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kontex import cli
from kontex.local import listen


def run_dev(port: int, data_dir: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kontex.cli",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - started


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"status": "ok", "version": "9.9.9"}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def kontex_like() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def assert_one_line_refusal(done: subprocess.CompletedProcess[str], seconds: float) -> str:
    assert done.returncode == 2, done.stderr
    assert seconds < 2.0, f"took {seconds:.2f} s"
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_port_another_program_holds_is_one_line_with_the_fix(
    listener: int, tmp_path: Path
) -> None:
    done, seconds = run_dev(listener, tmp_path / "data")
    line = assert_one_line_refusal(done, seconds)
    assert line.startswith(f"kontex: port {listener} on 127.0.0.1 is already in use")
    assert f"no Kontex server answered http://127.0.0.1:{listener}/health within 0.5 s" in line
    assert "kontex dev --port " in line and "make dev PORT=" in line
    assert not (tmp_path / "data").exists()  # checked before any set-up: nothing was made


def test_a_port_a_kontex_server_holds_says_so(kontex_like: int, tmp_path: Path) -> None:
    done, seconds = run_dev(kontex_like, tmp_path / "data")
    line = assert_one_line_refusal(done, seconds)
    assert f"a Kontex server (kontex 9.9.9) answers http://127.0.0.1:{kontex_like}/health" in line
    suggested = int(line.rsplit("make dev PORT=", 1)[1].rstrip(")"))
    assert suggested != kontex_like
    assert f"kontex dev --port {suggested} (make dev PORT={suggested})" in line
    assert not (tmp_path / "data").exists()


def test_a_bound_socket_is_refused_when_it_cannot_listen(listener: int) -> None:
    """Two `kontex dev` may both bind a port (SO_REUSEADDR) before either listens: the second
    to listen gets the same one-line refusal, not uvicorn's traceback."""
    sock = listen.new_socket("127.0.0.1")
    probe = listen.new_socket("127.0.0.1")
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    sock.bind(("127.0.0.1", port))  # both bound, neither listening: allowed
    probe.listen()
    with pytest.raises(listen.PortUnavailable, match=f"port {port} on 127.0.0.1 is already in"):
        listen.listen(sock, "127.0.0.1", port)
    sock.close()
    probe.close()


def test_other_bind_failures_name_their_cause(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dev", "--host", "192.0.2.1", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kontex: cannot listen on 192.0.2.1: it is not an address of this")
    assert "--host 127.0.0.1" in err and len(err.splitlines()) == 1
    if os.geteuid() != 0:  # root may bind any port
        assert cli.main(["dev", "--port", "80"]) == 2
        assert "ports below 1024 need root" in capsys.readouterr().err


def test_dev_says_how_to_put_kontex_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`make dev` runs .venv/bin/kontex; the README's commands say `kontex`: when the shell
    would not find this one, `kontex dev` says how to put it on PATH."""
    here = tmp_path / "venv" / "bin"
    here.mkdir(parents=True)
    for name in ("python", "kontex", "activate"):
        (here / name).write_text("")
    (here / "kontex").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(here / "python"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert cli._path_notes() == [
        "`kontex` is not on PATH: for the kontex commands, in another shell, `source"
        f" venv/bin/activate` (or `export PATH={here}:$PATH`) first"
    ]
    monkeypatch.setenv("PATH", f"{here}{os.pathsep}{tmp_path}")
    assert cli._path_notes() == []
