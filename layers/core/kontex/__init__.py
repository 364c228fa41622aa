"""Kontex: task-state persistence for AI agent runs.

The package is laid out by role:

- ``domain``: pydantic models and errors, no I/O.
- ``ports``: the small protocols services depend on (store, blobs, events).
- ``services``: the use cases (keys, sessions, tasks, snapshots, bundles).
- ``adapters``: ports implemented on SQLite, PostgreSQL, S3 and local folders.
- ``http``: HTTP as Lambda sees it (the API Gateway event codec), for the deployed functions
  and ``kontex dev`` alike, and the errors only HTTP has.
- ``bootstrap``: the composition root that builds adapters from settings, lazily.
"""

__version__ = "0.1.0"
