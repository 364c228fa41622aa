"""Cold-start import cost of each Lambda handler, against a bare Powertools resolver.

    python bench/coldstart.py [--runs 9] [--json]

Each measurement is a fresh interpreter that imports one ``functions/<name>`` handler module
(as the Lambda runtime does at an environment's first invocation) and reports the seconds the
import took; the figure is the median of ``--runs``. The baseline imports Powertools' logger and
an ``APIGatewayHttpResolver`` with nothing behind it. The issue's target: each handler at most
2x the baseline.

The ``api`` row is import plus a real first answer: ``GET /v1/sessions`` with a key, through
``lambda_handler``, on a SQLite data dir made (and its key created) before the timed processes,
with ``AWS_LAMBDA_FUNCTION_NAME`` set as in Lambda; the 200 is checked. ``--function api`` times
that row only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
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


def handlers() -> dict[str, Path]:
    found = {p.parent.name: p for p in sorted(FUNCTIONS.glob("*/handler.py"))}
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


def measure(body: str, runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "frozen_modules=on", "-c", TIMED.format(body=body)],
            capture_output=True,
            text=True,
            env={**ENV, **(env or {})},
        )
        if out.returncode:
            raise SystemExit(out.stderr)
        times.append(float(out.stdout.strip().splitlines()[-1]))
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
    parser.add_argument("--function", help="time only this function (e.g. api)")
    args = parser.parse_args()
    baseline = measure(BASELINE, args.runs)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="kontex-coldstart-") as folder:
        api_env, key = api_data(folder)
        for name, path in handlers().items():
            if args.function and name != args.function:
                continue
            extra = FIRST_REQUEST.get(name, "")
            if name == "api":
                event = json.loads(json.dumps(FIRST_EVENT).replace("{key}", key))
                extra = extra.replace("{event}", repr(event))
            body = HANDLER.format(path=str(path), extra=extra)
            rows[name] = measure(body, args.runs, api_env if name == "api" else None)
    if args.json:
        print(json.dumps({"baseline_s": baseline, "handlers_s": rows}))
        return 0
    print(f"import time (api: + first answer), median of {args.runs} fresh processes")
    print(f"  {'bare Powertools resolver':28} {baseline * 1000:7.1f} ms   1.00x")
    for name, seconds in rows.items():
        ratio = seconds / baseline
        flag = "" if ratio <= 2 else "   over the 2x target"
        print(f"  {name:28} {seconds * 1000:7.1f} ms  {ratio:5.2f}x{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
