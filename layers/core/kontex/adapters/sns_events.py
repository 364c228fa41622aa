"""The ``Events`` port on Amazon SNS: one topic, fanned out to one SQS queue per consumer.

The message body is exactly the event's JSON, ``{"id", "type", "account_id", "session_id",
"data"}``; subscriptions use raw message delivery, so each consumer's queue receives that body
unchanged. The event type also travels as the ``type`` message attribute, so a subscription
can filter on it (raw delivery turns it into an SQS message attribute).

SNS takes at most 256 KiB per message. Events carry metadata, never bundles, but a session's
``metadata`` and ``description`` have no size bound of their own, so an event can be larger:
such a body is written to the object store under ``claims/events/<event id>.json`` and the
message carries ``{"kontex_claim": "<key>"}`` instead (the claim check of
``kontex.adapters.claim_check``). Several consumers read the same object, so none deletes it;
the bucket's lifecycle rule on ``claims/`` removes it after 30 days. Consumers open a message
with ``event_body``. The key is the event id's, so the sweeper republishing an event writes
nothing twice.

``publish`` raises when the event did not go out (the outbox keeps it for the sweeper).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kontex.adapters.claim_check import CLAIM, PREFIX, claim_of
from kontex.domain.errors import PayloadTooLarge, Transient
from kontex.ports import BlobStore, event_message

if TYPE_CHECKING:  # (kontex.port_transport: the feed and embed workers read events, make none)
    from kontex.ports import Event

MAX_MESSAGE_BYTES = 256 * 1024  # SNS: body and attributes together (one call of a batch too)
MAX_BATCH = 10  # entries of one PublishBatch
THRESHOLD = 240 * 1024  # what a body may take, leaving room for the attributes
CLAIMS = f"{PREFIX}events/"


class SnsEvents:
    def __init__(
        self,
        topic_arn: str,
        client: Any = None,
        *,
        blobs: BlobStore | None = None,
        threshold: int = THRESHOLD,
    ) -> None:
        """``blobs``: where an event over ``threshold`` bytes goes (the claim check); without
        it such an event is refused with ``PayloadTooLarge``."""
        self.topic_arn = topic_arn
        self.blobs = blobs
        self.threshold = threshold
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # created on first use (moto starts first in tests), then reused
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3})
            self._client = boto3.client("sns", config=config)
        return self._client

    def publish(self, event: Event) -> None:
        body = event_message(event)
        size = len(body.encode("utf-8"))
        if size > self.threshold:
            body = self._claim(body, size, event.id)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Message=body,
                MessageAttributes={"type": {"DataType": "String", "StringValue": event.type}},
            )
        except (BotoCoreError, ClientError) as error:
            raise Transient(f"the event topic is unavailable ({type_of(error)})") from error

    def publish_many(self, events: Sequence[Event]) -> list[str]:
        """``PublishBatch``: up to ten events a call, within SNS's 256 KiB a call. Returns the
        ids SNS accepted; a failed call or entry stays in the outbox for the sweeper."""
        from botocore.exceptions import BotoCoreError, ClientError

        entries: list[dict[str, Any]] = []
        for event in events:
            body = event_message(event)
            size = len(body.encode("utf-8"))
            if size > self.threshold:
                body = self._claim(body, size, event.id)
            entries.append(
                {
                    "Id": str(len(entries)),
                    "Message": body,
                    "MessageAttributes": {
                        "type": {"DataType": "String", "StringValue": event.type}
                    },
                }
            )
        sent: list[str] = []
        batch: list[dict[str, Any]] = []
        size = 0
        for entry in [*entries, None]:
            length = len(entry["Message"].encode("utf-8")) + 64 if entry is not None else 0
            if batch and (
                entry is None or len(batch) == MAX_BATCH or size + length > MAX_MESSAGE_BYTES
            ):
                try:
                    answer = self.client.publish_batch(
                        TopicArn=self.topic_arn, PublishBatchRequestEntries=batch
                    )
                except (BotoCoreError, ClientError):
                    answer = {}
                sent += [events[int(ok["Id"])].id for ok in answer.get("Successful", [])]
                batch, size = [], 0
            if entry is not None:
                batch.append(entry)
                size += length
        return sent

    def _claim(self, body: str, size: int, event_id: str | None) -> str:
        if self.blobs is None:
            raise PayloadTooLarge(
                f"event {event_id} is {size} bytes, over SNS's {MAX_MESSAGE_BYTES} byte limit,"
                " and no object store is configured for its claim check"
            )
        key = f"{CLAIMS}{event_id or uuid.uuid4()}.json"
        self.blobs.put(key, body.encode("utf-8"))  # written once: a republish finds it there
        return json.dumps({CLAIM: key})


def event_body(body: str, blobs: BlobStore) -> str:
    """The event JSON a consumer's SQS message holds: the body itself, or the object its claim
    check names (read, never deleted: every consumer of the topic reads the same object)."""
    key = claim_of(body)
    if key is None:
        return body
    return blobs.get(key).decode("utf-8")


def type_of(error: Exception) -> str:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return str(code or type(error).__name__)
