"""The HTTP glue: the REST surface (``kontex.api.rest``), the OTLP receiver (``otlp``) and the
proxy (``proxy``). Nothing is imported here, so the ingest and proxy functions do not load the
REST routers and Powertools' OpenAPI models they never use (cold start)."""
