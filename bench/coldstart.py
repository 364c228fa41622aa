"""Cold-start import cost of each Lambda handler, against a bare Powertools resolver.

    python bench/coldstart.py [--runs 9] [--json]

Each measurement is a fresh interpreter that imports one ``functions/<name>`` handler module
(as the Lambda runtime does at an environment's first invocation) and reports the seconds the
import took; the figure is the median of ``--runs``. The baseline imports Powertools' logger and
an ``APIGatewayHttpResolver`` with nothing behind it. The issue's target: each handler at most
2x the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
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
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""

HANDLER = """
spec = importlib.util.spec_from_file_location("handler", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["handler"] = module
spec.loader.exec_module(module)
{extra}
"""
# What a function imports on its first request beyond its module: the proxy's module only makes
# the ASGI app; uvicorn (server.py) and the modules its first call needs are counted here.
FIRST_REQUEST = {
    "proxy": "import uvicorn, kontex.bootstrap, kontex.services.proxy, kontex.services.limits, "
    "kontex.adapters.http_upstream, kontex.domain.model_calls.openai",
}


def handlers() -> dict[str, Path]:
    found = {p.parent.name: p for p in sorted(FUNCTIONS.glob("*/handler.py"))}
    found.update({f"workers/{p.stem}": p for p in sorted((FUNCTIONS / "workers").glob("*.py"))})
    return found


def measure(body: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "frozen_modules=on", "-c", TIMED.format(body=body)],
            capture_output=True,
            text=True,
            check=True,
            env={"POWERTOOLS_SERVICE_NAME": "bench", "AWS_REGION": "eu-west-1", "PATH": ""},
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    baseline = measure(BASELINE, args.runs)
    rows = {
        name: measure(HANDLER.format(path=str(path), extra=FIRST_REQUEST.get(name, "")), args.runs)
        for name, path in handlers().items()
    }
    if args.json:
        print(json.dumps({"baseline_s": baseline, "handlers_s": rows}))
        return 0
    print(f"import time, median of {args.runs} fresh processes")
    print(f"  {'bare Powertools resolver':28} {baseline * 1000:7.1f} ms   1.00x")
    for name, seconds in rows.items():
        ratio = seconds / baseline
        flag = "" if ratio <= 2 else "   over the 2x target"
        print(f"  {name:28} {seconds * 1000:7.1f} ms  {ratio:5.2f}x{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
