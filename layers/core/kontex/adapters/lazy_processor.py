"""A worker's batch processor, made when first needed: Powertools' batch utilities cost about
35 ms of a cold start, and a batch that succeeds at once never needs them (docs/benchmarks.md,
"Cold start, third round (issue 25)"). Standard library only, so importing it costs nothing."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any


def lazy_processor(
    module: MutableMapping[str, Any], redrive: Callable[[], Any]
) -> tuple[Callable[[], Any], Callable[[str], Any]]:
    """For the worker module whose ``globals()`` is ``module``: the function that makes its
    ``RetryingBatchProcessor`` once (into ``module["processor"]``; a permanent failure goes to
    the DLQ at once, a transient one back after a backoff), and the module's ``__getattr__``,
    which gives ``processor`` to whoever asks for it (`kontex dev`'s queue reads its failures)."""

    def processor() -> Any:
        made = module.get("processor")
        if made is None:
            from kontex.adapters.sqs_batch import RetryingBatchProcessor

            made = module["processor"] = RetryingBatchProcessor(redrive)
        return made

    def module_getattr(name: str) -> Any:
        if name == "processor":
            return processor()
        raise AttributeError(f"module {module['__name__']!r} has no attribute {name!r}")

    return processor, module_getattr
