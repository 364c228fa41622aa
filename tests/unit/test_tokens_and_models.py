from __future__ import annotations

import pytest
from pydantic import ValidationError

from kontex import tokens
from kontex.domain.models import ContextFile, Message, ToolCall, sha256_hex, validate_thread_id


def test_cl100k_loads_offline_from_the_shipped_file() -> None:
    # Given the encoding built from the packaged file (no network here)
    enc = tokens.encoding()
    # Then it is the real cl100k_base: known ids for a known text
    assert enc.encode("hello world") == [15339, 1917]
    assert enc.n_vocab == 100277


def test_block_content_counts_text_and_json_blocks() -> None:
    text_only = tokens.count_content("The quick brown fox")
    blocks = tokens.count_content(
        [
            {"type": "text", "text": "The quick brown fox"},
            {"type": "tool_use", "id": "tu_1", "name": "read", "input": {"path": "a.py"}},
        ]
    )
    assert text_only == 4
    assert blocks > text_only


def test_message_keeps_blocks_and_unknown_keys_exactly() -> None:
    raw = {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "t1", "name": "x", "input": {"a": [1, {"b": None}]}}
        ],
        "name": "planner",
    }
    assert Message.model_validate(raw).model_dump(mode="json") == raw


def test_message_role_is_checked() -> None:
    with pytest.raises(ValidationError):
        Message(role="robot", content="hi")  # type: ignore[arg-type]


def test_file_hash_is_computed_and_checked() -> None:
    f = ContextFile(path="a.txt", content="abc")
    assert f.content_hash == sha256_hex(b"abc")
    with pytest.raises(ValidationError):
        ContextFile(path="a.txt", content="abc", content_hash="0" * 64)


def test_tool_call_status_is_success_or_error() -> None:
    assert ToolCall(id="1", tool="t").status == "success"
    with pytest.raises(ValidationError):
        ToolCall(id="1", tool="t", status="maybe")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("thread_id", "ok"),
    [
        ("thrd_" + "a" * 27, True),
        ("thrd_" + "A-9" * 19 + "xx", True),
        ("thrd_" + "a" * 26, False),
        ("thrd_" + "a" * 60, False),
        ("thrd_" + "a" * 26 + "_", False),
        ("thread_" + "a" * 30, False),
    ],
)
def test_thread_ids(thread_id: str, ok: bool) -> None:
    if ok:
        assert validate_thread_id(thread_id) == thread_id
    else:
        with pytest.raises(ValueError):
            validate_thread_id(thread_id)


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "<|endoftext|>",
        "a <|endoftext|> b<|fim_prefix|>c<|fim_middle|><|fim_suffix|> d <|endofprompt|>",
        "<|endoftext|><|endoftext|>\n\n  <|endoftext",
        "déjà vu 日本語 🙂\r\n\t  <|endofprompt|>x",
    ],
)
def test_special_token_text_is_counted_as_ordinary_text(text: str) -> None:
    # Given text that spells the encoding's special tokens
    enc = tokens.encoding()
    # Then it counts as encoding it with no special token allowed or refused does
    assert tokens.count_text(text) == len(enc.encode(text, disallowed_special=()))
    # and never as the special tokens themselves
    special = len(enc.encode(text, allowed_special="all"))
    if "<|endoftext|>" in text:
        assert tokens.count_text(text) > special
