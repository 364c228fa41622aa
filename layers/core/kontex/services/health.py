"""Health, and how far behind each pipeline is (``GET /health?detail=true``, `kontex dev`).

Spans, captures, live-feed events and embeddings run behind queues, so their lag is how fresh
the product is: a pipeline is *behind* when its oldest unprocessed message has waited
``BEHIND_SECONDS`` or more. The same figures are CloudWatch metrics with alarms on AWS
(docs/deploy.md, "Operating notes").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kontex import __version__

if TYPE_CHECKING:  # (a pipeline's lag loads with the first report: kontex.port_transport)
    from kontex.ports import PipelineLag, Pipelines

BEHIND_SECONDS = 10.0


def behind(lag: PipelineLag, seconds: float = BEHIND_SECONDS) -> bool:
    return lag.oldest_age_seconds is not None and lag.oldest_age_seconds >= seconds


def report(pipelines: Pipelines | None) -> dict[str, Any]:
    """The health answer with each pipeline's lag (none when this deployment has no queues)."""
    lags = pipelines.lag() if pipelines is not None else []
    return {
        "status": "ok",
        "version": __version__,
        "pipelines": {
            lag.name: {
                "depth": lag.depth,
                "oldest_age_seconds": (
                    round(lag.oldest_age_seconds, 3) if lag.oldest_age_seconds is not None else None
                ),
                "dead_letters": lag.dead_letters,
                "behind": behind(lag),
            }
            for lag in lags
        },
        "behind": [lag.name for lag in lags if behind(lag)],
    }


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def lag_line(lags: list[PipelineLag]) -> str | None:
    """One line for `kontex dev`'s output naming the pipelines behind, None when none is."""
    late = [lag for lag in lags if behind(lag)]
    if not late:
        return None
    parts = [
        f"{lag.name} {lag.depth:,} waiting (oldest {_age(lag.oldest_age_seconds or 0)})"
        for lag in late
    ]
    return "behind: " + ", ".join(parts)
