"""What a new user installs (issue 24): set-up without warnings of the project's own making, and
a non-editable install (``pip install .``, or the wheel built from the sdist) whose ``kontex
dev`` serves the dashboard and runs the API, as the editable one does.

Slow (a fresh venv gets every dependency from the package index: about a minute): CI runs it,
``make test`` runs everything."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.e2e.stack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Lines no file of this project causes: the machine's pip configuration names index folders
# that may be absent, and PYTHONDONTWRITEBYTECODE turns setuptools' byte-compiling off.
NOT_OURS = re.compile(r"^WARNING: Location '.*' is ignored|byte-compiling is disabled")
WARNING = re.compile(r"warn|deprecat", re.IGNORECASE)


def warnings_in(output: str) -> list[str]:
    return [
        line for line in output.splitlines() if WARNING.search(line) and not NOT_OURS.search(line)
    ]


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This venv's pip (new enough to show a build backend's warnings) installing elsewhere."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_installing_both_packages_prints_no_warning_of_ours(tmp_path: Path) -> None:
    """`make` installs both packages editable: no `project.license` table (setuptools'
    deprecation, twice per package) and no import-finder notice for the client's flat layout."""
    python = fresh_venv(tmp_path / "venv")
    done = pip(python, "install", "--no-deps", "-e", str(ROOT), "-e", str(ROOT / "clients/python"))
    assert done.returncode == 0, done.stderr
    assert warnings_in(done.stdout + done.stderr) == []


def test_the_clients_langgraph_extra_runs_the_readmes_agent_imports(tmp_path: Path) -> None:
    """`pip install './clients/python[langgraph]'` is enough for the README's LangGraph
    example: KontexSaver and langgraph's create_react_agent (the extra lacked langgraph)."""
    python = fresh_venv(tmp_path / "venv")
    done = pip(python, "install", f"{ROOT / 'clients/python'}[langgraph]")
    assert done.returncode == 0, done.stderr[-3000:]
    imported = subprocess.run(
        [
            str(python),
            "-c",
            "from kontex_client.langgraph import KontexSaver\n"
            "from langgraph.prebuilt import create_react_agent",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr


def test_set_up_says_what_it_does() -> None:
    """A line per step of `make`'s set-up, and pip's own progress (not --quiet) for the long one."""
    done = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", ".venv/.installed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    install = next(i for i, line in enumerate(lines) if "pip install" in line and " -e " in line)
    assert "--quiet" not in lines[install] and " -q " not in lines[install]
    assert lines[install - 1].startswith('echo "make: [2/2] installing kontex')
    assert any("source .venv/bin/activate" in line for line in lines[install:])


def test_the_wheel_built_from_the_sdist_serves_the_dashboard(tmp_path: Path) -> None:
    """`pip install .` (here: the sdist, then the wheel built from it) into a new venv, then
    `kontex dev`: GET / is the dashboard, and the API answers behind it."""
    out = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert warnings_in(built.stdout + built.stderr) == []
    [sdist] = out.glob("kontex-*.tar.gz")
    [wheel] = out.glob("kontex-*.whl")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(n.endswith("/web/dist/index.html") for n in names)
    assert any(n.endswith("/functions/api/handler.py") for n in names)
    with zipfile.ZipFile(wheel) as archive:
        carried = set(archive.namelist())
        page = archive.read("kontex/local/dashboard/index.html")
    assert "kontex/local/functions/api/handler.py" in carried
    assert any(n.startswith("kontex/local/dashboard/assets/") for n in carried)

    python = fresh_venv(tmp_path / "venv")
    done = pip(python, "install", str(wheel))
    assert done.returncode == 0, done.stderr[-3000:]
    kontex = python.parent / "kontex"
    port = free_port()
    process = subprocess.Popen(
        [str(kontex), "dev", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,  # nowhere near the source tree
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(process, port)
        with urllib.request.urlopen(base + "/", timeout=30) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/html")
            assert answer.read() == page
        with urllib.request.urlopen(base + "/health", timeout=60) as answer:
            assert answer.status == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert f"serving {base}" in output
    where = subprocess.run(
        [
            str(python),
            "-c",
            "from kontex import functions, local; from kontex.local import static;"
            " print(static.web_dist()); print(functions.functions_dir())",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    venv = str(tmp_path / "venv")
    assert all(line.startswith(venv) for line in where.stdout.splitlines())  # not the source tree


def _wait_for(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read() if process.stdout else "exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("kontex dev did not start in 120 s")
