"""Cold-start import cost of each Lambda handler, against a bare Powertools resolver.

    python bench/coldstart.py [--runs 9] [--json] [--function api,proxy] [--clock wall|cpu]
                              [--layers DIR [--embedder minilm|voyage]]

Each measurement is a fresh interpreter that imports one ``functions/<name>`` handler module
(as the Lambda runtime does at an environment's first invocation) and reports the seconds the
import took. The processes run interleaved: each of ``--runs`` rounds starts one process of every
row in every mode, in an order rotated by one each round; a time is the median of the rounds',
and a ratio the median of the rounds' ratios (each process against the baseline's of its round
and mode), so that the machine's speed drifting during a run (on a shared VM the baseline moved
from 86 to 128 ms of CPU between two runs a minute apart) touches both sides of a ratio alike.
The baseline imports Powertools' logger and an ``APIGatewayHttpResolver`` with nothing behind
it. The issue's target: each handler at most 2x the baseline. Beside it, when the api is timed,
the same resolver with one route and its first answer to the api's first event
(``BASELINE_ANSWER``): the like-for-like baseline of the api's row, which is import plus first
answer (a bare resolver's first answer costs about a millisecond, so the two baselines differ
little).

The ``api`` row is import plus a real first answer: ``GET /v1/sessions`` with a key, through
``lambda_handler``, on a SQLite data dir made (and its key created) before the timed processes,
with ``AWS_LAMBDA_FUNCTION_NAME`` set as in Lambda; the 200 is checked. ``--function api`` times
that row only.

``--layers DIR`` adds the functions as they run on AWS: each timed process sees exactly what its
Lambda function has, not the dev venv. ``DIR`` is what ``layers/build.py`` wrote
(``<out>/layers``), built for this host's Python and architecture::

    python layers/build.py --out .build/host --python-version 3.11 --arch x86_64
    python bench/coldstart.py --layers .build/host/layers

The processes are ``layers/cold_start.py``'s import probe (which ``layers/build.py`` also runs,
to know which modules to ship bytecode for): without ``site`` (no venv), with ``sys.path`` as
Lambda makes it: the function's folder (copied without bytecode, as its asset is zipped), then
its layers merged into one folder as Lambda extracts them under ``/opt/python`` (``layers_of``:
the core layer, and for ``api`` and ``workers/embed`` the search layer and an embedder's,
``--embedder``; the proxy's Web Adapter layer holds no Python), then the AWS SDK the runtime
provides (``boto3``, ``botocore``, ``s3transfer``, ``jmespath``, which the build leaves out of
the core layer: taken from this venv). The baseline runs the same way on the core layer (which
carries Powertools). Two figures per row: ``as built``, the layers as the build made them,
nothing written (``/opt`` is read-only in Lambda): with the bytecode the build ships for what
the cold starts import when it had an interpreter of the target version, else sources only, so
that every cold start compiles every module it imports from a layer; and ``+bytecode``, the
same files with bytecode for everything, made by a warm-up run into a ``PYTHONPYCACHEPREFIX``
folder (which hides the layers' own ``__pycache__``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
# the import probe layers/build.py also runs (to know which modules to ship bytecode for)
from cold_start import (  # noqa: E402
    ENV,
    FIRST_EVENT,
    FIRST_REQUEST,
    Lambda,
    api_data,
    handlers,
    layers_of,
    merged_site,
    probe_body,
    runtime_sdk,
)

sys.path.pop(0)
EMBEDDERS = ("minilm", "voyage")

BASELINE = """
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
app = APIGatewayHttpResolver()
"""
# The same resolver with one route and its first answer to the api's first event: the api's row
# is import + first answer, so this is the like-for-like baseline of that row (printed beside
# the import-only one, which every row's ratio is taken against, as in earlier rounds)
BASELINE_ANSWER = (
    BASELINE
    + """
@app.get("/v1/sessions")
def sessions():
    return {"sessions": []}
"""
    + FIRST_REQUEST["api"].replace("module.lambda_handler", "app.resolve")  # its Context too
)

TIMED = """
import importlib.util, sys, time
started = time.{clock}()
{body}
print(time.{clock}() - started)
"""
# --clock: the wall clock (what a caller waits), or the process's CPU time (what other work on
# the machine disturbs less)
CLOCKS = {"wall": "perf_counter", "cpu": "process_time"}
Key = tuple[str, str]  # (row, mode)
BASE, ANSWERING = "(baseline)", "(baseline answering)"


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


@dataclass
class Probe:
    """One row's process in one mode: the code it runs, its environment and where it runs."""

    body: str
    env: dict[str, str] | None = None
    where: Lambda | None = None


def run_once(probe: Probe, clock: str) -> float:
    """One fresh process of ``probe``: the seconds its timed part took."""
    where = probe.where
    command = [sys.executable, "-X", "frozen_modules=on"] if where is None else where.command()
    extra = {} if where is None else where.env()
    out = subprocess.run(
        [*command, "-c", TIMED.format(body=probe.body, clock=CLOCKS[clock])],
        capture_output=True,
        text=True,
        env={**ENV, **(probe.env or {}), **extra},
        cwd=None if where is None else where.task,
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return float(out.stdout.strip().splitlines()[-1])


def interleaved(probes: dict[Key, Probe], runs: int, clock: str) -> dict[Key, list[float]]:
    """``runs`` rounds, each one process of every probe, in an order rotated by one each round
    (none always runs right after the same other); a ``+bytecode`` probe first runs once
    untimed, writing its bytecode. The seconds of each probe, round by round."""
    for probe in probes.values():
        if probe.where is not None and probe.where.pycache is not None:
            run_once(probe, clock)
    keys = list(probes)
    times: dict[Key, list[float]] = {key: [] for key in keys}
    for round_ in range(runs):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            times[key].append(run_once(probes[key], clock))
    return times


def paired(times: list[float], base: list[float]) -> float:
    """The median of the rounds' ratios: each process against the baseline's of its round."""
    return statistics.median(t / b for t, b in zip(times, base, strict=True))


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
    probes: dict[Key, Probe] = {}
    with_api = not args.function or "api" in args.function.split(",")
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
            probes[(BASE, mode)] = Probe(BASELINE, where=found)
            if with_api:
                answering = BASELINE_ANSWER.replace("{event}", repr(FIRST_EVENT))
                probes[(ANSWERING, mode)] = Probe(answering, where=found)
        for name, path in handlers().items():
            if args.function and name not in args.function.split(","):
                continue
            for mode in modes:
                task = path.parent
                if mode != "venv":  # the function's asset: its folder, no bytecode
                    task = scratch / "task" / name.replace("/", "-")
                    if not task.exists():
                        shutil.copytree(
                            path.parent, task, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                        )
                body = probe_body(name, path, task, key)
                env = api_env if name == "api" else None
                found = where(mode, layers_of(name, args.embedder), task)
                probes[(name, mode)] = Probe(body, env, found)
        times = interleaved(probes, args.runs, args.clock)
    baseline = {m: statistics.median(times[(BASE, m)]) for m in modes}
    answered = {m: statistics.median(times[(ANSWERING, m)]) for m in modes if with_api}
    rows: dict[str, dict[str, float]] = {}
    ratios: dict[str, dict[str, float]] = {}
    for (name, mode), taken in times.items():
        if name not in (BASE, ANSWERING):
            rows.setdefault(name, {})[mode] = statistics.median(taken)
            ratios.setdefault(name, {})[mode] = paired(taken, times[(BASE, mode)])
    answering_ratio = {m: paired(times[(ANSWERING, m)], times[(BASE, m)]) for m in answered}
    if args.json:
        print(
            json.dumps(
                {
                    "clock": args.clock,
                    "baseline_s": baseline,
                    "baseline_answering_s": answered,
                    "handlers_s": rows,
                    "ratios": ratios,  # each the median of the rounds' ratios
                }
            )
        )
        return 0
    print(
        f"import time (api: + first answer), median of {args.runs} interleaved rounds of fresh"
        " processes; ratios: the median of the rounds' ratios"
        + (", CPU time" if args.clock == "cpu" else "")
    )
    if args.layers is not None:
        print(
            f"venv: the dev venv; as built: the function's layers from {args.layers} "
            f"(embedder {args.embedder}), as the build made them; +bytecode: the same with .pyc "
            "for all"
        )
    print(f"  {'':28}" + "".join(f" {mode:>20}" for mode in modes))
    cells = "".join(f" {baseline[m] * 1000:8.1f} ms   1.00x" for m in modes)
    print(f"  {'bare Powertools resolver':28}{cells}")
    for name, seconds in rows.items():
        cells = ""
        over = []
        for mode in modes:
            ratio = ratios[name][mode]
            cells += f" {seconds[mode] * 1000:8.1f} ms  {ratio:5.2f}x"
            if ratio > 2:
                over.append(mode)
        flag = f"   over the 2x target ({', '.join(over)})" if over else ""
        print(f"  {name:28}{cells}{flag}")
    if answered and "api" in rows:
        cells = "".join(f" {answered[m] * 1000:8.1f} ms  {answering_ratio[m]:5.2f}x" for m in modes)
        print(f"  {'bare resolver + 1st answer':28}{cells}")
        cells = "".join(
            f" {'':11}{paired(times[('api', m)], times[(ANSWERING, m)]):5.2f}x" for m in modes
        )
        print(f"  {'api / that (like for like)':28}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
