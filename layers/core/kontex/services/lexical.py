"""Sparse lexical vectors: BM25-style term weights, computed here, with IDF left to Qdrant.

A document's vector holds, for each distinct token, the BM25 term-frequency part
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``; the collection's sparse vector has
Qdrant's ``IDF`` modifier, so the inverse document frequency is applied at query time over the
points actually stored. A query's vector is 1 per distinct token.

Tokens are made for code and logs, so that an exact identifier is found: lower-cased words of
letters, digits and ``_``; each whole identifier with its parts (``parse_jwt_claims`` gives
``parse_jwt_claims``, ``parse``, ``jwt``, ``claims``; ``parseJwtClaims`` gives the same parts);
each dotted or slashed name whole (``src/auth/jwt.py``, ``e11000``, ``jwt.py``). Token ids are
the first 4 bytes of their BLAKE2b digest: stable across processes and versions (Python's
``hash`` is salted per process).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from kontex.ports import SparseVector

K1 = 1.2
B = 0.75
AVG_LEN = 120.0  # tokens in a typical chunk; only the length normalisation depends on it

_COMPOUND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/:]*[A-Za-z0-9_]|[A-Za-z0-9_]")
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is"}
    | {"it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will", "with"}
)


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` in order, compounds and their parts (see the module doc)."""
    out: list[str] = []
    for match in _COMPOUND.finditer(text):
        whole = match.group(0)
        lowered = whole.lower()
        parts: list[str] = []
        for word in _WORD.findall(whole):
            parts.extend(p.lower() for p in _CAMEL.findall(word))
        if "_" in whole:
            parts.extend(w.lower() for w in whole.replace("-", "_").split("_") if w)
            parts.extend(w.lower() for w in re.split(r"[.\-/:]", whole) if "_" in w)
        if lowered not in _STOP:
            out.append(lowered)
        out.extend(
            p for p in dict.fromkeys(parts) if len(p) > 1 and p != lowered and p not in _STOP
        )
    return out


def token_id(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "big")


def document_vector(text: str) -> SparseVector:
    found = tokens(text)
    if not found:
        return SparseVector([], [])
    counts = Counter(found)
    norm = K1 * (1 - B + B * len(found) / AVG_LEN)
    weights: dict[int, float] = {}
    for token, tf in counts.items():
        index = token_id(token)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    ordered = sorted(weights)
    return SparseVector(ordered, [weights[i] for i in ordered])


def query_vector(text: str) -> SparseVector:
    ordered = sorted({token_id(t) for t in tokens(text)})
    return SparseVector(ordered, [1.0] * len(ordered))
