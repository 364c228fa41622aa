"""Migration Lambda: applies pending migrations; a CDK Trigger invokes it on deploy.

Invoked by hand with `{"create_key": {"label": "..."}}` it also creates an API key for a new
account and returns it (shown once: it is only in the invocation's response, never logged).
With `{"reindex": {"account_id": ..., "session_id": ...}}` (both optional) it queues every
stored snapshot (of that account or session) for the embed worker, as `kontex reindex` does
locally.
"""

from kontex.startup import loading

with loading():
    from typing import Any

    from kontex.bootstrap import container
    from kontex.observability import tracer


@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    applied = container().migrate()
    reindex = (event or {}).get("reindex")
    if reindex is not None:
        from kontex.services import search

        bodies = list(
            search.reindex_events(
                container().deps, reindex.get("account_id"), reindex.get("session_id")
            )
        )
        for start in range(0, len(bodies), 10):
            container().queue.send("embed", bodies[start : start + 10])
        return {"applied": applied, "queued": len(bodies)}
    request = (event or {}).get("create_key")
    if not request:
        return {"applied": applied}
    from kontex.services import keys

    key, plaintext = keys.create_key(container().deps, request["label"], request.get("account"))
    return {"applied": applied, "id": key.id, "key": plaintext, "account_id": key.account_id}
