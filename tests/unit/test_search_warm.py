"""The search process loads its embedder's model behind its ready answer
(kontex/local/search_process.py, ``warm``): a loaded model is said once, an embedder with nothing
to load is left alone, and a model that fails to load is logged, not raised (the first
embedding fails the same way, where its caller sees it)."""

from __future__ import annotations

import logging

import pytest

from kontex.local.search_process import warm


class Loads:
    def __init__(self, result: bool = True, error: Exception | None = None) -> None:
        self.calls = 0
        self.result, self.error = result, error

    def warm(self) -> bool:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.result


def test_a_model_loaded_now_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    embedder = Loads()
    with caplog.at_level(logging.INFO, logger="kontex.dev"):
        warm(embedder)
    assert embedder.calls == 1
    assert [r.getMessage() for r in caplog.records][0].startswith(
        "search: the embedding model loaded in "
    )


def test_a_model_loaded_already_is_not_said(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kontex.dev"):
        warm(Loads(result=False))
    assert caplog.records == []


def test_an_embedder_with_nothing_to_load_is_left_alone() -> None:
    warm(object())  # Voyage AI's client: no ``warm``, nothing called, nothing raised


def test_a_model_that_fails_to_load_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    embedder = Loads(error=OSError("model file unreadable"))
    with caplog.at_level(logging.INFO, logger="kontex.dev"):
        warm(embedder)
    assert embedder.calls == 1
    assert caplog.records[0].levelno == logging.ERROR
    assert "did not load" in caplog.records[0].getMessage()
