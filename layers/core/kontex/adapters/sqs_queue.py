"""The ``Queue`` port on Amazon SQS: batches of ten, within the message size limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kontex.domain.errors import PayloadTooLarge, Transient

MAX_MESSAGE_BYTES = 256 * 1024  # the classic SQS limit, safe on every queue
MAX_BATCH = 10
MAX_DELAY_SECONDS = 900  # SQS delays a message at most 15 minutes


class SqsQueue:
    def __init__(self, urls: Mapping[str, str], client: Any = None) -> None:
        self.urls = dict(urls)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        return self._client

    def send(
        self, queue: str, bodies: Sequence[str], delay_seconds: int = 0, *, durable: bool = True
    ) -> None:
        """SQS stores every message durably: ``durable`` changes nothing."""
        url = self.urls[queue]
        for body in bodies:
            if len(body.encode()) > MAX_MESSAGE_BYTES:
                raise PayloadTooLarge(f"a {queue} message is over {MAX_MESSAGE_BYTES} bytes")
        batch: list[dict[str, Any]] = []
        size = 0
        for body in bodies:
            length = len(body.encode())
            if batch and (len(batch) == MAX_BATCH or size + length > MAX_MESSAGE_BYTES):
                self._flush(url, batch)
                batch, size = [], 0
            entry: dict[str, Any] = {"Id": str(len(batch)), "MessageBody": body}
            if delay_seconds:
                entry["DelaySeconds"] = min(delay_seconds, MAX_DELAY_SECONDS)
            batch.append(entry)
            size += length
        if batch:
            self._flush(url, batch)

    def _flush(self, url: str, batch: list[dict[str, Any]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.send_message_batch(QueueUrl=url, Entries=batch)
        except (BotoCoreError, ClientError) as error:
            raise Transient("the queue is unavailable") from error
        if response.get("Failed"):
            raise Transient(f"{len(response['Failed'])} messages were not queued")
