"""The offline embedder: the pinned model, no network, the same vector in every process."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kontex.adapters.offline_embedder import OfflineEmbedder
from kontex.domain.errors import KontexError

TEXT = "The retry loop in worker.py swallows the E11000 duplicate key error."
PROGRAM = """
import hashlib, json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise RuntimeError("network access attempted")
socket.socket.connect = refuse           # no network at import or at run time
socket.create_connection = refuse
import voyageai, qdrant_client           # the clients import without calling out
from kontex.adapters.qdrant_index import QdrantIndex
from kontex.adapters.voyage_embedder import VoyageEmbedder
QdrantIndex("kontex", 384, url="http://qdrant.invalid:6333").client  # made, not called
VoyageEmbedder("pa-key").client
from kontex.adapters.offline_embedder import OfflineEmbedder
vector = OfflineEmbedder().embed_documents([sys.argv[1]])[0]
sha = hashlib.sha256(json.dumps(vector).encode()).hexdigest()
print(json.dumps({"sha": sha, "attempts": len(attempts)}))
"""


def _in_process() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, TEXT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_same_text_gives_the_same_vector_in_two_processes(embedder: OfflineEmbedder) -> None:
    one, two = _in_process(), _in_process()
    assert one["attempts"] == two["attempts"] == 0  # nothing tried to reach the network
    assert one["sha"] == two["sha"]
    here = embedder.embed_documents([TEXT])[0]
    assert hashlib.sha256(json.dumps(here).encode()).hexdigest() == one["sha"]


def test_vectors_are_unit_length_and_follow_meaning(embedder: OfflineEmbedder) -> None:
    a, b, c = np.array(
        embedder.embed_documents(
            [
                "decode the claims of a JSON web token",
                "parse the JWT and read its claims",
                "bake a chocolate cake for the party",
            ]
        )
    )
    assert len(a) == embedder.dimensions == 384
    assert abs(np.linalg.norm(a) - 1) < 1e-5
    assert a @ b > 0.5 > a @ c
    # a query is embedded as a document is (symmetric model), batch or not
    assert np.allclose(embedder.embed_query("bake a chocolate cake for the party"), c, atol=1e-6)


def test_a_model_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(KontexError, match="sha256"):
        OfflineEmbedder(fake).embed_query("x")


def test_the_model_loads_without_what_its_lambda_layer_leaves_out() -> None:
    """layers/build.py drops huggingface_hub and hf_xet from the minilm layer (they only
    download): the embedder must never import them."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "layers"))
    try:
        from build import NOT_IMPORTED
    finally:
        sys.path.pop(0)
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in NOT_IMPORTED["minilm"])
    program = (
        f"import sys; {blocked}\n"
        "from kontex.adapters.offline_embedder import OfflineEmbedder\n"
        "print(len(OfflineEmbedder().embed_query('parse_jwt_claims')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "384"


@pytest.fixture(scope="module")
def float_graph() -> OfflineEmbedder:
    """The model as the Lambda layers run it (no ``onnx``): its MatMuls in float."""
    return OfflineEmbedder(dynamic=False)


def test_texts_are_batched_by_length_in_their_order_and_keep_their_vectors(
    float_graph: OfflineEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = float_graph
    short, long = "checkpoint after", " ".join(["retry the flaky upload test"] * 30)
    texts = [long, short, "parse_jwt_claims", long + " again", short]
    embedder.embed_query("load")
    shapes: list[tuple[int, ...]] = []  # (texts, tokens) of each model call
    real_run = embedder._session.run

    def run(names: object, feed: dict[str, np.ndarray]) -> object:
        shapes.append(feed["input_ids"].shape)
        return real_run(names, feed)

    monkeypatch.setattr(embedder._session, "run", run)
    together = embedder.embed_documents(texts)
    monkeypatch.undo()
    # the three short texts in one call, the two long ones in another: no short text padded
    # to the long ones' 152 tokens
    assert [n for n, _ in shapes] == [3, 2] and shapes[0][1] < 10 < 150 < shapes[1][1], shapes
    alone = [embedder.embed_documents([t])[0] for t in texts]
    assert np.allclose(np.array(together), np.array(alone), atol=1e-6)


TEXTS = [
    "checkpoint after",
    "parse_jwt_claims",
    "MongoError E11000 duplicate key on email",
    " ".join(["retry the flaky upload test"] * 30),
    "case0042 results: the cache misses on every cold start of the api function",
    "why does the nightly export to the data warehouse time out after an hour?",
]


def test_the_quantised_model_is_the_default_here_and_close_to_the_float_graph(
    embedder: OfflineEmbedder, float_graph: OfflineEmbedder
) -> None:
    assert embedder.dynamic and not float_graph.dynamic
    # one name, one collection: a data dir embedded by the float graph is searched as it was
    assert embedder.name == float_graph.name == "minilm-l6-int8"
    quantised = np.array(embedder.embed_documents(TEXTS))
    plain = np.array(float_graph.embed_documents(TEXTS))
    cosine = (quantised * plain).sum(axis=1)
    assert cosine.min() > 0.98, cosine  # measured: 0.987 at worst over 200 agent messages
    assert np.allclose(np.linalg.norm(quantised, axis=1), 1, atol=1e-5)
    assert "MatMulInteger" in {n.op_type for n in _graph(embedder)}  # int8 products


def _graph(embedder: OfflineEmbedder) -> list[object]:
    """The session's nodes, from the model it was made from (re-quantised here, as at load)."""
    import onnx

    from kontex.adapters.offline_embedder import _verified, model_file, quantized

    embedder.embed_query("load")
    model = onnx.load_from_string(quantized(_verified(model_file())))
    return list(model.graph.node)


def test_the_quantised_model_embeds_each_text_alone_so_its_vector_is_its_own(
    embedder: OfflineEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its activations are scaled per call: batched with others a text would get another
    vector. Each text is its own call, and together gives exactly what alone gives."""
    embedder.embed_query("load")
    calls: list[tuple[int, ...]] = []
    real_run = embedder._session.run

    def run(names: object, feed: dict[str, np.ndarray]) -> object:
        calls.append(feed["input_ids"].shape)
        return real_run(names, feed)

    monkeypatch.setattr(embedder._session, "run", run)
    together = embedder.embed_documents(TEXTS)
    monkeypatch.undo()
    assert [n for n, _ in calls] == [1] * len(TEXTS)
    alone = [embedder.embed_documents([t])[0] for t in reversed(TEXTS)][::-1]
    assert together == alone


def test_without_onnx_the_model_runs_its_float_graph_under_its_old_name() -> None:
    """The Lambda layers leave ``onnx`` out (layers/build.py): there the embedder neither
    imports it nor changes its name (the deployed collection stays the one it fills)."""
    program = (
        "import sys; sys.modules['onnx'] = None\n"
        "from kontex.adapters.offline_embedder import OfflineEmbedder\n"
        "e = OfflineEmbedder(); v = e.embed_query('parse_jwt_claims')\n"
        "print(e.name, e.dynamic, len(v))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["minilm-l6-int8", "False", "384"]


def test_the_quantised_model_is_made_once_and_kept_in_the_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kontex.adapters import offline_embedder as module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    made: list[int] = []
    quantized = module.quantized

    def counting(model: bytes) -> bytes:
        made.append(1)
        return quantized(model)

    monkeypatch.setattr(module, "quantized", counting)
    first = module.OfflineEmbedder(dynamic=True).embed_query("the cache misses on cold start")
    second = module.OfflineEmbedder(dynamic=True).embed_query("the cache misses on cold start")
    assert made == [1]  # the second load read the file the first one wrote
    assert first == second
    (kept,) = (tmp_path / "kontex").glob("minilm-l6-dq-*.onnx")
    assert kept.stat().st_size > 1_000_000
    assert not list((tmp_path / "kontex").glob(".minilm-*"))  # no temporary file left


def test_warm_loads_the_model_once_and_embedding_then_loads_nothing() -> None:
    """``kontex dev``'s search process warms its embedder behind its ready answer
    (kontex/local/search_process.py): the first embedding then finds the model loaded."""
    fresh = OfflineEmbedder()
    assert fresh._session is None
    assert fresh.warm() is True
    session = fresh._session
    assert session is not None
    assert fresh.warm() is False  # loaded already: nothing done
    vector = fresh.embed_query(TEXT)
    assert fresh._session is session and len(vector) == 384
