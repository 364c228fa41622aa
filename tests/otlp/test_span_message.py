"""``otlp.span.read_message``: a span queue message read as ``json.loads`` reads it, with each
span's own JSON text when the message is written as ingest writes it (the worker stores that
text as the span's body instead of encoding the span again)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kontex.otlp.span import body_of_text, read_message
from kontex.services.ingest import _message

SPANS = [
    {"trace_id": "t1", "span_id": "a", "attributes": {"x": 'say "hi", ]}'}, "events": []},
    {"trace_id": "t1", "span_id": "b", "attributes": {"n": 1.5, "u": "caf\u00e9 \u2603"}},
]


def _ingest(envelope: dict[str, Any], spans: list[dict[str, Any]]) -> str:
    return _message(envelope, [json.dumps(s, separators=(",", ":")) for s in spans])


@pytest.mark.parametrize(
    "envelope",
    [
        {"account_id": "acc_1", "session_id": None},
        {"account_id": "acc_1", "session_id": None, "session_name": 'a ,"spans":[ name\\'},
    ],
)
def test_an_ingest_message_gives_each_span_text(envelope: dict[str, Any]) -> None:
    text = _ingest(envelope, SPANS)
    message = read_message(text)
    texts = message.pop("span_texts")
    assert message == json.loads(text)
    assert texts == [json.dumps(s, separators=(",", ":")) for s in SPANS]
    assert [json.loads(t) for t in texts] == SPANS


def test_other_messages_are_read_whole_without_texts() -> None:
    for text in [
        json.dumps({"account_id": "acc_1", "retry_traces": ["t1"]}),
        json.dumps({"account_id": "acc_1", "spans": SPANS}),  # spaces: not ingest's
        json.dumps({"spans": SPANS, "account_id": "acc_1"}, separators=(",", ":")),
    ]:
        assert read_message(text) == json.loads(text)


def test_a_malformed_message_fails_as_json_loads_does() -> None:
    good = _ingest({"account_id": "acc_1"}, SPANS)
    for text in [good[:-3] + ",]}", good.replace("},{", "}{"), good[:-2] + "]]}"]:
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        with pytest.raises(json.JSONDecodeError):
            read_message(text)


def test_a_body_from_text_reads_back_as_the_span_with_when_it_came() -> None:
    text = json.dumps(SPANS[0], separators=(",", ":"))
    assert json.loads(body_of_text(text, 1.25, None)) == {**SPANS[0], "received_at": 1.25}
    named = json.loads(body_of_text(text, 2.5, 'x"y'))
    assert named == {**SPANS[0], "received_at": 2.5, "header_session_name": 'x"y'}
    assert json.loads(body_of_text("{}", 3.0, None)) == {"received_at": 3.0}
