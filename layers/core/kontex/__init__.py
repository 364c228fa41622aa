"""Kontex: task-state persistence for AI agent runs.

The package is laid out by role:

- ``domain``: pydantic models and errors, no I/O.
- ``ports``: the small protocols services depend on (store, blobs, events).
- ``services``: the use cases (keys, sessions, tasks, snapshots, bundles).
- ``adapters``: ports implemented on SQLite, PostgreSQL, S3 and local folders.
- ``bootstrap``: the composition root that builds adapters from settings, lazily.
"""

__version__ = "0.1.0"
