"""Search fixtures: the real offline embedder (loaded once) and Qdrant in local mode."""

from __future__ import annotations

from typing import Any

import pytest

from kontex.adapters.offline_embedder import OfflineEmbedder
from kontex.adapters.qdrant_index import QdrantIndex
from kontex.services.deps import Deps


@pytest.fixture(scope="session")
def embedder() -> OfflineEmbedder:
    return OfflineEmbedder()


@pytest.fixture
def index(embedder: OfflineEmbedder) -> Any:
    made = QdrantIndex("test", embedder.dimensions, path=":memory:")  # type: ignore[arg-type]
    yield made
    made.close()


@pytest.fixture
def search_deps(deps: Deps, embedder: OfflineEmbedder, index: QdrantIndex) -> Deps:
    deps.embedder = embedder
    deps.index = index
    return deps
