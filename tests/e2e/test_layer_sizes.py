"""The Lambda layers as `make build` makes them (layers/build.py: pip's wheels for arm64 and
Python 3.12, from the package registry), checked against Lambda's 250 MB unzipped limit for
every function with its layers. The wheels grow from release to release: this fails CI when
they no longer fit, before a deploy does.

And the layers built for this host (its Python and architecture, as bench/coldstart.py --layers
uses them), with bytecode for what the cold starts import: valid checked-hash ``.pyc`` that
Python loads without compiling anything from a layer."""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "layers"))
import build  # noqa: E402
import cold_start  # noqa: E402

sys.path.pop(0)

pytestmark = pytest.mark.slow

HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
HOST_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_every_function_with_its_layers_fits_lambdas_limit(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "layers" / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    rows = [line for line in done.stdout.splitlines() if line.startswith("function ")]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the api and the workers are also checked with the search layer and each embedder
    assert sum("+search+" in row for row in rows) == 4, rows
    # with the bytecode, whatever the build could make of it, and the margin shown
    assert rows and all(" ok, " in row and " to spare" in row for row in rows), rows
    # the AWS SDK is the runtime's, not the layer's
    assert not (tmp_path / "layers" / "core" / "python" / "botocore").exists()
    # one line on the bytecode; where this host cannot make it (no python3.12 for arm64 Linux),
    # it says so and how to get it, and the build still succeeds
    said = [line for line in done.stdout.splitlines() if line.startswith("bytecode: ")]
    assert len(said) == 1, done.stdout
    if said[0].startswith("bytecode: none"):
        assert "python3.12 on PATH" in said[0], said
        assert not list((tmp_path / "layers").rglob("*.pyc"))


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The layers built for this host, with this interpreter making the bytecode: the layers
    folder and the build's output."""
    out = tmp_path_factory.mktemp("host-layers")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "layers" / "build.py"),
            "--out",
            str(out),
            "--python-version",
            HOST_VERSION,
            "--arch",
            HOST_ARCH,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    # (the exit status is the host's wheels against 250 MB, not Lambda's: not checked here)
    assert "layer minilm" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "layers", done.stdout


def _probed(layers: Path, scratch: Path) -> tuple[dict[str, tuple[str, cold_start.Lambda]], dict]:
    """Each function's probe (its body and where it runs: over its built layers, nothing
    written), and the api's environment."""
    sdk = cold_start.runtime_sdk(scratch)
    empty = scratch / "task"
    empty.mkdir()

    def where(names: tuple[str, ...], task: Path) -> cold_start.Lambda:
        return cold_start.Lambda(task, (cold_start.merged_site(layers, names, scratch), sdk))

    api_env, key = cold_start.api_data(str(scratch / "data"), where(("core",), empty))
    probes = {}
    for name, path in cold_start.handlers().items():
        for embedder in build.EMBEDDERS if name in ("api", "workers/embed") else ("minilm",):
            probes[f"{name} {embedder}"] = (
                cold_start.probe_body(name, path, path.parent, key),
                where(cold_start.layers_of(name, embedder), path.parent),
            )
    return probes, api_env


def test_the_build_compiles_what_the_cold_starts_import(
    host_build: tuple[Path, str], tmp_path: Path
) -> None:
    layers, output = host_build
    said = [line for line in output.splitlines() if line.startswith("bytecode: ")]
    assert len(said) == 1 and said[0].startswith("bytecode: compiled by "), output
    assert f"(core {len(list((layers / 'core').rglob('*.pyc')))}," in said[0], said
    assert "; bytecode " in next(r for r in output.splitlines() if r.startswith("layer core")), (
        output
    )
    probes, api_env = _probed(layers, tmp_path)
    imported: set[Path] = set()
    for row, (body, where) in probes.items():
        env = api_env if row.startswith("api ") else None
        imported.update(cold_start.imported_files(body, where, env))
    sources = sorted(
        f for f in imported if f.is_relative_to(layers.resolve()) and f.suffix == ".py"
    )
    assert len(sources) > 200, sources  # kontex, pydantic, Powertools, uvicorn, httpx...
    for source in sources:  # every module the cold starts load has its bytecode
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), source
    compiled = sorted((layers / "core").rglob("*.pyc"))
    for cached in compiled:
        source = Path(importlib.util.source_from_cache(str(cached)))
        data = cached.read_bytes()
        assert data[:4] == importlib.util.MAGIC_NUMBER, cached
        # hash-based (bit 0), checked against the source (bit 1), the hash of this source
        assert int.from_bytes(data[4:8], "little") == 0b11, cached
        assert data[8:16] == importlib.util.source_hash(source.read_bytes()), cached
    # only those (and the modules whose import fails, which leave sys.modules: httpcore's
    # HTTP/2 and SOCKS ones), not the whole layer, whose bytecode would not fit with minilm
    assert len(compiled) < len(list((layers / "core").rglob("*.py"))) / 3, len(compiled)
    assert not list((layers / "core" / "python" / "uvicorn").glob("__pycache__/main.*.pyc"))


# A probe that prints what importlib compiled from source (cold_start.COMPILES: the "compile"
# audit event, raised whenever a module has no bytecode it can use), under the layers
AUDITED = (
    cold_start.COMPILES
    + """
import importlib.util, json
{body}
{more}
print(json.dumps([f for f in _compiled if f.startswith({layers!r})]))
"""
)


def test_a_cold_start_over_the_built_layers_compiles_nothing(
    host_build: tuple[Path, str], tmp_path: Path
) -> None:
    layers, _ = host_build
    probes, api_env = _probed(layers, tmp_path)
    under = str(tmp_path)  # the merged sites: what the probes load the layers' modules from

    def compiled(body: str, where: cold_start.Lambda, env: dict | None, more: str = "") -> list:
        done = subprocess.run(
            [*where.command(), "-c", AUDITED.format(layers=under, body=body, more=more)],
            capture_output=True,
            text=True,
            env={**cold_start.ENV, **(env or {}), **where.env()},
            cwd=where.task,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    for row, (body, where) in probes.items():
        assert compiled(body, where, api_env if row.startswith("api ") else None) == [], row
    # the check sees a compile: a module of the layer no cold start imports is compiled
    body, where = probes["proxy minilm"]
    late = compiled(body, where, None, more="import uvicorn.main")
    assert late and late[0].endswith("/opt-core/uvicorn/main.py"), late
