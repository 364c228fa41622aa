"""OpenTelemetry: OTLP/HTTP trace decoding and the mapping of GenAI spans to Kontex content."""
