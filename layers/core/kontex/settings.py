"""Settings: one pydantic model validated from the environment (names equal field names).

Its annotations are objects, not strings (no ``from __future__ import annotations``): pydantic
then has no string to evaluate (compile) for each of the fields when the class is made, in every
function's cold start (docs/benchmarks.md, "Cold start of the api, seventh round (issue 25)")."""

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kontex_database_url: str | None = Field(
        default=None, description="postgresql://... ; unset: SQLite in the data dir"
    )
    kontex_data_dir: Path = Field(
        default=Path(".kontex"), description="embedded defaults live here"
    )
    kontex_bundle_bucket: str | None = Field(default=None, description="S3 bucket; unset: data dir")
    kontex_api_key_secret: SecretStr | None = None
    # On AWS: the RDS Proxy endpoint plus Secrets Manager ARNs instead of a URL and a secret.
    kontex_database_host: str | None = None
    kontex_database_secret_arn: str | None = None
    # PostgreSQL: prepare statements run twice (unset: yes, except through the secret and host
    # above, RDS Proxy, where a prepared statement pins the client's session)
    kontex_database_prepare: bool | None = None
    # PostgreSQL behind a transaction pooler (RDS Proxy, PgBouncer in transaction mode): leave
    # no state on the server session, no prepared statement and no SET (unset: yes through the
    # secret and host above, no with a URL; docs/design.md, "Behind RDS Proxy")
    kontex_database_pooled: bool | None = None
    # a reader for the read units of GET requests (docs/design.md, "Reads on readers"): on AWS
    # the RDS Proxy's read-only endpoint (the writer's secret), else a URL; unset: the writer
    kontex_database_reader_host: str | None = None
    kontex_database_reader_url: str | None = None
    kontex_api_key_secret_arn: str | None = None
    kontex_spans_queue_url: str | None = None
    kontex_captures_queue_url: str | None = None
    # a queue worker on AWS: its queue's DLQ, where it sends a record that failed for good
    # (kontex/adapters/sqs_batch.py); unset: the local queue dead-letters it
    kontex_dead_letter_queue_url: str | None = None
    # the live feed: events fan out through this SNS topic (one SQS queue per consumer), and
    # reach WebSocket clients through the API Gateway Management API at this endpoint
    # (https://{api-id}.execute-api.{region}.amazonaws.com/{stage})
    kontex_events_topic_arn: str | None = None
    kontex_websocket_endpoint: str | None = None
    kontex_enrich_window_seconds: int = Field(default=60, ge=0)
    # how long a span waits for its ancestors (or its content) before it is placed as it is
    kontex_span_grace_seconds: float = Field(default=30, ge=0)
    kontex_rate_limit_per_hour: int = Field(default=1000, ge=1)
    kontex_snapshot_writes_per_hour: int = Field(default=100, ge=1)
    # /v1/checkpoints (an agent's every step: a put and its writes): 20,000 lets a 1,000-step
    # agent with a few parallel tasks per step run within an hour
    kontex_checkpoint_requests_per_hour: int = Field(default=20_000, ge=1)
    anthropic_api_url: str = "https://api.anthropic.com"
    # /proxy/openai/v1/* goes to {OPENAI_API_URL}/v1/* (any OpenAI-compatible server)
    openai_api_url: str = "https://api.openai.com"
    kontex_proxy_admission_cache_seconds: float = Field(
        default=30,
        ge=0,
        description="the proxy trusts a key, a session name and a task it found for this long"
        " (a revoked key is refused by the proxy within it; 0: every call asks the store)",
    )
    kontex_proxy_timeout_seconds: float = Field(
        default=600, gt=0, description="upstream timeout (AWS: under the function's 15 min)"
    )
    kontex_prices_file: Path | None = Field(
        default=None, description="a JSON price table that overrides the shipped one"
    )
    kontex_dev_body_timeout_seconds: float = Field(
        default=10, gt=0, description="`kontex dev`: a request body stalled this long is a 408"
    )
    kontex_dev_search_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="`kontex dev`: the search process's niceness (0: the server's priority)",
    )
    kontex_dev_span_processes: int = Field(
        default=0,
        ge=0,
        le=8,
        description="`kontex dev`: how many processes consume the span queue (0: one a core,"
        " at most 2, on either database)",
    )
    kontex_mcp_allowed_hosts: str | None = Field(
        default=None,
        description="/mcp: Host headers accepted (comma-separated, host:* for any port, * for"
        " any host); unset: loopback only",
    )
    voyage_api_key: SecretStr | None = None
    # search (docs/design.md, "Search"): Voyage AI when a key is given, else the offline model;
    # a Qdrant server when QDRANT_URL is set, else Qdrant local mode in the data dir
    kontex_voyage_api_key_secret_arn: str | None = None
    kontex_voyage_model: str = "voyage-code-3"
    kontex_voyage_base_url: str | None = Field(default=None, description="tests: a local fake")
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    kontex_qdrant_api_key_secret_arn: str | None = None
    kontex_qdrant_collection: str | None = Field(
        default=None, description="unset: kontex_<embedder model>"
    )
    kontex_embed_queue_url: str | None = None
    # each pipeline's queue and dead-letter queue, whose lag /health?detail=true reports on AWS
    # (adapters/sqs_pipelines.py): {"spans": {"queue": url, "dlq": url}, ...}
    kontex_pipelines: str | None = None
    # `kontex dev` only: the main process serves its local index to the API's processes
    kontex_index_address: str | None = None
    kontex_index_authkey: SecretStr | None = None
    aws_lambda_function_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            k.lower(): v for k, v in env.items() if k.lower() in cls.model_fields and v != ""
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


@cache
def settings() -> Settings:
    return Settings.from_env()
