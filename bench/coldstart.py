"""Cold-start import cost of each Lambda handler, against a bare Powertools resolver.

    python bench/coldstart.py [--runs 9] [--json] [--function api,proxy] [--clock wall|cpu]
                              [--layers DIR [--embedder minilm|voyage]]

Each measurement is a fresh interpreter that imports one ``functions/<name>`` handler module
(as the Lambda runtime does at an environment's first invocation) and reports the seconds the
import took; the figure is the median of ``--runs``. The baseline imports Powertools' logger and
an ``APIGatewayHttpResolver`` with nothing behind it. The issue's target: each handler at most
2x the baseline.

The ``api`` row is import plus a real first answer: ``GET /v1/sessions`` with a key, through
``lambda_handler``, on a SQLite data dir made (and its key created) before the timed processes,
with ``AWS_LAMBDA_FUNCTION_NAME`` set as in Lambda; the 200 is checked. ``--function api`` times
that row only.

``--layers DIR`` adds the functions as they run on AWS: each timed process sees exactly what its
Lambda function has, not the dev venv. ``DIR`` is what ``layers/build.py`` wrote
(``<out>/layers``), built for this host's Python and architecture::

    python layers/build.py --out .build/host --python-version 3.11 --arch x86_64
    python bench/coldstart.py --layers .build/host/layers

The interpreter runs without ``site`` (no venv), with ``sys.path`` as Lambda makes it: the
function's folder (copied without bytecode, as its asset is zipped), then its layers merged into
one folder as Lambda extracts them under ``/opt/python`` (``layers_of``: the core layer, and for
``api`` and ``workers/embed`` the search layer and an embedder's, ``--embedder``; the proxy's
Web Adapter layer holds no Python), then the AWS SDK the runtime provides (``boto3``,
``botocore``, ``s3transfer``, ``jmespath``, which the build leaves out of the core layer: taken
from this venv). The baseline runs the same way on the core layer (which carries Powertools).
Two figures per row: ``as built``, the layers' sources only (the build ships no bytecode, and
``/opt`` is read-only in Lambda, so every cold start compiles every module it imports from a
layer), and ``+bytecode``, the same files with bytecode for this interpreter (made by a warm-up
run into a ``PYTHONPYCACHEPREFIX`` folder), what a layer shipping its ``.pyc`` would give.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"

BASELINE = """
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
app = APIGatewayHttpResolver()
"""

TIMED = """
import importlib.util, sys, time
started = time.{clock}()
{body}
print(time.{clock}() - started)
"""
# --clock: the wall clock (what a caller waits), or the process's CPU time (what other work on
# the machine disturbs less)
CLOCKS = {"wall": "perf_counter", "cpu": "process_time"}

HANDLER = """
sys.path.insert(0, {folder!r})
spec = importlib.util.spec_from_file_location({name!r}, {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules[{name!r}] = module
spec.loader.exec_module(module)
{extra}
"""
# The module a function's runtime loads first, when not handler.py: the proxy's process is
# server.py (run.sh), which imports handler.py (the ASGI app) and uvicorn's server.
ENTRY = {"proxy": "server.py"}
# What a function imports on its first request beyond its module: the modules the proxy's
# first call needs are counted here.
FIRST_REQUEST = {
    "proxy": "import kontex.bootstrap, kontex.services.proxy, kontex.services.limits, "
    "kontex.adapters.http_upstream, kontex.domain.model_calls.openai",
    # the REST function's first answer (its routers load with the first request under them)
    "api": """
class Context:
    function_name = "kontex-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:kontex-api"
    aws_request_id = "bench"
answer = module.lambda_handler({event}, Context())
assert answer["statusCode"] == 200, answer
""",
}
# The api's first request: an API Gateway HTTP API (payload 2.0) event, with {key} filled in
FIRST_EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/v1/sessions",
    "rawQueryString": "limit=10",
    "headers": {"authorization": "Bearer {key}", "host": "localhost"},
    "queryStringParameters": {"limit": "10"},
    "requestContext": {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": "localhost",
        "http": {
            "method": "GET",
            "path": "/v1/sessions",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "bench",
        },
        "requestId": "bench",
        "routeKey": "$default",
        "stage": "$default",
        "time": "04/Dec/2026:00:00:00 +0000",
        "timeEpoch": 0,
    },
    "body": "",
    "isBase64Encoded": False,
}


# What Lambda's Python runtime has on its path: the AWS SDK (layers/build.py, IN_THE_RUNTIME)
IN_THE_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath")
EMBEDDERS = ("minilm", "voyage")


def layers_of(name: str, embedder: str) -> tuple[str, ...]:
    """The layers (``layers/build.py``'s names) of a function, as ``infra/`` gives them: every
    function the core layer (infra/stack.py); the api and the embed worker also the search
    layer and the stage's embedder (infra/search.py, when a vector store is configured); the
    proxy also AWS's Web Adapter (a binary, no Python: infra/api.py)."""
    if name in ("api", "workers/embed"):
        return ("core", "search", embedder)
    return ("core",)


def merged_site(layers_dir: Path, layers: tuple[str, ...], into: Path) -> Path:
    """The layers' ``python/`` folders joined into one, as Lambda extracts each layer under
    ``/opt``: symlinks, one per top-level entry (layers/build.py leaves no top-level name in two
    layers)."""
    site = into / ("opt-" + "-".join(layers))
    if site.exists():
        return site
    site.mkdir(parents=True)
    for layer in layers:
        folder = layers_dir / layer / "python"
        if not folder.is_dir():
            raise SystemExit(f"no {folder}: build the layers first (layers/build.py)")
        for entry in folder.iterdir():
            link = site / entry.name
            if link.is_symlink():
                link.unlink()
            link.symlink_to(entry.resolve())
    return site


def runtime_sdk(into: Path) -> Path:
    """The AWS SDK as the runtime has it beside the layers: this venv's copy, linked."""
    import boto3

    packages = Path(boto3.__file__).resolve().parent.parent
    folder = into / "runtime"
    folder.mkdir(exist_ok=True)
    for name in IN_THE_RUNTIME:
        if not (folder / name).exists():
            (folder / name).symlink_to(packages / name)
    return folder


def stale_kontex(layers_dir: Path) -> list[str]:
    """The ``kontex`` files whose copy in the built core layer differs from this tree's."""
    tree = ROOT / "layers" / "core" / "kontex"
    built = layers_dir / "core" / "python" / "kontex"
    differ = []
    for source in sorted(tree.rglob("*")):
        if source.is_dir() or "__pycache__" in source.parts or source.suffix == ".pyc":
            continue
        copy = built / source.relative_to(tree)
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            differ.append(str(source.relative_to(tree)))
    return differ


def handlers() -> dict[str, Path]:
    found = {
        p.parent.name: p.parent / ENTRY.get(p.parent.name, p.name)
        for p in sorted(FUNCTIONS.glob("*/handler.py"))
    }
    found.update({f"workers/{p.stem}": p for p in sorted((FUNCTIONS / "workers").glob("*.py"))})
    return found


# As the stack sets them for every function (infra/functions.py): PYDANTIC_DISABLE_PLUGINS spares
# pydantic's scan of every installed package's entry points at the first model it builds
ENV = {
    "POWERTOOLS_SERVICE_NAME": "bench",
    "AWS_REGION": "eu-west-1",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
    "PATH": "",
}


@dataclass(frozen=True)
class Lambda:
    """How a timed process sees the world as on AWS: no ``site``, ``sys.path`` = the function's
    folder, its layers, the runtime's SDK; ``pycache`` a bytecode folder (None: sources only,
    nothing written, as on Lambda's read-only ``/opt``)."""

    task: Path
    path: tuple[Path, ...]
    pycache: Path | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-S", "-X", "frozen_modules=on"]

    def env(self) -> dict[str, str]:
        env = {"PYTHONPATH": os.pathsep.join(str(p) for p in (self.task, *self.path))}
        if self.pycache is None:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        return env


def measure(
    body: str,
    runs: int,
    env: dict[str, str] | None = None,
    where: Lambda | None = None,
    clock: str = "wall",
) -> float:
    command = [sys.executable, "-X", "frozen_modules=on"] if where is None else where.command()
    extra = {} if where is None else where.env()
    if where is not None and where.pycache is not None:  # the warm-up run writes the bytecode
        runs += 1
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [*command, "-c", TIMED.format(body=body, clock=CLOCKS[clock])],
            capture_output=True,
            text=True,
            env={**ENV, **(env or {}), **extra},
            cwd=None if where is None else where.task,
        )
        if out.returncode:
            raise SystemExit(out.stderr)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    if where is not None and where.pycache is not None:
        times = times[1:]
    return statistics.median(times)


def api_data(folder: str) -> tuple[dict[str, str], str]:
    """A SQLite data dir for the api's first request, migrated, with one key (made in another
    process, so nothing of it is warm in the timed ones)."""
    env = {"KONTEX_DATA_DIR": folder, "KONTEX_API_KEY_SECRET": "bench-coldstart"}
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kontex.bootstrap import container\n"
            "from kontex.services import keys\n"
            "container().migrate()\n"
            "print(keys.create_key(container().deps, 'bench')[1])",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**ENV, **env, "PATH": os.environ.get("PATH", "")},
    )
    # the timed processes run as in Lambda (no `kontex dev` topic to look for; untraced, as an
    # invocation X-Ray does not sample)
    return {**env, "AWS_LAMBDA_FUNCTION_NAME": "kontex-api"}, made.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--function", help="time only these functions (comma-separated, e.g. api,proxy)"
    )
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument(
        "--layers",
        type=Path,
        help="also time each function with exactly its built layers (layers/build.py's "
        "<out>/layers, built for this host's Python and architecture)",
    )
    parser.add_argument("--embedder", choices=EMBEDDERS, default="minilm")
    args = parser.parse_args()
    if args.layers is not None:
        args.layers = args.layers.resolve()
        stale = stale_kontex(args.layers)
        if stale:
            raise SystemExit(
                f"the core layer's kontex differs from this tree's ({', '.join(stale[:5])}"
                f"{'...' if len(stale) > 5 else ''}): rebuild it (layers/build.py)"
            )
    modes = ["venv"] + (["as built", "+bytecode"] if args.layers is not None else [])
    baseline: dict[str, float] = {}
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="kontex-coldstart-") as folder:
        scratch = Path(folder)
        api_env, key = api_data(str(scratch / "data"))

        def where(mode: str, layers: tuple[str, ...], task: Path) -> Lambda | None:
            if mode == "venv":
                return None
            path = (merged_site(args.layers, layers, scratch), runtime_sdk(scratch))
            pycache = scratch / "pycache" if mode == "+bytecode" else None
            return Lambda(task, path, pycache)

        for mode in modes:
            empty = scratch / "task-baseline"
            empty.mkdir(exist_ok=True)
            found = where(mode, ("core",), empty)
            baseline[mode] = measure(BASELINE, args.runs, where=found, clock=args.clock)
        for name, path in handlers().items():
            if args.function and name not in args.function.split(","):
                continue
            extra = FIRST_REQUEST.get(name, "")
            if name == "api":
                event = json.loads(json.dumps(FIRST_EVENT).replace("{key}", key))
                extra = extra.replace("{event}", repr(event))
            for mode in modes:
                task = path.parent
                if mode != "venv":  # the function's asset: its folder, no bytecode
                    task = scratch / "task" / name.replace("/", "-")
                    if not task.exists():
                        shutil.copytree(
                            path.parent, task, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                        )
                body = HANDLER.format(
                    folder=str(task), name=path.stem, path=str(task / path.name), extra=extra
                )
                env = api_env if name == "api" else None
                found = where(mode, layers_of(name, args.embedder), task)
                rows.setdefault(name, {})[mode] = measure(body, args.runs, env, found, args.clock)
    if args.json:
        print(json.dumps({"clock": args.clock, "baseline_s": baseline, "handlers_s": rows}))
        return 0
    print(
        f"import time (api: + first answer), median of {args.runs} fresh processes"
        + (", CPU time" if args.clock == "cpu" else "")
    )
    if args.layers is not None:
        print(
            f"venv: the dev venv; as built: the function's layers from {args.layers} "
            f"(embedder {args.embedder}), sources only; +bytecode: the same with .pyc"
        )
    print(f"  {'':28}" + "".join(f" {mode:>20}" for mode in modes))
    cells = "".join(f" {baseline[m] * 1000:8.1f} ms   1.00x" for m in modes)
    print(f"  {'bare Powertools resolver':28}{cells}")
    for name, seconds in rows.items():
        cells = ""
        over = []
        for mode in modes:
            ratio = seconds[mode] / baseline[mode]
            cells += f" {seconds[mode] * 1000:8.1f} ms  {ratio:5.2f}x"
            if ratio > 2:
                over.append(mode)
        flag = f"   over the 2x target ({', '.join(over)})" if over else ""
        print(f"  {name:28}{cells}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
