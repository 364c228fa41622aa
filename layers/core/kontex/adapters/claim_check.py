"""Claim check around any ``Queue``: a message too large for the queue travels by reference.

A body over ``THRESHOLD`` bytes is written to the object store under
``claims/<queue>/<uuid>.json`` and the queue carries ``{"kontex_claim": "<key>"}`` instead.
The worker opens the message with ``claimed``: it reads the payload, and deletes the object
only after the record was processed; a failure leaves it for the retry (and, after the last
retry, beside the message in the DLQ). So a span batch or a capture up to the 10 MB request
limit is never refused or dropped for its size.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from kontex.ports import BlobStore, Queue

CLAIM = "kontex_claim"
PREFIX = "claims/"
THRESHOLD = 240 * 1024  # under SQS's 256 KiB with room for attributes


class ClaimCheckQueue:
    def __init__(self, inner: Queue, blobs: BlobStore, threshold: int = THRESHOLD) -> None:
        self.inner = inner
        self.blobs = blobs
        self.threshold = threshold

    def send(
        self, queue: str, bodies: Sequence[str], delay_seconds: int = 0, *, durable: bool = True
    ) -> None:
        out = []
        for body in bodies:
            data = body.encode("utf-8")
            if len(data) > self.threshold:
                key = f"{PREFIX}{queue}/{uuid.uuid4()}.json"
                self.blobs.put(key, data)
                body = json.dumps({CLAIM: key})
            out.append(body)
        self.inner.send(queue, out, delay_seconds, durable=durable)


def claim_of(body: str) -> str | None:
    """The object key a message refers to, or None for a message that carries its payload."""
    if not body.startswith('{"' + CLAIM + '"'):
        return None
    try:
        key = json.loads(body).get(CLAIM)
    except (json.JSONDecodeError, AttributeError):
        return None
    return key if isinstance(key, str) and key.startswith(PREFIX) else None


@contextmanager
def claimed(blobs: BlobStore, body: str) -> Iterator[str]:
    """The message's payload; its object (if any) is deleted once the block succeeds."""
    key = claim_of(body)
    if key is None:
        yield body
        return
    yield blobs.get(key).decode("utf-8")
    blobs.delete_prefix(key)  # the key ends in a fresh uuid + ".json": only itself matches


@contextmanager
def all_claimed(blobs: BlobStore, bodies: Sequence[str]) -> Iterator[list[str]]:
    """The payloads of a whole batch; their objects are deleted once the block succeeds."""
    with ExitStack() as stack:
        yield [stack.enter_context(claimed(blobs, body)) for body in bodies]
