"""What each Lambda function imports at its cold start, as it runs on AWS: the import probe that
``bench/coldstart.py`` times and ``layers/build.py`` runs to know which modules to ship
bytecode for.

A probe is a fresh interpreter that imports one ``functions/<name>`` handler module (as the Lambda
runtime does at an environment's first invocation, or the proxy's ``server.py``, as its
``run.sh`` starts it) and does what the function does on its first request (``FIRST_REQUEST``:
for ``api`` a real first answer, ``GET /v1/sessions`` with a key, through ``lambda_handler``, on a
SQLite data dir made by ``api_data``). Over built layers (``Lambda``) it runs without ``site``,
with ``sys.path`` as Lambda makes it: the function's folder, then its layers merged into one
folder as Lambda extracts them under ``/opt/python`` (``layers_of``, ``merged_site``), then the
AWS SDK the runtime provides (``runtime_sdk``: this venv's copy, which the build leaves out of the
core layer).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"

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

# As the stack sets them for every function (infra/functions.py): PYDANTIC_DISABLE_PLUGINS spares
# pydantic's scan of every installed package's entry points at the first model it builds
ENV = {
    "POWERTOOLS_SERVICE_NAME": "bench",
    "AWS_REGION": "eu-west-1",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
    "PATH": "",
}


def handlers() -> dict[str, Path]:
    """Each function's first module, by its row name (``workers/<name>`` for the workers)."""
    found = {
        p.parent.name: p.parent / ENTRY.get(p.parent.name, p.name)
        for p in sorted(FUNCTIONS.glob("*/handler.py"))
    }
    found.update({f"workers/{p.stem}": p for p in sorted((FUNCTIONS / "workers").glob("*.py"))})
    return found


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


@dataclass(frozen=True)
class Lambda:
    """How a probe sees the world as on AWS: ``python`` run without ``site``, ``sys.path`` = the
    function's folder, its layers, the runtime's SDK; ``pycache`` a bytecode folder (None: only
    what the layers carry, nothing written, as on Lambda's read-only ``/opt``)."""

    task: Path
    path: tuple[Path, ...]
    pycache: Path | None = None
    python: str = sys.executable

    def command(self) -> list[str]:
        return [self.python, "-S", "-X", "frozen_modules=on"]

    def env(self) -> dict[str, str]:
        env = {"PYTHONPATH": os.pathsep.join(str(p) for p in (self.task, *self.path))}
        if self.pycache is None:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        return env


def api_data(folder: str, where: Lambda | None = None) -> tuple[dict[str, str], str]:
    """A SQLite data dir for the api's first request, migrated, with one key (made in another
    process, so nothing of it is warm in the probes; over the layers when ``where`` is given)."""
    env = {"KONTEX_DATA_DIR": folder, "KONTEX_API_KEY_SECRET": "bench-coldstart"}
    command = [sys.executable] if where is None else where.command()
    made = subprocess.run(
        [
            *command,
            "-c",
            "from kontex.bootstrap import container\n"
            "from kontex.services import keys\n"
            "container().migrate()\n"
            "print(keys.create_key(container().deps, 'bench')[1])",
        ],
        capture_output=True,
        text=True,
        env={
            **ENV,
            **env,
            "PATH": os.environ.get("PATH", ""),
            **({} if where is None else where.env()),
        },
        cwd=None if where is None else where.task,
    )
    if made.returncode:
        raise SystemExit(f"could not make the api's data dir: {made.stderr[-2000:]}")
    # the probes run as in Lambda (no `kontex dev` topic to look for; untraced, as an
    # invocation X-Ray does not sample)
    return {**env, "AWS_LAMBDA_FUNCTION_NAME": "kontex-api"}, made.stdout.strip().splitlines()[-1]


def probe_body(name: str, path: Path, task: Path, key: str) -> str:
    """The code a probe of function ``name`` runs (its first module at ``path``, from a copy of
    its folder at ``task``; ``key`` the api's key from ``api_data``), in a namespace that has
    ``importlib.util`` and ``sys`` imported."""
    import json

    extra = FIRST_REQUEST.get(name, "")
    if name == "api":
        event = json.loads(json.dumps(FIRST_EVENT).replace("{key}", key))
        extra = extra.replace("{event}", repr(event))
    return HANDLER.format(folder=str(task), name=path.stem, path=str(task / path.name), extra=extra)


# Before a probe's body: record the file of every module importlib compiles from its source
# (the "compile" audit event, called from importlib's frozen code; not a package's own compile()
# of a source to an AST, as anyio's lazy importer does), including modules whose import then
# fails and that leave sys.modules (httpcore's HTTP/2 and SOCKS modules without h2 or socksio)
COMPILES = """
import sys
_compiled = []
def _audit(event, args):
    if event == "compile" and sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
        _compiled.append(str(args[1]))
sys.addaudithook(_audit)
"""
# After it: those and the file of every module loaded, one JSON list
LOADED = """
import json as _json
_loaded = {getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}
print(_json.dumps(sorted(_loaded | set(_compiled))))
"""


def imported_files(body: str, where: Lambda, env: dict[str, str] | None = None) -> list[Path]:
    """The files (symlinks resolved) of every module a probe ``body`` loaded or compiled (the
    latter also when its import failed)."""
    script = COMPILES + "import importlib.util\n" + body + LOADED
    done = subprocess.run(
        [*where.command(), "-c", script],
        capture_output=True,
        text=True,
        env={**ENV, **(env or {}), **where.env()},
        cwd=where.task,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    import json

    names = json.loads(done.stdout.strip().splitlines()[-1])
    return sorted({Path(n).resolve() for n in names if n})
