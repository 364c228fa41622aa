"""What no route can store, refused before routing: a 400 in the error shape, never a 500.

PostgreSQL refuses NUL characters in text and JSONB, NaN and the infinities in JSONB, and
integers beyond 64 bits in BIGINT columns; Python's JSON parser accepts all of them, and a
value nested deeply enough exhausts the recursion limit. Numbers are refused beyond
``MAX_NUMBER`` whether written ``1e20`` or ``100000000000000000000``: JSON (and JSON Schema,
so the OpenAPI document, ``api/openapi.py``) sees one number in both. Both databases get the
same rule, so a request answered on SQLite is answered the same on PostgreSQL.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import unquote

from kontex.domain.errors import InvalidInput

MAX_DEPTH = 64
# Numbers within the range where a double holds every integer, as I-JSON (RFC 7493) asks: so
# JSON Schema (the OpenAPI document, api/openapi.py), JavaScript and both databases agree on
# each one, and BIGINT columns and their sums hold them.
MAX_NUMBER = 2**53 - 1


def _no_constants(name: str) -> Any:
    raise InvalidInput(f"the request body contains {name}, which JSON does not allow")


def problem_in(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored, or None."""
    if depth > MAX_DEPTH:
        return f"the request body is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return "a string contains a NUL character (\\u0000)" if "\x00" in value else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return None if -MAX_NUMBER <= value <= MAX_NUMBER else "a number is beyond ±(2^53-1)"
    if isinstance(value, list):
        return next((p for v in value if (p := problem_in(v, depth + 1))), None)
    if isinstance(value, dict):
        for key, inner in value.items():
            found = problem_in(key, depth + 1) or problem_in(inner, depth + 1)
            if found:
                return found
    return None


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no NUL, numbers within ±``MAX_NUMBER``, at most 64
    levels."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError:
        raise InvalidInput("the request body is not valid JSON") from None
    except RecursionError:
        raise InvalidInput(
            f"the request body is nested more than {MAX_DEPTH} levels deep"
        ) from None
    found = problem_in(value)
    if found:
        raise InvalidInput(found)
    return value


def check_request(event: dict[str, Any]) -> None:
    """Refuse a request whose path, query or JSON body holds what no route can store."""
    if "\x00" in unquote(event.get("rawPath") or ""):
        raise InvalidInput("the path contains a NUL character")
    for key, value in (event.get("queryStringParameters") or {}).items():
        if "\x00" in key or "\x00" in str(value):
            raise InvalidInput("a query parameter contains a NUL character")
    raw = event.get("body")
    if not raw:
        return
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if "json" not in headers.get("content-type", "application/json").lower():
        return
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("the request body is not valid base64") from None
    else:
        body = str(raw).encode("utf-8", "surrogatepass")
    parse_json(body)
