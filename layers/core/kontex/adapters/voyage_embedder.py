"""The ``Embedder`` port on Voyage AI (the ``voyageai`` client; ``voyage-code-3`` by default).

Requests stay within Voyage's per-request limits: at most ``MAX_TEXTS`` texts and about
``MAX_TOKENS`` tokens each (counted with the shipped cl100k encoding plus a margin, since
Voyage's own tokenizer would be downloaded). A 429 is retried after the time its
``Retry-After`` asks (else an exponential backoff), as are connection failures and 5xx answers;
after ``ATTEMPTS`` tries the failure is ``Transient`` (the worker's record is retried by the
queue, the search route answers 503). A refused key is a configuration error, not retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kontex.domain.errors import KontexError, Transient

MAX_TEXTS = 128  # Voyage takes up to 1000; smaller requests retry cheaper
MAX_TOKENS = 100_000  # voyage-code-3 takes 120K tokens per request
TOKEN_MARGIN = 1.3  # cl100k counts fewer tokens than Voyage's tokenizer on code
ATTEMPTS = 5
MAX_WAIT_SECONDS = 60.0
DIMENSIONS = {
    "voyage-code-3": 1024,
    "voyage-3.5": 1024,
    "voyage-3.5-lite": 1024,
    "voyage-3-large": 1024,
    "voyage-3": 1024,
    "voyage-3-lite": 512,
    "voyage-code-2": 1536,
}


class VoyageEmbedder:
    max_chars = 4000  # well inside the 32K-token context; small chunks make precise snippets

    def __init__(
        self,
        api_key: str,
        model: str = "voyage-code-3",
        base_url: str | None = None,
        *,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.name = model
        self.dimensions = DIMENSIONS.get(model, 1024)
        self._api_key, self._base_url, self._timeout = api_key, base_url, timeout
        self._client = client
        self._sleep = sleep

    @property
    def client(self) -> Any:
        if self._client is None:
            import voyageai

            # retries are ours (Retry-After honoured), so the client makes one attempt
            self._client = voyageai.Client(
                api_key=self._api_key,
                max_retries=0,
                timeout=self._timeout,
                base_url=self._base_url,
            )
        return self._client

    def batches(self, texts: Sequence[str]) -> Iterator[list[str]]:
        """``texts`` in order, cut into requests within the count and token limits."""
        from kontex import tokens

        batch: list[str] = []
        used = 0
        for text in texts:
            cost = int(tokens.count_text(text) * TOKEN_MARGIN) + 1
            if batch and (len(batch) == MAX_TEXTS or used + cost > MAX_TOKENS):
                yield batch
                batch, used = [], 0
            batch.append(text)
            used += cost
        if batch:
            yield batch

    def _embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        from voyageai import error

        for attempt in range(1, ATTEMPTS + 1):
            try:
                answer = self.client.embed(texts, model=self.name, input_type=input_type)
                return [list(map(float, v)) for v in answer.embeddings]
            except error.AuthenticationError as refused:
                raise KontexError(f"Voyage AI refused the API key: {refused}") from refused
            except (
                error.RateLimitError,
                error.ServiceUnavailableError,
                error.ServerError,
                error.APIConnectionError,
                error.Timeout,
                error.TryAgain,
                error.APIError,
            ) as failed:
                status = getattr(failed, "http_status", None)
                if isinstance(failed, error.APIError) and status is not None and status < 500:
                    raise KontexError(f"Voyage AI refused the request: {failed}") from failed
                if attempt == ATTEMPTS:
                    raise Transient(
                        f"Voyage AI is unavailable: {type(failed).__name__}"
                    ) from failed
                self._sleep(self._wait(failed, attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _wait(failed: Any, attempt: int) -> float:
        """Retry-After when the answer gives it (seconds), else exponential backoff with jitter."""
        headers = getattr(failed, "headers", None) or {}
        value = next((v for k, v in dict(headers).items() if k.lower() == "retry-after"), None)
        if value is not None:
            try:
                return min(max(float(value), 0.0), MAX_WAIT_SECONDS)
            except ValueError:
                pass
        base: float = min(2.0 ** (attempt - 1), MAX_WAIT_SECONDS)
        return base * (0.5 + random.random() / 2)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for batch in self.batches(texts):
            vectors.extend(self._embed(batch, "document"))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], "query")[0]
