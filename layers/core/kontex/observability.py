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

The tracer is made on first use, and only for an invocation X-Ray samples: Powertools' Tracer
imports ``aws_xray_sdk.core`` (about 0.35-0.45 s, most of a function's cold start), so an
environment whose invocations are not sampled (``_X_AMZN_TRACE_ID`` without ``Sampled=1``),
or that is not in Lambda, or has ``POWERTOOLS_TRACE_DISABLED``, never imports it; the first
sampled invocation pays it once (docs/benchmarks.md, "Cold start").
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Kontex"


def tracing_on() -> bool:
    """Whether this invocation is traced: in Lambda, not disabled, and sampled by X-Ray."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true"):
        return False
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return False
    return "Sampled=1" in os.environ.get("_X_AMZN_TRACE_ID", "")


class LazyTracer:
    """Powertools' ``Tracer``, made the first time an invocation is traced (``tracing_on``)."""

    def __init__(self) -> None:
        self._tracer: Any = None

    def real(self) -> Any:
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal traced
            if not tracing_on():
                return handler(event, context, *args, **kwargs)
            if traced is None:
                traced = self.real().capture_lambda_handler(handler)
            return traced(event, context, *args, **kwargs)

        return wrapper

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


tracer = LazyTracer()
metrics = Metrics(namespace=NAMESPACE)
log = logging.getLogger("kontex.metrics")
# a request that counted nothing flushes nothing: not worth a warning per request
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add to a metric of this request; never fails the request it measures."""
    if value <= 0 and unit == MetricUnit.Count:
        return
    if _disabled():  # else values pile up, and Powertools prints each 100 to stdout anyway
        return
    try:
        metrics.add_metric(name=name, unit=unit, value=value)
    except Exception:  # a metric must never break the work it describes
        log.debug("metric %s not recorded", name, exc_info=True)


def _disabled() -> bool:
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in ("1", "true")


def milliseconds(name: str, value: float) -> None:
    count(name, value, MetricUnit.Milliseconds)


def flush() -> None:
    """Write the metrics added so far (one EMF line): for servers, which have no per-invocation
    ``@metrics.log_metrics`` (the proxy's ASGI app); never fails the request it follows."""
    try:
        metrics.flush_metrics(raise_on_empty_metrics=False)
    except Exception:
        log.debug("metrics not flushed", exc_info=True)
