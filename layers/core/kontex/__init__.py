"""Kontex: task-state persistence for AI agent runs.

The package is laid out by role, from the bottom up (docs/design.md, "Layers"):

- ``domain``: pydantic models and the error hierarchy, no I/O.
- ``ids``, ``tokens``, ``settings``, ``observability``: ids, token counts, the settings model
  read from the environment, logging and metrics set-up.
- ``ports``: the protocols the services depend on: the store with its unit of work and
  repositories, blobs, events, queues, live connections, the proxy's upstream, the embedder and
  the vector index.
- ``otlp``: OTLP/HTTP decoding and the GenAI span mappings; ``proxy``: the Messages API's
  header rules and SSE reassembly.
- ``http``: HTTP as Lambda sees it (the API Gateway event codec), for the deployed functions
  and ``kontex dev`` alike, and the errors only HTTP has.
- ``services``: the use cases (keys, sessions, snapshots, bundles, spans, capture, live,
  search, retention, ...), each taking ``Deps``.
- ``adapters``: the ports implemented: ``sql/`` (SQLite, PostgreSQL), S3 and local folders,
  SQS/SNS and the local queue, Qdrant, the embedders, the WebSocket connections, the upstream.
- ``migrations``: versioned SQL per database; ``functions``: where the Lambda entrypoints are.
- ``bootstrap``: the composition root that builds adapters from settings, lazily.
- ``api``, ``mcp``: the HTTP edge (the REST resolver, OTLP and proxy routes; the MCP server).
- ``local``: ``kontex dev`` (the ASGI app that turns requests into API Gateway events, the
  local workers, the dashboard at ``/``); ``cli``, ``tail``: the ``kontex`` commands.
"""

__version__ = "0.1.0"
