"""Generate the API's response shapes from the server's ``/v1/openapi.json`` (made in process
from the app, ``kontex.api.rest.openapi_json``; the server's models in ``kontex/api/shapes.py``
are the source):

- ``kontex_client/_api_models.py``: pydantic models, by datamodel-code-generator;
- ``web/src/api.gen.ts``: TypeScript types, by openapi-typescript (web/node_modules).

Only the schemas that responses use are generated (not the request bodies). For the Python
client, a bundle's content (messages, tool calls, files, log events) and the graph's nodes and
edges stay plain dicts, as the client has always given them, the server's constraints
(minimum, pattern...) are left out (the client checks the types of what it reads), a field
with a default or null may be absent, and an enum also takes any other string (an answer of a
newer server still reads).

    python clients/python/scripts/gen_models.py [--check]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _generated import finish, ruff

ROOT = Path(__file__).resolve().parents[3]
PY_TARGET = ROOT / "clients" / "python" / "kontex_client" / "_api_models.py"
TS_TARGET = ROOT / "web" / "src" / "api.gen.ts"
REF = "#/components/schemas/"
EXTRA = ["LiveEvent"]  # not a route's answer: the live feed's pushed event
PLAIN_IN_PYTHON = {
    "Message",
    "ToolCall",
    "ContextFile",
    "LogEvent",
    "GraphNode",
    "GraphEdge",
}
# a client reads what the server answers: it checks types, not the server's constraints
CONSTRAINTS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength"}
CONSTRAINTS |= {"maxLength", "pattern"}
HEADER = "Generated from /v1/openapi.json by clients/python/scripts/gen_models.py: do not edit."


def openapi() -> dict[str, Any]:
    from kontex.api.rest import build_resolver, openapi_json

    document: dict[str, Any] = json.loads(openapi_json(build_resolver()))
    return document


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(REF) :]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _any_json(node: Any) -> Any:
    """``JsonValue`` (the server's word for any JSON it can store: no NUL, no huge number) as
    any JSON, and no rules of what the server takes: a client reads what the server stored,
    as it has always typed it."""
    if isinstance(node, dict):
        if node.get("$ref") == f"{REF}JsonValue":
            return {k: v for k, v in node.items() if k != "$ref"}
        # an anyOf beside properties only says which must be present (LogEvent: a message or a
        # type): a rule of what the server takes, not a type of what it answers
        constraints = {"propertyNames", "anyOf"} if "properties" in node else {"propertyNames"}
        out = {k: _any_json(v) for k, v in node.items() if k not in constraints}
        if out.get("additionalProperties") == {}:
            out["additionalProperties"] = True
        return out
    if isinstance(node, list):
        return [_any_json(v) for v in node]
    return node


def responses_only(document: dict[str, Any]) -> dict[str, Any]:
    """The document's schemas reachable from a success response (and ``EXTRA``), no paths."""
    schemas = document["components"]["schemas"]
    todo = set(EXTRA)
    for operations in document["paths"].values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code.startswith("2"):
                    todo |= _refs(response)
    kept: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name not in kept and name in schemas:
            kept[name] = schemas[name]
            todo |= _refs(schemas[name])
    ordered = {name: _any_json(kept[name]) for name in sorted(kept) if name != "JsonValue"}
    return {**document, "paths": {}, "components": {"schemas": ordered}}


def _nullable(schema: dict[str, Any]) -> bool:
    return any(option.get("type") == "null" for option in schema.get("anyOf", []))


def _tolerant(node: dict[str, Any]) -> dict[str, Any]:
    """An object whose fields with a default, or null, may be absent (read as the default or
    None), so an older server's answer still reads."""
    properties = node["properties"]
    optional = {n for n, p in properties.items() if "default" in p or _nullable(p)}
    node["required"] = [n for n in node["required"] if n not in optional]
    for name in optional:
        properties[name].setdefault("default", None)
    return node


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref[len(REF) :] in PLAIN_IN_PYTHON:
            return {"type": "object", "additionalProperties": True}
        out = {k: _plain(v) for k, v in node.items() if k not in CONSTRAINTS}
        if out.get("type") == "string" and "enum" in out:
            # read leniently: a newer server may answer a value this client does not know yet
            known = {"type": "string", "enum": out.pop("enum")}
            out.pop("type")
            return {**out, "anyOf": [known, {"type": "string"}]}
        return _tolerant(out) if "properties" in out and "required" in out else out
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def python_models(document: dict[str, Any]) -> str:
    schemas = {
        name: _plain(schema)
        for name, schema in document["components"]["schemas"].items()
        if name not in PLAIN_IN_PYTHON | {"GraphNodeData", "Position"}  # only in GraphNode
    }
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "openapi.json", Path(tmp) / "models.py"
        source.write_text(json.dumps({**document, "components": {"schemas": schemas}}))
        subprocess.run(
            [
                *[sys.executable, "-m", "datamodel_code_generator"],
                *["--input", str(source), "--input-file-type", "openapi"],
                *["--output", str(out), "--output-model-type", "pydantic_v2.BaseModel"],
                *["--target-python-version", "3.11", "--use-union-operator"],
                *["--use-standard-collections", "--enum-field-as-literal", "all"],
                *["--extra-fields", "allow", "--allow-population-by-field-name"],
                *["--use-schema-description", "--use-field-description", "--field-constraints"],
                "--strict-nullable",
                *["--disable-timestamp", "--custom-file-header", f"# {HEADER}"],
                *["--formatters", "builtin", "--collapse-root-models"],
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        text = out.read_text()
    text = ruff(text, PY_TARGET, ["check", "--fix", "--quiet", "--exit-zero"], ["format"])
    return text


def typescript_types(document: dict[str, Any]) -> str:
    web = ROOT / "web"
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "openapi.json", Path(tmp) / "api.gen.ts"
        source.write_text(json.dumps(document))
        subprocess.run(
            ["npx", "--no-install", "openapi-typescript", str(source), "-o", str(out)],
            cwd=web,
            check=True,
            capture_output=True,
            text=True,
        )
        text = out.read_text()
    return f"// {HEADER}\n" + text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args()
    document = responses_only(openapi())
    files = {PY_TARGET: python_models(document), TS_TARGET: typescript_types(document)}
    return finish(files, check=args.check, script=__file__)


if __name__ == "__main__":
    sys.exit(main())
