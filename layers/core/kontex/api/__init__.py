"""The HTTP glue: the REST surface (``kontex.api.rest``) and the OTLP receiver (``otlp``); the
proxy is an ASGI app of its own (``kontex.proxy.app``). Nothing is imported here, so the ingest
and proxy functions do not load the REST routers and Powertools' OpenAPI models they never use
(cold start)."""
