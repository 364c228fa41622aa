"""Settings: the environment's values (names equal field names), as one frozen object.

``Settings`` is a plain class, not a pydantic model: making a 45-field model class and its
validator took 2.5-3 ms of every function's cold start, part of it pydantic's first-model work
(its plugin loader, its first schema), which the first model a function validates now does
(docs/benchmarks.md, "Cold start, ninth round"). Its fields are declared below as a pydantic
model's would be (an annotation and a default or a ``Field``), and what a user sees is the
model's: the same names, defaults and parsing of each value, and for a value the plain path does
not take (``_checked``: anything but the usual spellings of a string, a path, a secret, a
boolean and a number within its bounds) the model itself, ``_model()``, made from the same
declarations on first need, validates all the values: its result, or its ``ValidationError``
(``1 validation error for Settings ...``). ``model_fields`` (the model's), ``model_copy`` and
``model_dump`` work as a frozen pydantic model's do, and so do ``==``, ``hash``, ``repr`` and
the error an assignment raises.
"""

import operator
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model
from pydantic.fields import FieldInfo


class _Fields:
    """``Settings.model_fields``: the pydantic model's (made on first use)."""

    def __get__(self, instance: object, owner: type) -> dict[str, FieldInfo]:
        return _model().model_fields


class Settings:
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
        description="`kontex dev`: how many processes consume the span queue (0: on PostgreSQL"
        " one a core, at most 2; on SQLite 1)",
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

    model_fields: ClassVar[_Fields] = _Fields()

    def __init__(self, **values: Any) -> None:
        made: dict[str, Any] = {}
        for name, (kind, nullable, default, bounds) in _SPEC.items():
            value = _checked(kind, nullable, bounds, values[name]) if name in values else default
            if value is _UNSURE:  # the model's own validation: its values, or its ValidationError
                model = _model()(**values)
                made = {name: getattr(model, name) for name in _SPEC}
                break
            made[name] = value
        vars(self).update(made)

    def __setattr__(self, name: str, value: object) -> None:
        # frozen: the model's own error (ValidationError, "Instance is frozen")
        setattr(_model().model_construct(**vars(self)), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(_model().model_construct(**vars(self)), name)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), *vars(self).values()))

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> "Settings":
        """A copy with ``update``'s values, not validated (as pydantic's ``model_copy``)."""
        import copy

        made = object.__new__(type(self))
        values = copy.deepcopy(vars(self)) if deep else dict(vars(self))
        vars(made).update(values, **(update or {}))
        return made

    def model_dump(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            k.lower(): v for k, v in env.items() if k.lower() in _SPEC and v != ""
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_UNSURE = object()
_INTEGER = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")
# pydantic's spellings of a boolean (any case): the others go to the model
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _spec() -> dict[str, tuple[type, bool, Any, tuple[Any, ...]]]:
    """Each field's type (without ``None``), whether it may be None, its default and bounds
    (``annotated_types`` ``Ge``, ``Gt``, ``Le``), read from the declarations."""
    spec = {}
    for name, annotation in Settings.__annotations__.items():
        if name == "model_fields":
            continue
        kinds = get_args(annotation) or (annotation,)  # X | None: (X, NoneType)
        declared = vars(Settings).get(name)
        if isinstance(declared, FieldInfo):
            default, bounds = declared.default, tuple(declared.metadata)
        else:
            default, bounds = declared, ()
        kind = next(k for k in kinds if k is not type(None))
        spec[name] = (kind, type(None) in kinds, default, bounds)
    return spec


_SPEC = _spec()


# a bound's attribute (annotated_types' Ge, Gt, Le, Lt) and the test a value must pass
_BOUNDS = (("ge", operator.ge), ("gt", operator.gt), ("le", operator.le), ("lt", operator.lt))


def _within(value: float, bounds: tuple[Any, ...]) -> bool:
    return all(
        holds(value, getattr(bound, name))
        for bound in bounds
        for name, holds in _BOUNDS
        if getattr(bound, name, None) is not None
    )


def _checked(kind: type, nullable: bool, bounds: tuple[Any, ...], value: Any) -> Any:
    """``value`` as the model makes it from the usual spellings, else ``_UNSURE``."""
    if value is None:
        return None if nullable else _UNSURE
    number: int | float
    if kind is str:
        return value if type(value) is str else _UNSURE
    if kind is Path:
        if type(value) is str:
            return Path(value)
        return value if isinstance(value, Path) else _UNSURE
    if kind is SecretStr:
        if type(value) is str:
            return SecretStr(value)
        return value if type(value) is SecretStr else _UNSURE
    if kind is bool:
        if type(value) is bool:
            return value
        if type(value) is str and value.lower() in _TRUE:
            return True
        if type(value) is str and value.lower() in _FALSE:
            return False
        return _UNSURE
    if kind is int:
        if type(value) is int:
            number = value
        elif type(value) is str and _INTEGER.fullmatch(value):
            number = int(value)
        else:
            return _UNSURE
        return number if _within(number, bounds) else _UNSURE
    if kind is float:
        if (
            type(value) is not float
            and type(value) is not int
            and not (type(value) is str and _DECIMAL.fullmatch(value))
        ):
            return _UNSURE
        number = float(value)
        return number if _within(number, bounds) else _UNSURE
    return _UNSURE


@cache
def _model() -> type[BaseModel]:
    """The pydantic model of these declarations, named ``Settings`` as its errors say."""
    fields: dict[str, Any] = {
        name: (Settings.__annotations__[name], vars(Settings).get(name)) for name in _SPEC
    }
    return create_model(
        "Settings",
        __config__=ConfigDict(extra="ignore", frozen=True),
        __module__=__name__,
        **fields,
    )


@cache
def settings() -> Settings:
    return Settings.from_env()
