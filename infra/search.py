"""Search: the `embed` queue, the embed worker with its own layer, and the search settings.

- The `embed` queue (with its DLQ and alarm, as every work queue) is the embed worker's share
  of the event fan-out: pass the fan-out's queue in as ``queue``, or let the construct make one
  and subscribe ``self.queue.queue`` to the events topic (raw message delivery).
- The search layers (`make build`: ``.build/layers/{search,voyage,minilm}``): Qdrant's client,
  and the embedder's: Voyage AI's client when a Voyage key is configured, else onnxruntime and
  the offline model (both would not fit in Lambda's 250 MB). The embed worker and the API
  (``GET /v1/search``) carry them beside the core layer; `make build` prints each function's
  unzipped size with its layers.
- The vector store and the embedder are the operator's: ``-c qdrant_url=https://...`` (Qdrant
  Cloud or self-hosted, reached through the NAT), ``-c qdrant_api_key_secret_arn=...`` and,
  for Voyage AI, ``-c voyage_api_key_secret_arn=...`` (secrets the operator creates; without
  one the offline model embeds). Without ``qdrant_url`` no worker is made and ``/v1/search``
  answers 503 ``unavailable`` (docs/deploy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import StageConfig
from infra.functions import ARCHITECTURE, RUNTIME, Access, FunctionFactory
from infra.messaging import WorkQueue

EMBED_TIMEOUT = Duration.seconds(120)  # a batch of 10 snapshots on the offline model, cold
EMBED_MEMORY = 2048  # the ONNX model's session and more CPU for it
BATCH_SIZE = 10


@dataclass(frozen=True)
class SearchSettings:
    qdrant_url: str | None = None
    qdrant_api_key_secret_arn: str | None = None
    voyage_api_key_secret_arn: str | None = None
    voyage_model: str = "voyage-code-3"

    @classmethod
    def from_context(cls, scope: Construct) -> SearchSettings:
        get = scope.node.try_get_context
        return cls(
            qdrant_url=get("qdrant_url") or None,
            qdrant_api_key_secret_arn=get("qdrant_api_key_secret_arn") or None,
            voyage_api_key_secret_arn=get("voyage_api_key_secret_arn") or None,
            voyage_model=get("voyage_model") or "voyage-code-3",
        )


SEARCH_LAYERS = ("search", "voyage", "minilm")  # layers/build.py's SEARCH_LAYERS


def search_layer_dir(core_layer_dir: Path) -> Path:
    """Where `make build` writes the search layers: beside the core layer."""
    folder = core_layer_dir.parent
    for name in SEARCH_LAYERS:
        if not (folder / name / "python").is_dir():
            raise SystemExit(f"no {name} layer at {folder / name}/python: run `make build` first")
    return folder


class Search(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        factory: FunctionFactory,
        layer_dir: Path,
        queue: WorkQueue | None = None,
        settings: SearchSettings | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.settings = settings or SearchSettings.from_context(self)
        self.queue = queue or WorkQueue(self, "Embed", consumer_timeout=EMBED_TIMEOUT)
        if self.queue.consumer_timeout.to_seconds() < EMBED_TIMEOUT.to_seconds():
            raise ValueError("the embed queue is sized for a shorter consumer")
        self.layers: list[lambda_.ILayerVersion] = []
        self.secrets: list[secretsmanager.ISecret] = []
        self.worker: lambda_.Function | None = None
        if not self.settings.qdrant_url:
            return  # nothing to run, nothing to upload
        embedder = "voyage" if self.settings.voyage_api_key_secret_arn else "minilm"
        self.layers = [
            lambda_.LayerVersion(
                self,
                f"{name.capitalize()}Layer",
                code=lambda_.Code.from_asset(str(layer_dir / name)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=description,
            )
            for name, description in (
                ("search", "Kontex search: qdrant-client"),
                (
                    embedder,
                    "Kontex search: voyageai"
                    if embedder == "voyage"
                    else "Kontex search: onnxruntime and the offline model (all-MiniLM-L6-v2)",
                ),
            )
        ]
        for name, arn in (
            ("QdrantApiKey", self.settings.qdrant_api_key_secret_arn),
            ("VoyageApiKey", self.settings.voyage_api_key_secret_arn),
        ):
            if arn:
                self.secrets.append(secretsmanager.Secret.from_secret_complete_arn(self, name, arn))
        self.worker = factory.create(
            self,
            "EmbedWorker",
            folder="workers",
            handler="embed.lambda_handler",
            timeout=EMBED_TIMEOUT,
            memory_size=EMBED_MEMORY,
            # reads snapshots (large file bodies in S3) and the events it consumes; publishes
            # snapshot.embedded
            access=Access(bundles="read", events="consume_publish", api_keys=False),
            description="Kontex worker for the embed queue (vectors into Qdrant)",
            extra_layers=self.layers,
        )
        self.serve(self.worker)
        self.queue.consumed_by(self.worker)  # what fails for good goes to the DLQ at once
        self.worker.add_event_source(
            sources.SqsEventSource(
                self.queue.queue,
                batch_size=BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=config.worker_max_concurrency,
            )
        )

    @property
    def environment(self) -> dict[str, str]:
        s = self.settings
        env = {"KONTEX_VOYAGE_MODEL": s.voyage_model}
        if s.qdrant_url:
            env["QDRANT_URL"] = s.qdrant_url
        if s.qdrant_api_key_secret_arn:
            env["KONTEX_QDRANT_API_KEY_SECRET_ARN"] = s.qdrant_api_key_secret_arn
        if s.voyage_api_key_secret_arn:
            env["KONTEX_VOYAGE_API_KEY_SECRET_ARN"] = s.voyage_api_key_secret_arn
        return env

    def reindex_from(self, function: lambda_.Function) -> None:
        """Let ``function`` (the migrate function's ``{"reindex": ...}``) queue snapshots for
        the embed worker."""
        function.add_environment("KONTEX_EMBED_QUEUE_URL", self.queue.queue.queue_url)
        self.queue.queue.grant_send_messages(function)

    def serve(self, function: lambda_.Function) -> None:
        """Let ``function`` search (the API) or embed: the search layer, the settings, the
        secrets. Nothing when no vector store is configured."""
        if not self.settings.qdrant_url:
            return
        if function is not self.worker:
            function.add_layers(*self.layers)
        for key, value in self.environment.items():
            function.add_environment(key, value)
        for secret in self.secrets:
            secret.grant_read(function)
