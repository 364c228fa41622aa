"""Embed worker (SQS): the event fan-out's ``embed`` queue into the vector index.

Each record is one event (``{"id", "type", "account_id", "session_id", "data"}``):
``snapshot.created`` / ``snapshot.enriched`` embed what the snapshot adds and announce
``snapshot.embedded``; ``session.purged`` deletes the session's points; any other type is
acknowledged and ignored. The batch goes to the use case at once (``search.handle_events``: the
snapshots' new texts embedded in one model call), and each record's outcome is reported.
Redelivery is harmless: points are keyed by their content. A record that fails (the embedder
or the vector store down) is reported in ``batchItemFailures`` and only it is retried, after a
backoff; one wrong in itself is dead-lettered at once (``kontex.adapters.sqs_batch``).
"""

from kontex.startup import loading

with loading():
    import json
    from typing import TYPE_CHECKING

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kontex.adapters.lazy_processor import lazy_processor
    from kontex.adapters.sns_events import event_body
    from kontex.bootstrap import container
    from kontex.observability import count, metrics, tracer
    from kontex.services import search

    if TYPE_CHECKING:
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    logger = Logger(service="kontex-embed")


# the batch processor, made the first time a batch needs it (cold start)
_processor, __getattr__ = lazy_processor(globals(), lambda: container().redrive)


# message id -> what the batch's use case did with it, or the error it failed with
_outcomes: dict[str, search.Embedded | str | Exception] = {}


def _handle_batch(records: list[dict]) -> None:
    """The batch's events to the use case at once (their new texts embedded in one model
    call); each record's outcome is then reported by ``record_handler``."""
    _outcomes.clear()
    deps = container().deps
    bodies, ids = [], []
    for record in records:
        try:
            # a large event arrives by claim check, read (never deleted: the feed reads it too)
            bodies.append(json.loads(event_body(record["body"], deps.blobs)))
            ids.append(record["messageId"])
        except Exception as error:  # this record fails alone (a body that does not parse)
            _outcomes[record["messageId"]] = error
    _outcomes.update(zip(ids, search.handle_events(deps, bodies), strict=True))


def record_handler(record: "SQSRecord") -> None:
    done = _outcomes.pop(record.message_id, None)
    if done is None:  # not in the batch handed over (a handler called on its own)
        deps = container().deps
        done = search.handle_event(deps, json.loads(event_body(record.body, deps.blobs)))
    if isinstance(done, Exception):
        raise done
    _count(done)


def _count(done: search.Embedded | str) -> None:
    if isinstance(done, search.Embedded) or done == "embedded":
        count("SnapshotsEmbedded")


def _all_done(records: list[dict]) -> bool:
    """Whether the batch's use case did every record (none failed, none left out)."""
    outcomes = [_outcomes.get(r.get("messageId", "")) for r in records]
    return bool(records) and all(o is not None and not isinstance(o, Exception) for o in outcomes)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    records = event.get("Records", [])
    _handle_batch(records)
    if _all_done(records):  # what the batch processor would answer, without it
        for record in records:
            _count(_outcomes.pop(record["messageId"]))
        return {"batchItemFailures": []}
    from aws_lambda_powertools.utilities.batch import process_partial_response

    answer = process_partial_response(event, record_handler, _processor(), context)
    count("RecordsFailed", len(answer.get("batchItemFailures", [])))
    return answer
