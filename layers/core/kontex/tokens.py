"""Token counts with tiktoken's ``cl100k_base``, loaded offline from the file shipped here.

tiktoken downloads its BPE files on first use; Lambda and the local stack may have no internet,
so the package carries ``data/cl100k_base.tiktoken`` (from tiktoken's public encoding files,
the same bytes, checked against tiktoken's own SHA-256) and builds the encoding from it.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from importlib import resources
from typing import Any

import tiktoken
from tiktoken.load import load_tiktoken_bpe

_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


_loading = threading.Lock()


def encoding() -> tiktoken.Encoding:
    """The cl100k encoding, loaded once per process (worker threads wait for the first)."""
    with _loading:
        return _load()


@cache
def _load() -> tiktoken.Encoding:
    path = resources.files("kontex") / "data" / "cl100k_base.tiktoken"
    with resources.as_file(path) as local:
        ranks = load_tiktoken_bpe(str(local), expected_hash=_CL100K_SHA256)
    return tiktoken.Encoding(
        name="cl100k_base", pat_str=_CL100K_PATTERN, mergeable_ranks=ranks, special_tokens=_SPECIAL
    )


def count_text(text: str) -> int:
    """Tokens of ``text``, special-token text (``<|endoftext|>``) counted as ordinary text:
    ``encode_ordinary``, which gives exactly ``encode(text, disallowed_special=())``'s tokens
    without looking for special tokens."""
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


def count_content(content: str | list[dict[str, Any]]) -> int:
    """Tokens of a message's content: text blocks by their text, other blocks as JSON."""
    if isinstance(content, str):
        return count_text(content)
    total = 0
    for block in content:
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            total += count_text(block["text"])
        elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            total += count_text(block["thinking"])
        else:
            total += count_text(json.dumps(block, ensure_ascii=False, sort_keys=True))
    return total
