"""Tracing and metrics for every function: Powertools Tracer (X-Ray) and Metrics (EMF).

One ``tracer`` and one ``metrics`` per process; each Lambda handler is decorated with
``@tracer.capture_lambda_handler`` and ``@metrics.log_metrics``, which flush the metrics the
request added as one EMF log line (CloudWatch turns it into metrics; nothing is called at run
time). Outside Lambda (tests, ``kontex dev``) tracing is off by itself; the local stack turns
metrics off with ``POWERTOOLS_METRICS_DISABLED``.

Metrics (namespace ``Kontex``, dimension ``service``): ``SpansAccepted``, ``SpansRefused``,
``SnapshotsWritten``, ``RecordsFailed``, ``IntegrityErrors``, ``UpstreamLatency`` (ms),
``EventsSwept`` (the outbox sweeper).
Queue age and dead letters come from SQS's own metrics, cold starts from Lambda's own
``Init Duration`` (the dashboard shows the queues beside these).
"""

from __future__ import annotations

import logging
import warnings

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Kontex"
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE)
log = logging.getLogger("kontex.metrics")
# a request that counted nothing flushes nothing: not worth a warning per request
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add to a metric of this request; never fails the request it measures."""
    if value <= 0 and unit == MetricUnit.Count:
        return
    try:
        metrics.add_metric(name=name, unit=unit, value=value)
    except Exception:  # a metric must never break the work it describes
        log.debug("metric %s not recorded", name, exc_info=True)


def milliseconds(name: str, value: float) -> None:
    count(name, value, MetricUnit.Milliseconds)


def flush() -> None:
    """Write the metrics added so far (one EMF line): for servers, which have no per-invocation
    ``@metrics.log_metrics`` (the proxy's ASGI app); never fails the request it follows."""
    try:
        metrics.flush_metrics(raise_on_empty_metrics=False)
    except Exception:
        log.debug("metrics not flushed", exc_info=True)
